package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/audit"
)

// alertsOf returns the audit entries of event for one request id ("" for any).
func (h *harness) alertsOf(event, rid string) []map[string]any {
	var out []map[string]any
	for _, e := range h.entriesFor(event) {
		if rid == "" || e["request_id"] == rid {
			out = append(out, e)
		}
	}
	return out
}

// requestID is the request id an answer reports (header for tables, body otherwise).
func (r response) requestID() string {
	if id := r.header.Get("X-Airlock-Request-Id"); id != "" {
		return id
	}
	var v struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal(r.body, &v)
	return v.RequestID
}

// securityMessages lists the security channel's queued messages of event, as "actor|text".
func (h *harness) securityMessages(event string) []string {
	return h.collectStrings(fmt.Sprintf(`SELECT payload->>'actor' || '|' || (payload->>'text') FROM airlock.notifications
		WHERE channel = 'security' AND payload->>'event' = '%s' ORDER BY id`, event))
}

// TestForbiddenStatementAlert hides DELETE, DDL and role changes behind other rules and
// other statements; each attempt must still raise the ALERT and reach the security channel.
func TestForbiddenStatementAlert(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant(dev1, "write_accounts", time.Hour, true)
	tcs := []struct {
		desc      string
		req       query.Request
		forbidden string // "" for refusals that are not alarming
	}{
		{"plain DELETE", query.Request{SQL: `DELETE FROM trades`}, "delete"},
		{"DELETE in write mode under a write grant", query.Request{SQL: `DELETE FROM accounts WHERE id = 1`, Mode: "write", Reason: "cleanup ticket OPS-1"}, "delete"},
		{"DELETE in a CTE", query.Request{SQL: `WITH gone AS (DELETE FROM trades RETURNING id) SELECT count(*) FROM gone`}, "delete"},
		{"DROP under EXPLAIN ANALYZE", query.Request{SQL: `EXPLAIN ANALYZE CREATE TABLE leak AS SELECT * FROM users`}, "ddl"},
		{"TRUNCATE after a read", query.Request{SQL: `SELECT 1; TRUNCATE trades`}, "truncate"},
		{"ALTER TABLE", query.Request{SQL: `ALTER TABLE accounts DISABLE TRIGGER ALL`}, "ddl"},
		{"SET ROLE", query.Request{SQL: `SET ROLE postgres`}, "privilege"},
		{"set_config role", query.Request{SQL: `SELECT set_config('role', 'postgres', false)`}, "privilege"},
		{"GRANT", query.Request{SQL: `GRANT ALL ON accounts TO PUBLIC`}, "privilege"},
		{"pg_sleep is refused but not alarming", query.Request{SQL: `SELECT pg_sleep(1)`}, ""},
		{"COPY is refused but not alarming", query.Request{SQL: `COPY trades TO STDOUT`}, ""},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			// Each case is the person's first attempt in a while: the channel's limit per
			// person (TestForbiddenStatementAlertLimited) would otherwise hold back the last.
			if _, err := h.admin.Exec(context.Background(), `DELETE FROM airlock.notification_limits`); err != nil {
				t.Fatal(err)
			}
			before := len(h.securityMessages(alerts.EventForbiddenStatement))
			r := h.post(dev1, tc.req)
			if r.status == http.StatusOK {
				t.Fatalf("when sending %q, want a refusal, got = %s", tc.req.SQL, r)
			}
			got := h.alertsOf(alerts.EventForbiddenStatement, r.requestID())
			msgs := h.securityMessages(alerts.EventForbiddenStatement)[before:]
			if tc.forbidden == "" {
				if len(got) != 0 || len(msgs) != 0 {
					t.Errorf("when sending %q, want no forbidden-statement alert, got entries = %v messages = %v", tc.req.SQL, got, msgs)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("when sending %q, want one %s entry for request %s, got = %v", tc.req.SQL, alerts.EventForbiddenStatement, r.requestID(), got)
			}
			e := got[0]
			details, _ := e["details"].(map[string]any)
			if e["severity"] != "ALERT" || e["actor"] != dev1 || e["sql"] != tc.req.SQL || details["forbidden"] != tc.forbidden || e["rule"] == nil {
				t.Errorf("when sending %q, want severity ALERT, actor, sql, rule and details.forbidden = %s, got = %v", tc.req.SQL, tc.forbidden, e)
			}
			if len(msgs) != 1 || !strings.HasPrefix(msgs[0], dev1+"|") {
				t.Errorf("when sending %q, want one security-channel message naming %s, got = %v", tc.req.SQL, dev1, msgs)
			}
		})
	}
}

