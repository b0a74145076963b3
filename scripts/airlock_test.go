package scripts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestCLI runs every command of scripts/airlock against a real scripts/dev.sh, as a
// person types them: the README's CLI walk-through word for word, each output format
// against its golden file, the exit statuses, the access commands, a one-shot write that
// asks for its grant and waits for two approvers, revert, and the shell driven in tmux.
// Nothing waits on time: every wait is for something to appear, bounded generously.
func TestCLI(t *testing.T) {
	emu := dbtest.Emulation(t)
	if testing.Short() {
		t.Skip("runs the whole system; skipped with -short")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("the shell test needs tmux (scripts/test.sh installs it): apt-get install tmux")
	}
	state := t.TempDir()
	port := freePort(t)
	dbName := "airlock_cli_" + randomHex(t, 4)
	sys := devSystem{state: state, port: port, dbName: dbName, ownerURL: db.WithDatabase(emu.OwnerURL, dbName)}
	t.Cleanup(func() { dropDatabase(t, emu.AdminURL, dbName) })
	sys.start(t)
	env := append(cleanEnv(), "AIRLOCK_STATE="+state, fmt.Sprintf("AIRLOCK_URL=http://127.0.0.1:%d", port), "HOME="+t.TempDir())
	owner, err := pgx.Connect(t.Context(), sys.ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(context.Background())
	c := &cli{env: env, owner: owner, port: port, state: state}

	t.Run("README walk-through", c.walkthrough)
	t.Run("formats", c.formats)
	t.Run("exit statuses", c.exitStatuses)
	t.Run("access commands", c.access)
	t.Run("write asks for its grant, then revert", c.writeAndRevert)
	t.Run("shell in tmux", c.shell)
}

type cli struct {
	env   []string
	owner *pgx.Conn
	port  int
	state string
}

// A result is one run of scripts/airlock.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs a command line in bash from the repository root, as typed; stdin feeds it.
func (c *cli) run(t *testing.T, stdin, cmdline string, env ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // the first run builds the binary
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", cmdline)
	cmd.Dir = repoRoot
	cmd.Env = append(append([]string{}, c.env...), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", cmdline, err)
	}
	return r
}

// airlock runs scripts/airlock with args, each quoted for bash.
func (c *cli) airlock(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return c.run(t, stdin, "scripts/airlock "+strings.Join(q, " "))
}

func (c *cli) ownerStrings(t *testing.T, sql string) []string {
	t.Helper()
	rows, err := c.owner.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// walkthrough types the README's CLI walk-through, block by block, and checks what the
// README says each shows. Only the example request id is replaced by the real one.
func (c *cli) walkthrough(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n### CLI walk-through")
	if start < 0 {
		t.Fatal(`README.md: no "### CLI walk-through" section`)
	}
	text = text[start+1:]
	if end := regexp.MustCompile(`\n#{2,3} `).FindStringIndex(text[1:]); end != nil {
		text = text[:end[0]+1]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		blocks = append(blocks, strings.TrimSpace(m[1]))
	}
	if len(blocks) != 6 {
		t.Fatalf("README.md CLI walk-through: want 6 sh blocks (query, csv, describe, request, approve, query), got = %q", blocks)
	}
	example := regexp.MustCompile(`approve (ar_[0-9a-f]+)`).FindStringSubmatch(blocks[4])
	if example == nil {
		t.Fatalf("README.md CLI walk-through: want block 5 to approve an example request id, got = %q", blocks[4])
	}
	emails := c.ownerStrings(t, `SELECT email FROM public.users ORDER BY id LIMIT 2`)
	hasEmail := func(s string) bool { return strings.Contains(s, emails[0]) || strings.Contains(s, emails[1]) }

	var reqID string
	for i, b := range blocks {
		if i == 4 {
			b = strings.ReplaceAll(b, example[1], reqID)
		}
		r := c.run(t, "", b)
		if r.code != 0 {
			t.Fatalf("README CLI walk-through block %d:\n%s\nwant exit 0, got = %s", i+1, b, r)
		}
		switch i {
		case 0: // dev1's query: a table with the e-mails masked
			if !strings.Contains(r.stdout, "email (masked)") || !strings.Contains(r.stdout, "(2 rows)") || hasEmail(r.stdout) || !strings.Contains(r.stderr, "unmasked_users") {
				t.Errorf("block %d: want a 2-row table with email marked masked, no real e-mail, and the role that shows it, got = %s", i+1, r)
			}
		case 1: // the same as CSV: a header line id,email and two rows
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if len(lines) != 3 || lines[0] != "id,email" || !strings.HasPrefix(lines[1], "1,") || !strings.HasPrefix(lines[2], "2,") || hasEmail(r.stdout) {
				t.Errorf("block %d: want the header id,email and two masked rows, got = %s", i+1, r)
			}
		case 2: // describe users: email masked (keyed hash), and the role that unmasks it
			if !regexp.MustCompile(`(?m)^ email +\| text +\| masked \(keyed hash\) +\| unmasked_users `).MatchString(r.stdout) {
				t.Errorf("block %d: want email listed as masked (keyed hash), unmasked by unmasked_users, got = %s", i+1, r)
			}
		case 3: // the request prints its id
			reqID = strings.TrimSpace(r.stdout)
			if !regexp.MustCompile(`^ar_[0-9a-f]+$`).MatchString(reqID) {
				t.Fatalf("block %d: want the request id alone on stdout, got = %s", i+1, r)
			}
		case 4:
			if !strings.Contains(r.stdout, reqID+": approved") {
				t.Errorf("block %d: want %s approved, got = %s", i+1, reqID, r)
			}
		case 5: // dev1 now sees the real e-mails
			if !strings.Contains(r.stdout, emails[0]) || !strings.Contains(r.stdout, emails[1]) || strings.Contains(r.stdout, "(masked)") {
				t.Errorf("block %d: want the real e-mails %v, got = %s", i+1, emails, r)
			}
		}
	}
}

var (
	requestIDField = regexp.MustCompile(`"request_id":"[0-9a-f]{16}"`)
	durationField  = regexp.MustCompile(`"duration_ms":[0-9]+`)
)

// golden compares got with scripts/testdata/airlock/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "airlock", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./scripts -run TestCLI -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: want the golden output\n%s\ngot =\n%s", name, want, got)
	}
}

