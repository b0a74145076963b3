package sweep

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/outbox"
)

const scheduler = "sweeper@airlock-test.iam.gserviceaccount.com"

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

type harness struct {
	d     *dbtest.DB
	admin *pgxpool.Pool
	logs  *audittest.Server
	key   *ecdsa.PrivateKey
	h     *Handler
}

// newHarness builds SweepExpired as every function is built in the tests (apptest):
// app.LoadConfig, with SCHEDULER_EMAIL, then app.Build, auditing to a fake Cloud Logging.
func newHarness(t *testing.T) *harness {
	t.Helper()
	env := apptest.New(t)
	logs := audittest.NewServer(t)
	deps := env.Deps(EntryPoint, migrate.GroupSweeper,
		// Long enough that a working trail never reaches it on a loaded machine.
		apptest.WithCloudLogging(logs, audit.WithTimeout(5*time.Second)),
		apptest.WithEnv("SCHEDULER_EMAIL", scheduler))
	if deps.Config.SchedulerEmail != scheduler {
		t.Fatalf("want = SCHEDULER_EMAIL in the configuration, got = %q", deps.Config.SchedulerEmail)
	}
	return &harness{d: env.DB, admin: env.Admin, logs: logs, key: env.Key, h: New(deps, deps.Config.SchedulerEmail)}
}

