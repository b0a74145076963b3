// Command airlock is the terminal client of Airlock: queries, the schema, an interactive
// shell, access requests and approvals, writes and reverts, all through the functions'
// HTTP APIs and nothing else. scripts/airlock builds and runs it.
//
//	airlock [--url URL] [--as EMAIL | --impersonate-service-account SA] COMMAND [ARGS]
//
// Run `airlock help` for the commands, where they send requests, as whom, and the exit
// statuses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/term"
)

// Exit statuses.
const (
	exitOK          = 0   // done
	exitRefused     = 1   // Airlock refused (its code, rule and message are printed), or a request was denied
	exitUsage       = 2   // bad flags or arguments; nothing was sent
	exitUnreachable = 3   // no answer from Airlock
	exitAuth        = 4   // no identity to send, or it was not accepted
	exitInterrupted = 130 // Ctrl-C
)

const usageText = `airlock: the terminal client of Airlock

Usage: %[1]s [--url URL] [--as EMAIL | --impersonate-service-account SA] COMMAND [ARGS]

Reading:
  query SQL            run a read; SQL as an argument, -f FILE, or on stdin
                         --format table|csv|json|jsonl, -x (expanded), --max-rows N, -o FILE,
                         --request: offer to request the role that shows masked columns
  describe [TABLE]     the tables you can query; one table's columns, types, masks,
                         writable columns and the roles that unmask or write it
  shell                an interactive shell (also: %[1]s with no arguments on a terminal)
Access:
  request ROLE         ask for a role: --for 30m --reason "why" [--ticket INC-1] [--wait];
                         prints the request id
  requests             your requests, and those waiting for your decision
  grants               your grants
  approve ID           approve an access request [--comment TEXT]
  deny ID              deny one [--comment TEXT]
  revoke GRANT_ID      end a grant now (your own, or one of a role you approve)
Writing:
  write SQL            an INSERT or UPDATE under your write grant: --reason TEXT [--dry-run]
                         [--request: offer to request the write role when refused]
  revert REQUEST_ID    show the statements that undo a committed write;
                         --apply --reason TEXT runs them

Where: --url or AIRLOCK_URL, default http://127.0.0.1:8080 (scripts/dev.sh). Either one base
  URL with each function at /<EntryPoint>/ (the devserver; deployed, the classic
  https://REGION-PROJECT.cloudfunctions.net), or the JSON object of each function's URL
  that "terraform output -json function_uris" prints.
Who: locally --as EMAIL or AIRLOCK_AS (a token minted with the devserver's key in
  AIRLOCK_STATE, default .dev); deployed, your own Google identity from gcloud
  ("gcloud auth print-identity-token"); a service account only when asked with
  --impersonate-service-account SA; AIRLOCK_TOKEN sends a token as it is.

Exit status: 0 done; 1 refused by Airlock (its code, rule and message are printed), or a
  request denied or expired; 2 usage; 3 Airlock unreachable; 4 no identity, or not
  accepted; 130 interrupted.
`

// globals are the flags every command takes.
type globals struct {
	url, as, impersonate string
}

// An app is one run of the command.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string
	prog           string // how hints name this command (AIRLOCK_PROG: scripts/airlock)
	g              globals
	c              *client
	ttyIn, ttyOut  bool // stdin and stdout are terminals
	ttyErr         bool
	intr           *interrupts
}

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, env: os.Getenv,
		ttyIn: term.IsTerminal(int(os.Stdin.Fd())), ttyOut: term.IsTerminal(int(os.Stdout.Fd())), ttyErr: term.IsTerminal(int(os.Stderr.Fd()))}
	a.intr = watchInterrupts()
	os.Exit(a.run(os.Args[1:]))
}

// commands, by name.
var commands = map[string]func(*app, context.Context, []string) error{
	"query":    (*app).cmdQuery,
	"describe": (*app).cmdDescribe,
	"shell":    (*app).cmdShell,
	"request":  (*app).cmdRequest,
	"requests": (*app).cmdRequests,
	"grants":   (*app).cmdGrants,
	"approve":  func(a *app, ctx context.Context, args []string) error { return a.cmdDecide(ctx, "approve", args) },
	"deny":     func(a *app, ctx context.Context, args []string) error { return a.cmdDecide(ctx, "deny", args) },
	"revoke":   (*app).cmdRevoke,
	"write":    (*app).cmdWrite,
	"revert":   (*app).cmdRevert,
}

