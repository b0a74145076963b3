package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// An accessRequest is a request as RequestAccess answers a new one and lists them.
type accessRequest struct {
	RequestID         string     `json:"request_id"`
	Requester         string     `json:"requester"`
	Status            string     `json:"status"`
	Role              string     `json:"role"`
	BreakGlass        bool       `json:"breakglass"`
	Duration          string     `json:"duration"`
	Tables            []string   `json:"tables"`
	Unmask            []string   `json:"unmask"`
	Write             []string   `json:"write"`
	Reason            string     `json:"reason"`
	Ticket            string     `json:"ticket"`
	ApprovalsRequired int        `json:"approvals_required"`
	Approvers         []string   `json:"approvers"`
	Approvals         []approval `json:"approvals"`
	CreatedAt         time.Time  `json:"created_at"`
	ExpiresAt         time.Time  `json:"expires_at"`
	History           []string   `json:"requester_grants_30d"`
}

type approval struct {
	Approver  string    `json:"approver"`
	Decision  string    `json:"decision"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"created_at"`
}

// approvedBy lists who approved.
func (r *accessRequest) approvedBy() []string {
	var out []string
	for _, a := range r.Approvals {
		if a.Decision == "approve" {
			out = append(out, a.Approver)
		}
	}
	return out
}

