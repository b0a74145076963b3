package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// maxSQL bounds the SQL read from a file or stdin; the server refuses more than 16 KiB.
const maxSQL = 1 << 20

// A queryRequest is ExecuteQuery's request body.
type queryRequest struct {
	SQL     string `json:"sql,omitempty"`
	Mode    string `json:"mode,omitempty"`
	DryRun  bool   `json:"dry_run,omitempty"`
	MaxRows int    `json:"max_rows,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Revert  string `json:"revert,omitempty"`
}

// read runs a read and decodes its answer.
func (a *app) read(ctx context.Context, sql string, maxRows int) (*readAnswer, error) {
	var ans readAnswer
	raw, err := a.c.call(ctx, fnQuery, http.MethodPost, "/", queryRequest{SQL: sql, MaxRows: maxRows}, &ans)
	if err != nil {
		return nil, err
	}
	ans.raw = raw
	return &ans, nil
}

// An output says how results are printed.
type output struct {
	format   string // table, expanded, csv, json, jsonl
	maxRows  int    // asked for; 0 is the policy's default
	w        io.Writer
	notes    io.Writer // where notes on masks and truncation go (stderr)
	notesTTY bool
}

func (o *output) print(a *readAnswer) {
	switch o.format {
	case "csv":
		writeCSV(o.w, a)
	case "json":
		writeJSON(o.w, a.raw)
	case "jsonl":
		writeJSONLines(o.w, a)
	case "expanded":
		writeExpanded(o.w, a, o.maxRows)
	default:
		writeTable(o.w, a, o.maxRows)
	}
	if a.Truncated && o.format != "table" && o.format != "expanded" {
		fmt.Fprintf(o.notes, "note: %d row%s; %s\n", len(a.Rows), plural(len(a.Rows)), truncation(a, o.maxRows))
	}
}

func (a *app) cmdQuery(ctx context.Context, args []string) error {
	fs := a.flags("query")
	file := fs.String("f", "", "read the SQL from this file")
	format := fs.String("format", "table", "table, csv, json or jsonl")
	maxRows := fs.Int("max-rows", 0, "rows to return (default: the policy's default_max_rows)")
	out := fs.String("o", "", "write the result to this file")
	expanded := fs.Bool("x", false, "table format: one \"column | value\" line each (psql's \\x)")
	request := fs.Bool("request", false, "offer to request the role that shows masked columns")
	dur := fs.String("for", "", "with --request: how long to ask for")
	reason := fs.String("reason", "", "with --request: why")
	const usage = `query [SQL | -f FILE] [--format table|csv|json|jsonl] [-x] [--max-rows N] [-o FILE] [--request [--for 30m --reason "why"]]`
	pos, err := parse(fs, args, 0, 1, usage)
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "csv", "json", "jsonl"); err != nil {
		return err
	}
	if *maxRows < 0 {
		return usageErrorf("--max-rows must be positive")
	}
	sql, err := a.sqlArg(pos, *file, usage)
	if err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	o := &output{format: *format, maxRows: *maxRows, w: a.stdout, notes: a.stderr}
	if *expanded && *format == "table" {
		o.format = "expanded"
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return usageErrorf("-o: %v", err)
		}
		defer f.Close()
		o.w = f
	}
	ans, err := a.read(ctx, sql, *maxRows)
	if err != nil {
		a.report(err, sql)
		return &reported{err}
	}
	o.print(ans)
	note, roles := maskedNote(ans)
	if note == "" {
		return nil
	}
	fmt.Fprintln(a.stderr, "note: "+note)
	if len(roles) == 0 {
		return nil
	}
	if !*request {
		fmt.Fprintf(a.stderr, "hint: %s request %s --for 30m --reason \"…\" asks for it (or rerun with --request)\n", a.prog, line(roles[0]))
		return nil
	}
	ok, err := a.offer(ctx, a.oneShotPrompter(), roles[0], "see "+pronoun(len(roles))+" unmasked", *dur, *reason, "")
	if err != nil || !ok {
		return err
	}
	ans, err = a.read(ctx, sql, *maxRows)
	if err != nil {
		a.report(err, sql)
		return &reported{err}
	}
	if *out != "" {
		if f, ok := o.w.(*os.File); ok {
			f.Truncate(0)
			f.Seek(0, io.SeekStart)
		}
	}
	o.print(ans)
	return nil
}

// sqlArg is the statement: the argument, the file, or stdin.
func (a *app) sqlArg(pos []string, file, usage string) (string, error) {
	var b []byte
	var err error
	switch {
	case len(pos) == 1 && file != "":
		return "", usageErrorf("give the SQL as an argument or with -f, not both; usage: %s", usage)
	case len(pos) == 1:
		b = []byte(pos[0])
	case file != "":
		f, ferr := os.Open(file)
		if ferr != nil {
			return "", usageErrorf("-f: %v", ferr)
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, maxSQL+1))
	case a.ttyIn:
		return "", usageErrorf("no SQL: give it as an argument, with -f FILE, or on stdin; usage: %s", usage)
	default:
		b, err = io.ReadAll(io.LimitReader(a.stdin, maxSQL+1))
	}
	switch {
	case err != nil:
		return "", usageErrorf("reading the SQL: %v", err)
	case len(b) > maxSQL:
		return "", usageErrorf("the SQL is longer than %d bytes", maxSQL)
	case len(bytes.TrimSpace(b)) == 0:
		return "", usageErrorf("no SQL given; usage: %s", usage)
	}
	return string(b), nil
}

// A writeAnswer is ExecuteQuery's answer to a write or a revert.
type writeAnswer struct {
	RequestID    string            `json:"request_id"`
	RowsAffected int64             `json:"rows_affected"`
	Committed    bool              `json:"committed"`
	DryRun       bool              `json:"dry_run"`
	Preview      []json.RawMessage `json:"preview"`
	Reverts      string            `json:"reverts"`
	Statements   []string          `json:"statements"`
	Note         string            `json:"note"`
	raw          []byte
}

func (a *app) write(ctx context.Context, q queryRequest) (*writeAnswer, error) {
	var ans writeAnswer
	raw, err := a.c.call(ctx, fnQuery, http.MethodPost, "/", q, &ans)
	if err != nil {
		return nil, err
	}
	ans.raw = raw
	return &ans, nil
}

// printWrite prints a write's or a revert's answer as SQL comments and statements, as
// the server's table format does.
func printWrite(w io.Writer, ans *writeAnswer) {
	var b strings.Builder
	switch {
	case ans.Committed:
		fmt.Fprintf(&b, "-- request %s: %d row(s) changed, committed\n", line(ans.RequestID), ans.RowsAffected)
	case ans.Note != "":
		fmt.Fprintf(&b, "-- request %s: %s\n", line(ans.RequestID), line(ans.Note))
	default:
		fmt.Fprintf(&b, "-- request %s: dry run, %d row(s) would change; nothing was committed\n", line(ans.RequestID), ans.RowsAffected)
	}
	if ans.Reverts != "" {
		fmt.Fprintf(&b, "-- reverts the write %s\n", line(ans.Reverts))
	}
	for _, p := range ans.Preview {
		var c bytes.Buffer
		if json.Compact(&c, p) == nil {
			fmt.Fprintf(&b, "-- row after: %s\n", safeJSON(c.Bytes()))
		}
	}
	for _, s := range ans.Statements {
		b.WriteString(visible(s) + "\n")
	}
	io.WriteString(w, b.String())
}

func (a *app) cmdWrite(ctx context.Context, args []string) error {
	fs := a.flags("write")
	file := fs.String("f", "", "read the SQL from this file")
	reason := fs.String("reason", "", "why (at least 10 characters, kept in the audit trail)")
	dry := fs.Bool("dry-run", false, "run it, show what would change, roll back")
	format := fs.String("format", "table", "table or json")
	request := fs.Bool("request", false, "when refused for lack of a grant, offer to request the role")
	dur := fs.String("for", "", "with --request: how long to ask for")
	const usage = `write [SQL | -f FILE] --reason "why" [--dry-run] [--format table|json] [--request [--for 30m]]`
	pos, err := parse(fs, args, 0, 1, usage)
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageErrorf("a write needs --reason (at least 10 characters, kept in the audit trail); usage: %s", usage)
	}
	sql, err := a.sqlArg(pos, *file, usage)
	if err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	q := queryRequest{SQL: sql, Mode: "write", DryRun: *dry, Reason: *reason}
	ans, err := a.write(ctx, q)
	if ae, ok := errors.AsType[*apiError](err); ok && ae.GrantRole != "" && *request {
		a.report(err, sql)
		ok, oerr := a.offer(ctx, a.oneShotPrompter(), ae.GrantRole, "run this write", *dur, *reason, "")
		if oerr != nil || !ok {
			return oerr
		}
		ans, err = a.write(ctx, q)
	}
	if err != nil {
		a.report(err, sql)
		return &reported{err}
	}
	if *format == "json" {
		writeJSON(a.stdout, ans.raw)
	} else {
		printWrite(a.stdout, ans)
	}
	return nil
}

func (a *app) cmdRevert(ctx context.Context, args []string) error {
	fs := a.flags("revert")
	apply := fs.Bool("apply", false, "run the statements (needs an active write grant on the table)")
	reason := fs.String("reason", "", "why (needed with --apply, kept in the audit trail)")
	format := fs.String("format", "table", "table or json")
	const usage = `revert REQUEST_ID [--apply --reason "why"] [--format table|json]`
	pos, err := parse(fs, args, 1, 1, usage)
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	id := pos[0]
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return usageErrorf("%q is not a request id (16 hex digits: the request_id the write answered with)", id)
	}
	if *apply && strings.TrimSpace(*reason) == "" {
		return usageErrorf(`--apply needs --reason "why" (at least 10 characters, kept in the audit trail)`)
	}
	if *reason == "" {
		*reason = "checking what reverting " + id + " would do"
	}
	if err := a.connect(); err != nil {
		return err
	}
	ans, err := a.write(ctx, queryRequest{Mode: "revert", Revert: id, DryRun: !*apply, Reason: *reason})
	if err != nil {
		return err
	}
	if *format == "json" {
		writeJSON(a.stdout, ans.raw)
	} else {
		printWrite(a.stdout, ans)
	}
	return nil
}

// printJSON prints v as JSON, escaped for the terminal.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	writeJSON(a.stdout, b)
	return nil
}

// rawRow turns JSON values into a row.
func rawRow(vals [][]byte) []json.RawMessage {
	row := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		row[i] = v
	}
	return row
}
