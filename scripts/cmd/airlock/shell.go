package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/peterh/liner"
)

const shellHelp = `Statements end with ';' and may span lines; each runs as one read (an INSERT or UPDATE
asks for a reason, shows a dry run, then asks before committing).
  \d               the tables you can query
  \d TABLE         a table's columns, types, masks, writable columns and roles
  \x [on|off]      expanded display: one "column | value" line each
  \o [FILE]        send results to FILE; \o alone sends them back to the terminal
  \grants          your grants
  \requests        your requests, and those waiting for your decision
  \request ROLE DURATION REASON...
                   ask for a role and wait for its approvals (Ctrl-C stops waiting)
  \conninfo        where statements go, and as whom
  \q               quit (also Ctrl-D)
Tab completes table and column names. History is kept in %s.
`

// A shell is `airlock shell`: statements and psql-like backslash commands, read with a
// line editor (peterh/liner) that keeps a history file and completes names.
type shell struct {
	a        *app
	l        *liner.State
	p        prompter
	expanded bool
	out      io.Writer // results: the terminal, or \o's file
	outFile  *os.File
	history  string
	tables   []tableSummary // for completion, loaded on first use
	loaded   bool
	asked    map[string]bool // roles already offered for masked columns this session
}

func (a *app) cmdShell(ctx context.Context, args []string) error {
	fs := a.flags("shell")
	if _, err := parse(fs, args, 0, 0, "shell"); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	s := &shell{a: a, out: a.stdout, asked: map[string]bool{}, history: historyPath(a.env)}
	s.l = liner.NewLiner()
	defer s.l.Close()
	s.p = linerPrompter{s.l}
	s.l.SetCtrlCAborts(true)
	s.l.SetMultiLineMode(true)
	s.l.SetTabCompletionStyle(liner.TabPrints)
	s.l.SetWordCompleter(s.complete)
	if f, err := os.Open(s.history); err == nil {
		s.l.ReadHistory(f)
		f.Close()
	}
	defer s.closeOutput()
	who := a.g.as
	if who == "" {
		who = a.env("AIRLOCK_AS")
	}
	if who == "" {
		who = "your Google identity"
	}
	fmt.Fprintf(a.stdout, "airlock shell as %s. Statements end with ';'. \\? for help, \\q to quit.\n", line(who))
	// Between prompts, Ctrl-C stops what runs; it never ends the shell.
	restore := a.intr.ignore()
	defer restore()
	return s.loop()
}

// historyPath is AIRLOCK_HISTORY, or ~/.airlock_history.
func historyPath(env func(string) string) string {
	if p := env("AIRLOCK_HISTORY"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".airlock_history"
	}
	return filepath.Join(home, ".airlock_history")
}