// TestForbiddenStatementAlertLimited is an insider's flood of DELETEs, each spelled
// differently (statement text, the case of the e-mail, a bad envelope): every one is on
// the trail, the security channel hears the limit's worth, and another person's attempt
// and another kind of alert about the same person are still heard.
func TestForbiddenStatementAlertLimited(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	kind, _ := alerts.Lookup(alerts.EventForbiddenStatement)
	limit := kind.NotifyLimit.Max
	for i := range 10 {
		who := dev1
		if i%2 == 1 {
			who = strings.ToUpper(dev1)
		}
		req := query.Request{SQL: fmt.Sprintf(`DELETE FROM trades WHERE id = %d`, i)}
		if i%3 == 2 {
			req = query.Request{SQL: fmt.Sprintf(`/* %d */ delete from TRADES`, i), MaxRows: -1}
		}
		if r := h.post(who, req); r.status == http.StatusOK {
			t.Fatalf("when %s sends %q, want a refusal, got = %s", who, req.SQL, r)
		}
	}
	var entries int
	for _, e := range h.alertsOf(alerts.EventForbiddenStatement, "") {
		if a, _ := e["actor"].(string); strings.EqualFold(a, dev1) {
			entries++
		}
	}
	if entries != 10 {
		t.Errorf("after 10 DELETE attempts, want 10 %s entries on the trail, got = %d", alerts.EventForbiddenStatement, entries)
	}
	if msgs := h.securityMessages(alerts.EventForbiddenStatement); len(msgs) != limit {
		t.Errorf("after 10 DELETE attempts, want %d security-channel messages (the limit), got = %d: %v", limit, len(msgs), msgs)
	}
	h.query(dev2, `DELETE FROM trades`)
	if msgs := h.securityMessages(alerts.EventForbiddenStatement); len(msgs) != limit+1 || !strings.HasPrefix(msgs[limit], dev2+"|") {
		t.Errorf("when another person tries a DELETE, want their message queued, got = %v", msgs)
	}
	h.query(dev1, `SELECT email FROM users LIMIT 1`)
	if msgs := h.securityMessages(alerts.EventMaskedColumnAccess); len(msgs) != 1 {
		t.Errorf("when the same person reads a masked column, want that alert queued, got = %v", msgs)
	}
}

