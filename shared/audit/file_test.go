package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock.dev/airlock/shared/audit"
)

// newFileRecorder returns a file Recorder writing to a fresh directory, with its heads
// file beside it, as FromConfig sets it up for AUDIT_SINK=file.
func newFileRecorder(t *testing.T, path string, opts ...audit.Option) *audit.Recorder {
	t.Helper()
	base := []audit.Option{
		audit.WithHeadStore(audit.NewFileHeadStore(path + audit.HeadsFileSuffix)),
		audit.WithHeadsEveryEntry(),
		audit.WithSigner(localSigner()),
	}
	rec, err := audit.NewFileRecorder(t.Context(), path, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewFileRecorder: %v", err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	return rec
}

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v", len(out)+1, err)
		}
		out = append(out, m)
	}
	return out
}

func verifyFile(t *testing.T, path string) audit.Report {
	t.Helper()
	trail, err := audit.ReadTrailFile(path)
	if err != nil {
		t.Fatalf("ReadTrailFile: %v", err)
	}
	heads, err := audit.ReadHeadsFile(path + audit.HeadsFileSuffix)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadHeadsFile: %v", err)
	}
	return audit.Verify(trail, keys(t), heads)
}

func TestFileRecorder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.jsonl")
	var mirror bytes.Buffer
	rec := newFileRecorder(t, path, audit.WithMirror(&mirror), audit.WithFunction("RequestAccess"))
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("when only constructed, want no directory created, got err = %v", err)
	}
	ctx := t.Context()
	if err := rec.Record(ctx, audit.Entry{Event: audit.EventRequestCreated, Actor: "dev@example.com", AccessRequestID: "ar_12",
		SQL: "select a from t where b < 3 & c > 1"}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(ctx, audit.Entry{Event: audit.EventBreakglassActivated, Severity: audit.SeverityAlert}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"sql":"select a from t where b < 3 & c > 1"`)) {
		t.Errorf("want SQL written without HTML escaping, got %s", raw)
	}
	if mirror.String() != string(raw) {
		t.Errorf("want the mirror to hold the same lines as the file\nfile:   %s\nmirror: %s", raw, mirror.String())
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("want file mode 0600, got = %v", st.Mode().Perm())
	}
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got = %d", len(lines))
	}
	if lines[0]["function"] != "RequestAccess" || lines[0]["severity"] != "INFO" || lines[1]["severity"] != "ALERT" ||
		lines[0]["prev_hash"] != audit.GenesisHash || lines[1]["prev_hash"] != lines[0]["hash"] {
		t.Errorf("unexpected lines: %v", lines)
	}
	ts, err := time.Parse(time.RFC3339Nano, lines[0]["time"].(string))
	if err != nil || !strings.HasSuffix(lines[0]["time"].(string), "Z") || time.Since(ts) > time.Minute {
		t.Errorf("want time as RFC 3339 UTC, got = %v (%v)", lines[0]["time"], err)
	}
	heads, err := audit.ReadHeadsFile(path + audit.HeadsFileSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads[1].Seq != 2 || heads[1].Hash != lines[1]["hash"] {
		t.Errorf("want a head after every entry, got = %+v", heads)
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	lines = readLines(t, path)
	if len(lines) != 3 || lines[2]["event"] != audit.EventCheckpoint || lines[2]["reason"] != "close" {
		t.Errorf("after Close, want a closing checkpoint, got = %v", lines[len(lines)-1])
	}
	if rep := verifyFile(t, path); !rep.OK() {
		t.Errorf("want an intact trail, got = %v", rep.Findings)
	}
}

func TestRecordRejectsBadEntries(t *testing.T) {
	rec := newFileRecorder(t, filepath.Join(t.TempDir(), "audit.jsonl"))
	tcs := []struct {
		desc string
		e    audit.Entry
	}{
		{desc: "no event", e: audit.Entry{Actor: "x"}},
		{desc: "unknown severity", e: audit.Entry{Event: "x", Severity: "DEBUG"}},
		{desc: "details that are not JSON", e: audit.Entry{Event: "x", Details: map[string]any{"c": make(chan int)}}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			err := rec.Record(t.Context(), tc.e)
			if err == nil || errors.Is(err, audit.ErrUnavailable) {
				t.Errorf("when %s, want a plain error, got = %v", tc.desc, err)
			}
		})
	}
	if h, _ := rec.Head(t.Context()); h.Seq != 0 {
		t.Errorf("want no entry recorded, got head = %+v", h)
	}
}

func TestRecordDefaultsAndLongSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	rec := newFileRecorder(t, path)
	long := strings.Repeat("é", audit.MaxSQLBytes) // 2 bytes a rune: cut mid-rune
	details := map[string]any{"k": "v"}
	if err := rec.Record(t.Context(), audit.Entry{Event: "security.evasion", SQL: long, Details: details}); err != nil {
		t.Fatal(err)
	}
	if len(details) != 1 {
		t.Errorf("want the caller's details untouched, got = %v", details)
	}
	l := readLines(t, path)[0]
	if l["severity"] != "ALERT" {
		t.Errorf("when the event is security.*, want severity ALERT, got = %v", l["severity"])
	}
	sql := l["sql"].(string)
	d := l["details"].(map[string]any)
	if len(sql) > audit.MaxSQLBytes || !strings.HasPrefix(long, sql) || d["sql_bytes"] != float64(len(long)) || len(d["sql_sha256"].(string)) != 64 || d["k"] != "v" {
		t.Errorf("want SQL cut to MaxSQLBytes with sql_bytes and sql_sha256, got len %d, details %v", len(sql), d)
	}
}

// A failed write does not consume the seq: the next entry reuses it.
func TestFileRecorderFailedWriteKeepsSeq(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.Mkdir(path, 0o700); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	rec := newFileRecorder(t, path)
	ctx := t.Context()
	for range 2 {
		if err := rec.Record(ctx, audit.Entry{Event: "a"}); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("when the file cannot be opened, want ErrUnavailable, got = %v", err)
		}
	}
	if h, _ := rec.Head(ctx); h.Seq != 0 {
		t.Errorf("after failed writes, want seq 0, got = %d", h.Seq)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(ctx, audit.Entry{Event: "b"}); err != nil {
		t.Fatalf("after the file is fixed, Record: %v", err)
	}
	lines := readLines(t, path)
	if len(lines) != 1 || lines[0]["seq"] != 1.0 || lines[0]["event"] != "b" || len(lines[0]["supersedes"].([]any)) != 2 {
		t.Errorf("want seq 1 naming the 2 failed attempts, got = %v", lines)
	}
	if rep := verifyFile(t, path); !rep.OK() {
		t.Errorf("want an intact trail, got = %v", rep.Findings)
	}
}

// TestFileRecorderConcurrent records from many goroutines at once into one file. Through
// one recorder, as the devserver's four functions share one, the file is in seq and time
// order and verifies intact. Through two recorders (two chains, as two processes would
// write), lines still never interleave and each chain is intact on its own; the two
// chains' lines may be out of time order with each other, which the verifier reports
// (a trail file is meant to have one writer at a time), so they are verified apart.
func TestFileRecorderConcurrent(t *testing.T) {
	tcs := []struct {
		desc      string
		recorders int
	}{
		{desc: "one recorder", recorders: 1},
		{desc: "two recorders", recorders: 2},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			recs := []*audit.Recorder{newFileRecorder(t, path, audit.WithCheckpoint(7, 0))}
			if tc.recorders == 2 {
				recs = append(recs, newFileRecorder(t, path, audit.WithCheckpoint(0, time.Nanosecond)))
			}
			const goroutines, each = 16, 25
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*each)
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						e := audit.Entry{Event: audit.EventQueryAttempt, Actor: fmt.Sprintf("dev%d@example.com", g), RequestID: fmt.Sprint(i),
							SQL: strings.Repeat("x", 100*i)}
						if err := recs[g%len(recs)].Record(context.Background(), e); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Record: %v", err)
			}
			for _, r := range recs {
				if err := r.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			byChain := map[string][]string{}
			var queries int
			for i, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
				var e audit.Entry
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("when %d recorders write at once, want whole lines, got = line %d %q: %v", tc.recorders, i+1, l, err)
				}
				byChain[e.Chain] = append(byChain[e.Chain], l)
				if e.Event == audit.EventQueryAttempt {
					queries++
				}
			}
			if len(byChain) != tc.recorders || queries != goroutines*each {
				t.Errorf("when %d recorders write at once, want %d chains and %d queries, got = %d chains, %d queries", tc.recorders, tc.recorders, goroutines*each, len(byChain), queries)
			}
			heads, err := audit.ReadHeadsFile(path + audit.HeadsFileSuffix)
			if err != nil {
				t.Fatal(err)
			}
			if tc.recorders == 1 {
				if rep := verifyFile(t, path); !rep.OK() {
					t.Errorf("when one recorder is shared, want an intact trail, got = %v", rep.Findings)
				}
			}
			for c, lines := range byChain {
				trail, err := audit.ReadTrail(strings.NewReader(strings.Join(lines, "\n") + "\n"))
				if err != nil {
					t.Fatal(err)
				}
				var own []audit.Head
				for _, h := range heads {
					if h.Chain == c {
						own = append(own, h)
					}
				}
				if rep := audit.Verify(trail, keys(t), own); !rep.OK() || len(own) == 0 {
					t.Errorf("when %d recorders write at once, want chain %s intact on its own against its %d heads, got = %v", tc.recorders, c, len(own), rep.Findings)
				}
			}
		})
	}
}

func TestRecordTimeoutWhileBusy(t *testing.T) {
	srv, rec := setupCloudLogging(t, audit.WithTimeout(recordTimeout))
	srv.Hang()
	ctx := t.Context()
	var wg sync.WaitGroup
	start := time.Now()
	for range 3 { // the 2nd and 3rd wait for the lock and must give up on time too
		wg.Go(func() {
			if err := rec.Record(ctx, audit.Entry{Event: "x"}); !errors.Is(err, audit.ErrUnavailable) {
				t.Errorf("want ErrUnavailable, got = %v", err)
			}
		})
	}
	wg.Wait()
	// One after the other would take three timeouts; all at theirs is one (and one more
	// of margin for a busy machine).
	if d := time.Since(start); d > 2*recordTimeout {
		t.Errorf("want all Records to give up at about their %v timeout, took %v", recordTimeout, d)
	}
}
