package scripts_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/cloudsqlemu"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
)

// TestWalkthrough checks the audit trail the way a new user would. It runs the whole
// system with scripts/dev.sh (its own state directory, port and database), types the
// commands of README.md's access walk-through into one bash session, stops the system
// (as Ctrl-C does) and runs it again for a query and a sweep, so the trail holds two
// runs. scripts/audit-verify must pass the trail and a plain copy of it, and fail, naming
// the entry, on copies with one entry edited, one removed, two adjacent entries swapped
// (of two functions in one run, and across the two runs) and the last three cut off.
//
// The commands come from README.md itself, so the README cannot drift from what is
// tested; only the port and the request id placeholder are replaced. dev.sh runs on the
// Cloud SQL emulation of scripts/test.sh (AIRLOCK_CLOUDSQL), in a database of its own,
// with no superuser: the migrations as the admin, the owner's statements as the owner,
// the functions as their logins. Airlock's roles (airlock_*) are cluster-wide, as
// scripts/browser-test.sh's are: do not run two at once on one server.
func TestWalkthrough(t *testing.T) {
	emu := dbtest.Emulation(t)
	if testing.Short() {
		t.Skip("runs the whole system twice; skipped with -short")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's walk-through needs curl: apt-get install curl")
	}
	blocks, outputs := walkthroughBlocks(t)
	sweep := sweeperCommand(t)

	state := t.TempDir()
	port := freePort(t)
	dbName := "airlock_walk_" + randomHex(t, 4)
	sys := devSystem{state: state, port: port, dbName: dbName, ownerURL: db.WithDatabase(emu.OwnerURL, dbName)}
	t.Cleanup(func() { dropDatabase(t, emu.AdminURL, dbName) })
	env := append(cleanEnv(), "AIRLOCK_STATE="+state)
	trail := filepath.Join(state, "audit.jsonl")

	// Run 1: the walk-through, block by block, as typed.
	sys.start(t)
	sh := startShell(t, env)
	reqID := ""
	for i := range blocks {
		blocks[i] = strings.ReplaceAll(blocks[i], "http://127.0.0.1:8080", fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	for i, b := range blocks {
		if strings.Contains(b, "REQ=ar_") {
			if reqID == "" {
				t.Fatalf("README walk-through block %d sets REQ, but no earlier block printed a request_id", i+1)
			}
			b = regexp.MustCompile(`(?m)^REQ=ar_\S*`).ReplaceAllString(b, "REQ="+reqID)
		}
		out := sh.run(t, b)
		// What the README says the queries show: masked before the grant, then the real
		// e-mail for dev1 and the masked one for dev2.
		switch {
		case i == 1 && !strings.Contains(out, "h:"):
			t.Errorf("README walk-through block %d (dev1's query before the grant): want the e-mail masked (h:…), got = %s", i+1, out)
		case strings.Contains(b, "$DEV1") && strings.Contains(b, "$DEV2") && (strings.Count(out, "h:") != 1 || !strings.Contains(out, "@")):
			t.Errorf("README walk-through block %d (dev1 and dev2 after the grant): want one real e-mail and one masked, got = %s", i+1, out)
		}
		if want, ok := outputs[i]; ok {
			if msg := matchJSON(want, out); msg != "" {
				t.Errorf("README walk-through block %d:\n%s\nwhen run, want output like the README's %s, got = %s\n(%s)", i+1, b, want, out, msg)
			}
		}
		if reqID == "" {
			if m := regexp.MustCompile(`"request_id":"(ar_[0-9a-f]+)"`).FindStringSubmatch(out); m != nil {
				reqID = m[1]
			}
		}
	}
	sys.stop(t)
	run1 := readTrail(t, trail)

	// Run 2: the system started again appends a chain of its own.
	sys.start(t)
	for _, c := range []struct{ cmd, want string }{
		{blocks[1], "(1 row)"}, // dev1's query
		{strings.ReplaceAll(sweep, "localhost:8080", fmt.Sprintf("localhost:%d", port)), `"expired_grants":`},
	} {
		if out := sh.run(t, c.cmd); !strings.Contains(out, c.want) {
			t.Errorf("run 2: when running\n%s\nwant output with %s, got = %s", c.cmd, c.want, out)
		}
	}
	recovery(t, sh, sys)
	sys.stop(t)
	all := readTrail(t, trail)
	if len(all) <= len(run1) {
		t.Fatalf("when dev.sh runs again, want entries appended to %s, got = %d lines before and %d after", trail, len(run1), len(all))
	}
	run2 := all[len(run1):]
	checkRun(t, "run 1 (the walk-through)", run1, []string{"request.created", "request.approved", "grant.created", "breakglass.activated", "audit.checkpoint"},
		[]string{"ExecuteQuery", "RequestAccess", "ApprovalCallback"})
	checkRun(t, "run 2 (a query and a sweep)", run2, []string{"query.attempt", "query.result", "sweep.run", "audit.checkpoint"},
		[]string{"ExecuteQuery", "SweepExpired"})
	chain1, chain2 := run1[0].Chain, run2[0].Chain
	for _, e := range run1 { // as the README's walk-through says
		actor := map[string]string{"request.created": "dev1@example.com", "request.approved": "lead1@example.com",
			"grant.created": "lead1@example.com", "breakglass.activated": "dev1@example.com"}[e.Event]
		if actor != "" && e.Actor != actor {
			t.Errorf("run 1 line %d: want %s by %s, got = by %s", e.line, e.Event, actor, e.Actor)
		}
		if e.Event == "breakglass.activated" && e.Severity != "ALERT" {
			t.Errorf("run 1 line %d: want breakglass.activated at severity ALERT, got = %s", e.line, e.Severity)
		}
	}

	// The trail, and copies of it elsewhere, as a user makes them with cp, sed and head.
	copies := t.TempDir()
	lines := make([]string, len(all))
	for i, e := range all {
		lines[i] = e.raw
	}
	write := func(name string, ls []string) string {
		p := filepath.Join(copies, name)
		if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	at := func(run []trailLine, event string) int { // index in all of run's first entry of event
		for _, e := range run {
			if e.Event == event {
				return e.line - 1
			}
		}
		t.Fatalf("no %s entry in the trail", event)
		return -1
	}
	swap := func(i, j int) []string {
		ls := slices.Clone(lines)
		ls[i], ls[j] = ls[j], ls[i]
		return ls
	}
	approved, created, granted := at(run1, "request.approved"), at(run1, "request.created"), at(run1, "grant.created")
	if created+1 != approved {
		t.Fatalf("want request.created (RequestAccess) right before request.approved (ApprovalCallback), got = lines %d and %d", created+1, approved+1)
	}
	edited := slices.Clone(lines)
	edited[approved] = strings.Replace(edited[approved], `"actor":"lead1@example.com"`, `"actor":"lead2@example.com"`, 1)
	if edited[approved] == lines[approved] {
		t.Fatalf("want request.approved by lead1@example.com, got = %s", lines[approved])
	}
	boundary := len(run1) - 1 // run 1's closing checkpoint, then run 2's first entry
	cut := len(lines) - 3
	if all[cut-1].Chain != chain2 {
		t.Fatalf("want run 2 to have more than three entries, got = %d", len(run2))
	}

	heads := trail + audit.HeadsFileSuffix
	// Forgeries as an insider with Logs Writer makes them, having read the code: entries
	// appended after the last one and hashed exactly as the recorder hashes.
	forged := slices.Clone(lines)
	last := lines[len(lines)-1]
	lastTime := decodeLine(t, last)["time"]
	f1 := forgeAfter(t, last, map[string]any{"event": "grant.revoked", "actor": "lead1@example.com", "function": "ApprovalCallback", "time": lastTime, "grant_ids": []any{1}})
	f2 := forgeAfter(t, f1, map[string]any{"event": "query.result", "actor": "dev1@example.com", "function": "ExecuteQuery", "time": lastTime, "mode": "write", "rows": 1})
	forged = append(forged, f1, f2)
	// The newest entry replaced by a forged copy that supersedes it, checked against
	// checkpoint-only heads, as a deployment keeps them.
	replaced := append(slices.Clone(lines), forgeAfter(t, lines[len(lines)-2], map[string]any{"event": "audit.checkpoint", "time": lastTime,
		"actor": "sweeper@airlock-demo.iam.gserviceaccount.com", "supersedes": []any{decodeLine(t, last)["hash"]}}))
	var checkpointHeads []string
	for _, l := range readLinesOf(t, heads) {
		h := decodeLine(t, l)
		for _, e := range all {
			if e.Chain == h["chain"] && fmt.Sprint(e.Seq) == fmt.Sprint(h["seq"]) && (e.Event == "audit.checkpoint" || e.Seq == 1) {
				checkpointHeads = append(checkpointHeads, l)
			}
		}
	}
	dup := slices.Clone(lines)
	dup[approved] = strings.Replace(dup[approved], `"actor":"lead1@example.com"`, `"actor":"lead1@example.com","actor":"lead2@example.com"`, 1)
	// The cut: the tail cut and an empty heads file placed beside the copy.
	cutBeside := write("cut-beside.jsonl", lines[:cut])
	write("cut-beside.jsonl.heads.jsonl", nil)
	emptyHeads := write("empty.heads.jsonl", nil)

	tcs := []struct {
		desc  string
		trail string
		args  []string // flags before the trail; nil: --heads and the local heads, as the README says
		code  int      // exit status when there are no FAIL lines; 0 by default
		// want has one element per FAIL line expected: the starts such a line may
		// have (a swap may be reported at either of the two entries).
		want    [][]string
		wantErr string // in stderr
	}{
		{desc: "the trail itself", trail: trail},
		{desc: "an untouched copy", trail: write("copy.jsonl", lines)},
		{desc: "one entry edited (request.approved's actor)", trail: write("edited.jsonl", edited),
			want: [][]string{{fmt.Sprintf("FAIL edited: chain=%s seq=%d line=%d event=request.approved", chain1, all[approved].Seq, approved+1)}}},
		{desc: "one entry removed (grant.created)", trail: write("removed.jsonl", slices.Delete(slices.Clone(lines), granted, granted+1)),
			want: [][]string{{fmt.Sprintf("FAIL removed: chain=%s seq=%d: seq %d missing", chain1, all[granted].Seq, all[granted].Seq)}}},
		{desc: "two adjacent entries of two functions swapped", trail: write("swapped.jsonl", swap(created, approved)),
			want: [][]string{{named("reordered", all[approved], created+1), named("reordered", all[created], approved+1)}}},
		{desc: "two adjacent entries of two runs swapped", trail: write("swapped-runs.jsonl", swap(boundary, boundary+1)),
			want: [][]string{{named("reordered", all[boundary], boundary+2), named("reordered", all[boundary+1], boundary+1)}}},
		{desc: "last three entries cut off", trail: write("cut.jsonl", lines[:cut]),
			want: [][]string{{fmt.Sprintf("FAIL truncated: chain=%s seq=%d line=%d event=%s", chain2, all[cut-1].Seq, cut, all[cut-1].Event)}}},
		{desc: "two forged entries appended, hashes recomputed", trail: write("forged.jsonl", forged),
			want: [][]string{{fmt.Sprintf("FAIL unsigned: chain=%s seq=%d line=%d event=grant.revoked actor=lead1@example.com", chain2, all[len(all)-1].Seq+1, len(lines)+1)},
				{fmt.Sprintf("FAIL unsigned: chain=%s seq=%d line=%d event=query.result actor=dev1@example.com", chain2, all[len(all)-1].Seq+2, len(lines)+2)}}},
		{desc: "the newest entry replaced through supersedes, checkpoint-only heads", trail: write("replaced.jsonl", replaced),
			args: []string{"--heads", write("checkpoint.heads.jsonl", checkpointHeads)},
			want: [][]string{{fmt.Sprintf("FAIL unsigned: chain=%s seq=%d line=%d event=audit.checkpoint", chain2, all[len(all)-1].Seq, len(lines)+1)}}},
		{desc: "a line with duplicate keys", trail: write("dup.jsonl", dup),
			want: [][]string{{fmt.Sprintf("FAIL malformed: chain=%s seq=%d line=%d", chain1, all[approved].Seq, approved+1)}}},
		{desc: "tail cut, an empty heads file beside the copy, no --heads", trail: cutBeside, args: []string{}, code: 2, wantErr: "no heads given"},
		{desc: "tail cut, the empty heads file given", trail: cutBeside, args: []string{"--heads", emptyHeads},
			want: [][]string{{fmt.Sprintf("FAIL unanchored: chain=%s", chain1)}, {fmt.Sprintf("FAIL unanchored: chain=%s seq=%d line=%d", chain2, all[cut-1].Seq, cut)}}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = []string{"--heads", heads}
			}
			code, stdout, stderr := auditVerify(t, env, append(slices.Clone(args), tc.trail)...)
			wantCode := tc.code
			if len(tc.want) > 0 {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("when verifying %s, want exit = %d, got = %d\nstdout:\n%sstderr:\n%s", tc.trail, wantCode, code, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.wantErr) || (tc.args == nil && !strings.Contains(stderr, "heads from "+heads)) {
				t.Errorf("when verifying %s, want stderr with %q and the heads named, got = %s", tc.trail, tc.wantErr, stderr)
			}
			if wantCode == 2 {
				return
			}
			var fails []string
			for _, l := range strings.Split(stdout, "\n") {
				if strings.HasPrefix(l, "FAIL ") {
					fails = append(fails, l)
				}
			}
			if len(fails) != len(tc.want) {
				t.Errorf("when verifying %s, want %d FAIL lines, got = %d:\n%s", tc.trail, len(tc.want), len(fails), stdout)
			}
			for _, alts := range tc.want {
				found := false
				for _, f := range fails {
					for _, w := range alts {
						found = found || strings.HasPrefix(f, w)
					}
				}
				if !found {
					t.Errorf("when verifying %s, want a line starting with one of %q, got = \n%s", tc.trail, alts, stdout)
				}
			}
			wantLast := fmt.Sprintf("OK: 2 chains, %d entries verified", len(all))
			if len(tc.want) > 0 {
				wantLast = fmt.Sprintf("TAMPERED: %d finding", len(tc.want))
			}
			if !strings.Contains(stdout, wantLast) {
				t.Errorf("when verifying %s, want %q, got = \n%s", tc.trail, wantLast, stdout)
			}
		})
	}

	checkReport(t, sh, state, all)
}

// named is the start of the FAIL line that names e, standing at line.
func named(kind string, e trailLine, line int) string {
	return fmt.Sprintf("FAIL %s: chain=%s seq=%d line=%d event=%s", kind, e.Chain, e.Seq, line, e.Event)
}

// walkthroughBlocks returns the sh code blocks of README.md's walk-through, and, by the
// index of the block before it, each JSON block the README shows as that block's output.
func walkthroughBlocks(t *testing.T) ([]string, map[int]string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n### Walk-through")
	if start < 0 {
		t.Fatal(`README.md: no "### Walk-through" section`)
	}
	text = text[start+1:]
	if end := regexp.MustCompile(`\n#{2,4} `).FindStringIndex(text[1:]); end != nil {
		text = text[:end[0]+1]
	}
	var blocks []string
	outputs := map[int]string{}
	for _, m := range regexp.MustCompile("(?s)```(sh|json)\n(.*?)```").FindAllStringSubmatch(text, -1) {
		switch {
		case m[1] == "sh":
			blocks = append(blocks, m[2])
		case len(blocks) > 0:
			outputs[len(blocks)-1] = m[2]
		}
	}
	if len(blocks) < 6 || !strings.Contains(blocks[0], "dev-token.sh") || !strings.Contains(blocks[1], "/ExecuteQuery/") {
		t.Fatalf("README.md walk-through: want its sh blocks to start with the tokens and dev1's query, got = %q", blocks)
	}
	if len(outputs) < 2 {
		t.Fatalf("README.md walk-through: want the JSON answers of the request and the approval shown, got = %d JSON blocks", len(outputs))
	}
	var reqLines int
	for _, b := range blocks {
		reqLines += len(regexp.MustCompile(`(?m)^REQ=ar_`).FindAllString(b, -1))
	}
	if reqLines != 1 {
		t.Fatalf("README.md walk-through: want one line REQ=ar_… (the request id placeholder), got = %d", reqLines)
	}
	return blocks, outputs
}

// recovery checks the README's Recovery section on the running system: dev1 gets
// write_accounts approved, changes account 42, and the README's scripts/airlock revert
// commands show and then apply the compensating statement, which puts the row back byte
// for byte.
func recovery(t *testing.T, sh *shell, sys devSystem) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(scripts/airlock [^`]*? revert REQUEST_ID[^`]*?)```").FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("README.md: no sh block of scripts/airlock revert commands with REQUEST_ID (section Recovery)")
	}
	// The row as its owner sees it.
	conn, err := pgx.Connect(t.Context(), sys.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	row42 := func() string {
		var s string
		if err := conn.QueryRow(t.Context(), `SELECT a::text FROM public.accounts a WHERE id = 42`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := row42()
	base := fmt.Sprintf("http://127.0.0.1:%d", sys.port)
	grant := sh.run(t, fmt.Sprintf(`export AIRLOCK_URL=http://127.0.0.1:%d
LEAD2=$(scripts/dev-token.sh lead2@example.com)
WREQ=$(curl -s %s/RequestAccess/ -H "Authorization: Bearer $DEV1" -d '{"role": "write_accounts", "duration": "30m", "reason": "Client 42 double-credited, ticket INC-1234"}' | sed -n 's/.*"request_id":"\(ar_[0-9a-f]*\)".*/\1/p')
for T in "$LEAD1" "$LEAD2"; do curl -s %s/ApprovalCallback/ -H "Authorization: Bearer $T" -d '{"request_id": "'"$WREQ"'", "decision": "approve"}'; done`, sys.port, base, base))
	out := sh.run(t, fmt.Sprintf(`curl -s %s/ExecuteQuery/ -H "Authorization: Bearer $DEV1" -d '{"mode": "write", "reason": "INC-1234: client 42 double-credited", "sql": "UPDATE accounts SET balance = 100.5, updated_at = now() WHERE id = 42"}'`, base))
	w := regexp.MustCompile(`"request_id":"([0-9a-f]{16})".*"committed":true`).FindStringSubmatch(out)
	if w == nil {
		t.Fatalf("recovery: want dev1's write committed under the approved grant, got = %s\n(the grant: %s)", out, grant)
	}
	if row42() == before {
		t.Fatal("recovery: the write did not change account 42")
	}
	cmds := strings.Split(strings.TrimSpace(strings.ReplaceAll(m[1], "REQUEST_ID", w[1])), "\n")
	if len(cmds) != 2 {
		t.Fatalf("README.md: want the Recovery block to show, then apply, a revert, got = %q", cmds)
	}
	if out := sh.run(t, cmds[0]); !strings.Contains(out, "dry run, 1 row(s) would change") || !strings.Contains(out, `UPDATE "accounts" SET`) || row42() == before {
		t.Errorf("recovery: when running\n%s\nwant the compensating statement shown and nothing changed, got = %s", cmds[0], out)
	}
	if out := sh.run(t, cmds[1]); !strings.Contains(out, "1 row(s) changed, committed") || !strings.Contains(out, "reverts the write "+w[1]) {
		t.Errorf("recovery: when running\n%s\nwant the revert committed, got = %s", cmds[1], out)
	}
	if after := row42(); after != before {
		t.Errorf("recovery: after scripts/airlock revert --apply, want account 42 byte for byte as before the write\nbefore: %s\nafter:  %s", before, after)
	}
}

// sweeperCommand returns the README's command that runs the sweeper locally.
func sweeperCommand(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(curl -X POST .*localhost:8080/SweepExpired/)\s*$`).FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatal("README.md: no `curl -X POST … localhost:8080/SweepExpired/` command (section The sweeper)")
	}
	return m[1]
}

