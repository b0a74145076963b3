package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peterh/liner"
)

// A prompter asks the person at the terminal for a line. suggestion is offered as the
// answer (editable in the shell; taken on an empty answer elsewhere). It returns
// errInterrupted on Ctrl-C and io.EOF at the end of input.
type prompter interface {
	ask(prompt, suggestion string) (string, error)
}

// linerPrompter asks through the shell's line editor.
type linerPrompter struct{ l *liner.State }

func (p linerPrompter) ask(prompt, suggestion string) (string, error) {
	var s string
	var err error
	if suggestion != "" {
		s, err = p.l.PromptWithSuggestion(prompt, suggestion, -1)
	} else {
		s, err = p.l.Prompt(prompt)
	}
	if errors.Is(err, liner.ErrPromptAborted) {
		return "", errInterrupted
	}
	return strings.TrimSpace(s), err
}

// ttyPrompter asks on the controlling terminal, whatever stdin is (it may hold the SQL).
type ttyPrompter struct {
	in  *bufio.Reader
	out io.Writer
	err error
}

func (p *ttyPrompter) ask(prompt, suggestion string) (string, error) {
	if p.err != nil {
		return "", p.err
	}
	if suggestion != "" {
		prompt = strings.TrimRight(prompt, " :") + " [" + line(suggestion) + "]: "
	}
	fmt.Fprint(p.out, prompt)
	s, err := p.in.ReadString('\n')
	if err != nil && s == "" {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		s = suggestion
	}
	return s, nil
}

// oneShotPrompter asks on /dev/tty, for --request outside the shell.
func (a *app) oneShotPrompter() prompter {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return &ttyPrompter{err: usageErrorf("--request asks on the terminal, and there is none; give --for and --reason")}
	}
	return &ttyPrompter{in: bufio.NewReader(f), out: f}
}

// offer asks whether to request role, which would let the caller do what (unless what
// is "": the caller asked already); then, unless given, for how long and why; creates
// the request, and waits for its approvals. It reports whether the role was granted.
// With dur and reason both given it asks nothing.
func (a *app) offer(ctx context.Context, p prompter, role, what, dur, reason, reasonSuggestion string) (bool, error) {
	if what != "" && (dur == "" || reason == "") {
		yes, err := p.ask(fmt.Sprintf("Request %s to %s? [Y/n] ", line(role), what), "")
		if err != nil {
			return false, quiet(err)
		}
		if yes != "" && !strings.HasPrefix(strings.ToLower(yes), "y") {
			return false, nil
		}
	}
	var err error
	if dur == "" {
		if dur, err = p.ask("For how long (e.g. 30m, 2h): ", "30m"); err != nil {
			return false, quiet(err)
		}
	}
	for tries := 0; ; tries++ {
		if reason == "" {
			reason, err = p.ask("Why (a sentence, kept in the audit trail and shown to approvers): ", reasonSuggestion)
			if err != nil {
				return false, quiet(err)
			}
			if reason == "" {
				fmt.Fprintln(a.stderr, "no reason given; nothing was requested")
				return false, nil
			}
		}
		r, err := a.createRequest(ctx, role, dur, reason, "")
		var ae *apiError
		if errors.As(err, &ae) && tries < 2 && ae.Status == 400 {
			// A reason or duration the server refused: say why and ask again.
			a.report(err, "")
			switch {
			case strings.HasPrefix(ae.Code, "reason"):
				reasonSuggestion, reason = reason, ""
			case strings.Contains(ae.Code, "duration"):
				if dur, err = p.ask("For how long (e.g. 30m, 2h): ", "30m"); err != nil {
					return false, quiet(err)
				}
			default:
				return false, &reported{err}
			}
			continue
		}
		if err != nil {
			return false, err
		}
		fmt.Fprintf(a.stderr, "requested %s (%s) as %s; %d approval%s needed from %s\n", line(r.Role), line(r.Duration), line(r.RequestID),
			r.ApprovalsRequired, plural(r.ApprovalsRequired), line(strings.Join(r.Approvers, ", ")))
		if _, err := a.waitApproval(ctx, r); err != nil {
			return false, err
		}
		return true, nil
	}
}

// quiet turns the end of input or Ctrl-C at a prompt into "nothing was done".
func quiet(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