// TestMaskedColumnAccessAlert reaches sensitive columns in every way the guard resolves
// (predicates, sorting, aggregates, whole rows, aliases, CTEs, subqueries).
func TestMaskedColumnAccessAlert(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tcs := []struct {
		sql  string
		want []string // masked columns reported; nil: no alert
	}{
		{`SELECT email FROM users LIMIT 1`, []string{"users.email"}},
		{`SELECT id FROM users WHERE email LIKE 'a%' LIMIT 1`, []string{"users.email"}},
		{`SELECT id FROM users ORDER BY phone LIMIT 1`, []string{"users.phone"}},
		{`SELECT count(DISTINCT full_name) FROM users`, []string{"users.full_name"}},
		{`SELECT u FROM users u LIMIT 1`, []string{"users.email", "users.full_name", "users.phone"}},
		{`SELECT * FROM users LIMIT 1`, []string{"users.email", "users.full_name", "users.phone"}},
		{`SELECT x.e FROM (SELECT email AS e FROM users) x LIMIT 1`, []string{"users.email"}},
		{`WITH c AS (SELECT phone FROM users) SELECT * FROM c LIMIT 1`, []string{"users.phone"}},
		{`SELECT m FROM users AS u(i, m) LIMIT 1`, []string{"users.email"}},
		{`SELECT a.id FROM accounts a JOIN users USING (id) WHERE balance > 100 LIMIT 1`, []string{"accounts.balance"}},
		{`SELECT id, country FROM users LIMIT 1`, nil},
		{`SELECT pair, count(*) FROM trades GROUP BY pair`, nil},
	}
	for _, tc := range tcs {
		r := h.query(dev1, tc.sql)
		if r.status != http.StatusOK {
			t.Errorf("when dev1 reads %q, want = 200 (the database masks), got = %s", tc.sql, r)
			continue
		}
		got := h.alertsOf(alerts.EventMaskedColumnAccess, r.requestID())
		if tc.want == nil {
			if len(got) != 0 {
				t.Errorf("when dev1 reads %q, want no masked-access alert, got = %v", tc.sql, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("when dev1 reads %q, want one %s entry, got = %v", tc.sql, alerts.EventMaskedColumnAccess, got)
			continue
		}
		var cols []string
		for _, c := range got[0]["masked_columns"].([]any) {
			cols = append(cols, c.(string))
		}
		if !slices.Equal(cols, tc.want) || got[0]["severity"] != "WARNING" {
			t.Errorf("when dev1 reads %q, want masked_columns = %v at WARNING, got = %v at %v", tc.sql, tc.want, cols, got[0]["severity"])
		}
	}
	// The channel hears of the same person and columns once an hour, not once a query.
	// (email; phone; full_name; all three; balance.)
	if msgs := h.securityMessages(alerts.EventMaskedColumnAccess); len(msgs) != 5 {
		t.Errorf("want one security message per distinct set of columns (5), got = %d: %v", len(msgs), msgs)
	}

	// With an unmasked grant on users the same read is no alert; accounts still is.
	h.grant(dev1, "unmasked_users", time.Hour, true)
	r := h.query(dev1, `SELECT u.email, a.balance FROM users u JOIN accounts a ON a.user_id = u.id LIMIT 1`)
	got := h.alertsOf(alerts.EventMaskedColumnAccess, r.requestID())
	if r.status != http.StatusOK || len(got) != 1 || fmt.Sprint(got[0]["masked_columns"]) != "[accounts.balance]" {
		t.Errorf("with unmasked_users, want only accounts.balance reported, got = %s %v", r, got)
	}
}

func TestDeniedBurstAlert(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: policyVariant(t, "denied_burst: {count: 5, window: 10m}", "denied_burst: {count: 3, window: 10m}")})
	bursts := func() []map[string]any { return h.entriesFor(alerts.EventDeniedBurst) }
	// Another person's refusals are theirs: they do not make dev1's burst.
	h.query(dev2, `SELECT pg_sleep(1)`)
	h.query(dev2, `SELECT pg_sleep(1)`)
	probes := []string{`SELECT pg_read_file('/etc/passwd')`, `SELECT * FROM pg_authid`, `COPY users TO STDOUT`}
	for i, sql := range probes {
		h.query(dev1, sql)
		if got := len(bursts()); (i < 2 && got != 0) || (i == 2 && got != 1) {
			t.Fatalf("after %d refusals (count 3), want %d burst alerts, got = %d", i+1, map[bool]int{true: 1, false: 0}[i == 2], got)
		}
	}
	b := bursts()[0]
	details, _ := b["details"].(map[string]any)
	if b["actor"] != dev1 || b["severity"] != "WARNING" || details["denied"] != float64(3) || details["window"] != "10m0s" {
		t.Errorf("want the burst to name dev1, 3 refusals in 10m0s, at WARNING, got = %v", b)
	}
	// A probe that goes on shows again at every multiple of the count.
	for range 3 {
		h.query(dev1, `SELECT lo_import('/etc/passwd')`)
	}
	if got := len(bursts()); got != 2 {
		t.Errorf("after 6 refusals, want 2 burst alerts, got = %d", got)
	}
	// An allowed query counts for nothing.
	h.query(dev1, `SELECT 1`)
	if got := len(bursts()); got != 2 {
		t.Errorf("after an allowed query, want still 2 burst alerts, got = %d", got)
	}
	if msgs := h.securityMessages(alerts.EventDeniedBurst); len(msgs) != 2 {
		t.Errorf("want both bursts on the security channel, got = %v", msgs)
	}
}

// breakglassGrant gives email an active break-glass grant on the demo policy's tables.
func (h *harness) breakglassGrant(email string) int64 {
	h.t.Helper()
	var id int64
	err := h.admin.QueryRow(context.Background(), `
		INSERT INTO airlock.grants (grantee, role, breakglass, capabilities, starts_at, expires_at)
		VALUES ($1, 'breakglass', true, '{unmasked_users,unmasked_accounts,unmasked_deposits,unmasked_withdrawals,write_accounts,write_withdrawals}',
		        now() - interval '1 minute', now() + interval '30 minutes')
		RETURNING id`, email).Scan(&id)
	if err != nil {
		h.t.Fatalf("inserting break-glass grant: %v", err)
	}
	h.sync(email)
	return id
}

