package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

// writeTrail records n entries to dir/audit.jsonl with a heads file beside it, as the
// file sink does locally, and returns the path and the file's lines.
func writeTrail(t *testing.T, dir string, n int, opts ...audit.Option) (string, []string) {
	t.Helper()
	path := filepath.Join(dir, "audit.jsonl")
	base := []audit.Option{audit.WithHeadStore(audit.NewFileHeadStore(path + audit.HeadsFileSuffix)), audit.WithHeadsEveryEntry()}
	rec, err := audit.NewFileRecorder(t.Context(), path, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := rec.Record(t.Context(), audit.Entry{Event: audit.EventQueryAttempt, Actor: "dev@example.com", RequestID: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	path, lines := writeTrail(t, dir, 6) // seq 1..6 and a closing checkpoint at 7

	edited := filepath.Join(dir, "edited.jsonl")
	writeLines(t, edited, append([]string{strings.Replace(lines[0], "dev@example.com", "x@example.com", 1)}, lines[1:]...))
	cut := filepath.Join(dir, "cut.jsonl")
	writeLines(t, cut, lines[:4])
	garbage := filepath.Join(dir, "garbage.json")
	writeLines(t, garbage, []string{"[{"})

	// Copies elsewhere, without a heads file beside them, as a user makes with cp.
	copies := t.TempDir()
	localHeads := path + audit.HeadsFileSuffix
	copied := filepath.Join(copies, "copy.jsonl")
	writeLines(t, copied, lines)
	copyCut := filepath.Join(copies, "copy-cut.jsonl")
	writeLines(t, copyCut, lines[:4])
	// Another system's trail, cut too, with no chain in common with the local heads.
	otherDir := t.TempDir()
	other, otherLines := writeTrail(t, otherDir, 3)
	otherCut := filepath.Join(copies, "other-cut.jsonl")
	writeLines(t, otherCut, otherLines[:2])
	badHeads := filepath.Join(copies, "bad.heads.jsonl")
	writeLines(t, badHeads, []string{`{"chain":"x"}`})

	tcs := []struct {
		desc       string
		args       []string
		wantCode   int
		wantOut    []string // substrings of stdout
		wantErrOut string   // substring of stderr
	}{
		{desc: "intact, default heads", args: []string{path}, wantCode: 0,
			wantOut: []string{"OK: 1 chain, 7 entries verified"}, wantErrOut: "using heads from " + path + ".heads.jsonl"},
		{desc: "edited", args: []string{edited}, wantCode: 1,
			wantOut: []string{"FAIL edited:", "seq=1 line=1 event=query.attempt actor=x@example.com", "TAMPERED: 1 finding"}},
		{desc: "tail cut, heads given after the file", args: []string{cut, "--heads", path + ".heads.jsonl"}, wantCode: 1,
			wantOut: []string{"FAIL truncated:", "seq=4 line=4", "seq 5..7 missing", "TAMPERED: 1 finding"}},
		{desc: "tail cut, no heads", args: []string{"-no-default-heads", cut}, wantCode: 0,
			wantOut: []string{"NOTE no heads given", "OK: 1 chain, 4 entries verified"}},
		{desc: "copy, local heads", args: []string{"--local-heads", localHeads, copied}, wantCode: 0,
			wantOut: []string{"OK: 1 chain, 7 entries verified"}, wantErrOut: "using heads from " + localHeads + ", the local system's: " + copied + " has no heads file beside it"},
		{desc: "copy with its tail cut, local heads", args: []string{"--local-heads", localHeads, copyCut}, wantCode: 1,
			wantOut: []string{"FAIL truncated:", "seq=4 line=4", "seq 5..7 missing", "TAMPERED: 1 finding"}, wantErrOut: "the local system's"},
		{desc: "copy with its tail cut, local heads refused", args: []string{"--local-heads", localHeads, "--no-default-heads", copyCut}, wantCode: 0,
			wantOut: []string{"NOTE no heads given", "OK: 1 chain, 4 entries verified"}},
		{desc: "copy with its tail cut, heads given", args: []string{"--local-heads", badHeads, "--heads", localHeads, copyCut}, wantCode: 1,
			wantOut: []string{"FAIL truncated:", "TAMPERED: 1 finding"}},
		{desc: "another system's trail, cut, local heads", args: []string{"--local-heads", localHeads, otherCut}, wantCode: 0,
			wantOut: []string{"NOTE no heads given", "OK: 1 chain, 2 entries verified"}, wantErrOut: "not using the local heads in " + localHeads + ": " + otherCut + " has none of their chains"},
		{desc: "own heads file before local heads", args: []string{"--local-heads", localHeads, other}, wantCode: 0,
			wantOut: []string{"OK: 1 chain, 4 entries verified"}, wantErrOut: "using heads from " + other + ".heads.jsonl\n"},
		{desc: "local heads missing", args: []string{"--local-heads", filepath.Join(copies, "nope"), copyCut}, wantCode: 0,
			wantOut: []string{"NOTE no heads given"}},
		{desc: "local heads unreadable", args: []string{"--local-heads", badHeads, copyCut}, wantCode: 2,
			wantErrOut: "local heads: audit: heads line 1: needs chain"},
		{desc: "no argument", args: nil, wantCode: 2, wantErrOut: "want exactly one TRAIL"},
		{desc: "two arguments", args: []string{path, path}, wantCode: 2, wantErrOut: "want exactly one TRAIL"},
		{desc: "unknown flag", args: []string{"--bogus", path}, wantCode: 2, wantErrOut: "flag provided but not defined"},
		{desc: "missing file", args: []string{filepath.Join(dir, "nope.jsonl")}, wantCode: 2, wantErrOut: "no such file"},
		{desc: "missing heads file", args: []string{"--heads", filepath.Join(dir, "nope"), path}, wantCode: 2, wantErrOut: "no such file"},
		{desc: "broken gcloud array", args: []string{garbage}, wantCode: 2, wantErrOut: "gcloud export"},
		{desc: "help", args: []string{"-h"}, wantCode: 0, wantErrOut: "usage: audit-verify"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("when %v, want exit = %d, got = %d\nstdout: %s\nstderr: %s", tc.args, tc.wantCode, code, &stdout, &stderr)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("want stdout to contain %q, got:\n%s", w, &stdout)
				}
			}
			if !strings.Contains(stderr.String(), tc.wantErrOut) {
				t.Errorf("want stderr to contain %q, got:\n%s", tc.wantErrOut, &stderr)
			}
			for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
				if !strings.HasPrefix(l, "FAIL ") && !strings.HasPrefix(l, "NOTE ") && !strings.HasPrefix(l, "OK: ") && !strings.HasPrefix(l, "TAMPERED: ") && l != "" {
					t.Errorf("unexpected stdout line %q", l)
				}
			}
		})
	}
}

