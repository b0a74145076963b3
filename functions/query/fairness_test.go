package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/authn"
)

// The tests of the per-person statement limit make statements slow without making the
// machine busy: the reads wait for a lock the test holds on trades, for as long as the
// test wants (lock_timeout 5m), and end when the test lets go of it.

const blockedRead = `SELECT count(*) FROM trades`

// fairPolicy is the demo policy with reads that may wait for the test's lock, and n
// statements per person when n > 0.
func fairPolicy(t *testing.T, n string) []byte {
	pairs := []string{"lock_timeout: 3s", "lock_timeout: 5m"}
	if n != "" {
		pairs = append(pairs, "max_bytes: 4194304", "max_bytes: 4194304\n  concurrent_statements: "+n)
	}
	return policyVariant(t, pairs...)
}

// lockTrades holds an exclusive lock on trades until the returned function is called.
func (h *harness) lockTrades() (unlock func()) {
	h.t.Helper()
	ctx := context.Background()
	tx, err := h.owner.Begin(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE public.trades IN ACCESS EXCLUSIVE MODE`); err != nil {
		tx.Rollback(ctx)
		h.t.Fatal(err)
	}
	unlock = func() { tx.Rollback(ctx) }
	h.t.Cleanup(unlock)
	return unlock
}

// send posts req to srv with token, as a client that may hang up (ctx); the error is
// the client's.
func send(ctx context.Context, srv *httptest.Server, token string, req query.Request) (response, error) {
	b, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/", bytes.NewReader(b))
	if err != nil {
		return response{}, err
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(hr)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}, err
}

// mint is a token for email exactly as written (h.token's signer, any spelling).
func (h *harness) mint(email string) string {
	h.t.Helper()
	tok, err := authn.Mint(h.key, email, "", time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// waitBlocked waits until n of the function's backends wait for a lock.
func (h *harness) waitBlocked(n int) {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // an event; the deadline only stops a broken test
	for {
		var got int
		if err := h.login.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			 WHERE application_name LIKE 'airlock r=%' AND wait_event_type = 'Lock'`).Scan(&got); err != nil {
			h.t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("want %d statements waiting for the test's lock, got %d", n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slotsHeld counts the advisory locks held on email's statement slots, by anyone.
func (h *harness) slotsHeld(email string) int {
	h.t.Helper()
	var n int
	err := h.admin.QueryRow(context.Background(), `
		SELECT count(*) FROM pg_locks
		 WHERE locktype = 'advisory' AND objsubid = 1 AND granted
		   AND ((classid::int8 << 32) | objid::int8) BETWEEN $1 AND $1 + 63`, query.PersonKey(email)).Scan(&n)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// waitSlotsFree waits until email holds no statement slot; a slot still held after a
// minute is leaked.
func (h *harness) waitSlotsFree(email, after string) {
	h.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for h.slotsHeld(email) > 0 {
		if time.Now().After(deadline) {
			h.t.Fatalf("after %s, want %s's statement slots released, got %d still held", after, email, h.slotsHeld(email))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// within runs f and fails the test if it has not returned after limit: a generous
// bound on something that would otherwise wait for minutes, not a measure of speed.
func within[T any](t *testing.T, limit time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(limit):
		t.Fatalf("%s: no answer within %s", what, limit)
		panic("unreachable")
	}
}

func wantTooMany(t *testing.T, what string, r response, limit string) {
	t.Helper()
	e := r.err()
	if r.status != http.StatusTooManyRequests || e.Code != "too_many_statements" {
		t.Fatalf("%s: want = 429 too_many_statements, got = %s", what, r)
	}
	if !strings.Contains(e.Message, "limits.concurrent_statements") || !strings.Contains(e.Message, limit) {
		t.Errorf("%s: want the message to name limits.concurrent_statements and its value %s, got = %q", what, limit, e.Message)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("%s: want a Retry-After header, got none", what)
	}
}

// TestOnePersonCannotStarveAnother: ten slow reads from dev1 take four statement slots
// (the default limit) and are refused the rest at once, 429 and audited; dev2's SELECT 1
// is answered meanwhile. When dev1's client hangs up, the slots come free.
func TestOnePersonCannotStarveAnother(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: fairPolicy(t, "")})
	unlock := h.lockTrades()
	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()

	answers := make(chan response, 10)
	for range 10 {
		go func() {
			r, _ := send(ctx, h.srv, h.mint(dev1), query.Request{SQL: blockedRead})
			answers <- r
		}()
	}
	for i := range 6 {
		r := within(t, 2*time.Minute, "dev1's read beyond the limit", func() response { return <-answers })
		wantTooMany(t, "dev1's read "+string(rune('1'+i))+" beyond the limit", r, "4")
	}
	h.waitBlocked(4)
	if n := h.slotsHeld(dev1); n != 4 {
		t.Errorf("with four reads of dev1 running, want = 4 slots held, got = %d", n)
	}

	r := within(t, 5*time.Second, "dev2's SELECT 1 while dev1's reads run", func() response { return h.query(dev2, `SELECT 1`) })
	if r.status != http.StatusOK {
		t.Fatalf("while dev1's reads run, want dev2's SELECT 1 = 200, got = %s", r)
	}

	refused := 0
	for _, e := range h.entriesFor("query.result") {
		if e["actor"] == dev1 && e["error_class"] == "too_many_statements" {
			refused++
		}
	}
	if refused != 6 {
		t.Errorf("want each of the 6 refused reads audited as query.result too_many_statements, got = %d", refused)
	}

	// dev1 hangs up: the statements are cancelled and the slots released, though the
	// lock they wait for is still held.
	hangUp()
	for range 4 {
		within(t, 2*time.Minute, "a hung-up read", func() response { return <-answers })
	}
	h.waitSlotsFree(dev1, "dev1's client hung up")
	unlock()
	if r := h.query(dev1, `SELECT 1`); r.status != http.StatusOK {
		t.Errorf("after dev1's reads ended, want dev1's SELECT 1 = 200, got = %s", r)
	}
}

// TestStatementLimitHoldsAcrossInstances: two function instances (two handlers, each
// with its own pools) on one database share a person's limit, whatever the spelling of
// their e-mail in the token.
func TestStatementLimitHoldsAcrossInstances(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: fairPolicy(t, "2")})
	cfg := h.deps.Config
	cfg.Recorder = h.deps.Audit // one trail; the pools are the instance's own
	deps2, err := app.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deps2.Close)
	other := httptest.NewServer(query.New(deps2))
	t.Cleanup(other.Close)

	unlock := h.lockTrades()
	answers := make(chan response, 2)
	for _, srv := range []*httptest.Server{h.srv, other} {
		go func() {
			r, _ := send(context.Background(), srv, h.mint(dev1), query.Request{SQL: blockedRead})
			answers <- r
		}()
	}
	h.waitBlocked(2)

	for _, tc := range []struct {
		desc  string
		srv   *httptest.Server
		email string
	}{
		{"first instance", h.srv, dev1},
		{"second instance", other, dev1},
		{"upper case", h.srv, "DEV1@EXAMPLE.COM"},
		{"mixed case and spaces", other, "  Dev1@Example.Com "},
	} {
		r, err := send(context.Background(), tc.srv, h.mint(tc.email), query.Request{SQL: `SELECT 1`})
		if err != nil {
			t.Fatal(err)
		}
		wantTooMany(t, "a third statement of dev1 ("+tc.desc+")", r, "2")
	}
	if r := h.query(dev2, `SELECT 1`); r.status != http.StatusOK {
		t.Errorf("while dev1 holds its slots, want dev2's SELECT 1 = 200, got = %s", r)
	}
	unlock()
	for range 2 {
		if r := within(t, 2*time.Minute, "a read after the lock went", func() response { return <-answers }); r.status != http.StatusOK {
			t.Errorf("once the lock is gone, want the running reads answered 200, got = %s", r)
		}
	}
	h.waitSlotsFree(dev1, "the reads ended")
}

// TestStatementSlotsAreReleased: with one statement per person, each way a statement can
// end (an error, a lock timeout, a refused write, a refusal for the limit itself, a
// client that hangs up) leaves the slot free for the next.
func TestStatementSlotsAreReleased(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: policyVariant(t, "lock_timeout: 3s", "lock_timeout: 1s",
		"max_bytes: 4194304", "max_bytes: 4194304\n  concurrent_statements: 1")})
	h.grant(dev1, "write_accounts", time.Hour, true)
	next := func(after string) {
		t.Helper()
		h.waitSlotsFree(dev1, after)
		if r := h.query(dev1, `SELECT 1`); r.status != http.StatusOK {
			t.Fatalf("after %s, want dev1's next SELECT 1 = 200, got = %s", after, r)
		}
	}

	if r := h.query(dev1, `SELECT 1/0`); r.status != http.StatusBadRequest {
		t.Fatalf("want SELECT 1/0 = 400, got = %s", r)
	}
	next("a failed statement")

	unlock := h.lockTrades()
	if r := h.query(dev1, blockedRead); r.err().Code != "lock_timeout" {
		t.Fatalf("want a read waiting past lock_timeout = lock_timeout, got = %s", r)
	}
	next("a lock timeout")

	r := h.post(dev1, query.Request{SQL: `UPDATE accounts SET updated_at = now() WHERE id <= 30`, Mode: "write", Reason: "ticket OPS-11 too many rows"})
	if r.err().Code != "row_limit_exceeded" {
		t.Fatalf("want a write of too many rows = row_limit_exceeded, got = %s", r)
	}
	next("a refused write")

	ctx, hangUp := context.WithCancel(context.Background())
	first := make(chan response, 1)
	go func() {
		r, _ := send(ctx, h.srv, h.mint(dev1), query.Request{SQL: blockedRead})
		first <- r
	}()
	h.waitBlocked(1)
	wantTooMany(t, "a second statement", h.query(dev1, `SELECT 1`), "1")
	hangUp()
	within(t, 2*time.Minute, "the hung-up read", func() response { return <-first })
	next("a client that hung up while its statement ran")
	unlock()
}

