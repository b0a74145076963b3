// Package requests is Airlock's store of access requests (airlock.access_requests) and
// their approvals, their expiry included, and the place where an approved request
// becomes a grant (package grants creates it, in the decision's transaction). Every
// change happens in one database transaction, acting as the calling function's group
// role, and that transaction also queues the notifications it causes (package outbox)
// and runs the caller's audit hook before it commits: if the audit trail cannot confirm
// the record, nothing is created.
package requests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/outbox"
	"airlock.dev/airlock/shared/policy"
)

// Request statuses.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusDenied   = "denied"
	StatusExpired  = "expired"
)

// Decisions.
const (
	Approve = "approve"
	Deny    = "deny"
)

// Errors a decision can end in. Each is wrapped with a message for the person; the last
// three are the kinds of a *StateError.
var (
	ErrNotFound     = errors.New("requests: no such request")
	ErrSelfApproval = errors.New("requests: the requester cannot decide their own request")
	ErrNotApprover  = errors.New("requests: not an approver of this role")
	ErrDecided      = errors.New("requests: the request has already been decided")
	ErrExpired      = errors.New("requests: the request has expired")
	ErrConflict     = errors.New("requests: this approver already made the other decision")
)

// A StateError reports a decision the request's state refuses: it was decided already,
// it expired, or this approver made the other decision. errors.Is matches its Kind.
type StateError struct {
	Kind   error  // ErrDecided, ErrExpired or ErrConflict
	Detail string // for the person, naming the request: "ar_… is already approved"
}

func (e *StateError) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *StateError) Unwrap() error { return e.Kind }

func stateError(kind error, format string, args ...any) error {
	return &StateError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// A Request is one access request.
type Request struct {
	ID                string        `json:"request_id"`
	Requester         string        `json:"requester"`
	Role              string        `json:"role"`
	BreakGlass        bool          `json:"breakglass"`
	Unmask            []string      `json:"unmask"`
	Write             []string      `json:"write"`
	Reason            string        `json:"reason"`
	Ticket            string        `json:"ticket,omitempty"`
	Duration          time.Duration `json:"-"`
	DurationText      string        `json:"duration"`
	ApprovalsRequired int           `json:"approvals_required"`
	Status            string        `json:"status"`
	CreatedAt         time.Time     `json:"created_at"`
	ExpiresAt         time.Time     `json:"expires_at"`
	DecidedAt         *time.Time    `json:"decided_at,omitempty"`
	Approvals         []Approval    `json:"approvals"`
	// RequesterHistory lists the roles of the requester's grants of the last 30 days,
	// newest first, for reviewers; filled for requests shown to approvers.
	RequesterHistory []string `json:"requester_grants_30d,omitempty"`
}

// An Approval is one approver's decision on a request.
type Approval struct {
	Approver  string    `json:"approver"`
	Decision  string    `json:"decision"`
	Comment   string    `json:"comment,omitempty"`
	Via       string    `json:"via"`
	CreatedAt time.Time `json:"created_at"`
}

// Approved counts the approving decisions.
func (r *Request) Approved() int {
	n := 0
	for _, a := range r.Approvals {
		if a.Decision == Approve {
			n++
		}
	}
	return n
}

// Tables lists the tables the request opens, sorted, without duplicates.
func (r *Request) Tables() []string {
	t := append(slices.Clone(r.Unmask), r.Write...)
	slices.Sort(t)
	return slices.Compact(t)
}

// Capabilities names the capability roles (without prefix) a grant of r holds.
func (r *Request) Capabilities() []string {
	var c []string
	for _, t := range r.Unmask {
		c = append(c, "unmasked_"+t)
	}
	for _, t := range r.Write {
		c = append(c, "write_"+t)
	}
	return c
}

// A Store reads and writes requests as one function's group role.
type Store struct {
	pool *db.Pool
	role string
	pol  *policy.Policy
}

// New returns a Store acting as role (the calling function's group role).
func New(pool *db.Pool, role string, pol *policy.Policy) *Store {
	return &Store{pool: pool, role: role, pol: pol}
}

// NewID returns a fresh request id: "ar_" and 12 hex digits.
func NewID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "ar_" + hex.EncodeToString(b)
}