// matchJSON compares output with the README's example: the same JSON, except that a
// string containing "…" stands for any string. It returns "" when they match.
func matchJSON(example, output string) string {
	var want, got any
	if err := json.Unmarshal([]byte(example), &want); err != nil {
		return "the README's example is not JSON: " + err.Error()
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(output)), &got); err != nil {
		return "the output is not JSON: " + err.Error()
	}
	return matchValue("", want, got)
}

func matchValue(path string, want, got any) string {
	switch w := want.(type) {
	case string:
		if g, ok := got.(string); ok && (g == w || strings.Contains(w, "…")) {
			return ""
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want an object with keys %v, got = %v", path, keys(w), got)
		}
		for k, v := range w {
			if msg := matchValue(path+"."+k, v, g[k]); msg != "" {
				return msg
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %v, got = %v", path, w, got)
		}
		for i := range w {
			if msg := matchValue(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); msg != "" {
				return msg
			}
		}
		return ""
	default:
		if want == got {
			return ""
		}
	}
	return fmt.Sprintf("%s: want %v, got = %v", path, want, got)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// A devSystem is scripts/dev.sh run with its own state directory, port and database.
type devSystem struct {
	state, dbName, ownerURL string
	port                    int
	runs                    int
	pgid                    int        // dev.sh's process group while it runs; 0 when stopped
	exited                  chan error // dev.sh's exit
}

// start runs scripts/dev.sh and waits for it to print that it is ready.
func (s *devSystem) start(t *testing.T) {
	t.Helper()
	s.runs++
	logPath := filepath.Join(s.state, fmt.Sprintf("dev-%d.log", s.runs))
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("bash", "scripts/dev.sh")
	cmd.Dir = repoRoot
	cmd.Env = append(cleanEnv(), "AIRLOCK_STATE="+s.state, "PORT="+strconv.Itoa(s.port),
		cloudsqlemu.EnvFile+"="+os.Getenv(cloudsqlemu.EnvFile), "AIRLOCK_DATABASE="+s.dbName)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, to stop it as Ctrl-C does
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pgid, s.exited = cmd.Process.Pid, make(chan error, 1)
	go func(exited chan<- error) { exited <- cmd.Wait() }(s.exited)
	t.Cleanup(func() { s.stop(t) })
	t.Cleanup(func() { // runs first: what the server said, while it still runs, for the test that failed
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("scripts/dev.sh (run %d) log, last 8 KiB:\n%s", s.runs, b[max(0, len(b)-8<<10):])
		}
	})
	deadline := time.Now().Add(10 * time.Minute) // the first build compiles pg_query's C code, beside go test's builds
	for {
		b, _ := os.ReadFile(logPath)
		if bytes.Contains(b, []byte("airlock: ready on")) {
			return
		}
		select {
		case err := <-s.exited:
			s.pgid = 0
			t.Fatalf("scripts/dev.sh (run %d) exited before it was ready: %v\n%s", s.runs, err, b)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("scripts/dev.sh (run %d) was not ready within 10 minutes:\n%s", s.runs, b)
		}
	}
}

// stop sends SIGINT to dev.sh's process group, as Ctrl-C does, and waits for dev.sh to
// exit: it waits for the devserver, which closes its recorder first, so the closing
// checkpoint is in the trail.
func (s *devSystem) stop(t *testing.T) {
	t.Helper()
	if s.pgid == 0 {
		return
	}
	pgid := s.pgid
	s.pgid = 0
	syscall.Kill(-pgid, syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(2 * time.Minute):
		syscall.Kill(-pgid, syscall.SIGKILL)
		t.Errorf("scripts/dev.sh (run %d) did not stop within 2 minutes of SIGINT; killed it", s.runs)
	}
}

// dropDatabase drops name as the admin, which owns it through cloudsqlsuperuser. The
// admin may not end the functions' sessions, so it waits for dev.sh's to close.
func dropDatabase(t *testing.T, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Errorf("dropping database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	for {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// A shell is one bash session that commands are typed into, so variables set by one
// block (DEV1, REQ) are there for the next, as in a terminal.
type shell struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	mark string
}

func startShell(t *testing.T, env []string) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = repoRoot
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
		if stderr.Len() > 0 {
			t.Logf("bash session stderr:\n%s", &stderr)
		}
	})
	return &shell{cmd: cmd, in: in, out: bufio.NewReader(out), mark: "@@walkthrough-" + randomHex(t, 8)}
}

