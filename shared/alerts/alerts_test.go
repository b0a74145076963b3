package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/outbox"
	"airlock.dev/airlock/shared/policy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// base is the entry of a query the alerts are raised about.
func base() audit.Entry {
	return audit.Entry{
		Event: audit.EventQueryAttempt, Actor: "dev1@example.com", Function: "ExecuteQuery", RequestID: "0123456789abcdef",
		GrantIDs: []int64{7}, AccessRequestID: "ar_0123456789ab", SQL: "SELECT email FROM users", Decision: audit.DecisionDenied,
		Rule: "delete_forbidden", Tables: []string{"users"}, MaskedColumns: []string{"users.email"}, Rows: 3, Reason: "ticket SUP-1",
		Details: map[string]any{"kind": "select"},
	}
}

// has reports whether e carries field, named as in Kind.Fields.
func has(e audit.Entry, field string) bool {
	if k, ok := strings.CutPrefix(field, "details."); ok {
		v, present := e.Details[k]
		return present && v != nil && v != ""
	}
	switch field {
	case "actor":
		return e.Actor != ""
	case "function":
		return e.Function != ""
	case "request_id":
		return e.RequestID != ""
	case "access_request_id":
		return e.AccessRequestID != ""
	case "grant_ids":
		return len(e.GrantIDs) > 0
	case "sql":
		return e.SQL != ""
	case "decision":
		return e.Decision != ""
	case "rule":
		return e.Rule != ""
	case "message":
		return e.Message != ""
	case "tables":
		return len(e.Tables) > 0
	case "masked_columns":
		return len(e.MaskedColumns) > 0
	case "rows":
		return e.Rows > 0
	case "reason":
		return e.Reason != ""
	}
	panic("has: unknown field " + field)
}

// TestConstructorsCarryTheirFields checks the contract the README and Terraform rely on:
// every alert made by its constructor has the event, severity and fields its Kind lists.
func TestConstructorsCarryTheirFields(t *testing.T) {
	wh := &policy.WorkingHours{Location: time.UTC, Days: []time.Weekday{time.Monday}, Start: 7 * time.Hour, End: 19 * time.Hour}
	made := map[string]audit.Entry{
		alerts.EventForbiddenStatement:  alerts.ForbiddenStatement(base(), "delete"),
		alerts.EventDeniedBurst:         alerts.DeniedBurst(base(), 5, 10*time.Minute),
		alerts.EventMaskedColumnAccess:  alerts.MaskedColumnAccess(base()),
		alerts.EventBreakglassActivated: alerts.BreakglassActivated(base(), "INC-42"),
		alerts.EventBreakglassWrite:     alerts.BreakglassWrite(base(), "accounts", 3, []int64{7}),
		alerts.EventBulkWrite:           alerts.BulkWrite(base(), "accounts", 15, 10),
		alerts.EventOffHoursApproval:    alerts.OffHoursApproval(base(), "dev1@example.com", "unmasked_users", time.Date(2026, 11, 28, 23, 5, 0, 0, time.UTC), wh),
		alerts.EventSlackReplay:         alerts.SlackReplay(base(), "U0LEAD1"),
	}
	for _, k := range alerts.Kinds() {
		if k.Source == alerts.SourceFunctionLogs {
			continue // not an audit entry
		}
		e, ok := made[k.Event]
		if !ok {
			t.Errorf("kind %s has no constructor in this test", k.Event)
			continue
		}
		if e.Event != k.Event || e.Severity != k.Severity {
			t.Errorf("when made by its constructor, want %s at %s, got = %s at %s", k.Event, k.Severity, e.Event, e.Severity)
		}
		for _, f := range k.Fields {
			if !has(e, f) {
				t.Errorf("alert %s: want field %s set, got = %+v", k.Event, f, e)
			}
		}
	}
	// Deriving never writes into the base entry's details.
	b := base()
	alerts.BulkWrite(b, "accounts", 15, 10)
	if _, leaked := b.Details["threshold"]; leaked || len(b.Details) != 1 {
		t.Errorf("after deriving an alert, want the base details untouched, got = %v", b.Details)
	}
	// The burst is about the person, not the last statement.
	if e := made[alerts.EventDeniedBurst]; e.SQL != "" || len(e.MaskedColumns) != 0 {
		t.Errorf("want the burst alert without the last statement, got sql = %q masked = %v", e.SQL, e.MaskedColumns)
	}
}