// Create stores r as a pending request that expires after the policy's request TTL,
// queues the approvers' (and, for break-glass, the security channel's) notification, and
// runs before; it fills r's id, status and times. The role must have been checked.
func (s *Store) Create(ctx context.Context, r *Request, before func(context.Context, *Request) error) error {
	role, ok := s.pol.Role(r.Role)
	if !ok {
		return fmt.Errorf("requests: unknown role %q", r.Role)
	}
	r.Unmask, r.Write = s.pol.Capabilities([]string{r.Role})
	r.BreakGlass = role.BreakGlass()
	r.ApprovalsRequired = role.Approvals
	r.Status = StatusPending
	r.DurationText = r.Duration.String()
	if r.ID == "" {
		r.ID = NewID()
	}
	r.Approvals = []Approval{}
	return db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO airlock.access_requests
			       (id, requester, role, breakglass, unmask, write, reason, ticket, duration, approvals_required, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8, ''), make_interval(secs => $9::double precision / 1e9), $10,
			        now() + make_interval(secs => $11::double precision / 1e9))
			RETURNING created_at, expires_at`,
			r.ID, r.Requester, r.Role, r.BreakGlass, r.Unmask, r.Write, r.Reason, r.Ticket,
			int64(r.Duration), r.ApprovalsRequired, int64(s.pol.Limits.RequestTTL)).Scan(&r.CreatedAt, &r.ExpiresAt)
		if err != nil {
			return fmt.Errorf("requests: storing request: %w", err)
		}
		if err := history(ctx, tx, r); err != nil {
			return err
		}
		msg := s.message(r, "request.created")
		msg.Channel, msg.Actions = outbox.ChannelApprovers, true
		msg.History = r.RequesterHistory
		msg.Text = fmt.Sprintf("%s asks for %s for %s: %s", r.Requester, r.Role, r.Duration, r.Reason)
		msgs := []outbox.Message{msg}
		if r.BreakGlass {
			sec := s.message(r, "breakglass.activated")
			sec.Channel, sec.Severity = outbox.ChannelSecurity, string(audit.SeverityAlert)
			sec.Text = fmt.Sprintf("BREAK-GLASS: %s asks for emergency access for %s (incident %s): %s", r.Requester, r.Duration, r.Ticket, r.Reason)
			msgs = append(msgs, sec)
		}
		if err := outbox.Enqueue(ctx, tx, msgs...); err != nil {
			return err
		}
		if before != nil {
			return before(ctx, r)
		}
		return nil
	})
}

func (s *Store) message(r *Request, event string) outbox.Message {
	return outbox.Message{
		Event: event, RequestID: r.ID, Requester: r.Requester, Role: r.Role, Reason: r.Reason,
		Ticket: r.Ticket, Duration: r.Duration.String(), Tables: r.Tables(), BreakGlass: r.BreakGlass, Status: r.Status,
	}
}

const requestColumns = `id, requester, role, breakglass, unmask, write, reason, coalesce(ticket, ''),
	(extract(epoch FROM duration) * 1e6)::bigint, approvals_required, status, created_at, expires_at, decided_at`

func scanRequest(row pgx.Row) (*Request, error) {
	var r Request
	var micros int64
	err := row.Scan(&r.ID, &r.Requester, &r.Role, &r.BreakGlass, &r.Unmask, &r.Write, &r.Reason, &r.Ticket,
		&micros, &r.ApprovalsRequired, &r.Status, &r.CreatedAt, &r.ExpiresAt, &r.DecidedAt)
	r.Duration = time.Duration(micros) * time.Microsecond
	r.DurationText = r.Duration.String()
	return &r, err
}

func loadApprovals(ctx context.Context, tx pgx.Tx, reqs ...*Request) error {
	if len(reqs) == 0 {
		return nil
	}
	ids := make([]string, len(reqs))
	byID := map[string]*Request{}
	for i, r := range reqs {
		ids[i] = r.ID
		byID[r.ID] = r
		r.Approvals = []Approval{}
	}
	rows, err := tx.Query(ctx, `
		SELECT request_id, approver, decision, coalesce(comment, ''), via, created_at
		  FROM airlock.approvals WHERE request_id = ANY ($1) ORDER BY created_at, approver`, ids)
	if err != nil {
		return fmt.Errorf("requests: loading approvals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a Approval
		if err := rows.Scan(&id, &a.Approver, &a.Decision, &a.Comment, &a.Via, &a.CreatedAt); err != nil {
			return fmt.Errorf("requests: loading approvals: %w", err)
		}
		byID[id].Approvals = append(byID[id].Approvals, a)
	}
	return rows.Err()
}

func (s *Store) query(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]*Request, error) {
	rows, err := tx.Query(ctx, `SELECT `+requestColumns+` FROM airlock.access_requests WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("requests: loading requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Request, error) { return scanRequest(row) })
	if err != nil {
		return nil, fmt.Errorf("requests: loading requests: %w", err)
	}
	if err := loadApprovals(ctx, tx, out...); err != nil {
		return nil, err
	}
	return out, nil
}

