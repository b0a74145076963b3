package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

// writeTrail records n entries to dir/audit.jsonl, signed with signer, with a heads file
// beside it, as the file sink does locally, and returns the path and the file's lines.
func writeTrail(t *testing.T, dir string, signer audit.Signer, n int, opts ...audit.Option) (string, []string) {
	t.Helper()
	path := filepath.Join(dir, "audit.jsonl")
	base := []audit.Option{audit.WithHeadStore(audit.NewFileHeadStore(path + audit.HeadsFileSuffix)), audit.WithHeadsEveryEntry(), audit.WithSigner(signer)}
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

// writePublicKey writes s's public key as PEM, as airlock-admin dev-setup writes
// .dev/audit-key.pub.pem.
func writePublicKey(t *testing.T, path string, s *audit.LocalSigner) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// forgeAfter returns an entry appended after the entry line, hashed exactly as the
// recorder hashes (SHA-256 of RFC 8785 JSON), as an insider who read the code makes one.
func forgeAfter(t *testing.T, line string, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	seq, _ := m["seq"].(json.Number).Int64()
	m["seq"], m["prev_hash"] = seq+1, m["hash"]
	delete(m, "cert")
	delete(m, "details")
	m["event"], m["actor"] = audit.EventGrantRevoked, "lead1@example.com"
	if edit != nil {
		edit(m)
	}
	delete(m, "hash")
	b, _ := json.Marshal(m)
	h, err := audit.HashPayload(b)
	if err != nil {
		t.Fatal(err)
	}
	m["hash"] = h
	b, _ = json.Marshal(m)
	return string(b)
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	signer := audittest.NewLocalSigner(t)
	path, lines := writeTrail(t, dir, signer, 6) // seq 1..6 and a closing checkpoint at 7
	heads := path + audit.HeadsFileSuffix
	key := writePublicKey(t, filepath.Join(dir, "audit-key.pub.pem"), signer)
	otherKey := writePublicKey(t, filepath.Join(dir, "other.pub.pem"), audittest.NewLocalSigner(t))

	edited := filepath.Join(dir, "edited.jsonl")
	writeLines(t, edited, append([]string{strings.Replace(lines[0], "dev@example.com", "x@example.com", 1)}, lines[1:]...))
	cut := filepath.Join(dir, "cut.jsonl")
	writeLines(t, cut, lines[:4])
	// The cut: an empty heads file placed beside the copy.
	if err := os.WriteFile(cut+audit.HeadsFileSuffix, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	appended := filepath.Join(dir, "appended.jsonl")
	writeLines(t, appended, append(slices.Clone(lines), forgeAfter(t, lines[len(lines)-1], nil)))
	// The newest entry replaced by a copy that supersedes it, against checkpoint-only heads.
	replaced := filepath.Join(dir, "replaced.jsonl")
	var last map[string]any
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	prevLine := lines[len(lines)-2]
	writeLines(t, replaced, append(slices.Clone(lines), forgeAfter(t, prevLine, func(m map[string]any) {
		m["event"], m["supersedes"] = audit.EventCheckpoint, []any{last["hash"]}
	})))
	checkpointHeads := filepath.Join(dir, "checkpoint.heads.jsonl")
	hs, err := audit.ReadHeadsFile(heads)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, h := range hs {
		if h.Seq == 1 || h.Seq == 6 {
			b, _ := json.Marshal(h)
			keep = append(keep, string(b))
		}
	}
	writeLines(t, checkpointHeads, keep)
	dupKeys := filepath.Join(dir, "dup.jsonl")
	writeLines(t, dupKeys, append([]string{strings.Replace(lines[0], `"actor":"dev@example.com"`, `"actor":"dev@example.com","actor":"root@example.com"`, 1)}, lines[1:]...))
	emptyHeads := filepath.Join(dir, "empty.heads.jsonl")
	writeLines(t, emptyHeads, nil)
	garbage := filepath.Join(dir, "garbage.json")
	writeLines(t, garbage, []string{"[{"})
	badHeads := filepath.Join(dir, "bad.heads.jsonl")
	writeLines(t, badHeads, []string{`{"chain":"x"}`})

	tcs := []struct {
		desc       string
		args       []string
		wantCode   int
		wantOut    []string // substrings of stdout
		wantErrOut string   // substring of stderr
	}{
		{desc: "intact", args: []string{"--key", key, "--heads", heads, path}, wantCode: 0,
			wantOut: []string{"OK: 1 chain, 7 entries verified"}, wantErrOut: "heads from " + heads},
		{desc: "intact, the local system's key", args: []string{"--local-key", key, "--heads", heads, path}, wantCode: 0,
			wantOut: []string{"OK: 1 chain, 7 entries verified"}, wantErrOut: "trusting the local system's key " + key},
		{desc: "a key given wins over the local key", args: []string{"--local-key", key, "--key", otherKey, "--heads", heads, path}, wantCode: 1,
			wantOut: []string{"FAIL untrusted:", "seq=1 line=1", "not a trusted key"}},
		{desc: "no heads", args: []string{"--key", key, path}, wantCode: 2, wantErrOut: "no heads given"},
		{desc: "a cut copy with an empty heads file beside it", args: []string{"--key", key, cut}, wantCode: 2, wantErrOut: "no heads given"},
		{desc: "a cut copy with an empty heads file given", args: []string{"--key", key, "--heads", emptyHeads, cut}, wantCode: 1,
			wantOut: []string{"FAIL unanchored:", "seq=4 line=4"}},
		{desc: "no heads, accepted", args: []string{"--key", key, "--no-heads", cut}, wantCode: 0,
			wantOut: []string{"NOTE no heads", "OK: 1 chain, 4 entries verified"}},
		{desc: "edited", args: []string{"--key", key, "--heads", heads, edited}, wantCode: 1,
			wantOut: []string{"FAIL edited:", "seq=1 line=1 event=query.attempt actor=x@example.com", "TAMPERED: 1 finding; the first entry that cannot be trusted is chain="}},
		{desc: "tail cut, heads given after the file", args: []string{"--key", key, cut, "--heads", heads}, wantCode: 1,
			wantOut: []string{"FAIL truncated:", "seq=4 line=4", "seq 5..7 missing", "TAMPERED: 1 finding"}},
		{desc: "forged entry appended, hash recomputed", args: []string{"--key", key, "--heads", heads, appended}, wantCode: 1,
			wantOut: []string{"FAIL unsigned:", "seq=8 line=8 event=grant.revoked actor=lead1@example.com", "TAMPERED: 1 finding; the first entry that cannot be trusted is chain="}},
		{desc: "newest entry replaced through supersedes", args: []string{"--key", key, "--heads", checkpointHeads, replaced}, wantCode: 1,
			wantOut: []string{"FAIL unsigned:", "seq=7 line=8"}},
		{desc: "duplicate keys", args: []string{"--key", key, "--heads", heads, dupKeys}, wantCode: 1,
			wantOut: []string{"FAIL malformed:", "line=1", `member "actor" appears twice`}},
		{desc: "no key", args: []string{"--heads", heads, path}, wantCode: 2, wantErrOut: "no key is trusted"},
		{desc: "local key missing", args: []string{"--local-key", filepath.Join(dir, "nope.pem"), "--heads", heads, path}, wantCode: 2, wantErrOut: "no key is trusted"},
		{desc: "only another key", args: []string{"--key", otherKey, "--heads", heads, path}, wantCode: 1,
			wantOut: []string{"FAIL untrusted:", "none of the chain's 7 entries can be trusted"}},
		{desc: "no heads contradicts heads", args: []string{"--key", key, "--no-heads", "--heads", heads, path}, wantCode: 2, wantErrOut: "contradicts"},
		{desc: "heads unreadable", args: []string{"--key", key, "--heads", badHeads, path}, wantCode: 2, wantErrOut: "heads line 1: needs chain"},
		{desc: "no argument", args: nil, wantCode: 2, wantErrOut: "want exactly one TRAIL"},
		{desc: "two arguments", args: []string{path, path}, wantCode: 2, wantErrOut: "want exactly one TRAIL"},
		{desc: "unknown flag", args: []string{"--bogus", path}, wantCode: 2, wantErrOut: "flag provided but not defined"},
		{desc: "missing file", args: []string{"--key", key, "--heads", heads, filepath.Join(dir, "nope.jsonl")}, wantCode: 2, wantErrOut: "no such file"},
		{desc: "missing heads file", args: []string{"--key", key, "--heads", filepath.Join(dir, "nope"), path}, wantCode: 2, wantErrOut: "no such file"},
		{desc: "missing key file", args: []string{"--key", filepath.Join(dir, "nope.pem"), "--heads", heads, path}, wantCode: 2, wantErrOut: "no such file"},
		{desc: "broken gcloud array", args: []string{"--key", key, "--no-heads", garbage}, wantCode: 2, wantErrOut: "gcloud export"},
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
	rec, err := audit.NewRecorder(t.Context(), "p", audit.WithClientOptions(srv.ClientOptions()...), audit.WithSigner(srv.Signer(t)),
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
		{desc: "intact, the KMS key", args: []string{"--kms-key", audittest.KMSKeyName, "--heads", heads, good}, wantCode: 0, wantOut: "OK: 1 chain, 6 entries verified"},
		{desc: "intact, the KMS key version", args: []string{"--kms-key", audittest.KMSKeyVersion, "--heads", heads, good}, wantCode: 0, wantOut: "OK: 1 chain, 6 entries verified"},
		{desc: "tail cut", args: []string{"--kms-key", audittest.KMSKeyName, "--heads", heads, cut}, wantCode: 1, wantOut: "FAIL truncated:"},
		{desc: "an unknown KMS key", args: []string{"--kms-key", audittest.KMSKeyName + "x", "--heads", heads, good}, wantCode: 2},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stdout, &stderr, srv.ClientOptions()...); code != tc.wantCode {
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
	signer := audittest.NewLocalSigner(t)
	key := writePublicKey(t, filepath.Join(dir, "audit-key.pub.pem"), signer)
	_, lines := writeTrail(t, dir, signer, 4, audit.WithHeadStore(audit.NewPGHeadStore(conn, "")), audit.WithCheckpoint(2, 0))
	var e audit.Entry
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(context.Background(), "DELETE FROM airlock.audit_heads WHERE chain = $1", e.Chain) })
	// The database knows every chain verified so far, so verify only this trail's chain:
	// --allow-missing-start ignores heads of chains that are not in the file (heads of
	// other tests' chains, signed by keys this test does not trust, are reported as
	// forged_head only when they are not ignored).
	full := filepath.Join(dir, "full.jsonl")
	writeLines(t, full, lines)
	cut := filepath.Join(dir, "cut.jsonl")
	writeLines(t, cut, lines[:len(lines)-1])
	for _, tc := range []struct {
		path     string
		wantCode int
	}{{full, 0}, {cut, 1}} {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"--key", key, "--database-url", url, "--allow-missing-start", tc.path}, &stdout, &stderr)
		if code != tc.wantCode {
			t.Errorf("when verifying %s against the database, want exit = %d, got = %d\nstdout: %s\nstderr: %s", filepath.Base(tc.path), tc.wantCode, code, &stdout, &stderr)
		}
	}
}
