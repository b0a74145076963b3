package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// memSink keeps lines; fail makes the next write fail after storing (an ambiguous
// failure, like a timeout after Cloud Logging stored the entry).
type memSink struct {
	lines [][]byte
	fail  bool
}

func (m *memSink) write(_ context.Context, _ *Entry, line []byte) error {
	m.lines = append(m.lines, bytes.Clone(line))
	if m.fail {
		m.fail = false
		return context.DeadlineExceeded
	}
	return nil
}

func (m *memSink) close() error { return nil }

// TestSupersedesCannotReplaceConfirmed plays someone who holds a chain's key (a stolen
// function identity): even then, supersedes can only name an attempt nothing confirms.
func TestSupersedesCannotReplaceConfirmed(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := NewLocalSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	ring := &Keyring{}
	ring.Add(signer.KeyName(), "test", signer.Public())
	cfg := defaultConfig()
	cfg.signer = signer
	sink := &memSink{}
	rec, err := newRecorder(sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 4 {
		if i == 2 {
			sink.fail = true // seq 3's first attempt lands but is reported failed
			if err := rec.Record(ctx, Entry{Event: EventQueryAttempt, Actor: "x"}); err == nil {
				t.Fatal("want the failed write reported")
			}
		}
		if err := rec.Record(ctx, Entry{Event: EventQueryAttempt, Actor: "dev@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(lines [][]byte) Report {
		tr, err := ReadTrail(bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n')))
		if err != nil {
			t.Fatal(err)
		}
		return Verify(tr, ring, nil)
	}
	if rep := verify(sink.lines); !rep.OK() || len(rep.Notes) != 1 {
		t.Fatalf("want the genuine trail intact with one note about the failed attempt, got = %s %v %v", rep.Summary(), rep.Findings, rep.Notes)
	}

	// With the key, write a second seq 2 that supersedes the real one, which seq 3
	// (both attempts) links to: the real seq 2 is confirmed, so it cannot be superseded.
	real2 := sink.lines[1]
	var e Entry
	if err := jsonUnmarshal(real2, &e); err != nil {
		t.Fatal(err)
	}
	forged := e
	forged.Actor = "mallory@example.com"
	forged.Time = e.Time.Add(time.Microsecond)
	forged.Supersedes = []string{e.Hash}
	line, err := seal(&forged, rec.key)
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(append(append([][]byte{}, sink.lines...), line))
	if len(rep.Findings) != 1 || rep.Findings[0].Actor != "mallory@example.com" || len(rep.Notes) != 1 {
		t.Errorf("when a signed entry supersedes a confirmed one, want one finding naming it and no new note, got = %v %v", rep.Findings, rep.Notes)
	}

	// Written before the attempt it claims failed: a failed attempt comes first.
	early := e
	early.Actor = "mallory@example.com"
	early.Time = e.Time.Add(-time.Second)
	early.Supersedes = []string{e.Hash}
	line, err = seal(&early, rec.key)
	if err != nil {
		t.Fatal(err)
	}
	lines := append([][]byte{}, sink.lines...)
	lines[1] = line // the forged seq 2 replaces the real one …
	lines = append(lines, real2)
	rep = verify(lines)
	var kinds []string
	for _, f := range rep.Findings {
		kinds = append(kinds, f.Kind)
	}
	if !strings.Contains(strings.Join(kinds, ","), KindSuperseded) && !strings.Contains(strings.Join(kinds, ","), KindInserted) {
		t.Errorf("when a signed entry supersedes a later one, want it reported, got = %v", rep.Findings)
	}
}

func jsonUnmarshal(b []byte, e *Entry) error { return json.Unmarshal(b, e) }