// run types block into the session and returns what it printed (stdout and stderr).
func (s *shell) run(t *testing.T, block string) string {
	t.Helper()
	// Braces keep the block in this shell, so its variables stay; its stdin is not the
	// session's, so nothing it runs can swallow the commands that follow.
	if _, err := fmt.Fprintf(s.in, "{\n%s\n} </dev/null 2>&1\nprintf '\\n%s\\n'\n", block, s.mark); err != nil {
		t.Fatalf("typing into bash: %v", err)
	}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		var b strings.Builder
		for {
			l, err := s.out.ReadString('\n')
			if strings.HasPrefix(l, s.mark) {
				done <- result{strings.TrimSuffix(b.String(), "\n"), nil}
				return
			}
			b.WriteString(l)
			if err != nil {
				done <- result{b.String(), err}
				return
			}
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("bash session ended while running:\n%s\noutput: %s (%v)", block, r.out, r.err)
		}
		return r.out
	case <-time.After(2 * time.Minute):
		s.cmd.Process.Kill()
		t.Fatalf("block did not finish within 2 minutes:\n%s", block)
		return ""
	}
}

// A trailLine is one line of a JSON-lines trail, with what the test needs of it.
type trailLine struct {
	Chain    string `json:"chain"`
	Seq      int64  `json:"seq"`
	Event    string `json:"event"`
	Function string `json:"function"`
	Actor    string `json:"actor"`
	Severity string `json:"severity"`
	line     int
	raw      string
}