func (s *shell) loop() error {
	pending := ""
	for {
		prompt := "airlock=> "
		if strings.TrimSpace(pending) != "" {
			prompt = "airlock-> "
		}
		text, err := s.l.Prompt(prompt)
		switch {
		case errors.Is(err, liner.ErrPromptAborted): // Ctrl-C: drop the unfinished statement
			pending = ""
			continue
		case errors.Is(err, io.EOF):
			fmt.Fprintln(s.a.stdout)
			return nil
		case errors.Is(err, liner.ErrNotTerminalOutput):
			return usageErrorf("the shell writes to a terminal; to send results elsewhere use \\o FILE, or %s query -o FILE", s.a.prog)
		case err != nil:
			return err
		}
		trimmed := strings.TrimSpace(text)
		if strings.TrimSpace(pending) == "" {
			switch {
			case trimmed == "":
				continue
			case trimmed == "quit" || trimmed == "exit":
				return nil
			}
		}
		if strings.HasPrefix(trimmed, `\`) {
			s.remember(trimmed)
			if quit := s.meta(trimmed); quit {
				return nil
			}
			continue
		}
		pending += text + "\n"
		stmts, rest := splitStatements(pending)
		for _, st := range stmts {
			s.remember(strings.Join(strings.Fields(st), " ") + ";")
			s.run(st)
		}
		pending = rest
		if strings.TrimSpace(pending) == "" {
			pending = ""
		}
	}
}

// remember adds an entry to the history and saves the history file (0600: it holds SQL).
func (s *shell) remember(entry string) {
	s.l.AppendHistory(entry)
	tmp := s.history + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	if _, err := s.l.WriteHistory(f); err == nil && f.Close() == nil {
		os.Rename(tmp, s.history)
		return
	}
	f.Close()
	os.Remove(tmp)
}

// action runs f with a context that Ctrl-C cancels.
func (s *shell) action(f func(ctx context.Context)) {
	ctx, stop := s.a.intr.context(context.Background())
	defer stop()
	f(ctx)
}

// run runs one statement: a read, or, when the server says it is a write, the write
// with a reason, a dry run and a confirmation. A refusal or a masked column that a grant
// would lift offers to request it, then runs the statement again.
func (s *shell) run(sql string) {
	s.action(func(ctx context.Context) {
		for attempt := 0; attempt < 2; attempt++ {
			ans, err := s.a.read(ctx, sql, 0)
			if err == nil {
				s.print(ans)
				s.offerMasked(ctx, ans)
				return
			}
			ae, _ := errors.AsType[*apiError](err)
			if ae != nil && ae.Rule == "write_requires_write_mode" {
				s.write(ctx, sql)
				return
			}
			s.a.report(err, sql)
			if ae == nil || ae.GrantRole == "" || attempt > 0 {
				return
			}
			ok, err := s.a.offer(ctx, s.p, ae.GrantRole, "run it", "", "", "")
			if err != nil {
				s.a.report(err, "")
			}
			if !ok {
				return
			}
			fmt.Fprintln(s.a.stderr, "running the statement again")
		}
	})
}

// print prints a read's answer to the output, and its notes on masks to the terminal.
func (s *shell) print(ans *readAnswer) {
	o := &output{format: "table", w: s.out, notes: s.a.stderr}
	if s.expanded {
		o.format = "expanded"
	}
	o.print(ans)
}

// offerMasked says which columns came back masked and, once per role and session,
// offers to request the role that shows them.
func (s *shell) offerMasked(ctx context.Context, ans *readAnswer) {
	note, roles := maskedNote(ans)
	if note == "" {
		return
	}
	fmt.Fprintln(s.a.stderr, "note: "+note)
	for _, role := range roles {
		if s.asked[role] {
			continue
		}
		s.asked[role] = true
		yes, err := s.p.ask(fmt.Sprintf("Request %s to see them? [y/N] ", line(role)), "")
		if err != nil || !strings.HasPrefix(strings.ToLower(yes), "y") {
			continue
		}
		ok, err := s.a.offer(ctx, s.p, role, "", "", "", "")
		if err != nil {
			s.a.report(err, "")
		}
		if ok {
			fmt.Fprintf(s.a.stderr, "run the statement again to see the real values\n")
		}
		return
	}
}

// write runs a write as the shell does: the reason first, a dry run, then a commit
// only when confirmed.
func (s *shell) write(ctx context.Context, sql string) {
	reason, err := s.p.ask("This is a write. Reason (kept in the audit trail; empty cancels): ", "")
	if err != nil || reason == "" {
		fmt.Fprintln(s.a.stderr, "write cancelled; nothing was sent")
		return
	}
	q := queryRequest{SQL: sql, Mode: "write", DryRun: true, Reason: reason}
	ans, err := s.a.write(ctx, q)
	// A write may need more than one role (writing a table, reading its sensitive
	// columns): each refusal a grant lifts is offered in turn, a role at most once.
	offered := map[string]bool{}
	for ae, ok := errors.AsType[*apiError](err); ok && ae.GrantRole != "" && !offered[ae.GrantRole]; ae, ok = errors.AsType[*apiError](err) {
		offered[ae.GrantRole] = true
		s.a.report(err, sql)
		granted, oerr := s.a.offer(ctx, s.p, ae.GrantRole, "run this write", "", "", reason)
		if oerr != nil {
			s.a.report(oerr, "")
		}
		if !granted {
			return
		}
		fmt.Fprintln(s.a.stderr, "running the write again (dry run)")
		ans, err = s.a.write(ctx, q)
	}
	if err != nil {
		s.a.report(err, sql)
		return
	}
	printWrite(s.out, ans)
	if ans.RowsAffected == 0 {
		fmt.Fprintln(s.a.stderr, "nothing would change; not committing")
		return
	}
	yes, err := s.p.ask(fmt.Sprintf("Commit this write of %d row%s? [y/N] ", ans.RowsAffected, plural(int(ans.RowsAffected))), "")
	if err != nil || !strings.HasPrefix(strings.ToLower(yes), "y") {
		fmt.Fprintln(s.a.stderr, "not committed")
		return
	}
	q.DryRun = false
	if ans, err = s.a.write(ctx, q); err != nil {
		s.a.report(err, sql)
		return
	}
	printWrite(s.out, ans)
	fmt.Fprintf(s.a.stderr, "to undo it: %s revert %s --apply --reason \"…\"\n", s.a.prog, line(ans.RequestID))
}

// meta runs a backslash command and reports whether the shell should end.
func (s *shell) meta(cmd string) bool {
	name, arg, _ := strings.Cut(cmd, " ")
	arg = strings.TrimSpace(arg)
	a := s.a
	switch name {
	case `\q`:
		return true
	case `\?`, `\h`, `\help`:
		fmt.Fprintf(a.stdout, shellHelp, s.history)
	case `\d`, `\dt`, `\d+`:
		s.action(func(ctx context.Context) {
			var names []string
			if arg != "" {
				names = []string{strings.Trim(arg, `"`)}
			}
			if err := a.describe(ctx, a.stdout, names, "table"); err != nil {
				a.report(err, "")
			}
			s.loaded = false // completion reloads what it may have learned since
		})
	case `\x`:
		switch arg {
		case "":
			s.expanded = !s.expanded
		case "on":
			s.expanded = true
		case "off":
			s.expanded = false
		default:
			fmt.Fprintf(a.stderr, "\\x: want on or off, not %q\n", line(arg))
			return false
		}
		state := "off"
		if s.expanded {
			state = "on"
		}
		fmt.Fprintf(a.stdout, "Expanded display is %s.\n", state)
	case `\o`:
		s.closeOutput()
		if arg == "" {
			return false
		}
		f, err := os.OpenFile(arg, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintf(a.stderr, "\\o: %s\n", visible(err.Error()))
			return false
		}
		s.out, s.outFile = f, f
		fmt.Fprintf(a.stdout, "Results go to %s (\\o alone sends them back here).\n", line(arg))
	case `\grants`:
		s.action(func(ctx context.Context) {
			ov, err := a.grants(ctx)
			if err != nil {
				a.report(err, "")
				return
			}
			a.printGrants(ov)
		})
	case `\requests`:
		s.action(func(ctx context.Context) {
			if err := a.cmdRequests(ctx, nil); err != nil {
				a.report(err, "")
			}
		})
	case `\request`:
		f := strings.Fields(arg)
		if len(f) < 3 {
			fmt.Fprintln(a.stderr, `usage: \request ROLE DURATION REASON...   e.g. \request unmasked_users 30m Checking the e-mail in ticket SUP-1234`)
			return false
		}
		s.action(func(ctx context.Context) {
			if _, err := a.offer(ctx, s.p, f[0], "", f[1], strings.Join(f[2:], " "), ""); err != nil {
				a.report(err, "")
			}
		})
	case `\conninfo`:
		where := a.g.url
		if where == "" {
			where = a.env("AIRLOCK_URL")
		}
		if where == "" {
			where = "http://127.0.0.1:8080"
		}
		who := a.g.as
		if who == "" {
			who = a.env("AIRLOCK_AS")
		}
		if who == "" {
			who = "your Google identity (gcloud)"
		}
		fmt.Fprintf(a.stdout, "Statements go to %s, as %s.\n", line(where), line(who))
	default:
		fmt.Fprintf(a.stderr, "invalid command %s; \\? lists the commands\n", line(name))
	}
	return false
}