func (h *harness) call(t *testing.T, email string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	if email != "" {
		tok, err := authn.Mint(h.key, email, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
	}
	return w.Code, body
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// grants inserts one expired grant per developer, each developer's role synced while
// the grant was still active, so each holds the capability.
func (h *harness) grants(t *testing.T, devs ...string) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for _, dev := range devs {
		var id int64
		err := h.admin.QueryRow(ctx, `
			INSERT INTO airlock.grants (grantee, role, capabilities, starts_at, expires_at)
			VALUES ($1, 'unmasked_users', ARRAY['unmasked_users'], now() - interval '2 hours', now() + interval '1 hour')
			RETURNING id`, dev).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.d.SyncDeveloper(ctx, dev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := h.admin.Exec(ctx, `UPDATE airlock.grants SET expires_at = now() - interval '1 second' WHERE id = ANY($1)`, ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

func (h *harness) holds(t *testing.T, dev string) bool {
	t.Helper()
	var ok bool
	err := h.admin.QueryRow(context.Background(), `
		SELECT EXISTS (SELECT 1 FROM pg_auth_members m
		                 JOIN pg_roles b ON b.oid = m.roleid
		                 JOIN pg_roles u ON u.oid = m.member
		                 JOIN airlock.developers d ON d.db_role = u.rolname
		                WHERE d.email = $1 AND b.rolname = $2)`, dev, h.d.Roles.Unmasked("users")).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (h *harness) statuses(t *testing.T) map[string]int {
	t.Helper()
	rows, err := h.admin.Query(context.Background(), `SELECT status, count(*) FROM airlock.grants GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		rows.Scan(&s, &n)
		out[s] = n
	}
	return out
}

// expiredEntries counts the audit trail's grant.expired entries by grant id.
func (h *harness) expiredEntries() map[int64]int {
	out := map[int64]int{}
	for _, p := range h.logs.Payloads() {
		if p["event"] != audit.EventGrantExpired {
			continue
		}
		ids, _ := p["grant_ids"].([]any)
		for _, id := range ids {
			out[int64(id.(float64))]++
		}
	}
	return out
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	if code, body := h.call(t, ""); code != http.StatusUnauthorized || errorCode(body) != "unauthenticated" {
		t.Errorf("no token: %d %v, want 401 unauthenticated", code, body)
	}
	if code, body := h.call(t, "dev1@example.com"); code != http.StatusForbidden || errorCode(body) != "not_scheduler" {
		t.Errorf("developer token: %d %v, want 403 not_scheduler", code, body)
	}
	if code, body := h.call(t, "SWEEPER@airlock-demo.iam.gserviceaccount.com"); code != http.StatusForbidden {
		t.Errorf("another service account: %d %v, want 403", code, body)
	}
	code, body := h.call(t, scheduler)
	if code != http.StatusOK {
		t.Fatalf("scheduler token: %d %v, want 200", code, body)
	}
	var keys []string
	for k := range body {
		keys = append(keys, k)
	}
	for _, k := range []string{"expired_grants", "terminated_sessions", "expired_requests", "reminders", "remaining"} {
		if _, ok := body[k]; !ok {
			t.Errorf("answer %v lacks %q", body, k)
		}
	}
	if len(body) != 5 {
		t.Errorf("answer has keys %v, want exactly the five counts", keys)
	}
	// Only POST.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", w.Code)
	}
}

func TestSweepOverHTTP(t *testing.T) {
	h := newHarness(t)
	ids := h.grants(t, "dev1@example.com", "dev2@example.com")
	code, body := h.call(t, scheduler)
	if code != http.StatusOK || body["expired_grants"] != float64(2) || body["remaining"] != float64(0) {
		t.Fatalf("sweep: %d %v, want 200 with 2 expired grants", code, body)
	}
	got := h.expiredEntries()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("grant %d has %d grant.expired entries, want 1", id, got[id])
		}
	}
	var runs int
	for _, p := range h.logs.Payloads() {
		if p["event"] == audit.EventSweepRun {
			runs++
			if p["actor"] != scheduler {
				t.Errorf("sweep.run actor %v, want %s", p["actor"], scheduler)
			}
		}
	}
	if runs != 1 {
		t.Errorf("%d sweep.run entries, want 1", runs)
	}
}

// TestAuditUnavailable: with the audit trail down the sweep answers 503, marks nothing
// expired without its entry, but still takes the capability away; once the trail is back
// the next run finishes the job.
// TestSweepExpiresRequests: one run ends both what grants and what requests hold past
// their time, each at most the batch, and remaining counts what is left of both.
func TestSweepExpiresRequests(t *testing.T) {
	h := newHarness(t)
	h.grants(t, "dev1@example.com", "dev2@example.com")
	_, err := h.admin.Exec(context.Background(), `
		INSERT INTO airlock.access_requests (id, requester, role, reason, duration, approvals_required, expires_at)
		VALUES ('ar_due000000001', 'dev1@example.com', 'unmasked_users', 'investigating', '1 hour', 1, now() - interval '2 minutes'),
		       ('ar_due000000002', 'dev2@example.com', 'unmasked_users', 'investigating', '1 hour', 1, now() - interval '1 minute'),
		       ('ar_notdue000003', 'dev2@example.com', 'unmasked_users', 'investigating', '1 hour', 1, now() + interval '1 hour')`)
	if err != nil {
		t.Fatal(err)
	}
	h.h.WithBatch(1)
	for run, want := range []map[string]any{
		{"expired_grants": float64(1), "expired_requests": float64(1), "remaining": float64(2)},
		{"expired_grants": float64(1), "expired_requests": float64(1), "remaining": float64(0)},
	} {
		code, body := h.call(t, scheduler)
		for k, v := range want {
			if code != http.StatusOK || body[k] != v {
				t.Errorf("sweep %d with batch 1: want 200 with %s = %v, got = %d %v", run+1, k, v, code, body)
			}
		}
	}
	var expired []string
	for _, p := range h.logs.Payloads() {
		if p["event"] == "request.expired" {
			expired = append(expired, fmt.Sprint(p["access_request_id"]))
		}
	}
	if want := []string{"ar_due000000001", "ar_due000000002"}; fmt.Sprint(expired) != fmt.Sprint(want) {
		t.Errorf("request.expired entries: want %q, got = %q", want, expired)
	}
}

func TestAuditUnavailable(t *testing.T) {
	h := newHarness(t)
	devs := []string{"dev1@example.com", "dev2@example.com", "lead1@example.com"}
	ids := h.grants(t, devs...)
	var log bytes.Buffer
	h.h.deps.Log = cloudlog.New(&log)
	h.logs.FailWith(codes.Unavailable)

	code, body := h.call(t, scheduler)
	if code != http.StatusServiceUnavailable || errorCode(body) != "audit_unavailable" {
		t.Fatalf("sweep with the trail down: %d %v, want 503 audit_unavailable", code, body)
	}
	rid, _ := body["request_id"].(string)
	apptest.CheckAuditAlert(t, "the sweep runs with the trail down", log.Bytes(), EntryPoint, rid)
	if st := h.statuses(t); st["active"] != len(ids) {
		t.Errorf("grant statuses %v: something was marked expired without its audit entry", st)
	}
	if len(h.expiredEntries()) != 0 {
		t.Errorf("grant.expired entries were stored while the trail failed")
	}
	// The grant the sweep was working on lost its capability anyway.
	var dropped []string
	for _, dev := range devs {
		if !h.holds(t, dev) {
			dropped = append(dropped, dev)
		}
	}
	if len(dropped) != 1 {
		t.Errorf("capability dropped for %v; want exactly the grant the sweep reached", dropped)
	}

	h.logs.Recover()
	log.Reset()
	code, body = h.call(t, scheduler)
	if code != http.StatusOK || body["expired_grants"] != float64(len(ids)) {
		t.Fatalf("sweep after recovery: %d %v, want 200 with %d expired", code, body, len(ids))
	}
	if a := apptest.AuditAlerts(t, log.Bytes()); len(a) != 0 {
		t.Errorf("when the sweep succeeds, want = no audit.unavailable line, got = %v", a)
	}
	if st := h.statuses(t); st["expired"] != len(ids) {
		t.Errorf("grant statuses %v after recovery", st)
	}
	got := h.expiredEntries()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("grant %d has %d grant.expired entries, want 1", id, got[id])
		}
	}
	for _, dev := range devs {
		if h.holds(t, dev) {
			t.Errorf("%s still holds the capability", dev)
		}
	}
}

// TestAuditHangs: a trail that neither confirms nor fails is a trail that is down. The
// sweep gives up after a few writes, each bounded by the recorder's timeout, marks
// nothing expired, and says so.
func TestAuditHangs(t *testing.T) {
	h := newHarness(t)
	ids := h.grants(t, "dev1@example.com", "dev2@example.com")
	var log bytes.Buffer
	h.h.deps.Log = cloudlog.New(&log)
	h.logs.Hang()
	defer h.logs.Recover()

	calls := h.logs.Calls()
	code, body := h.call(t, scheduler)
	if attempts := h.logs.Calls() - calls; attempts > 3 {
		t.Errorf("when the trail hangs, want the sweep to give up after at most 3 audit writes (each bounded by the audit timeout), got = %d", attempts)
	}
	if code != http.StatusServiceUnavailable || errorCode(body) != "audit_unavailable" {
		t.Fatalf("when the trail hangs, want = 503 audit_unavailable, got = %d %v", code, body)
	}
	if st := h.statuses(t); st["active"] != len(ids) {
		t.Errorf("when the trail hangs, want every grant still marked active (none expired without its entry), got = %v", st)
	}
	rid, _ := body["request_id"].(string)
	apptest.CheckAuditAlert(t, "the sweep runs with the trail hanging", log.Bytes(), EntryPoint, rid)

	h.logs.Recover()
	if code, body := h.call(t, scheduler); code != http.StatusOK || body["expired_grants"] != float64(len(ids)) {
		t.Errorf("after the trail recovers, want = 200 with %d expired, got = %d %v", len(ids), code, body)
	}
}

// TestRunUnrecorded: a sweep whose own sweep.run entry cannot be recorded answers 503
// audit_unavailable and logs one audit.unavailable alert, though its grants were expired.
func TestRunUnrecorded(t *testing.T) {
	h := newHarness(t)
	h.grants(t, "dev1@example.com")
	var log bytes.Buffer
	h.h.deps.Log = cloudlog.New(&log)
	h.logs.FailEventsWith(codes.Unavailable, audit.EventSweepRun)
	defer h.logs.Recover()

	code, body := h.call(t, scheduler)
	if code != http.StatusServiceUnavailable || errorCode(body) != "audit_unavailable" {
		t.Fatalf("when sweep.run cannot be recorded, want = 503 audit_unavailable, got = %d %v", code, body)
	}
	if st := h.statuses(t); st["expired"] != 1 {
		t.Errorf("when sweep.run cannot be recorded, want the grant (audited on its own) expired = 1, got statuses = %v", st)
	}
	rid, _ := body["request_id"].(string)
	apptest.CheckAuditAlert(t, "sweep.run cannot be recorded", log.Bytes(), EntryPoint, rid)
}

// The scheduler is SCHEDULER_EMAIL, lower-cased; locally (NewLocal) it defaults to
// DemoScheduler, and deployed (the entry point) it is required.
func TestSchedulerEmail(t *testing.T) {
	for _, tc := range []struct {
		desc, env, want string
	}{
		{"set", " Sched@P.iam.gserviceaccount.com ", "sched@p.iam.gserviceaccount.com"},
		{"unset", "", DemoScheduler},
	} {
		cfg, err := app.LoadConfig(func(k string) string {
			return map[string]string{"AIRLOCK_POLICY": "x", "DATABASE_URL": "postgres://x", "AUDIT_SINK": "file", "SCHEDULER_EMAIL": tc.env}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := NewLocal(&app.Deps{Config: cfg}).scheduler; got != tc.want {
			t.Errorf("when SCHEDULER_EMAIL is %s, want = the scheduler %q, got = %q", tc.desc, tc.want, got)
		}
	}
	if !strings.HasSuffix(DemoScheduler, ".iam.gserviceaccount.com") {
		t.Error(fmt.Sprint("odd demo scheduler ", DemoScheduler))
	}
}

// TestSweepDeliversTheOutbox: a notification another function queued but could not send
// (Slack down, instance out of time) goes out with the next sweep, and only once.
func TestSweepDeliversTheOutbox(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "notifications.jsonl")
	h.h.WithNotifier(notify.New(h.h.deps.Pool, h.h.deps.Role(), notify.Config{File: file}, nil, h.h.deps.Log))
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, h.admin, func(tx pgx.Tx) error {
		return outbox.Enqueue(ctx, tx,
			outbox.Message{Channel: outbox.ChannelSecurity, Event: "security.bulk_write", Text: "dev1 changed 15 rows of accounts"},
			outbox.Message{Channel: outbox.ChannelApprovers, Event: "request.created", Text: "dev2 asks for unmasked_users"})
	})
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		if code, body := h.call(t, scheduler); code != http.StatusOK {
			t.Fatalf("sweep %d: want = 200, got = %d %v", run, code, body)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("when the outbox held two notifications, want them delivered, got: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "security.bulk_write") || !strings.Contains(lines[1], "request.created") {
		t.Errorf("after two sweeps, want each queued notification delivered once, in order, got = %q", lines)
	}
	var unsent int
	h.admin.QueryRow(ctx, `SELECT count(*) FROM airlock.notifications WHERE sent_at IS NULL`).Scan(&unsent)
	if unsent != 0 {
		t.Errorf("after the sweep, want the outbox empty, got %d unsent", unsent)
	}
}
