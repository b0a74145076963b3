// Package auditreport turns a verified audit trail into the evidence auditors ask for:
// per access request, who asked, why, who approved and when, the grant's window and
// every statement run under it; per period, who held which access when, every
// approval, denial, refusal and alert, per person (the user access review of PCI DSS
// 4.0.1 requirement 7.2.4). It writes CSV files and self-contained HTML pages.
//
// It reads only the trail, and only a trail that verified: [Build] refuses one with
// findings. Statements are tied to grants by the grant_ids their entries carry (every
// grant active for the person when the statement ran), and each row links to the audit
// entry it comes from (chain, seq, hash and its place in the export).
package auditreport

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"airlock.dev/airlock/shared/audit"
)

// ErrUnverified is returned by [Build] for a trail whose verification found tampering.
var ErrUnverified = errors.New("auditreport: the trail did not verify; no report is made from a trail that cannot be trusted")

// A Ref names the audit entry a row comes from.
type Ref struct {
	Chain string
	Seq   int64
	Hash  string
	Where string // line=N or item=N insert_id=…
}

// ID is the HTML anchor of the entry: e-CHAIN-SEQ.
func (r Ref) ID() string { return fmt.Sprintf("e-%s-%d", r.Chain, r.Seq) }

// String is "CHAIN:SEQ".
func (r Ref) String() string {
	if r.Chain == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", r.Chain, r.Seq)
}

// A Decision is one approver's approval or denial of a request.
type Decision struct {
	Approver string
	Decision string // approved, denied
	Comment  string
	Time     time.Time
	Ref      Ref
}

// A Request is an access request and what became of it.
type Request struct {
	ID         string
	Requester  string
	Role       string
	Breakglass bool
	Reason     string
	Ticket     string
	Duration   string
	Tables     []string
	Created    time.Time
	Ref        Ref
	Decisions  []Decision
	Expired    *Decision // the sweeper's request.expired, when it expired undecided
	Grants     []*Grant
}

// Status is what became of the request: granted, denied, expired or pending.
func (r *Request) Status() string {
	switch {
	case len(r.Grants) > 0:
		return "granted"
	case r.Expired != nil:
		return "expired"
	}
	for _, d := range r.Decisions {
		if d.Decision == "denied" {
			return "denied"
		}
	}
	return "pending"
}

// A Grant is access held: from its grant.created entry to its end.
type Grant struct {
	ID           int64
	RequestID    string
	Grantee      string
	Role         string
	Capabilities []string
	Breakglass   bool
	Approvers    []string
	Start        time.Time
	Expires      time.Time // as granted
	Ended        time.Time // when it ended (expired, revoked); zero while active in the trail
	EndedHow     string    // expired, revoked, or "" while active
	EndedBy      string
	Ref          Ref
	EndRef       Ref
	Statements   []*Statement
	// SessionsEnded counts database sessions ended when the grant ended.
	SessionsEnded int
}

// Until is when the grant stopped giving access: when it ended, or else its expiry.
func (g *Grant) Until() time.Time {
	if !g.Ended.IsZero() && g.Ended.Before(g.Expires) {
		return g.Ended
	}
	return g.Expires
}

// A Statement is one ExecuteQuery request: its attempt and its outcome.
type Statement struct {
	RequestID       string
	Actor           string
	Time            time.Time
	Mode            string
	SQL             string
	Fingerprint     string
	Decision        string // allowed, denied, error
	Rule            string
	Outcome         string // ok, error class, or "no outcome recorded"
	Rows            int64
	Bytes           int64
	DurationMS      int64
	Tables          []string
	MaskedColumns   []string
	UnmaskedColumns []string
	Reverts         string // the request id of the write a revert undid
	DryRun          bool
	GrantIDs        []int64
	Ref             Ref // query.attempt
	ResultRef       Ref // query.result
}

// Write says whether the statement changed data (or would have, in a dry run).
func (s *Statement) Write() bool { return s.Mode == "write" || s.Mode == "revert" }

// An Event is one approval, denial, refusal, alert or request in the review period.
type Event struct {
	Time     time.Time
	Person   string // whose action or whom it concerns
	Kind     string // request, approval, denial, refusal, alert, revocation, expiry
	Event    string
	Severity string
	Detail   string
	Ref      Ref
}