// formats checks each format's output for values holding NULLs, an empty string, the
// text NULL, numbers with their digits, NaN and Infinity, wide and non-ASCII values,
// control, bidi and zero-width characters and backslashes, as dev2 gets them from the
// server, against golden files; that CSV matches the server's own CSV byte for byte; and
// that masked columns are marked without depending on what the mask shows.
func (c *cli) formats(t *testing.T) {
	sqlFile := filepath.Join("scripts", "testdata", "airlock", "values.sql")
	for _, tc := range []struct{ name, args string }{
		{"values.table", ""}, {"values.expanded", "-x"}, {"values.csv", "--format csv"},
		{"values.json", "--format json"}, {"values.jsonl", "--format jsonl"},
	} {
		r := c.run(t, "", "scripts/airlock --as dev2@example.com query -f "+sqlFile+" "+tc.args)
		if r.code != 0 {
			t.Fatalf("query -f %s %s: want exit 0, got = %s", sqlFile, tc.args, r)
		}
		out := durationField.ReplaceAllString(requestIDField.ReplaceAllString(r.stdout, `"request_id":"…"`), `"duration_ms":0`)
		for i, ch := range out {
			if ch != '\n' && !(ch == '\t' && tc.name == "values.csv") && (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && ch < 0xa0) || ch == 0x202e || ch == 0x200b) {
				t.Errorf("%s: raw U+%04X at byte %d would reach the terminal", tc.name, ch, i)
			}
		}
		golden(t, tc.name, out)
	}

	// The same SQL on stdin, to a file with -o: only the data, in a file only its owner reads.
	out := filepath.Join(t.TempDir(), "out.csv")
	sql, err := os.ReadFile(filepath.Join(repoRoot, sqlFile))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.airlock(t, string(sql), "--as", "dev2@example.com", "query", "--format", "csv", "-o", out); r.code != 0 || r.stdout != "" {
		t.Fatalf("query from stdin with -o: want exit 0 and nothing on stdout, got = %s", r)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "airlock", "values.csv"))
	if fi, _ := os.Stat(out); string(got) != string(want) || fi.Mode().Perm() != 0o600 {
		t.Errorf("-o %s: want the golden CSV in a 0600 file, got mode %v:\n%s", out, fi.Mode().Perm(), got)
	}

	// The client's CSV is the server's (the json column aside, whose JSON escapes differ).
	noJSON := "SELECT id, amount, flag, csvish, maybe, empty, nulltext, \"unicode ü\", wide, controls, invisible, backslashes, nan, n FROM (" + string(sql) + ") v"
	mine := c.airlock(t, "", "--as", "dev2@example.com", "query", "--format", "csv", noJSON)
	server := c.serverCSV(t, "dev2@example.com", noJSON)
	if mine.code != 0 || mine.stdout != server {
		t.Errorf("query --format csv: want the server's own CSV\n%s\ngot = %s", server, mine)
	}

	// Masked columns are marked in the header and name the role that shows them.
	r := c.airlock(t, "", "--as", "dev2@example.com", "query", "SELECT id, email FROM users ORDER BY id LIMIT 2", "--format", "json")
	var ans struct {
		Columns []map[string]any `json:"columns"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil || len(ans.Columns) != 2 || ans.Columns[1]["masked"] != true || ans.Columns[1]["grant_role"] != "unmasked_users" {
		t.Errorf("query --format json of users.email as dev2: want it masked with grant_role unmasked_users, got = %s", r)
	}
	r = c.airlock(t, "", "--as", "dev2@example.com", "query", "-x", "SELECT id, email FROM users ORDER BY id LIMIT 1")
	if !strings.Contains(r.stdout, "-[ RECORD 1 ]") || !strings.Contains(r.stdout, "email (masked) | ") {
		t.Errorf("query -x: want a record with email marked masked, got = %s", r)
	}

	// Truncation is said, and why.
	r = c.airlock(t, "", "--as", "dev2@example.com", "query", "--max-rows", "3", "SELECT id FROM trades ORDER BY id")
	if r.code != 0 || !strings.Contains(r.stdout, "(3 rows; truncated: more rows than --max-rows 3)") {
		t.Errorf("query --max-rows 3: want the footer to say it was truncated at 3 rows, got = %s", r)
	}
	r = c.airlock(t, "", "--as", "dev2@example.com", "query", "--max-rows", "3", "--format", "csv", "SELECT id FROM trades ORDER BY id")
	if strings.Count(r.stdout, "\n") != 4 || !strings.Contains(r.stderr, "truncated: more rows than --max-rows 3") {
		t.Errorf("query --max-rows 3 --format csv: want 3 rows and the truncation on stderr, got = %s", r)
	}
}

// serverCSV is ExecuteQuery's own CSV answer to sql.
func (c *cli) serverCSV(t *testing.T, email, sql string) string {
	t.Helper()
	tok := c.run(t, "", "scripts/dev-token.sh "+email)
	body, _ := json.Marshal(map[string]string{"sql": sql, "format": "csv"})
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/ExecuteQuery/", c.port), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok.stdout))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ExecuteQuery csv: %s %s", resp.Status, b)
	}
	return string(b)
}

func (c *cli) exitStatuses(t *testing.T) {
	noKey := t.TempDir()
	tcs := []struct {
		desc, cmd string
		env       []string
		code      int
		stderr    []string
	}{
		{"refused by the guard", `scripts/airlock --as dev2@example.com query "DELETE FROM trades"`, nil, 1,
			[]string{"ERROR:  DELETE", "LINE 1: DELETE FROM trades", "^", "DETAIL:  ExecuteQuery answered 403 denied, rule delete_forbidden"}},
		{"a write without its grant names the role", `scripts/airlock --as dev2@example.com write "UPDATE accounts SET updated_at = now() WHERE id = 3" --reason "INC-3: checking" --dry-run`, nil, 1,
			[]string{"rule no_write_grant", "HINT:  the role write_accounts would allow it"}},
		{"not a member", `scripts/airlock --as mallory@example.com describe`, nil, 1, []string{"403 not_a_member"}},
		{"a table outside the policy", `scripts/airlock --as dev2@example.com describe pg_authid`, nil, 1, []string{"404 table_not_found"}},
		{"no command", `scripts/airlock </dev/null`, nil, 2, []string{"Usage:"}},
		{"an unknown command", `scripts/airlock frobnicate`, nil, 2, []string{`unknown command "frobnicate"`}},
		{"a bad format", `scripts/airlock --as dev2@example.com query --format xml "SELECT 1"`, nil, 2, []string{"--format must be"}},
		{"no SQL", `scripts/airlock --as dev2@example.com query </dev/null`, nil, 2, []string{"no SQL"}},
		{"nobody locally", `scripts/airlock query "SELECT 1"`, nil, 2, []string{"--as EMAIL"}},
		{"a revert to apply without a reason", `scripts/airlock --as dev2@example.com revert 0123456789abcdef --apply`, nil, 2, []string{"--apply needs --reason"}},
		{"plain http to another host", `scripts/airlock --as dev2@example.com --url http://example.com query "SELECT 1"`, nil, 2, []string{"use https"}},
		{"unreachable", `scripts/airlock --as dev2@example.com query "SELECT 1"`, []string{fmt.Sprintf("AIRLOCK_URL=http://127.0.0.1:%d", freePort(t))}, 3,
			[]string{"could not reach", "is scripts/dev.sh running?"}},
		{"no local key", `scripts/airlock --as dev2@example.com query "SELECT 1"`, []string{"AIRLOCK_STATE=" + noKey}, 4, []string{"auth-key.pem"}},
		{"a token the server refuses", `scripts/airlock query "SELECT 1"`, []string{"AIRLOCK_TOKEN=not.a.token"}, 4, []string{"did not accept your identity (401"}},
		{"deployed without gcloud", `scripts/airlock query "SELECT 1"`, []string{"AIRLOCK_URL=https://airlock.invalid", "AIRLOCK_GCLOUD=/nonexistent/gcloud"}, 4,
			[]string{"gcloud auth login"}},
	}
	for _, tc := range tcs {
		r := c.run(t, "", tc.cmd, tc.env...)
		if r.code != tc.code {
			t.Errorf("%s: %s\nwant exit %d, got = %s", tc.desc, tc.cmd, tc.code, r)
			continue
		}
		for _, s := range tc.stderr {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("%s: %s\nwant %q on stderr, got = %s", tc.desc, tc.cmd, s, r)
			}
		}
	}
}

