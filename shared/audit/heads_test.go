package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/shared/audit"
)

func TestFileHeadStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x", "audit.jsonl.heads.jsonl")
	hs := audit.NewFileHeadStore(path)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("when only constructed, want no file, got err = %v", err)
	}
	want := []audit.Head{
		{Chain: "c1", Seq: 1, Hash: strings.Repeat("a", 64), Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)},
		{Chain: "c1", Seq: 2, Hash: strings.Repeat("b", 64)},
		{Chain: "c2", Seq: 1, Hash: strings.Repeat("c", 64)},
	}
	for _, h := range want {
		if err := hs.SaveHead(t.Context(), h); err != nil {
			t.Fatal(err)
		}
	}
	got, err := audit.ReadHeadsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("want %d heads, got = %d", len(want), len(got))
	}
	for i := range want {
		if got[i].Chain != want[i].Chain || got[i].Seq != want[i].Seq || got[i].Hash != want[i].Hash || !got[i].Time.Equal(want[i].Time) {
			t.Errorf("head %d: want = %+v, got = %+v", i, want[i], got[i])
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := hs.SaveHead(ctx, want[0]); err == nil {
		t.Errorf("when ctx is cancelled, want an error, got nil")
	}
}

func TestReadHeadsRejectsBadLines(t *testing.T) {
	tcs := []struct{ desc, in string }{
		{desc: "not JSON", in: "{\n"},
		{desc: "short hash", in: `{"chain":"c","seq":1,"hash":"abc"}` + "\n"},
		{desc: "no chain", in: `{"seq":1,"hash":"` + strings.Repeat("a", 64) + `"}`},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			if _, err := audit.ReadHeads(strings.NewReader(tc.in)); err == nil {
				t.Errorf("when %s, want an error, got nil", tc.desc)
			}
		})
	}
}

// failingHeads fails its first n saves.
type failingHeads struct {
	memHeads
	n int
}

func (f *failingHeads) SaveHead(ctx context.Context, h audit.Head) error {
	f.mu.Lock()
	if f.n > 0 {
		f.n--
		f.mu.Unlock()
		return errors.New("database down")
	}
	f.mu.Unlock()
	return f.memHeads.SaveHead(ctx, h)
}

// A failed head save does not fail Record (the entry is recorded); it is reported and
// retried on the next Record.
func TestHeadSaveFailureIsRetried(t *testing.T) {
	hs := &failingHeads{n: 1}
	var reported []error
	srv, rec := setupCloudLogging(t, audit.WithHeadStore(hs), audit.WithCheckpoint(2, 0),
		audit.WithErrorHandler(func(err error) { reported = append(reported, err) }))
	ctx := t.Context()
	for range 3 {
		if err := rec.Record(ctx, audit.Entry{Event: "x"}); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "database down") {
		t.Errorf("want the failed save reported once, got = %v", reported)
	}
	// The first entry's head failed; the next Record saved its checkpoint's (seq 3).
	heads := hs.all()
	if len(heads) != 1 || heads[0].Seq != 3 {
		t.Errorf("want the head saved on the next Record (seq 3), got = %+v", heads)
	}
	assertVerifiesWithHeads(t, srv, heads)
}