func TestKinds(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range alerts.Kinds() {
		if seen[k.Event] {
			t.Errorf("kind %s listed twice", k.Event)
		}
		seen[k.Event] = true
		if k.Severity != audit.SeverityAlert && k.Severity != audit.SeverityWarning {
			t.Errorf("kind %s: want severity ALERT or WARNING (what the metrics count), got = %s", k.Event, k.Severity)
		}
		if k.Source != alerts.SourceAudit && k.Source != alerts.SourceFunctionLogs {
			t.Errorf("kind %s: unknown source %q", k.Event, k.Source)
		}
		if k.Description == "" || k.When == "" || k.RaisedBy == "" || len(k.Fields) == 0 {
			t.Errorf("kind %s: want description, when, raised-by and fields documented, got = %+v", k.Event, k)
		}
		if got, ok := alerts.Lookup(k.Event); !ok || got.Event != k.Event {
			t.Errorf("Lookup(%s) = %v, %v", k.Event, got.Event, ok)
		}
	}
	if _, ok := alerts.Lookup("query.attempt"); ok {
		t.Errorf("want Lookup of an ordinary event to fail, got ok")
	}
}

func TestBurstReached(t *testing.T) {
	tcs := []struct {
		n, count int
		want     bool
	}{
		{1, 5, false}, {4, 5, false}, {5, 5, true}, {6, 5, false}, {10, 5, true}, {1, 1, true}, {3, 0, false},
	}
	for _, tc := range tcs {
		if got := alerts.BurstReached(tc.n, tc.count); got != tc.want {
			t.Errorf("when %d refusals against a count of %d, want = %v, got = %v", tc.n, tc.count, tc.want, got)
		}
	}
}

func TestMessage(t *testing.T) {
	e := alerts.MaskedColumnAccess(base())
	e.SQL = strings.Repeat("é", 400) // 800 bytes, cut inside the limit at a rune boundary
	m := alerts.Message(e)
	if m.Channel != "security" || m.Severity != "WARNING" || m.Actor != "dev1@example.com" || m.AuditRequestID != "0123456789abcdef" ||
		!slices.Equal(m.Columns, []string{"users.email"}) || m.Text != e.Message {
		t.Errorf("want the security message to carry channel, severity, actor, audit request id, columns and text, got = %+v", m)
	}
	if len(m.SQL) > 510 || !strings.HasSuffix(m.SQL, " …") || !strings.HasPrefix(m.SQL, "é") || strings.ContainsRune(m.SQL, '\uFFFD') {
		t.Errorf("want a long statement cut at a character boundary with an ellipsis, got %d bytes: %q", len(m.SQL), m.SQL[len(m.SQL)-10:])
	}
	other := alerts.MaskedColumnAccess(base())
	other.MaskedColumns = []string{"users.phone"}
	if alerts.Message(other).Key == m.Key {
		t.Errorf("want different columns to make a different key, got the same %q", m.Key)
	}
}