// A Person is one row of the access review.
type Person struct {
	Email      string
	Grants     []*Grant // access held in the period
	Requests   int
	Decisions  int // approvals and denials given
	Statements int
	Writes     int
	Refusals   int
	Alerts     int
	Events     []*Event
}

// A Report is the evidence built from one verified trail.
type Report struct {
	From, To     time.Time // the review period
	Generated    time.Time
	Verification string // the verifier's summary line
	TrustedKeys  string // the keys the trail was verified with
	Requests     []*Request
	People       []*Person
	Events       []*Event
	Statements   []*Statement // in the period, tied to a grant or not
	entries      map[string]*audit.StoredEntry
}

// Entries returns the audit entries the report links to, in time order.
func (r *Report) Entries() []*audit.StoredEntry {
	out := make([]*audit.StoredEntry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Entry, out[j].Entry
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.Chain != b.Chain {
			return a.Chain < b.Chain
		}
		return a.Seq < b.Seq
	})
	return out
}

// Options select what a report covers.
type Options struct {
	From, To time.Time // the review period; zero: from the trail's first to its last entry
	Request  string    // only this access request ("" for all)
	Now      time.Time // when the report is made; zero: time.Now
}

// Build makes the report from trail, which rep (the verifier's report on it) must say is
// intact. keys describes the keys it was verified with.
func Build(trail *audit.Trail, rep audit.Report, keys string, o Options) (*Report, error) {
	if !rep.OK() {
		return nil, ErrUnverified
	}
	es := make([]*audit.StoredEntry, 0, len(trail.Entries))
	for i := range trail.Entries {
		es = append(es, &trail.Entries[i])
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].Entry.Time.Before(es[j].Entry.Time) })
	r := &Report{From: o.From, To: o.To, Generated: o.Now, Verification: rep.Summary(), TrustedKeys: keys, entries: map[string]*audit.StoredEntry{}}
	if r.Generated.IsZero() {
		r.Generated = time.Now().UTC()
	}
	if len(es) > 0 {
		if r.From.IsZero() {
			r.From = es[0].Entry.Time
		}
		if r.To.IsZero() {
			r.To = es[len(es)-1].Entry.Time
		}
	}
	b := builder{r: r, requests: map[string]*Request{}, grants: map[int64]*Grant{}, stmts: map[string]*Statement{}, people: map[string]*Person{}}
	for _, se := range es {
		b.add(se)
	}
	b.finish(o.Request)
	return r, nil
}

type builder struct {
	r        *Report
	requests map[string]*Request
	grants   map[int64]*Grant
	stmts    map[string]*Statement // by request id
	people   map[string]*Person
}

func ref(se *audit.StoredEntry) Ref {
	return Ref{Chain: se.Entry.Chain, Seq: se.Entry.Seq, Hash: se.Entry.Hash, Where: se.Where()}
}

func (b *builder) keep(se *audit.StoredEntry) Ref {
	rf := ref(se)
	b.r.entries[rf.ID()] = se
	return rf
}

func (b *builder) inPeriod(t time.Time) bool {
	return !t.Before(b.r.From) && !t.After(b.r.To)
}

func (b *builder) person(email string) *Person {
	if email == "" {
		return nil
	}
	p := b.people[email]
	if p == nil {
		p = &Person{Email: email}
		b.people[email] = p
	}
	return p
}

func (b *builder) event(se *audit.StoredEntry, person, kind, detail string) {
	if !b.inPeriod(se.Entry.Time) {
		return
	}
	ev := &Event{Time: se.Entry.Time, Person: person, Kind: kind, Event: se.Entry.Event, Severity: string(se.Entry.Severity), Detail: detail, Ref: b.keep(se)}
	b.r.Events = append(b.r.Events, ev)
	if p := b.person(person); p != nil {
		p.Events = append(p.Events, ev)
		switch kind {
		case "refusal", "denial":
			p.Refusals++
		case "alert":
			p.Alerts++
		}
	}
}

// refusedRole names the role a refused access request asked for, if it named one.
func refusedRole(d map[string]any) string {
	if r := str(d, "role"); r != "" {
		return " for " + clip(r, 60)
	}
	return ""
}

func str(d map[string]any, k string) string {
	s, _ := d[k].(string)
	return s
}