// run runs the command line and returns the exit status.
func (a *app) run(args []string) int {
	a.prog = a.env("AIRLOCK_PROG")
	if a.prog == "" {
		a.prog = filepath.Base(os.Args[0])
	}
	fs := a.flags("airlock")
	if err := fs.Parse(args); err != nil {
		return a.fail(err, "")
	}
	args = fs.Args()
	if len(args) == 0 {
		if a.ttyIn && a.ttyOut {
			args = []string{"shell"}
		} else {
			fmt.Fprintf(a.stderr, usageText, a.prog)
			return exitUsage
		}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(a.stdout, usageText, a.prog)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return a.fail(usageErrorf("unknown command %q", args[0]), "")
	}
	ctx, stop := a.intr.context(context.Background())
	defer stop()
	return a.fail(cmd(a, ctx, args[1:]), "")
}

// flags returns a flag set holding the global flags.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.g.url, "url", a.g.url, "base URL of the functions, or a JSON object of their URLs")
	fs.StringVar(&a.g.as, "as", a.g.as, "locally: act as this e-mail address")
	fs.StringVar(&a.g.impersonate, "impersonate-service-account", a.g.impersonate, "deployed: act as this service account")
	return fs
}

// parse parses args, letting flags and arguments come in any order, and checks the
// number of arguments.
func parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int, usage string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usageErrorf("usage: %s", usage)
			}
			return nil, usageErrorf("%v; usage: %s", err, usage)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		return nil, usageErrorf("usage: %s", usage)
	}
	return pos, nil
}

// connect builds the client: where the functions are and who is calling.
func (a *app) connect() error {
	if a.c != nil {
		return nil
	}
	raw := a.g.url
	if raw == "" {
		raw = a.env("AIRLOCK_URL")
	}
	if raw == "" {
		raw = "http://127.0.0.1:8080"
	}
	at, err := parseEndpoints(raw)
	if err != nil {
		return err
	}
	as := a.g.as
	if as == "" {
		as = a.env("AIRLOCK_AS")
	}
	impersonate := a.g.impersonate
	if impersonate == "" {
		impersonate = a.env("AIRLOCK_IMPERSONATE_SERVICE_ACCOUNT")
	}
	var who identity
	switch tok := a.env("AIRLOCK_TOKEN"); {
	case as != "" && impersonate != "":
		return usageErrorf("--as (a local identity) and --impersonate-service-account (a deployed one) exclude each other")
	case as != "":
		state := a.env("AIRLOCK_STATE")
		if state == "" {
			state = ".dev"
		}
		l, err := newLocalIdentity(as, state)
		if err != nil {
			return err
		}
		who = l
	case tok != "":
		who = staticIdentity(tok)
	case at.local() && impersonate == "":
		return usageErrorf("say who you are locally with --as EMAIL (or AIRLOCK_AS), e.g. --as dev1@example.com")
	default:
		gcloud := a.env("AIRLOCK_GCLOUD")
		if gcloud == "" {
			gcloud = "gcloud"
		}
		who = &gcloudIdentity{impersonate: impersonate, gcloud: gcloud}
	}
	a.c = newClient(at, who)
	return nil
}

// usageError is a mistake in the command line; nothing was sent.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode is the exit status for err.
func exitCode(err error) int {
	var (
		ue *usageError
		ae *apiError
		ne *unreachableError
		au *authError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &au):
		return exitAuth
	case errors.As(err, &ne):
		return exitUnreachable
	case errors.As(err, &ae):
		return exitRefused
	}
	return exitRefused
}

// fail prints err, if any, and returns its exit status. sql is the statement it
// concerns, for pointing at an error's position.
func (a *app) fail(err error, sql string) int {
	if err == nil {
		return exitOK
	}
	a.report(err, sql)
	return exitCode(err)
}