func readTrail(t *testing.T, path string) []trailLine {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []trailLine
	for i, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var e trailLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%s line %d: %v", path, i+1, err)
		}
		e.line, e.raw = i+1, l
		out = append(out, e)
	}
	return out
}

// checkRun checks one dev.sh run wrote one chain, from seq 1, holding events in this
// order (not necessarily adjacent) and entries of every one of functions.
func checkRun(t *testing.T, desc string, run []trailLine, events, functions []string) {
	t.Helper()
	if len(run) == 0 {
		t.Fatalf("%s: want entries, got none", desc)
	}
	seen := map[string]bool{}
	next := 0
	ordered := true
	for i, e := range run {
		if ordered && (e.Chain != run[0].Chain || e.Seq != int64(i+1)) {
			t.Errorf("%s: want one chain with seq 1, 2, …, got = chain %s seq %d at line %d (the run's first line is chain %s)", desc, e.Chain, e.Seq, e.line, run[0].Chain)
			ordered = false
		}
		seen[e.Function] = true
		if next < len(events) && e.Event == events[next] {
			next++
		}
	}
	if next < len(events) {
		t.Errorf("%s: want events %q in this order, got = no %s after them", desc, events, events[next])
	}
	for _, f := range functions {
		if !seen[f] {
			t.Errorf("%s: want entries of %s in the one chain, got = none", desc, f)
		}
	}
}

