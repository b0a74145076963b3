// Package policy is Airlock's declarative policy: who may use Airlock, which columns are
// sensitive and how each is masked, which tables may ever be written, which roles can be
// requested, who approves them, how many approvals each needs and for how long each may
// be granted.
//
// A Policy is loaded from one YAML document with [Load], which rejects unknown keys and
// names the line and key of every problem it finds. A loaded Policy is immutable and safe
// for concurrent use; it does no I/O.
package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Mask kinds.
const (
	MaskRedact   = "redact"   // a constant replaces the value
	MaskPartial  = "partial"  // keep_first / keep_last characters survive
	MaskHash     = "hash"     // keyed HMAC-SHA-256 under its domain's key: equal values join within a domain
	MaskRound    = "round"    // a number keeps its first digits (significant figures)
	MaskTruncate = "truncate" // a time is cut down to the hour, day, week, month or year
	MaskNull     = "null"     // the value reads as NULL
)

// TruncateUnits are the units a truncate mask may cut a time down to, finest first.
var TruncateUnits = []string{"hour", "day", "week", "month", "year"}

// The role that opens the emergency path.
const BreakGlass = "breakglass"

// A Policy is a validated policy document.
type Policy struct {
	Groups     map[string][]string
	Members    []string
	SlackUsers map[string]string
	Tables     map[string]*Table
	Roles      map[string]*Role
	Limits     Limits
	Alerts     Alerts
}

// A Table is one table developers may query, in schema public.
type Table struct {
	Name       string
	PrimaryKey []string
	Masked     map[string]Mask // sensitive column -> how it is masked
	Write      *Write          // nil when the table may never be written
}

// A Mask says how one sensitive column reads for someone without an unmasked grant.
type Mask struct {
	Kind      string
	KeepFirst int // partial
	KeepLast  int // partial
	// Domain is a hash mask's key domain: hashes of equal values are equal only within
	// one domain, each domain having its own key. It is the name the policy gives, or
	// DefaultDomain, so that a column joins no other unless the policy says so.
	Domain string
	Digits int    // round: significant digits kept
	Unit   string // truncate: one of TruncateUnits
}

// DefaultDomain is the hash domain of a column whose mask names none: a domain of its
// own. Named domains are identifiers without a dot, so no policy can name this one.
func DefaultDomain(table, column string) string { return table + "." + column }

// A Write says how a writable table may be changed under a write grant.
type Write struct {
	Insert, Update bool
	Columns        []string // columns an INSERT may supply or an UPDATE may set
	MaxRows        int      // most rows one statement may change
}

// A Role is something a person can request.
type Role struct {
	Name        string
	Requesters  []string // principals: e-mail, group:NAME, domain:NAME
	Approvers   []string
	Approvals   int
	MaxDuration time.Duration
	Unmask      []string // tables whose real values the role shows
	Write       []string // tables the role may write
}

// BreakGlass reports whether r is the emergency role.
func (r *Role) BreakGlass() bool { return r.Name == BreakGlass }

// Limits bound every query and request.
type Limits struct {
	MinDuration      time.Duration
	RequestTTL       time.Duration
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	DefaultMaxRows   int
	MaxRows          int
	MaxBytes         int64
	// ConcurrentStatements is how many statements one person may have running at once,
	// across every function instance (limits.concurrent_statements, 1 to 64, default 4).
	ConcurrentStatements int
}

// Alerts configures which events raise security alerts.
type Alerts struct {
	DeniedBurstCount  int
	DeniedBurstWindow time.Duration
	BulkWriteRows     int
	WorkingHours      *WorkingHours // nil: approvals at any hour are fine
}

// WorkingHours is the part of the week in which approvals are expected.
type WorkingHours struct {
	Location   *time.Location
	Days       []time.Weekday
	Start, End time.Duration // since midnight
}

// Contains reports whether t falls inside the working hours.
func (w *WorkingHours) Contains(t time.Time) bool {
	t = t.In(w.Location)
	if !slices.Contains(w.Days, t.Weekday()) {
		return false
	}
	since := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	return since >= w.Start && since < w.End
}

// IsMember reports whether email may use Airlock at all.
func (p *Policy) IsMember(email string) bool { return p.matches(p.Members, email) }

// Table returns the policy table with the given name.
func (p *Policy) Table(name string) (*Table, bool) {
	t, ok := p.Tables[name]
	return t, ok
}

// Role returns the role with the given name.
func (p *Policy) Role(name string) (*Role, bool) {
	r, ok := p.Roles[name]
	return r, ok
}