// TestStatementsWaitBoundedly: when this instance's statement connections are all held
// by other people's statements, a third person's statement is answered 503 busy after a
// bounded wait, while the grant lookup before it (Airlock's own query) was not held up.
func TestStatementsWaitBoundedly(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: fairPolicy(t, "")})
	unlock := h.lockTrades()
	answers := make(chan response, 6)
	for _, who := range []string{dev1, dev1, dev1, dev1, dev2, dev2} {
		go func() {
			r, _ := send(context.Background(), h.srv, h.mint(who), query.Request{SQL: blockedRead})
			answers <- r
		}()
	}
	h.waitBlocked(6) // the pool's 8 connections less the 2 kept for Airlock's own queries

	r := within(t, 30*time.Second, "lead1's SELECT 1 with every statement connection taken", func() response { return h.query("lead1@example.com", `SELECT 1`) })
	if r.status != http.StatusServiceUnavailable || r.err().Code != "busy" || r.header.Get("Retry-After") == "" {
		t.Fatalf("with every statement connection taken, want = 503 busy with Retry-After, got = %s", r)
	}
	audited := false
	for _, e := range h.entriesFor("query.result") {
		audited = audited || e["actor"] == "lead1@example.com" && e["error_class"] == "busy"
	}
	if !audited {
		t.Errorf("want the busy answer audited as query.result busy, got none")
	}
	unlock()
	for range 6 {
		if r := within(t, 2*time.Minute, "a read after the lock went", func() response { return <-answers }); r.status != http.StatusOK {
			t.Errorf("once the lock is gone, want the running reads answered 200, got = %s", r)
		}
	}
	if r := h.query("lead1@example.com", `SELECT 1`); r.status != http.StatusOK {
		t.Errorf("once the reads ended, want lead1's SELECT 1 = 200, got = %s", r)
	}
}