// auditVerify runs scripts/audit-verify as a user would, from the repository root.
func auditVerify(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("scripts/audit-verify", args...)
	cmd.Dir = repoRoot
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatalf("running scripts/audit-verify: %v", err)
	}
	return 0, stdout.String(), stderr.String()
}

func decodeLine(t *testing.T, l string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		t.Fatalf("decoding %s: %v", l, err)
	}
	return m
}

func readLinesOf(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

// forgeAfter returns an entry linked after the entry prev, with fields set from set,
// hashed as the recorder hashes (SHA-256 of RFC 8785 JSON, which HashPayload computes
// and the README shows how to compute in Python); it has no valid signature, since
// only the recorder holds its chain's key.
func forgeAfter(t *testing.T, prev string, set map[string]any) string {
	t.Helper()
	p := decodeLine(t, prev)
	m := map[string]any{"chain": p["chain"], "seq": p["seq"].(float64) + 1, "prev_hash": p["hash"], "severity": "INFO"}
	for k, v := range set {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	h, err := audit.HashPayload(b)
	if err != nil {
		t.Fatal(err)
	}
	m["hash"] = h
	b, _ = json.Marshal(m)
	return string(b)
}

// readmeCommand returns README.md's command line that starts with prefix, with .dev/
// replaced by the state directory, as a user with AIRLOCK_STATE would type it.
func readmeCommand(t *testing.T, prefix, state string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + `.*$`).FindString(string(raw))
	if m == "" {
		t.Fatalf("README.md: no command line starting with %q", prefix)
	}
	return strings.ReplaceAll(m, ".dev/", state+"/")
}

// checkReport runs the README's scripts/audit-report on the walk-through's trail and
// checks what an auditor looks for: dev1's unmasked_users request with its approval and
// every query dev1 ran under the grant, and every person with the access they held.
// With AIRLOCK_REPORT_OUT set (scripts/test.sh sets it), the report is copied there, for
// scripts/browser-test.sh to open in Chromium.
func checkReport(t *testing.T, sh *shell, state string, all []trailLine) {
	t.Helper()
	verify := readmeCommand(t, "scripts/audit-verify --heads ", state)
	if out := sh.run(t, verify); !strings.Contains(out, "OK: 2 chains") {
		t.Errorf("README's %s: want the trail verified, got = %s", verify, out)
	}
	cmd := readmeCommand(t, "scripts/audit-report ", state)
	out := sh.run(t, cmd)
	dir := regexp.MustCompile(`--out (\S+)`).FindStringSubmatch(cmd)
	if dir == nil || !strings.Contains(out, "requests.html") {
		t.Fatalf("README's %s: want the report written, got = %s", cmd, out)
	}
	readCSV := func(name string) []map[string]string {
		f, err := os.Open(filepath.Join(dir[1], name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil || len(rows) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		var out []map[string]string
		for _, r := range rows[1:] {
			m := map[string]string{}
			for i, h := range rows[0] {
				m[h] = r[i]
			}
			out = append(out, m)
		}
		return out
	}
	var grantID string
	for _, r := range readCSV("requests.csv") {
		if r["role"] == "unmasked_users" && r["requester"] == "dev1@example.com" {
			grantID = r["grant_id"]
			if !strings.Contains(r["reason"], "SUP-1234") || !strings.Contains(r["decisions"], "lead1@example.com approved") || grantID == "" {
				t.Errorf("requests.csv: want dev1's request with its reason, lead1's approval and the grant, got = %v", r)
			}
		}
	}
	if grantID == "" {
		t.Fatal("requests.csv: no unmasked_users request of dev1")
	}
	// Every query dev1 ran under the grant, from the trail itself.
	want := map[string]bool{}
	for _, e := range all {
		m := decodeLine(t, e.raw)
		ids, _ := m["grant_ids"].([]any)
		if e.Event == "query.attempt" && e.Actor == "dev1@example.com" && slices.ContainsFunc(ids, func(v any) bool { return fmt.Sprint(v) == grantID }) {
			want[m["request_id"].(string)] = true
		}
	}
	got := map[string]bool{}
	for _, r := range readCSV("statements.csv") {
		if r["grant_id"] == grantID {
			got[r["request_id"]] = true
			if r["attempt_entry"] == "" || len(r["attempt_hash"]) != 64 {
				t.Errorf("statements.csv: want each statement linked to its entry, got = %v", r)
			}
		}
	}
	if len(want) < 2 || !maps.Equal(want, got) {
		t.Errorf("statements.csv: want every query dev1 ran under grant %s (%v), got = %v", grantID, want, got)
	}
	people := map[string]string{}
	for _, r := range readCSV("review-access.csv") {
		people[r["person"]] += r["role"] + " "
	}
	for _, e := range all {
		if e.Actor != "" && !strings.HasPrefix(e.Event, "sweep.") && !strings.HasPrefix(e.Event, "audit.") && !strings.Contains(e.Actor, "sweeper@") && people[e.Actor] == "" {
			t.Errorf("review-access.csv: want every person of the trail, %s (%s) is missing: %v", e.Actor, e.Event, people)
		}
	}
	if !strings.Contains(people["dev1@example.com"], "unmasked_users") || !strings.Contains(people["dev1@example.com"], "write_accounts") || !strings.Contains(people["dev2@example.com"], "no access held") {
		t.Errorf("review-access.csv: want dev1's unmasked_users and write_accounts grants and dev2 with none, got = %v", people)
	}
	if out := os.Getenv("AIRLOCK_REPORT_OUT"); out != "" {
		if err := os.CopyFS(out, os.DirFS(dir[1])); err != nil {
			t.Errorf("copying the report to %s: %v", out, err)
		}
	}
}