type grant struct {
	ID           int64     `json:"grant_id"`
	RequestID    string    `json:"request_id"`
	Role         string    `json:"role"`
	BreakGlass   bool      `json:"breakglass"`
	Capabilities []string  `json:"capabilities"`
	StartsAt     time.Time `json:"starts_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	Status       string    `json:"status"`
}

// An overview is what RequestAccess lists for the caller.
type overview struct {
	Now      time.Time        `json:"now"`
	Requests []*accessRequest `json:"requests"`
	Grants   []grant          `json:"grants"`
	Waiting  []*accessRequest `json:"waiting_for_you"`
}

func (a *app) overview(ctx context.Context) (*overview, []byte, error) {
	var ov overview
	raw, err := a.c.call(ctx, fnAccess, http.MethodGet, "/?format=json", nil, &ov)
	return &ov, raw, err
}

// createRequest asks for role.
func (a *app) createRequest(ctx context.Context, role, duration, reason, ticket string) (*accessRequest, error) {
	body := map[string]any{"role": role, "duration": duration, "reason": reason}
	if ticket != "" {
		body["ticket"] = ticket
	}
	var r accessRequest
	if _, err := a.c.call(ctx, fnAccess, http.MethodPost, "/", body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (a *app) cmdRequest(ctx context.Context, args []string) error {
	fs := a.flags("request")
	dur := fs.String("for", "", "how long, e.g. 30m or 2h")
	reason := fs.String("reason", "", "why, in a sentence (kept in the audit trail)")
	ticket := fs.String("ticket", "", "a ticket or incident reference (break-glass needs one)")
	wait := fs.Bool("wait", false, "wait for the approvals")
	format := fs.String("format", "table", "table or json")
	const usage = `request ROLE --for DURATION --reason "why" [--ticket ID] [--wait] [--format table|json]`
	pos, err := parse(fs, args, 1, 1, usage)
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	if *dur == "" || strings.TrimSpace(*reason) == "" {
		return usageErrorf("a request needs --for (e.g. 30m) and --reason; usage: %s", usage)
	}
	if err := a.connect(); err != nil {
		return err
	}
	r, err := a.createRequest(ctx, pos[0], *dur, *reason, *ticket)
	if err != nil {
		return err
	}
	if *format == "json" {
		return a.printJSON(r)
	}
	fmt.Fprintln(a.stdout, line(r.RequestID))
	fmt.Fprintf(a.stderr, "%s for %s (%s): %s; %d approval%s needed from %s\n", line(r.RequestID), line(r.Role), line(r.Duration),
		line(r.Status), r.ApprovalsRequired, plural(r.ApprovalsRequired), line(strings.Join(r.Approvers, ", ")))
	if !*wait {
		fmt.Fprintf(a.stderr, "an approver runs: %s approve %s\n", a.prog, line(r.RequestID))
		return nil
	}
	_, err = a.waitApproval(ctx, r)
	return err
}

// waitApproval polls the caller's requests until r is approved, denied or expires, with
// a progress line on a terminal. Ctrl-C stops waiting and leaves the request as it is.
// It returns the grant the approval made.
func (a *app) waitApproval(ctx context.Context, r *accessRequest) (*grant, error) {
	start := time.Now()
	last := ""
	progress := func(s string) {
		if a.ttyErr {
			fmt.Fprintf(a.stderr, "\r\x1b[K%s", s)
		} else if s != last {
			fmt.Fprintln(a.stderr, s)
		}
		last = s
	}
	done := func() {
		if a.ttyErr && last != "" {
			fmt.Fprint(a.stderr, "\r\x1b[K")
		}
	}
	for {
		ov, _, err := a.overview(ctx)
		if errors.Is(err, errInterrupted) {
			done()
			fmt.Fprintf(a.stderr, "stopped waiting; request %s stays %s (%s requests shows it)\n", line(r.RequestID), line(r.Status), a.prog)
			return nil, &reported{errInterrupted}
		}
		if err != nil {
			done()
			return nil, err
		}
		var cur *accessRequest
		for _, q := range ov.Requests {
			if q.RequestID == r.RequestID {
				cur = q
			}
		}
		if cur == nil {
			done()
			return nil, fmt.Errorf("request %s is not among your requests", line(r.RequestID))
		}
		r.Status = cur.Status
		switch cur.Status {
		case "approved":
			done()
			var g *grant
			for i := range ov.Grants {
				if ov.Grants[i].RequestID == r.RequestID {
					g = &ov.Grants[i]
				}
			}
			msg := fmt.Sprintf("approved by %s", line(strings.Join(cur.approvedBy(), ", ")))
			if g != nil {
				msg += fmt.Sprintf(": grant %d (%s) until %s", g.ID, line(g.Role), g.ExpiresAt.Local().Format("15:04:05 MST"))
			}
			fmt.Fprintln(a.stderr, msg)
			return g, nil
		case "pending":
		default:
			done()
			fmt.Fprintf(a.stderr, "request %s was %s\n", line(r.RequestID), line(cur.Status))
			return nil, &reported{fmt.Errorf("request %s was %s", r.RequestID, cur.Status)}
		}
		who := ""
		if by := cur.approvedBy(); len(by) > 0 {
			who = " (" + strings.Join(by, ", ") + ")"
		}
		progress(line(fmt.Sprintf("waiting for approval of %s: %d of %d%s, %s; Ctrl-C stops waiting, the request stays",
			r.RequestID, len(cur.approvedBy()), cur.ApprovalsRequired, who, time.Since(start).Truncate(time.Second))))
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (a *app) cmdRequests(ctx context.Context, args []string) error {
	fs := a.flags("requests")
	format := fs.String("format", "table", "table or json")
	if _, err := parse(fs, args, 0, 0, "requests [--format table|json]"); err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	ov, raw, err := a.overview(ctx)
	if err != nil {
		return err
	}
	if *format == "json" {
		writeJSON(a.stdout, raw)
		return nil
	}
	rows := [][]string{}
	for _, r := range ov.Requests {
		rows = append(rows, []string{r.RequestID, r.Role, r.Status, fmt.Sprintf("%d of %d", len(r.approvedBy()), r.ApprovalsRequired),
			r.Duration, r.CreatedAt.Local().Format("2006-01-02 15:04"), r.Reason})
	}
	fmt.Fprintln(a.stdout, "Your requests (last 30 days)")
	listing(a.stdout, []string{"request", "role", "status", "approvals", "for", "created", "reason"}, rows)
	if len(ov.Waiting) > 0 {
		rows = rows[:0]
		for _, r := range ov.Waiting {
			ticket := r.Ticket
			if r.BreakGlass {
				ticket += " BREAK-GLASS"
			}
			rows = append(rows, []string{r.RequestID, r.Requester, r.Role, r.Duration, fmt.Sprintf("%d of %d", len(r.approvedBy()), r.ApprovalsRequired),
				r.Reason, strings.TrimSpace(ticket), strings.Join(r.History, "; ")})
		}
		fmt.Fprintln(a.stdout, "\nWaiting for your decision ("+a.prog+" approve ID, "+a.prog+" deny ID)")
		listing(a.stdout, []string{"request", "requester", "role", "for", "approvals", "reason", "ticket", "their grants, 30 days"}, rows)
	}
	return nil
}

func (a *app) cmdGrants(ctx context.Context, args []string) error {
	fs := a.flags("grants")
	format := fs.String("format", "table", "table or json")
	if _, err := parse(fs, args, 0, 0, "grants [--format table|json]"); err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	ov, err := a.grants(ctx)
	if err != nil {
		return err
	}
	if *format == "json" {
		return a.printJSON(ov.Grants)
	}
	a.printGrants(ov)
	return nil
}

func (a *app) grants(ctx context.Context) (*overview, error) {
	ov, _, err := a.overview(ctx)
	return ov, err
}

func (a *app) printGrants(ov *overview) {
	rows := [][]string{}
	for _, g := range ov.Grants {
		left := ""
		if g.Status == "active" {
			left = g.ExpiresAt.Sub(ov.Now).Truncate(time.Second).String()
		}
		rows = append(rows, []string{strconv.FormatInt(g.ID, 10), g.Role, g.Status, strings.Join(g.Capabilities, ", "),
			g.ExpiresAt.Local().Format("2006-01-02 15:04:05"), left, g.RequestID})
	}
	fmt.Fprintln(a.stdout, "Your grants (last 30 days)")
	listing(a.stdout, []string{"grant", "role", "status", "capabilities", "until", "left", "request"}, rows)
}

// A decision is ApprovalCallback's answer.
type decision struct {
	RequestID         string     `json:"request_id"`
	Status            string     `json:"status"`
	Decision          string     `json:"decision"`
	Approvals         int        `json:"approvals"`
	ApprovalsRequired int        `json:"approvals_required"`
	GrantID           int64      `json:"grant_id"`
	GrantExpiresAt    *time.Time `json:"grant_expires_at"`
}

func (a *app) cmdDecide(ctx context.Context, verb string, args []string) error {
	fs := a.flags(verb)
	comment := fs.String("comment", "", "a comment, kept in the audit trail")
	format := fs.String("format", "table", "table or json")
	pos, err := parse(fs, args, 1, 1, verb+" REQUEST_ID [--comment TEXT] [--format table|json]")
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	var d decision
	raw, err := a.c.call(ctx, fnApproval, http.MethodPost, "/", map[string]any{"request_id": pos[0], "decision": verb, "comment": *comment}, &d)
	if err != nil {
		return err
	}
	if *format == "json" {
		writeJSON(a.stdout, raw)
		return nil
	}
	msg := fmt.Sprintf("%s: %s, %d of %d approval%s", line(d.RequestID), line(d.Status), d.Approvals, d.ApprovalsRequired, plural(d.ApprovalsRequired))
	if d.GrantID != 0 && d.GrantExpiresAt != nil {
		msg += fmt.Sprintf("; grant %d until %s", d.GrantID, d.GrantExpiresAt.Local().Format("2006-01-02 15:04:05 MST"))
	}
	fmt.Fprintln(a.stdout, msg)
	return nil
}

func (a *app) cmdRevoke(ctx context.Context, args []string) error {
	fs := a.flags("revoke")
	format := fs.String("format", "table", "table or json")
	pos, err := parse(fs, args, 1, 1, "revoke GRANT_ID [--format table|json]")
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return usageErrorf("revoke wants a grant id (a positive number, see %s grants), not %q", a.prog, pos[0])
	}
	if err := a.connect(); err != nil {
		return err
	}
	var v struct {
		GrantID    int64  `json:"grant_id"`
		Role       string `json:"role"`
		Grantee    string `json:"grantee"`
		Terminated int    `json:"terminated_sessions"`
	}
	raw, err := a.c.call(ctx, fnApproval, http.MethodPost, "/", map[string]any{"grant_id": id, "decision": "revoke"}, &v)
	if err != nil {
		return err
	}
	if *format == "json" {
		writeJSON(a.stdout, raw)
		return nil
	}
	fmt.Fprintf(a.stdout, "revoked grant %d (%s of %s); %d running session%s ended\n", v.GrantID, line(v.Role), line(v.Grantee), v.Terminated, plural(v.Terminated))
	return nil
}

// listing prints rows of text under heads in psql's aligned format, every cell on one
// line and escaped, without a footer; "(none)" when there are no rows.
func listing(w io.Writer, heads []string, rows [][]string) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	cols := make([]column, len(heads))
	for i, h := range heads {
		cols[i] = column{Name: h, Type: "text"}
	}
	a := &readAnswer{Columns: cols}
	for _, r := range rows {
		row := make([][]byte, len(r))
		for i, s := range r {
			row[i] = []byte(jsonString(s))
		}
		a.Rows = append(a.Rows, rawRow(row))
	}
	var b strings.Builder
	writeTable(&b, a, 0)
	s := strings.TrimSuffix(b.String(), "\n")
	io.WriteString(w, s[:strings.LastIndexByte(s, '\n')+1])
}

func checkFormat(f string, allowed ...string) error {
	for _, a := range allowed {
		if f == a {
			return nil
		}
	}
	return usageErrorf("--format must be %s, not %q", strings.Join(allowed, ", "), f)
}