// reported wraps an error already printed.
type reported struct{ err error }

func (r *reported) Error() string { return r.err.Error() }
func (r *reported) Unwrap() error { return r.err }

// report prints err for a person: a refusal as psql prints a server's error (ERROR,
// DETAIL, HINT), with the line of sql it points at.
func (a *app) report(err error, sql string) {
	if r, ok := errors.AsType[*reported](err); ok && r != nil {
		return
	}
	var ae *apiError
	var ue *usageError
	var ne *unreachableError
	switch {
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(a.stderr, "airlock: interrupted")
	case errors.As(err, &ae):
		var b strings.Builder
		fmt.Fprintf(&b, "ERROR:  %s\n", visible(ae.Message))
		if ae.Position > 0 && sql != "" {
			b.WriteString(pointAt(sql, ae.Position))
		}
		detail := fmt.Sprintf("%s answered %d %s", ae.Function, ae.Status, line(ae.Code))
		if ae.Rule != "" {
			detail += ", rule " + line(ae.Rule)
		}
		if ae.RequestID != "" {
			detail += " (request " + line(ae.RequestID) + ")"
		}
		fmt.Fprintf(&b, "DETAIL:  %s\n", detail)
		if ae.GrantRole != "" {
			fmt.Fprintf(&b, "HINT:  the role %s would allow it: %s request %s --for 30m --reason \"…\"\n", line(ae.GrantRole), a.prog, line(ae.GrantRole))
		}
		io.WriteString(a.stderr, b.String())
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "%s: %s\n", a.prog, visible(ue.msg))
		if !strings.HasPrefix(ue.msg, "usage:") {
			fmt.Fprintf(a.stderr, "run \"%s help\" for the commands and their flags\n", a.prog)
		}
	case errors.As(err, &ne):
		msg := visible(ne.Error())
		if a.c != nil && a.c.at.local() {
			msg += " (is scripts/dev.sh running?)"
		}
		fmt.Fprintf(a.stderr, "%s: %s\n", a.prog, msg)
	default:
		fmt.Fprintf(a.stderr, "%s: %s\n", a.prog, visible(err.Error()))
	}
}

// pointAt shows the line of sql holding the character at pos (1-based, in characters,
// as PostgreSQL counts) and a caret under it, as psql does.
func pointAt(sql string, pos int) string {
	runes := []rune(sql)
	if pos < 1 || pos > len(runes) {
		return ""
	}
	start, lineNo := 0, 1
	for i := 0; i < pos-1; i++ {
		if runes[i] == '\n' {
			start, lineNo = i+1, lineNo+1
		}
	}
	end := start
	for end < len(runes) && runes[end] != '\n' {
		end++
	}
	prefix := fmt.Sprintf("LINE %d: ", lineNo)
	text := string(runes[start:end])
	caret := display(prefix) + display(cell(string(runes[start:pos-1])))
	return prefix + cell(text) + "\n" + strings.Repeat(" ", caret) + "^\n"
}

// interrupts turns Ctrl-C into the cancellation of what is running. A second Ctrl-C
// while the first is still being handled ends the process.
type interrupts struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	hit    bool
}

func watchInterrupts() *interrupts {
	i := &interrupts{}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt)
	go func() {
		for range ch {
			i.mu.Lock()
			if i.hit {
				os.Exit(exitInterrupted)
			}
			if i.cancel != nil {
				i.hit = true
				i.cancel()
			}
			i.mu.Unlock()
		}
	}()
	return i
}

// ignore makes Ctrl-C do nothing until restore is called (the shell between statements).
func (i *interrupts) ignore() (restore func()) {
	_, stop := i.context(context.Background())
	return stop
}

// context returns a context that Ctrl-C cancels until stop is called.
func (i *interrupts) context(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	if i == nil {
		return ctx, cancel
	}
	i.mu.Lock()
	prev := i.cancel
	i.cancel, i.hit = cancel, false
	i.mu.Unlock()
	return ctx, func() {
		i.mu.Lock()
		i.cancel, i.hit = prev, false
		i.mu.Unlock()
		cancel()
	}
}
