package scripts_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A pane is a tmux session running one command in a terminal, which the test types
// into (send-keys) and reads (capture-pane) as a person would.
type pane struct {
	t    *testing.T
	sock string
	env  []string
}

func startPane(t *testing.T, env []string, command string) *pane {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	// The whole session stays readable, and the pane stays after the command ends.
	if err := os.WriteFile(conf, []byte("set -g history-limit 100000\nset -g remain-on-exit on\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pane{t: t, sock: "airlock-test-" + randomHex(t, 6), env: env}
	p.tmux("-f", conf, "new-session", "-d", "-s", "cli", "-x", "220", "-y", "50", "-c", repoRoot, command)
	t.Cleanup(func() { exec.Command("tmux", "-L", p.sock, "kill-server").Run() })
	return p
}

func (p *pane) tmux(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-L", p.sock}, args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is everything the pane has shown, its scrollback included, with wrapped lines
// joined, and the blank lines below the cursor and blanks ending a line (a prompt's
// too) left off.
func (p *pane) screen() string {
	return strings.TrimRight(p.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "cli"), "\n ")
}

// mark is where the next output will start: the start of the line the cursor is on.
func (p *pane) mark() int {
	s := p.screen()
	return strings.LastIndexByte(s, '\n') + 1
}

// typeLine types text and Enter, and returns the mark from before it. A ';' ending the
// text is escaped, or tmux would read it as the end of its own command.
func (p *pane) typeLine(text string) int {
	p.t.Helper()
	m := p.mark()
	if strings.HasSuffix(text, ";") {
		text = strings.TrimSuffix(text, ";") + `\;`
	}
	if text != "" {
		p.tmux("send-keys", "-t", "cli", "-l", text)
	}
	p.tmux("send-keys", "-t", "cli", "Enter")
	return m
}

// waitFor waits until what the pane shows after mark matches re, and returns that text.
// Two minutes bound a wait for output that must come.
func (p *pane) waitFor(mark int, re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s := p.screen()
		after := ""
		if mark <= len(s) {
			after = s[mark:]
		}
		if rx.MatchString(after) {
			return after
		}
		if strings.Contains(s, "Pane is dead") || time.Now().After(deadline) {
			p.t.Fatalf("waited for %s on the screen, got =\n%s", re, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shell drives `scripts/airlock shell` in tmux as dev2: \d, \d users, a statement over
// three lines, \x, \o to a file then a query, tab completion, a refused write that asks
// for write_accounts, two approvers approving with the CLI in parallel and the write run
// again and committed, Ctrl-C stopping a wait without cancelling the request, and the
// history file.
func (c *cli) shell(t *testing.T) {
	history := filepath.Join(t.TempDir(), "history")
	env := append(append([]string{}, c.env...), "AIRLOCK_HISTORY="+history, "TERM=xterm-256color")
	p := startPane(t, env, "scripts/airlock --as dev2@example.com shell")
	p.waitFor(0, `airlock=>$`)

	m := p.typeLine(`\d`)
	p.waitFor(m, `Tables you can query(.|\n)* users +\|(.|\n)*airlock=>$`)

	m = p.typeLine(`\d users`)
	out := p.waitFor(m, `Writes: (.|\n)*airlock=>$`)
	if !regexp.MustCompile(`(?m)^ email +\| text +\| masked \(.+\) +\| unmasked_users `).MatchString(out) {
		t.Errorf(`\d users: want email masked, unmasked by unmasked_users, got =%s`, out)
	}

	// A statement over three lines, the last ending it; email comes back masked, and the
	// shell offers, once, to request the role that shows it.
	m = p.typeLine("SELECT id,")
	p.waitFor(m, `airlock->$`)
	p.typeLine("       email")
	p.waitFor(m, `airlock-> (.|\n)*airlock->$`)
	p.typeLine("FROM users ORDER BY id LIMIT 2;")
	out = p.waitFor(m, `Request unmasked_users to see them\? \[y/N\]$`)
	if !strings.Contains(out, "email (masked)") || !strings.Contains(out, "(2 rows)") {
		t.Errorf("a statement over three lines: want a 2-row table with email marked masked, got =%s", out)
	}
	m = p.typeLine("n")
	p.waitFor(m, `airlock=>$`)

	m = p.typeLine(`\x`)
	p.waitFor(m, `Expanded display is on\.`)
	m = p.typeLine("SELECT id, country FROM users ORDER BY id LIMIT 2;")
	out = p.waitFor(m, `\(2 rows\)(.|\n)*airlock=>$`)
	if !strings.Contains(out, "-[ RECORD 1 ]") || !strings.Contains(out, "-[ RECORD 2 ]") || !regexp.MustCompile(`(?m)^country \| `).MatchString(out) {
		t.Errorf(`\x: want two records of "column | value" lines, got =%s`, out)
	}
	m = p.typeLine(`\x`)
	p.waitFor(m, `Expanded display is off\.`)

	file := filepath.Join(t.TempDir(), "out.txt")
	m = p.typeLine(`\o ` + file)
	p.waitFor(m, `Results go to`)
	m = p.typeLine("SELECT count(*) AS trades FROM trades;")
	out = p.waitFor(m, `airlock=>$`)
	m = p.typeLine(`\o`)
	p.waitFor(m, `airlock=>$`)
	got, err := os.ReadFile(file)
	if err != nil || !regexp.MustCompile(`^ trades\n-+\n +[0-9]+\n\(1 row\)\n$`).Match(got) || strings.Contains(out, "(1 row)") {
		t.Errorf(`\o %s then a query: want the table in the file and not on the screen, got file %q (%v), screen =%s`, file, got, err, out)
	}

	// Tab completes a column, a table, and table.column.
	p.tmux("send-keys", "-t", "cli", "-l", "SELECT coun")
	p.tmux("send-keys", "-t", "cli", "Tab")
	p.tmux("send-keys", "-t", "cli", "-l", ", users.kyc_s")
	p.tmux("send-keys", "-t", "cli", "Tab")
	p.tmux("send-keys", "-t", "cli", "-l", " FROM user")
	p.tmux("send-keys", "-t", "cli", "Tab")
	m = p.typeLine(" ORDER BY id LIMIT 1;")
	out = p.waitFor(m, `\(1 row\)(.|\n)*airlock=>$`)
	if !strings.Contains(out, "SELECT country, users.kyc_status FROM users ORDER BY id LIMIT 1;") {
		t.Errorf("tab completion: want the line completed to SELECT country, users.kyc_status FROM users …, got =%s", out)
	}

	// A write: the reason first, then refused for lack of a grant, the role offered,
	// requested, approved by two approvers in parallel, and the write run again.
	row := func() string { return c.ownerStrings(t, `SELECT a::text FROM public.accounts a WHERE id = 7`)[0] }
	before := row()
	m = p.typeLine("UPDATE accounts SET updated_at = now() WHERE id = 7;")
	p.waitFor(m, `Reason \(kept in the audit trail; empty cancels\):$`)
	p.typeLine("INC-7: checking the write path end to end")
	out = p.waitFor(m, `Request write_accounts to run this write\? \[Y/n\]$`)
	if !strings.Contains(out, "rule no_write_grant") {
		t.Errorf("a write without a grant: want the refusal shown, got =%s", out)
	}
	p.typeLine("y")
	p.waitFor(m, `For how long \(e\.g\. 30m, 2h\): 30m$`)
	p.typeLine("") // the suggested 30m
	p.waitFor(m, `Why \(a sentence.*\): INC-7: checking the write path end to end$`)
	p.typeLine("") // the write's reason, suggested
	out = p.waitFor(m, `waiting for approval of ar_[0-9a-f]+: 0 of 2`)
	id := regexp.MustCompile(`requested write_accounts \(30m0s\) as (ar_[0-9a-f]+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("want the request id on the screen, got =%s", out)
	}
	approveInParallel(t, c, id[1], "lead1@example.com", "lead2@example.com")
	out = p.waitFor(m, `Commit this write of 1 row\? \[y/N\]$`)
	if !strings.Contains(out, "approved by ") || !strings.Contains(out, "dry run, 1 row(s) would change") || row() != before {
		t.Errorf("after the approvals: want the write run again as a dry run, nothing changed yet, got =%s", out)
	}
	p.typeLine("y")
	out = p.waitFor(m, `1 row\(s\) changed, committed(.|\n)*airlock=>$`)
	if row() == before {
		t.Errorf("after committing: want account 7 changed, got = %s; screen =%s", row(), out)
	}

	// Ctrl-C stops waiting; the request stays.
	m = p.typeLine(`\request unmasked_withdrawals 10m Checking a withdrawal for ticket SUP-88`)
	out = p.waitFor(m, `waiting for approval of (ar_[0-9a-f]+): 0 of 1`)
	pending := regexp.MustCompile(`waiting for approval of (ar_[0-9a-f]+)`).FindStringSubmatch(out)[1]
	p.tmux("send-keys", "-t", "cli", "C-c")
	p.waitFor(m, `stopped waiting; request `+pending+` stays pending(.|\n)*airlock=>$`)
	if r := c.airlock(t, "", "--as", "dev2@example.com", "requests"); !regexp.MustCompile(pending + ` +\| unmasked_withdrawals +\| pending`).MatchString(r.stdout) {
		t.Errorf("after Ctrl-C while waiting: want %s still pending, got = %s", pending, r)
	}

	m = p.typeLine(`\q`)
	p.waitFor(m, `Pane is dead`)
	h, err := os.ReadFile(history)
	fi, _ := os.Stat(history)
	if err != nil || !strings.Contains(string(h), "SELECT id, email FROM users ORDER BY id LIMIT 2;\n") || !strings.Contains(string(h), `\x`) || fi.Mode().Perm() != 0o600 {
		t.Errorf("history: want each statement on one line and each command, in a 0600 file, got = %q (%v, %v)", h, err, fi)
	}
}