// CanRequest reports whether email may request role.
func (p *Policy) CanRequest(email string, role *Role) bool {
	return p.IsMember(email) && p.matches(role.Requesters, email)
}

// CanApprove reports whether email may approve or deny requests for role. Whether the
// approver is also the requester is the caller's check: nobody approves their own request.
func (p *Policy) CanApprove(email string, role *Role) bool {
	return p.IsMember(email) && p.matches(role.Approvers, email)
}

// IsApprover reports whether email may approve at least one role.
func (p *Policy) IsApprover(email string) bool {
	for _, r := range p.Roles {
		if p.CanApprove(email, r) {
			return true
		}
	}
	return false
}

// RequestableRoles lists the roles email may request, sorted by name.
func (p *Policy) RequestableRoles(email string) []*Role {
	var out []*Role
	for _, r := range p.Roles {
		if p.CanRequest(email, r) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Approvers lists the e-mail addresses that may approve role, sorted. Domain principals
// cannot be listed and appear as "domain:NAME".
func (p *Policy) Approvers(role *Role) []string {
	seen := map[string]bool{}
	for _, pr := range role.Approvers {
		for _, e := range p.expand(pr) {
			seen[e] = true
		}
	}
	out := make([]string, 0, len(seen))
	for e := range seen {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// SlackUser maps a Slack user id to the e-mail address the policy gives it.
func (p *Policy) SlackUser(id string) (string, bool) {
	e, ok := p.SlackUsers[id]
	return e, ok
}

// Capabilities returns the tables a set of granted roles unmasks and may write, sorted
// and without duplicates. Unknown role names grant nothing.
func (p *Policy) Capabilities(roles []string) (unmask, write []string) {
	u, w := map[string]bool{}, map[string]bool{}
	for _, name := range roles {
		r, ok := p.Roles[name]
		if !ok {
			continue
		}
		for _, t := range r.Unmask {
			u[t] = true
		}
		for _, t := range r.Write {
			w[t] = true
		}
	}
	return sortedKeys(u), sortedKeys(w)
}

// HashDomains maps each hash domain of the policy to its columns, as "table.column",
// sorted.
func (p *Policy) HashDomains() map[string][]string {
	out := map[string][]string{}
	for _, name := range p.TableNames() {
		t := p.Tables[name]
		for _, c := range t.SensitiveColumns() {
			if m := t.Masked[c]; m.Kind == MaskHash {
				out[m.Domain] = append(out[m.Domain], name+"."+c)
			}
		}
	}
	return out
}

// Writers lists the roles that may write table, sorted: its write_<table> role and a
// breakglass role that names it.
func (p *Policy) Writers(table string) []string {
	var out []string
	for name, r := range p.Roles {
		if slices.Contains(r.Write, table) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TableNames lists the policy's tables, sorted.
func (p *Policy) TableNames() []string {
	names := make([]string, 0, len(p.Tables))
	for n := range p.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsMasked reports whether column is one of t's sensitive columns.
func (t *Table) IsMasked(column string) bool {
	_, ok := t.Masked[column]
	return ok
}

// SensitiveColumns lists the masked columns of t, sorted.
func (t *Table) SensitiveColumns() []string {
	cols := make([]string, 0, len(t.Masked))
	for c := range t.Masked {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	return cols
}

func (p *Policy) matches(principals []string, email string) bool {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return false
	}
	for _, pr := range principals {
		switch {
		case strings.HasPrefix(pr, "domain:"):
			if strings.HasSuffix(email, "@"+strings.TrimPrefix(pr, "domain:")) {
				return true
			}
		case strings.HasPrefix(pr, "group:"):
			if slices.Contains(p.Groups[strings.TrimPrefix(pr, "group:")], email) {
				return true
			}
		case pr == email:
			return true
		}
	}
	return false
}

func (p *Policy) expand(principal string) []string {
	if g, ok := strings.CutPrefix(principal, "group:"); ok {
		return p.Groups[g]
	}
	return []string{principal}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String describes a mask the way the policy file writes it.
func (m Mask) String() string {
	switch m.Kind {
	case MaskPartial:
		return fmt.Sprintf("partial (first %d, last %d)", m.KeepFirst, m.KeepLast)
	case MaskHash:
		return fmt.Sprintf("hash (domain %s)", m.Domain)
	case MaskRound:
		return fmt.Sprintf("round (%d significant digits)", m.Digits)
	case MaskTruncate:
		return fmt.Sprintf("truncate (to the %s)", m.Unit)
	}
	return m.Kind
}