// access checks request, requests, deny, approve (by --wait), grants and revoke.
func (c *cli) access(t *testing.T) {
	const reason = "Checking a deposit for ticket SUP-77"
	r := c.airlock(t, "", "--as", "dev2@example.com", "request", "unmasked_deposits", "--for", "10m", "--reason", reason)
	denied := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(denied, "ar_") {
		t.Fatalf("request: want the request id, got = %s", r)
	}
	if r := c.airlock(t, "", "--as", "lead1@example.com", "requests"); !strings.Contains(r.stdout, "Waiting for your decision") || !strings.Contains(r.stdout, denied) || !strings.Contains(r.stdout, reason) {
		t.Errorf("requests as lead1: want %s waiting for lead1's decision, with its reason, got = %s", denied, r)
	}
	if r := c.airlock(t, "", "--as", "dev2@example.com", "approve", denied); r.code != 1 || !strings.Contains(r.stderr, "403 self_approval") {
		t.Errorf("approve one's own request: want exit 1, 403 self_approval, got = %s", r)
	}
	if r := c.airlock(t, "", "--as", "lead1@example.com", "deny", denied, "--comment", "use the ticket's screenshot"); r.code != 0 || !strings.Contains(r.stdout, denied+": denied") {
		t.Errorf("deny: want %s denied, got = %s", denied, r)
	}
	if r := c.airlock(t, "", "--as", "dev2@example.com", "requests"); !regexp.MustCompile(denied + ` +\| unmasked_deposits +\| denied`).MatchString(r.stdout) {
		t.Errorf("requests as dev2: want %s denied, got = %s", denied, r)
	}

	// request --wait waits until an approver decides, and says who did and what grant it made.
	cmd, stderr := c.start(t, "scripts/airlock --as dev2@example.com request unmasked_deposits --for 10m --reason 'Checking another deposit, ticket SUP-78' --wait")
	id := waitMatch(t, stderr, regexp.MustCompile(`(ar_[0-9a-f]+) for unmasked_deposits`))
	waitMatch(t, stderr, regexp.MustCompile(`waiting for approval of `+id))
	if r := c.airlock(t, "", "--as", "sec1@example.com", "approve", id); r.code != 0 {
		t.Fatalf("approve as sec1: %s", r)
	}
	if err := waitExit(cmd); err != nil {
		t.Fatalf("request --wait: want exit 0 once approved, got = %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "approved by sec1@example.com: grant ") {
		t.Errorf("request --wait: want who approved and the grant, got = %s", stderr)
	}

	r = c.airlock(t, "", "--as", "dev2@example.com", "grants", "--format", "json")
	var gs []struct {
		ID        int64  `json:"grant_id"`
		RequestID string `json:"request_id"`
		Status    string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &gs); err != nil || len(gs) != 1 || gs[0].RequestID != id || gs[0].Status != "active" {
		t.Fatalf("grants --format json: want dev2's one active grant from %s, got = %s", id, r)
	}
	if r := c.airlock(t, "", "--as", "dev2@example.com", "revoke", fmt.Sprint(gs[0].ID)); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("revoked grant %d (unmasked_deposits of dev2@example.com)", gs[0].ID)) {
		t.Errorf("revoke by the grantee: want the grant revoked, got = %s", r)
	}
	if r := c.airlock(t, "", "--as", "dev2@example.com", "grants"); !regexp.MustCompile(fmt.Sprintf(`(?m)^ %d +\| unmasked_deposits +\| revoked`, gs[0].ID)).MatchString(r.stdout) {
		t.Errorf("grants after revoke: want the grant revoked, got = %s", r)
	}
	if r := c.airlock(t, "", "--as", "dev2@example.com", "revoke", fmt.Sprint(gs[0].ID)); r.code != 1 || !strings.Contains(r.stderr, "grant_not_active") {
		t.Errorf("revoke twice: want exit 1, grant_not_active, got = %s", r)
	}

	// query --request: the masked answer, the role requested, approved, and the query
	// run again, unmasked.
	real := c.ownerStrings(t, `SELECT tx_hash FROM public.deposits ORDER BY id LIMIT 1`)[0]
	cmd, stderr = c.start(t, `scripts/airlock --as dev2@example.com query "SELECT tx_hash FROM deposits ORDER BY id LIMIT 1" --request --for 10m --reason "Matching a deposit to ticket SUP-90"`)
	id = waitMatch(t, stderr, regexp.MustCompile(`requested unmasked_deposits \(10m0s\) as (ar_[0-9a-f]+)`))
	waitMatch(t, stderr, regexp.MustCompile(`waiting for approval of `+id))
	if r := c.airlock(t, "", "--as", "lead2@example.com", "approve", id); r.code != 0 {
		t.Fatalf("approve as lead2: %s", r)
	}
	if err := waitExit(cmd); err != nil {
		t.Fatalf("query --request: want exit 0 once approved, got = %v\n%s", err, stderr)
	}
	out := cmd.Stdout.(*syncBuffer).String()
	if first, second, ok := strings.Cut(out, "(1 row)"); !ok || !strings.Contains(first, "tx_hash (masked)") || strings.Contains(first, real) ||
		!strings.Contains(second, real) || strings.Contains(second, "(masked)") {
		t.Errorf("query --request: want the masked answer, then the real tx_hash %s once approved, got = %s\n%s", real, out, stderr)
	}
}