// Get returns one request with its approvals.
func (s *Store) Get(ctx context.Context, id string) (*Request, error) {
	var out []*Request
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) (err error) {
		out, err = s.query(ctx, tx, `id = $1`, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out[0], nil
}

// An Overview is what one person sees about their access: their requests of the last
// 30 days, their grants of the last 30 days, and, for approvers, the pending requests
// they may decide.
type Overview struct {
	Now      time.Time      `json:"now"`
	Requests []*Request     `json:"requests"`
	Grants   []grants.Grant `json:"grants"`
	Waiting  []*Request     `json:"waiting_for_you"`
}

// Overview loads what email sees. Pending requests past their TTL are shown as expired.
func (s *Store) Overview(ctx context.Context, email string) (*Overview, error) {
	ov := &Overview{Requests: []*Request{}, Grants: []grants.Grant{}, Waiting: []*Request{}}
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&ov.Now); err != nil {
			return err
		}
		var err error
		ov.Requests, err = s.query(ctx, tx, `requester = $1 AND created_at > now() - interval '30 days' ORDER BY created_at DESC LIMIT 200`, email)
		if err != nil {
			return err
		}
		recent, err := grants.Recent(ctx, tx, email)
		if err != nil {
			return err
		}
		ov.Grants = append(ov.Grants, recent...)
		if !s.pol.IsApprover(email) {
			return nil
		}
		pending, err := s.query(ctx, tx, `status = 'pending' AND expires_at > now() AND requester <> $1 ORDER BY created_at`, email)
		if err != nil {
			return err
		}
		for _, r := range pending {
			role, ok := s.pol.Role(r.Role)
			if ok && s.pol.CanApprove(email, role) && !slices.ContainsFunc(r.Approvals, func(a Approval) bool { return a.Approver == email }) {
				if err := history(ctx, tx, r); err != nil {
					return err
				}
				ov.Waiting = append(ov.Waiting, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range ov.Requests {
		if r.Status == StatusPending && !r.ExpiresAt.After(ov.Now) {
			r.Status = StatusExpired
		}
	}
	return ov, nil
}

// history fills r.RequesterHistory: what the requester was granted in the last 30 days.
func history(ctx context.Context, tx pgx.Tx, r *Request) (err error) {
	r.RequesterHistory, err = grants.History(ctx, tx, r.Requester)
	return err
}

// A Decision is one approver's answer to a request.
type Decision struct {
	RequestID string
	Approver  string
	Decision  string // Approve or Deny
	Comment   string
	Via       string // "api", "slack", "web"
}

// An Outcome says what a decision did.
type Outcome struct {
	Request *Request
	// Replayed is true when this approver had already made this same decision: nothing
	// changed, and nothing was recorded again.
	Replayed bool
	// Granted is the grant the decision created, when it was the approval that reached
	// the threshold.
	Granted *grants.Grant
	// DBRole is the developer's database role after the grant was synced.
	DBRole string
}

// Decide records d. The request row is locked (SELECT … FOR UPDATE) for the whole
// transaction, so concurrent decisions on one request are serialised: the approval that
// reaches the threshold creates the one grant and makes the developer's database role
// hold its capabilities, all in the same transaction. before runs last, before COMMIT.
func (s *Store) Decide(ctx context.Context, d Decision, before func(context.Context, pgx.Tx, *Outcome) error) (*Outcome, error) {
	var out *Outcome
	err := db.InRole(ctx, s.pool, s.role, func(tx pgx.Tx) error {
		out = &Outcome{}
		r, err := scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM airlock.access_requests WHERE id = $1 FOR UPDATE`, d.RequestID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotFound, d.RequestID)
		}
		if err != nil {
			return fmt.Errorf("requests: loading request: %w", err)
		}
		if err := loadApprovals(ctx, tx, r); err != nil {
			return err
		}
		out.Request = r
		if strings.EqualFold(d.Approver, r.Requester) {
			return fmt.Errorf("%w: %s asked for %s and cannot decide it; another approver must", ErrSelfApproval, r.Requester, r.ID)
		}
		role, ok := s.pol.Role(r.Role)
		if !ok || !s.pol.CanApprove(d.Approver, role) {
			return fmt.Errorf("%w: %s may not decide %s requests", ErrNotApprover, d.Approver, r.Role)
		}
		for _, a := range r.Approvals {
			if a.Approver != d.Approver {
				continue
			}
			if a.Decision == d.Decision {
				out.Replayed = true
				return nil
			}
			return stateError(ErrConflict, "%s already chose %q on %s at %s", d.Approver, a.Decision, r.ID, a.CreatedAt.UTC().Format(time.RFC3339))
		}
		var now time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			return err
		}
		if r.Status == StatusPending && !r.ExpiresAt.After(now) {
			// The sweeper marks it expired; a late decision changes nothing.
			r.Status = StatusExpired
		}
		switch r.Status {
		case StatusPending:
		case StatusExpired:
			return stateError(ErrExpired, "%s expired at %s without a decision; ask again", r.ID, r.ExpiresAt.UTC().Format(time.RFC3339))
		default:
			return stateError(ErrDecided, "%s is already %s", r.ID, r.Status)
		}

		a := Approval{Approver: d.Approver, Decision: d.Decision, Comment: d.Comment, Via: d.Via}
		err = tx.QueryRow(ctx, `INSERT INTO airlock.approvals (request_id, approver, decision, comment, via) VALUES ($1, $2, $3, nullif($4, ''), $5) RETURNING created_at`,
			r.ID, a.Approver, a.Decision, a.Comment, a.Via).Scan(&a.CreatedAt)
		if err != nil {
			return fmt.Errorf("requests: storing decision: %w", err)
		}
		r.Approvals = append(r.Approvals, a)

		switch {
		case d.Decision == Deny:
			r.Status = StatusDenied
		case r.Approved() >= r.ApprovalsRequired:
			r.Status = StatusApproved
		}
		if r.Status != StatusPending {
			if err := tx.QueryRow(ctx, `UPDATE airlock.access_requests SET status = $2, decided_at = now() WHERE id = $1 RETURNING decided_at`, r.ID, r.Status).Scan(&r.DecidedAt); err != nil {
				return fmt.Errorf("requests: updating request: %w", err)
			}
		}
		if r.Status == StatusApproved {
			g := grants.Grant{RequestID: r.ID, Grantee: r.Requester, Role: r.Role, BreakGlass: r.BreakGlass, Capabilities: r.Capabilities()}
			if out.DBRole, err = grants.Create(ctx, tx, &g, r.Duration); err != nil {
				return err
			}
			out.Granted = &g
		}
		if err := s.queueDecision(ctx, tx, out, a); err != nil {
			return err
		}
		if before != nil {
			return before(ctx, tx, out)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	return out, nil
}

func (s *Store) queueDecision(ctx context.Context, tx pgx.Tx, out *Outcome, a Approval) error {
	r := out.Request
	switch r.Status {
	case StatusPending:
		m := s.message(r, "request.approved")
		m.Channel, m.DecidedBy = outbox.ChannelApprovers, a.Approver
		m.Text = fmt.Sprintf("%s approved %s's request %s for %s (%d of %d approvals)", a.Approver, r.Requester, r.ID, r.Role, r.Approved(), r.ApprovalsRequired)
		return outbox.Enqueue(ctx, tx, m)
	case StatusDenied:
		m := s.message(r, "request.denied")
		m.Channel, m.Recipient, m.DecidedBy = outbox.ChannelRequester, r.Requester, a.Approver
		m.Text = fmt.Sprintf("%s denied your request %s for %s: %s", a.Approver, r.ID, r.Role, a.Comment)
		return outbox.Enqueue(ctx, tx, m)
	case StatusApproved:
		g := out.Granted
		m := s.message(r, "grant.created")
		m.Channel, m.Recipient, m.DecidedBy = outbox.ChannelRequester, r.Requester, a.Approver
		m.GrantID, m.ExpiresAt = g.ID, g.ExpiresAt.UTC().Format(time.RFC3339)
		m.Text = fmt.Sprintf("Your request %s for %s is approved: grant %d is active until %s", r.ID, r.Role, g.ID, m.ExpiresAt)
		if !r.BreakGlass {
			return outbox.Enqueue(ctx, tx, m)
		}
		sec := m
		sec.Channel, sec.Recipient, sec.Severity = outbox.ChannelSecurity, "", string(audit.SeverityAlert)
		sec.Text = fmt.Sprintf("BREAK-GLASS granted: %s holds emergency access (grant %d, incident %s) until %s", r.Requester, g.ID, r.Ticket, m.ExpiresAt)
		return outbox.Enqueue(ctx, tx, m, sec)
	}
	return nil
}