// env is a throwaway database and a Raiser acting as the query function's group.
type env struct {
	d      *dbtest.DB
	admin  *pgx.Conn
	raiser *alerts.Raiser
	trail  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	ctx := context.Background()
	pool, err := db.Open(ctx, db.Config{URL: d.URL(migrate.GroupQuery)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	trail := filepath.Join(t.TempDir(), "audit.jsonl")
	rec, err := audit.NewFileRecorder(ctx, trail, audit.WithMirror(io.Discard), audit.WithSigner(audittest.NewLocalSigner(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	admin, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return &env{d: d, admin: admin, raiser: &alerts.Raiser{Audit: rec, Pool: pool, Role: d.Roles.Group(migrate.GroupQuery)}, trail: trail}
}

func (e *env) securityMessages(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.admin.QueryRow(context.Background(), `SELECT count(*) FROM airlock.notifications WHERE channel = 'security'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) events(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(e.trail)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i := strings.Index(line, `"event":"`); i >= 0 {
			rest := line[i+len(`"event":"`):]
			out = append(out, rest[:strings.IndexByte(rest, '"')])
		}
	}
	return out
}

func TestRaiseThrottlesRepeatsButRecordsEveryOne(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	masked := alerts.MaskedColumnAccess(base())
	for i, want := range []int{1, 0, 0} {
		n, err := e.raiser.Raise(ctx, nil, masked)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("when raising the same masked-access alert a %d. time within the hour, want %d queued, got = %d", i+1, want, n)
		}
	}
	other := alerts.MaskedColumnAccess(base())
	other.MaskedColumns = []string{"users.phone"}
	if n, _ := e.raiser.Raise(ctx, nil, other); n != 1 {
		t.Errorf("when the same person touches other columns, want a new message, got %d queued", n)
	}
	// Another instance (a Raiser of its own) asks the outbox: within the hour, no message;
	// an hour later the same alert is news again.
	other2 := &alerts.Raiser{Audit: e.raiser.Audit, Pool: e.raiser.Pool, Role: e.raiser.Role}
	if n, _ := other2.Raise(ctx, nil, masked); n != 0 {
		t.Errorf("when another instance sent it within the hour, want no message, got %d queued", n)
	}
	if _, err := e.admin.Exec(ctx, `UPDATE airlock.notifications SET created_at = now() - interval '61 minutes'`); err != nil {
		t.Fatal(err)
	}
	if n, _ := (&alerts.Raiser{Audit: e.raiser.Audit, Pool: e.raiser.Pool, Role: e.raiser.Role}).Raise(ctx, nil, masked); n != 1 {
		t.Errorf("when the last message is over an hour old, want a new one, got %d queued", n)
	}
	// The instance that sent it remembers, and does not even ask the outbox within the hour.
	if _, err := e.admin.Exec(ctx, `DELETE FROM airlock.notifications`); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.raiser.Raise(ctx, nil, masked); n != 0 {
		t.Errorf("when this instance sent it within the hour, want no message without asking the outbox, got %d queued", n)
	}
	// ALERT kinds are never throttled.
	for range 2 {
		if n, _ := e.raiser.Raise(ctx, nil, alerts.ForbiddenStatement(base(), "delete")); n != 1 {
			t.Errorf("when raising a forbidden-statement alert again, want it queued every time, got %d", n)
		}
	}
	if got := e.securityMessages(t); got != 2 {
		t.Errorf("want the 2 forbidden-statement messages in the outbox after the masked ones were cleared, got = %d", got)
	}
	var masks int
	for _, ev := range e.events(t) {
		if ev == alerts.EventMaskedColumnAccess {
			masks++
		}
	}
	if masks != 7 {
		t.Errorf("want every masked-access alert in the audit trail (7), throttled or not, got = %d", masks)
	}
}

func TestRaiseInTheActionsTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// Rolled back with the action: the entry stays (it was recorded first), the message goes.
	err := db.InRole(ctx, e.raiser.Pool, e.raiser.Role, func(tx pgx.Tx) error {
		if _, err := e.raiser.Raise(ctx, tx, alerts.BulkWrite(base(), "accounts", 15, 10)); err != nil {
			return err
		}
		return errors.New("the write failed after all")
	})
	if err == nil {
		t.Fatal("want the transaction's error back")
	}
	if got := e.securityMessages(t); got != 0 {
		t.Errorf("when the action rolls back, want no security message, got = %d", got)
	}
	if ev := e.events(t); len(ev) != 1 || ev[0] != alerts.EventBulkWrite {
		t.Errorf("want the alert recorded before the action was decided, got events = %v", ev)
	}
	if _, err := e.raiser.Raise(ctx, nil, audit.Entry{Event: "query.attempt"}); err == nil {
		t.Errorf("when raising an ordinary event as an alert, want an error, got nil")
	}
}

func TestRaiseFailsClosed(t *testing.T) {
	e := newEnv(t)
	if err := e.raiser.Audit.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := e.raiser.Raise(t.Context(), nil, alerts.ForbiddenStatement(base(), "ddl"))
	if !errors.Is(err, audit.ErrUnavailable) || n != 0 {
		t.Errorf("when the trail cannot record, want ErrUnavailable and nothing queued, got n = %d err = %v", n, err)
	}
	if got := e.securityMessages(t); got != 0 {
		t.Errorf("when the alert was not recorded, want no message queued, got = %d", got)
	}
}

func TestCountDenial(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for i := 1; i <= 3; i++ {
		n, err := e.raiser.CountDenial(ctx, "dev1@example.com", "function_not_allowed", 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if n != i {
			t.Errorf("after %d refusals, want count = %d, got = %d", i, i, n)
		}
	}
	if n, _ := e.raiser.CountDenial(ctx, "dev2@example.com", "function_not_allowed", 10*time.Minute); n != 1 {
		t.Errorf("want another person's refusals counted apart, got = %d", n)
	}
	// Refusals older than the window no longer count, and are cleared.
	if _, err := e.admin.Exec(ctx, `UPDATE airlock.denials SET at = now() - interval '11 minutes' WHERE actor = 'dev1@example.com'`); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.raiser.CountDenial(ctx, "dev1@example.com", "parse_error", 10*time.Minute); n != 1 {
		t.Errorf("after the window passed, want count = 1, got = %d", n)
	}
	var left int
	e.admin.QueryRow(ctx, `SELECT count(*) FROM airlock.denials WHERE actor = 'dev1@example.com'`).Scan(&left)
	if left != 1 {
		t.Errorf("want old refusals deleted, got %d rows left", left)
	}
}

// channelMessages lists the security channel's messages of event about actor (any
// case), oldest first.
func (e *env) channelMessages(t *testing.T, event, actor string) []outbox.Message {
	t.Helper()
	rows, err := e.admin.Query(context.Background(), `SELECT payload::text FROM airlock.notifications
		WHERE channel = 'security' AND payload->>'event' = $1 AND lower(payload->>'actor') = lower($2) ORDER BY id`, event, actor)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (outbox.Message, error) {
		var s string
		var m outbox.Message
		if err := r.Scan(&s); err != nil {
			return m, err
		}
		return m, json.Unmarshal([]byte(s), &m)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// count counts the trail's entries of event whose actor is actor, in any case.
func (e *env) count(t *testing.T, event, actor string) int {
	t.Helper()
	b, err := os.ReadFile(e.trail)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var x audit.Entry
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			t.Fatal(err)
		}
		if x.Event == event && strings.EqualFold(x.Actor, actor) {
			n++
		}
	}
	return n
}

// attempt is dev's i-th forbidden statement, as an insider varies it: the e-mail's case
// and the statement's text change every time.
func attempt(dev string, i int) audit.Entry {
	b := base()
	b.Actor = dev
	if i%2 == 1 {
		b.Actor = strings.ToUpper(dev)
	} else if i%3 == 0 {
		b.Actor = strings.ToUpper(dev[:1]) + dev[1:]
	}
	b.SQL = fmt.Sprintf("DELETE FROM trades WHERE id = %d -- %d", i, i*7)
	return alerts.ForbiddenStatement(b, "delete")
}

// TestRaiseLimitsTheChannelPerPersonAndKind is the insider's flood: ten DELETE attempts,
// each spelled differently, reach the channel at most the limit's times, while each is in
// the trail and other people and other kinds are heard as before.
func TestRaiseLimitsTheChannelPerPersonAndKind(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	lim := must(alerts.Lookup(alerts.EventForbiddenStatement)).NotifyLimit
	if lim.Max <= 0 || lim.Max >= 10 || lim.Per <= 0 {
		t.Fatalf("want forbidden statements limited to fewer than 10 messages per person, got = %+v", lim)
	}
	const dev = "dev1@example.com"
	total := 0
	for i := range 10 {
		// A new Raiser each time: another function instance, with nothing in memory.
		r := &alerts.Raiser{Audit: e.raiser.Audit, Pool: e.raiser.Pool, Role: e.raiser.Role}
		n, err := r.Raise(ctx, nil, attempt(dev, i))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	msgs := e.channelMessages(t, alerts.EventForbiddenStatement, dev)
	if total != lim.Max || len(msgs) != lim.Max {
		t.Errorf("after 10 DELETE attempts, want %d messages queued, got = %d (Raise said %d)", lim.Max, len(msgs), total)
	}
	if got := e.count(t, alerts.EventForbiddenStatement, dev); got != 10 {
		t.Errorf("want every one of the 10 attempts in the audit trail, got = %d", got)
	}
	if last := msgs[len(msgs)-1]; last.HeldUntil == "" || !strings.Contains(last.Text, "held back until") {
		t.Errorf("want the message that reaches the limit to say the rest are held back, got = %+v", last)
	}

	// Another person, and another kind by the same person, are heard.
	if n, _ := e.raiser.Raise(ctx, nil, attempt("dev2@example.com", 0)); n != 1 {
		t.Errorf("when another person tries a DELETE, want their message queued, got = %d", n)
	}
	if n, _ := e.raiser.Raise(ctx, nil, alerts.DeniedBurst(base(), 10, 10*time.Minute)); n != 1 {
		t.Errorf("when the same person's burst alert follows, want it queued, got = %d", n)
	}
	if n, _ := e.raiser.Raise(ctx, nil, alerts.MaskedColumnAccess(base())); n != 1 {
		t.Errorf("when the same person touches masked columns, want it queued, got = %d", n)
	}
	// Kinds that report a change are never held back.
	for i := range lim.Max + 2 {
		if n, _ := e.raiser.Raise(ctx, nil, alerts.BulkWrite(base(), "accounts", 15, 10)); n != 1 {
			t.Errorf("when raising bulk write %d, want it queued (never limited), got = %d", i+1, n)
		}
	}

	// Once the window has passed, the next message is posted and says how many were held.
	if _, err := e.admin.Exec(ctx, `UPDATE airlock.notification_limits SET window_start = window_start - $1::interval`, lim.Per.String()); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.raiser.Raise(ctx, nil, attempt(dev, 11)); n != 1 {
		t.Fatalf("after the window, want the next attempt posted, got = %d", n)
	}
	msgs = e.channelMessages(t, alerts.EventForbiddenStatement, dev)
	next := msgs[len(msgs)-1]
	if want := 10 - lim.Max; next.Held != want || next.HeldSince == "" || !strings.Contains(next.Text, fmt.Sprintf("%d more like this were held back", want)) {
		t.Errorf("want the first message after the window to say %d were held back, got = %+v", want, next)
	}
	if n, _ := e.raiser.Raise(ctx, nil, attempt(dev, 12)); n != 1 {
		t.Errorf("want the second of the new window posted, got = %d", n)
	}
	if m := e.channelMessages(t, alerts.EventForbiddenStatement, dev); m[len(m)-1].Held != 0 {
		t.Errorf("want the held count told once, got it again: %+v", m[len(m)-1])
	}
}

// TestRaiseLimitConcurrent: two instances raising a person's alert at once, with one
// place left in the window, do not both take it: the second waits for the first's row.
func TestRaiseLimitConcurrent(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	const dev = "dev3@example.com"
	lim := must(alerts.Lookup(alerts.EventForbiddenStatement)).NotifyLimit
	for i := range lim.Max - 1 {
		if n, err := e.raiser.Raise(ctx, nil, attempt(dev, i)); err != nil || n != 1 {
			t.Fatalf("filling the window: attempt %d queued %d, err = %v", i+1, n, err)
		}
	}
	first, err := e.raiser.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(context.Background())
	if _, err := db.Exec(ctx, first.Conn(), "SET LOCAL ROLE "+pgx.Identifier{e.raiser.Role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	n1, err := e.raiser.Raise(ctx, first, attempt(dev, 20))
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan int, 1)
	go func() {
		r := &alerts.Raiser{Audit: e.raiser.Audit, Pool: e.raiser.Pool, Role: e.raiser.Role}
		n, err := r.Raise(ctx, nil, attempt(strings.ToUpper(dev), 21))
		if err != nil {
			t.Error(err)
		}
		second <- n
	}()
	dbtest.WaitForLockWait(t, e.admin, "the second raiser (for the first's count)")
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n2 := <-second; n1 != 1 || n2 != 0 {
		t.Errorf("when two raisers race for the last place, want 1 and 0 queued, got = %d and %d", n1, n2)
	}
	if got := len(e.channelMessages(t, alerts.EventForbiddenStatement, dev)); got != lim.Max {
		t.Errorf("want %d messages, got = %d", lim.Max, got)
	}
	if got := e.count(t, alerts.EventForbiddenStatement, dev); got != lim.Max+1 {
		t.Errorf("want both racing attempts in the trail (%d entries), got = %d", lim.Max+1, got)
	}
}

// TestKindsLimits: the kinds that report attempts are limited per person; the ones that
// report a change are not (see Kind.NotifyLimit).
func TestKindsLimits(t *testing.T) {
	limited := map[string]bool{
		alerts.EventForbiddenStatement: true, alerts.EventDeniedBurst: true,
		alerts.EventMaskedColumnAccess: true, alerts.EventSlackReplay: true,
	}
	for _, k := range alerts.Kinds() {
		if got := k.NotifyLimit.Max > 0 && k.NotifyLimit.Per > 0; got != limited[k.Event] {
			t.Errorf("kind %s: want limited per person = %v, got = %+v", k.Event, limited[k.Event], k.NotifyLimit)
		}
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("must: not found")
	}
	return v
}