// writeAndRevert checks a one-shot write that is refused for lack of a grant: with
// --request it asks for the role, two approvers approve it in parallel with the CLI, and
// the write runs again and commits; revert shows, then applies, its undoing.
func (c *cli) writeAndRevert(t *testing.T) {
	row := func() string {
		return c.ownerStrings(t, `SELECT a::text FROM public.accounts a WHERE id = 5`)[0]
	}
	before := row()
	cmd, stderr := c.start(t, `scripts/airlock --as dev1@example.com write "UPDATE accounts SET updated_at = now() WHERE id = 5" --reason "INC-5: checking the one-shot write path" --request --for 30m`)
	id := waitMatch(t, stderr, regexp.MustCompile(`requested write_accounts \(30m0s\) as (ar_[0-9a-f]+)`))
	waitMatch(t, stderr, regexp.MustCompile(`waiting for approval of `+id+`: 0 of 2`))
	approveInParallel(t, c, id, "lead1@example.com", "lead2@example.com")
	if err := waitExit(cmd); err != nil {
		t.Fatalf("write --request: want exit 0 once approved, got = %v\n%s\n%s", err, cmd.Stdout, stderr)
	}
	out := cmd.Stdout.(*syncBuffer).String()
	w := regexp.MustCompile(`-- request ([0-9a-f]{16}): 1 row\(s\) changed, committed`).FindStringSubmatch(out)
	if w == nil || row() == before {
		t.Fatalf("write --request: want the write committed after the approvals, got = %s\n%s", out, stderr)
	}
	if r := c.airlock(t, "", "--as", "dev1@example.com", "revert", w[1]); r.code != 0 || !strings.Contains(r.stdout, "dry run, 1 row(s) would change") || !strings.Contains(r.stdout, `UPDATE "accounts" SET`) {
		t.Errorf("revert: want the statement shown and nothing changed, got = %s", r)
	}
	if r := c.airlock(t, "", "--as", "dev1@example.com", "revert", w[1], "--apply", "--reason", "INC-5: undoing the check"); r.code != 0 || !strings.Contains(r.stdout, "reverts the write "+w[1]) {
		t.Errorf("revert --apply: want the revert committed, got = %s", r)
	}
	if after := row(); after != before {
		t.Errorf("after revert --apply, want account 5 as before the write\nbefore: %s\nafter:  %s", before, after)
	}
}

// approveInParallel has each approver approve id with the CLI at the same time.
func approveInParallel(t *testing.T, c *cli, id string, approvers ...string) {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]result, len(approvers))
	for i, a := range approvers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.airlock(t, "", "--as", a, "approve", id, "--comment", "ok")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 || !strings.Contains(r.stdout, id+": ") {
			t.Fatalf("approve %s as %s: want exit 0, got = %s", id, approvers[i], r)
		}
	}
}

// syncBuffer is a buffer a running command writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a command line in the background; its stdout and stderr are syncBuffers.
func (c *cli) start(t *testing.T, cmdline string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command("bash", "-c", cmdline)
	cmd.Dir = repoRoot
	cmd.Env = c.env
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stderr
}

// waitExit waits for cmd to end, up to five minutes (it waits on approvals and polls).
func waitExit(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		return errors.New("did not end within 5 minutes")
	}
}

// waitMatch waits until re matches what b holds, and returns its first group (or the
// match); two minutes bound a wait for output that must come.
func waitMatch(t *testing.T, b interface{ String() string }, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m[len(m)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 2 minutes for %s, got = %s", re, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