func TestRunGcloudExport(t *testing.T) {
	srv := audittest.NewServer(t)
	heads := filepath.Join(t.TempDir(), "heads.jsonl")
	rec, err := audit.NewRecorder(t.Context(), "p", audit.WithClientOptions(srv.ClientOptions()...),
		audit.WithLoggerOptions(srv.LoggerOptions()...), audit.WithHeadStore(audit.NewFileHeadStore(heads)))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := rec.Record(t.Context(), audit.Entry{Event: audit.EventSweepRun}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	export, err := srv.GcloudJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "export.json")
	if err := os.WriteFile(good, export, 0o600); err != nil {
		t.Fatal(err)
	}
	// Drop the newest element (the closing checkpoint), as a deleted tail would.
	var elems []json.RawMessage
	if err := json.Unmarshal(export, &elems); err != nil {
		t.Fatal(err)
	}
	cutExport, err := json.Marshal(elems[1:])
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.json")
	if err := os.WriteFile(cut, cutExport, 0o600); err != nil {
		t.Fatal(err)
	}

	tcs := []struct {
		desc     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{desc: "intact", args: []string{"--heads", heads, good}, wantCode: 0, wantOut: "OK: 1 chain, 6 entries verified"},
		{desc: "tail cut", args: []string{"--heads", heads, cut}, wantCode: 1, wantOut: "FAIL truncated:"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stdout, &stderr); code != tc.wantCode {
				t.Errorf("want exit = %d, got = %d\nstdout: %s\nstderr: %s", tc.wantCode, code, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("want stdout to contain %q, got:\n%s", tc.wantOut, &stdout)
			}
		})
	}
}

func TestRunDatabaseHeads(t *testing.T) {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL not set")
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{"SELECT pg_advisory_lock(727274)", "CREATE SCHEMA IF NOT EXISTS airlock", audit.HeadsTableDDL, "SELECT pg_advisory_unlock(727274)"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	_, lines := writeTrail(t, dir, 4, audit.WithHeadStore(audit.NewPGHeadStore(conn, "")), audit.WithCheckpoint(2, 0))
	var e audit.Entry
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DELETE FROM airlock.audit_heads WHERE chain = $1", e.Chain) })
	// The database knows every chain verified so far, so verify only this trail's chain:
	// --allow-missing-start ignores heads of chains that are not in the file.
	full := filepath.Join(dir, "full.jsonl")
	writeLines(t, full, lines)
	cut := filepath.Join(dir, "cut.jsonl")
	writeLines(t, cut, lines[:len(lines)-1])
	for _, tc := range []struct {
		path     string
		wantCode int
	}{{full, 0}, {cut, 1}} {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"--database-url", url, "--allow-missing-start", tc.path}, &stdout, &stderr)
		if code != tc.wantCode {
			t.Errorf("when verifying %s against the database, want exit = %d, got = %d\nstdout: %s\nstderr: %s", filepath.Base(tc.path), tc.wantCode, code, &stdout, &stderr)
		}
	}
}