func TestWriteAlerts(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.grant(dev1, "write_accounts", time.Hour, true)
	bg := h.breakglassGrant(dev2)
	write := func(who, where string, dry bool) response {
		return h.post(who, query.Request{SQL: `UPDATE accounts SET updated_at = '2031-01-01' WHERE ` + where, Mode: "write", DryRun: dry, Reason: "ticket OPS-12 fix timestamps"})
	}
	tcs := []struct {
		desc             string
		who, where       string
		dry              bool
		bulk, breakglass bool
	}{
		{"10 rows is at the threshold", dev1, "id BETWEEN 1 AND 10", false, false, false},
		{"11 rows is over it", dev1, "id BETWEEN 11 AND 21", false, true, false},
		{"a dry run of 15 rows writes nothing", dev1, "id BETWEEN 30 AND 44", true, false, false},
		{"one row under break-glass", dev2, "id = 50", false, false, true},
		{"12 rows under break-glass", dev2, "id BETWEEN 51 AND 62", false, true, true},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			r := write(tc.who, tc.where, tc.dry)
			if r.status != http.StatusOK {
				t.Fatalf("want the write = 200, got = %s", r)
			}
			rid := r.requestID()
			bulk := h.alertsOf(alerts.EventBulkWrite, rid)
			bgw := h.alertsOf(alerts.EventBreakglassWrite, rid)
			if (len(bulk) == 1) != tc.bulk || len(bulk) > 1 {
				t.Errorf("want bulk-write alert = %v, got = %v", tc.bulk, bulk)
			}
			if (len(bgw) == 1) != tc.breakglass || len(bgw) > 1 {
				t.Errorf("want break-glass write alert = %v, got = %v", tc.breakglass, bgw)
			}
			rows := float64(r.write(t).RowsAffected)
			for _, e := range append(bulk, bgw...) {
				details, _ := e["details"].(map[string]any)
				if e["severity"] != "ALERT" || e["rows"] != rows || details["target"] != "accounts" || e["actor"] != tc.who {
					t.Errorf("want the alert at ALERT with rows = %v, target accounts and actor %s, got = %v", rows, tc.who, e)
				}
			}
			if len(bgw) == 1 {
				ids, _ := bgw[0]["details"].(map[string]any)["breakglass_grants"].([]any)
				if len(ids) != 1 || ids[0] != float64(bg) {
					t.Errorf("want the break-glass alert to name grant %d, got = %v", bg, ids)
				}
			}
		})
	}
	if got := len(h.securityMessages(alerts.EventBulkWrite)); got != 2 {
		t.Errorf("want 2 bulk-write messages on the security channel, got = %d", got)
	}
	if got := len(h.securityMessages(alerts.EventBreakglassWrite)); got != 2 {
		t.Errorf("want 2 break-glass write messages on the security channel, got = %d", got)
	}
}

// TestAlertsFailClosed: an alert the trail cannot take stops what it reports.
func TestAlertsFailClosed(t *testing.T) {
	h := newHarness(t, harnessOptions{cloud: true, auditOpts: []audit.Option{audit.WithTimeout(auditTimeout)}})
	h.grant(dev1, "write_accounts", time.Hour, true)
	failOn := func(event string) { h.fake.FailEventsWith(codes.Unavailable, event) }
	defer h.fake.Recover()

	failOn(alerts.EventBulkWrite)
	before := h.checksum("accounts")
	r := h.post(dev1, query.Request{SQL: `UPDATE accounts SET updated_at = '2032-01-01' WHERE id BETWEEN 1 AND 15`, Mode: "write", Reason: "ticket OPS-13 fix timestamps"})
	if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
		t.Errorf("when the bulk-write alert cannot be recorded, want = 503 audit_unavailable, got = %s", r)
	}
	if h.checksum("accounts") != before {
		t.Errorf("when the bulk-write alert cannot be recorded, want the write rolled back, got accounts changed")
	}
	if msgs := h.securityMessages(alerts.EventBulkWrite); len(msgs) != 0 {
		t.Errorf("when the write rolled back, want no bulk-write message, got = %v", msgs)
	}

	failOn(alerts.EventMaskedColumnAccess)
	if r := h.query(dev1, `SELECT email FROM users LIMIT 1`); r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
		t.Errorf("when the masked-access alert cannot be recorded, want the read refused with 503 audit_unavailable, got = %s", r)
	}
	failOn(alerts.EventForbiddenStatement)
	if r := h.query(dev1, `DROP TABLE users`); r.status != http.StatusServiceUnavailable {
		t.Errorf("when the forbidden-statement alert cannot be recorded, want = 503, got = %s", r)
	}

	h.fake.Recover()
	if r := h.query(dev1, `SELECT email FROM users LIMIT 1`); r.status != http.StatusOK {
		t.Errorf("after the sink recovers, want the read = 200, got = %s", r)
	}
}