func strs(d map[string]any, k string) []string {
	var out []string
	if a, ok := d[k].([]any); ok {
		for _, v := range a {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

func (b *builder) request(id string) *Request {
	rq := b.requests[id]
	if rq == nil {
		rq = &Request{ID: id}
		b.requests[id] = rq
	}
	return rq
}

func (b *builder) add(se *audit.StoredEntry) {
	e := &se.Entry
	d := e.Details
	switch {
	case e.Event == audit.EventRequestCreated:
		rq := b.request(e.AccessRequestID)
		rq.Requester, rq.Reason, rq.Tables, rq.Created, rq.Ref = e.Actor, e.Reason, e.Tables, e.Time, b.keep(se)
		rq.Role, rq.Ticket, rq.Duration = str(d, "role"), str(d, "ticket"), str(d, "duration")
		rq.Breakglass = rq.Breakglass || rq.Role == "breakglass"
		if p := b.person(e.Actor); p != nil && b.inPeriod(e.Time) {
			p.Requests++
		}
		b.event(se, e.Actor, "request", fmt.Sprintf("asked for %s for %s: %s", rq.Role, rq.Duration, e.Reason))
	case e.Event == audit.EventBreakglassActivated:
		b.request(e.AccessRequestID).Breakglass = true
		b.event(se, e.Actor, "alert", e.Message)
	case e.Event == audit.EventRequestApproved || e.Event == audit.EventRequestDenied:
		rq := b.request(e.AccessRequestID)
		dec := Decision{Approver: e.Actor, Decision: "approved", Comment: e.Reason, Time: e.Time, Ref: b.keep(se)}
		kind := "approval"
		if e.Event == audit.EventRequestDenied {
			dec.Decision, kind = "denied", "denial"
		}
		rq.Decisions = append(rq.Decisions, dec)
		if rq.Requester == "" {
			rq.Requester, rq.Role = str(d, "requester"), str(d, "role")
		}
		if p := b.person(e.Actor); p != nil && b.inPeriod(e.Time) {
			p.Decisions++
		}
		b.event(se, e.Actor, kind, fmt.Sprintf("%s %s's request %s for %s", dec.Decision, str(d, "requester"), e.AccessRequestID, str(d, "role")))
	case e.Event == audit.EventRequestRefused:
		b.event(se, e.Actor, "refusal", fmt.Sprintf("access request refused (%s)%s: %s", e.Rule, refusedRole(d), clip(e.Message, 120)))
	case e.Event == audit.EventDecisionRefused:
		what := "decision"
		if e.AccessRequestID != "" {
			what += " on " + e.AccessRequestID
		}
		b.event(se, e.Actor, "refusal", fmt.Sprintf("%s refused (%s): %s", what, e.Rule, clip(e.Message, 120)))
	case e.Event == "request.expired":
		rq := b.request(e.AccessRequestID)
		rq.Expired = &Decision{Approver: e.Actor, Decision: "expired", Time: e.Time, Ref: b.keep(se)}
		b.event(se, str(d, "requester"), "expiry", e.Message)
	case e.Event == audit.EventGrantCreated && len(e.GrantIDs) == 1:
		g := b.grant(e.GrantIDs[0])
		g.RequestID, g.Grantee, g.Role, g.Ref = e.AccessRequestID, str(d, "grantee"), str(d, "role"), b.keep(se)
		g.Capabilities, g.Approvers = strs(d, "capabilities"), strs(d, "approvers")
		g.Breakglass, _ = d["breakglass"].(bool)
		g.Start, g.Expires = parseTime(str(d, "starts_at")), parseTime(str(d, "expires_at"))
		if g.Start.IsZero() {
			g.Start = e.Time
		}
		rq := b.request(e.AccessRequestID)
		rq.Grants = append(rq.Grants, g)
	case (e.Event == audit.EventGrantExpired || e.Event == audit.EventGrantRevoked) && len(e.GrantIDs) == 1:
		g := b.grant(e.GrantIDs[0])
		g.Ended, g.EndedBy, g.EndRef = e.Time, e.Actor, b.keep(se)
		g.EndedHow = strings.TrimPrefix(e.Event, "grant.")
		if e.Event == audit.EventGrantRevoked {
			b.event(se, e.Actor, "revocation", e.Message)
		}
	case e.Event == audit.EventSessionTerminated && len(e.GrantIDs) == 1:
		n, _ := d["sessions"].(float64)
		b.grant(e.GrantIDs[0]).SessionsEnded += int(n)
	case e.Event == audit.EventQueryAttempt:
		s := b.statement(se)
		s.Actor, s.Time, s.Mode, s.SQL, s.Fingerprint = e.Actor, e.Time, e.Mode, e.SQL, e.Fingerprint
		s.Decision, s.Rule, s.Tables, s.MaskedColumns, s.GrantIDs, s.Ref = e.Decision, e.Rule, e.Tables, e.MaskedColumns, e.GrantIDs, b.keep(se)
		s.UnmaskedColumns, s.Reverts = strs(d, "unmasked_columns"), str(d, "reverts")
		s.DryRun, _ = d["dry_run"].(bool)
		if e.Decision == audit.DecisionDenied {
			b.event(se, e.Actor, "refusal", fmt.Sprintf("%s refused (%s): %s", e.Mode, e.Rule, clip(e.SQL, 120)))
		}
	case e.Event == audit.EventQueryResult:
		s := b.statement(se)
		s.Rows, s.Bytes, s.DurationMS, s.ResultRef = e.Rows, e.Bytes, e.DurationMS, b.keep(se)
		s.Outcome = "ok"
		if e.ErrorClass != "" {
			s.Outcome = "error " + e.ErrorClass
		}
		if len(s.UnmaskedColumns) == 0 {
			s.UnmaskedColumns = strs(d, "unmasked_columns")
		}
	case strings.HasPrefix(e.Event, audit.SecurityEventPrefix) || strings.HasPrefix(e.Event, "breakglass."):
		b.event(se, e.Actor, "alert", e.Message)
	}
}

func (b *builder) grant(id int64) *Grant {
	g := b.grants[id]
	if g == nil {
		g = &Grant{ID: id}
		b.grants[id] = g
	}
	return g
}

func (b *builder) statement(se *audit.StoredEntry) *Statement {
	id := se.Entry.RequestID
	if id == "" {
		id = ref(se).String()
	}
	s := b.stmts[id]
	if s == nil {
		s = &Statement{RequestID: id, Outcome: "no outcome recorded"}
		b.stmts[id] = s
	}
	return s
}

func (b *builder) finish(only string) {
	// Statements, in time order, to the grants they ran under and to their person.
	stmts := make([]*Statement, 0, len(b.stmts))
	for _, s := range b.stmts {
		if s.Ref.Chain != "" || s.ResultRef.Chain != "" {
			stmts = append(stmts, s)
		}
	}
	sort.Slice(stmts, func(i, j int) bool { return stmts[i].Time.Before(stmts[j].Time) })
	for _, s := range stmts {
		for _, id := range s.GrantIDs {
			if g := b.grants[id]; g != nil {
				g.Statements = append(g.Statements, s)
			}
		}
		if b.inPeriod(s.Time) {
			b.r.Statements = append(b.r.Statements, s)
			if p := b.person(s.Actor); p != nil {
				p.Statements++
				if s.Write() && s.Decision == audit.DecisionAllowed && !s.DryRun {
					p.Writes++
				}
			}
		}
	}
	// Grants held in the period, to their grantee.
	for _, g := range b.grants {
		if g.Grantee == "" || g.Start.After(b.r.To) || g.Until().Before(b.r.From) {
			continue
		}
		p := b.person(g.Grantee)
		p.Grants = append(p.Grants, g)
	}
	for _, rq := range b.requests {
		if rq.Requester == "" && len(rq.Grants) == 0 {
			continue // only decisions of a request created before the trail starts
		}
		if only != "" && rq.ID != only {
			continue
		}
		if only == "" && rq.Created.After(b.r.To) {
			continue
		}
		b.r.Requests = append(b.r.Requests, rq)
	}
	sort.Slice(b.r.Requests, func(i, j int) bool { return b.r.Requests[i].Created.Before(b.r.Requests[j].Created) })
	for _, p := range b.people {
		sort.Slice(p.Grants, func(i, j int) bool { return p.Grants[i].Start.Before(p.Grants[j].Start) })
		b.r.People = append(b.r.People, p)
	}
	sort.Slice(b.r.People, func(i, j int) bool { return b.r.People[i].Email < b.r.People[j].Email })
}

// clip cuts s to at most n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
