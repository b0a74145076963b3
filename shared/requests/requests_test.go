package requests_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/grants"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/requests"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// env is a throwaway database with the admin login.
type env struct {
	d     *dbtest.DB
	admin *pgxpool.Pool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	admin, err := pgxpool.New(context.Background(), d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return &env{d: d, admin: admin}
}

// store returns the requests store of a function group.
func (e *env) store(t *testing.T, group string) *requests.Store {
	t.Helper()
	pool, err := db.Open(context.Background(), db.Config{URL: e.d.URL(group)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return requests.New(pool, e.d.Roles.Group(group), e.d.Policy)
}

// A keptRecorder records with the real recorder and keeps what it confirmed, so a
// test can read the entries back.
type keptRecorder struct {
	*audit.Recorder
	mu   sync.Mutex
	kept []string // "event actor access_request_id"
}

func (k *keptRecorder) Record(ctx context.Context, e audit.Entry) error {
	if err := k.Recorder.Record(ctx, e); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept = append(k.kept, fmt.Sprintf("%s %s %s", e.Event, e.Actor, e.AccessRequestID))
	return nil
}

func (k *keptRecorder) entries() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.kept)
}

// recorder returns a real recorder writing to a file, signed by a local key.
func (e *env) recorder(t *testing.T) *keptRecorder {
	t.Helper()
	rec, err := audit.NewFileRecorder(context.Background(), filepath.Join(t.TempDir(), "audit.jsonl"),
		audit.WithFunction("SweepExpired"), audit.WithSigner(audittest.NewLocalSigner(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	return &keptRecorder{Recorder: rec}
}

// rows runs q as the admin and returns each row's columns joined by spaces.
func (e *env) rows(t *testing.T, q string, args ...any) []string {
	t.Helper()
	rs, err := e.admin.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (string, error) {
		vals, err := r.Values()
		return strings.TrimSpace(fmt.Sprintln(vals...)), err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// count runs q, which counts, as the admin.
func (e *env) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.admin.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// failingRecorder is an audit trail that cannot confirm anything.
type failingRecorder struct{}

func (failingRecorder) Record(context.Context, audit.Entry) error {
	return fmt.Errorf("writing the entry: %w", audit.ErrUnavailable)
}

func (e *env) insertRequests(t *testing.T) {
	t.Helper()
	_, err := e.admin.Exec(context.Background(), `
		INSERT INTO airlock.access_requests (id, requester, role, reason, duration, approvals_required, expires_at, created_at)
		VALUES ('req-old', 'dev1@example.com', 'unmasked_users', 'investigating ticket 1', '1 hour', 1, now() - interval '1 minute', now() - interval '1 day'),
		       ('req-new', 'dev2@example.com', 'unmasked_users', 'investigating ticket 2', '1 hour', 1, now() + interval '1 hour', now())`)
	if err != nil {
		t.Fatal(err)
	}
}

// TestExpire: a pending request past its deadline is expired, audited as the sweeper's
// and its requester told; a request still within its deadline is untouched; a second
// run finds nothing.
func TestExpire(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.insertRequests(t)
	store := e.store(t, migrate.GroupSweeper)
	rec := e.recorder(t)

	expired, remaining, err := store.Expire(ctx, requests.ExpireOptions{Audit: rec, Function: "SweepExpired", RequestID: "0123456789abcdef"})
	if err != nil || expired != 1 || remaining != 0 {
		t.Fatalf("Expire = %d expired, %d remaining, %v; want 1, 0, nil", expired, remaining, err)
	}
	if got, want := e.rows(t, `SELECT id, status, decided_at IS NOT NULL FROM airlock.access_requests ORDER BY id`), []string{"req-new pending false", "req-old expired true"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests: got = %q, want = %q", got, want)
	}
	notes := e.rows(t, `SELECT channel, coalesce(recipient, 'NULL'), payload->>'event', payload->>'request_id', payload->>'status' FROM airlock.notifications ORDER BY id`)
	if want := []string{"requester dev1@example.com request.expired req-old expired"}; fmt.Sprint(notes) != fmt.Sprint(want) {
		t.Errorf("notifications: got = %q, want = %q", notes, want)
	}
	if got, want := rec.entries(), []string{"request.expired " + grants.SweeperActor + " req-old"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit entries: got = %q, want = %q", got, want)
	}

	expired, remaining, err = store.Expire(ctx, requests.ExpireOptions{Audit: rec})
	if err != nil || expired != 0 || remaining != 0 {
		t.Errorf("second run = %d expired, %d remaining, %v; want nothing done", expired, remaining, err)
	}
}

// TestExpireBatchAndTrailDown: a run expires at most its batch and counts what remains;
// when the trail cannot confirm an entry, that request stays pending, unannounced, and
// the error says the trail is unavailable; without a recorder, Expire refuses.
func TestExpireBatchAndTrailDown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.admin.Exec(ctx, `
		INSERT INTO airlock.access_requests (id, requester, role, reason, duration, approvals_required, expires_at)
		SELECT 'req-' || i, 'dev1@example.com', 'unmasked_users', 'investigating', '1 hour', 1, now() - i * interval '1 minute'
		  FROM generate_series(1, 3) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	store := e.store(t, migrate.GroupSweeper)

	if _, _, err := store.Expire(ctx, requests.ExpireOptions{}); err == nil {
		t.Error("when expiring without a recorder, want an error, got = nil")
	}
	expired, remaining, err := store.Expire(ctx, requests.ExpireOptions{Audit: failingRecorder{}})
	if !errors.Is(err, audit.ErrUnavailable) || expired != 0 {
		t.Fatalf("when the trail is down, want 0 expired and an error wrapping audit.ErrUnavailable, got = %d, %v", expired, err)
	}
	if got := e.count(t, `SELECT count(*) FROM airlock.access_requests WHERE status = 'pending'`); got != 3 {
		t.Errorf("when the trail is down, want all 3 requests pending, got = %v", got)
	}
	if got := e.count(t, `SELECT count(*) FROM airlock.notifications`); got != 0 {
		t.Errorf("when the trail is down, want no notification, got = %v", got)
	}

	expired, remaining, err = store.Expire(ctx, requests.ExpireOptions{Audit: e.recorder(t), Batch: 2})
	if err != nil || expired != 2 || remaining != 1 {
		t.Errorf("a run of batch 2 over 3 due requests = %d expired, %d remaining, %v; want 2, 1, nil", expired, remaining, err)
	}
	// Oldest deadline first: req-3 expired three minutes ago.
	if got, want := e.rows(t, `SELECT id FROM airlock.access_requests WHERE status = 'expired' ORDER BY id`), []string{"req-2", "req-3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("expired requests: got = %q, want = %q", got, want)
	}
}

// TestDecideStateErrors: a decision the request's state refuses ends in a *StateError
// whose Kind says why and whose Detail names the request, for the person.
func TestDecideStateErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	asker := e.store(t, migrate.GroupRequests)
	approvals := e.store(t, migrate.GroupApprovals)
	create := func() *requests.Request {
		t.Helper()
		r := &requests.Request{Requester: "dev1@example.com", Role: "unmasked_users", Reason: "investigating ticket 7", Duration: time.Hour}
		if err := asker.Create(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
		return r
	}
	decided, expired := create(), create()
	if _, err := approvals.Decide(ctx, requests.Decision{RequestID: decided.ID, Approver: "lead1@example.com", Decision: requests.Approve, Via: "api"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec(ctx, `UPDATE airlock.access_requests SET expires_at = now() - interval '1 second' WHERE id = $1`, expired.ID); err != nil {
		t.Fatal(err)
	}

	tcs := []struct {
		desc     string
		d        requests.Decision
		kind     error
		detailOf string // the start of Detail
	}{
		{"the approver denies what they approved", requests.Decision{RequestID: decided.ID, Approver: "lead1@example.com", Decision: requests.Deny}, requests.ErrConflict, `lead1@example.com already chose "approve" on ` + decided.ID},
		{"another approver decides an approved request", requests.Decision{RequestID: decided.ID, Approver: "lead2@example.com", Decision: requests.Deny}, requests.ErrDecided, decided.ID + " is already approved"},
		{"an approver decides an expired request", requests.Decision{RequestID: expired.ID, Approver: "lead1@example.com", Decision: requests.Approve}, requests.ErrExpired, expired.ID + " expired at "},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			tc.d.Via = "api"
			_, err := approvals.Decide(ctx, tc.d, nil)
			se, ok := errors.AsType[*requests.StateError](err)
			if !ok {
				t.Fatalf("when %s, want a *requests.StateError, got = %T %v", tc.desc, err, err)
			}
			if se.Kind != tc.kind || !errors.Is(err, tc.kind) {
				t.Errorf("when %s, want kind %v, got = %v", tc.desc, tc.kind, se.Kind)
			}
			if !strings.HasPrefix(se.Detail, tc.detailOf) || strings.Contains(se.Detail, "requests:") {
				t.Errorf("when %s, want a detail for the person starting %q, got = %q", tc.desc, tc.detailOf, se.Detail)
			}
		})
	}
}

// TestDecideGrantsInOneTransaction: the approval that reaches the threshold creates the
// grant in its own transaction, so when its audit hook fails nothing remains: no grant,
// no capability, no approval, no notification, the request still pending. When the hook
// succeeds, all of them are there.
func TestDecideGrantsInOneTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	asker := e.store(t, migrate.GroupRequests)
	approvals := e.store(t, migrate.GroupApprovals)
	r := &requests.Request{Requester: "dev2@example.com", Role: "unmasked_accounts", Reason: "investigating ticket 8", Duration: 2 * time.Hour}
	if err := asker.Create(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	before := e.count(t, `SELECT count(*) FROM airlock.notifications`)
	d := requests.Decision{RequestID: r.ID, Approver: "sec1@example.com", Decision: requests.Approve, Via: "api"}

	boom := fmt.Errorf("recording: %w", audit.ErrUnavailable)
	var seen *grants.Grant
	_, err := approvals.Decide(ctx, d, func(_ context.Context, _ pgx.Tx, out *requests.Outcome) error {
		seen = out.Granted
		return boom
	})
	if !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("when the audit hook fails, want its error, got = %v", err)
	}
	if seen == nil || seen.ID == 0 {
		t.Fatalf("the hook runs after the grant is created: want Outcome.Granted, got = %+v", seen)
	}
	type state struct {
		status                           string
		approvals, grants, notifications int
		held                             bool
	}
	now := func() state {
		return state{
			status:        e.rows(t, `SELECT status FROM airlock.access_requests WHERE id = $1`, r.ID)[0],
			approvals:     e.count(t, `SELECT count(*) FROM airlock.approvals WHERE request_id = $1`, r.ID),
			grants:        e.count(t, `SELECT count(*) FROM airlock.grants WHERE request_id = $1`, r.ID),
			notifications: e.count(t, `SELECT count(*) FROM airlock.notifications`),
			held:          e.count(t, `SELECT count(*) FROM airlock.developers WHERE email = $1 AND pg_has_role(db_role, $2, 'MEMBER')`, r.Requester, e.d.Roles.Prefix+"unmasked_accounts") == 1,
		}
	}
	if got, want := now(), (state{"pending", 0, 0, before, false}); got != want {
		t.Errorf("after a failed hook: want %+v, got = %+v", want, got)
	}

	out, err := approvals.Decide(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := out.Granted
	if g == nil || g.Status != grants.StatusActive || g.ExpiresAt.Sub(g.StartsAt) != 2*time.Hour || out.DBRole == "" {
		t.Fatalf("the approving decision: want an active two-hour grant and the database role, got = %+v, %q", g, out.DBRole)
	}
	if got, want := now(), (state{"approved", 1, 1, before + 1, true}); got != want {
		t.Errorf("after the approval: want %+v, got = %+v", want, got)
	}
}