func (s *shell) closeOutput() {
	if s.outFile != nil {
		s.outFile.Close()
		s.out, s.outFile = s.a.stdout, nil
	}
}

var metaCommands = []string{`\conninfo`, `\d`, `\grants`, `\help`, `\o`, `\q`, `\request`, `\requests`, `\x`}

// complete completes the word before the cursor: a backslash command, a table name, a
// column name, or table.column.
func (s *shell) complete(text string, pos int) (head string, completions []string, tail string) {
	before := []rune(text)[:pos]
	tail = string([]rune(text)[pos:])
	start := len(before)
	for start > 0 && (identRune(before[start-1]) || before[start-1] == '.' || before[start-1] == '\\') {
		start--
	}
	head, word := string(before[:start]), string(before[start:])
	if strings.HasPrefix(word, `\`) {
		return head, prefixed(metaCommands, word), tail
	}
	s.loadTables()
	var cands []string
	if table, _, ok := strings.Cut(word, "."); ok {
		for _, t := range s.tables {
			if strings.EqualFold(t.Name, table) {
				for _, c := range t.Columns {
					cands = append(cands, t.Name+"."+c)
				}
			}
		}
		return head, prefixed(cands, word), tail
	}
	for _, t := range s.tables {
		cands = append(cands, t.Name)
	}
	// After FROM, JOIN, \d and the like only a table can come.
	fields := strings.Fields(head)
	tableOnly := len(fields) > 0 && slices.Contains([]string{"from", "join", "into", "update", "table", `\d`}, strings.ToLower(fields[len(fields)-1]))
	if !tableOnly {
		// Columns of the tables the line names first, then of every table.
		lower := strings.ToLower(text)
		var named, other []string
		for _, t := range s.tables {
			if strings.Contains(lower, strings.ToLower(t.Name)) {
				named = append(named, t.Columns...)
			} else {
				other = append(other, t.Columns...)
			}
		}
		cols := named
		if len(prefixed(named, word)) == 0 {
			cols = append(named, other...)
		}
		cands = append(cands, cols...)
	}
	return head, prefixed(cands, word), tail
}

// loadTables reads the tables for completion, once (again after \d).
func (s *shell) loadTables() {
	if s.loaded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ts, _, err := s.a.tables(ctx); err == nil {
		s.tables, s.loaded = ts, true
	}
}

// prefixed lists the candidates starting with word (ignoring case), sorted, once each.
func prefixed(cands []string, word string) []string {
	var out []string
	for _, c := range cands {
		if len(c) >= len(word) && strings.EqualFold(c[:len(word)], word) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func identRune(r rune) bool {
	return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80
}
