package query_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/sqlguard"
)

// TestReadEndsWhenItsGrantEnds: a read started under a grant that ends in 3 s, whose
// every row takes a few milliseconds (pg_sleep, so below the guard), and which needs many
// FETCHes, returns no row computed after the grant ended: the whole request, not each
// FETCH, is held to the grant's end, on the primary and on a replica alike. Whatever the
// machine's speed, each row returned carries its clock_timestamp(), which must be before
// the end; a read cut short says grant_expired.
func TestReadEndsWhenItsGrantEnds(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cfg := h.deps.Config
	cfg.Recorder = h.deps.Audit
	cfg.Replica = db.Config{URL: h.d.URL(migrate.GroupQuery)} // a second pool stands in for the replica
	withReplica, err := app.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(withReplica.Close)

	const sql = `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS at, pg_sleep(0.005)::text AS slept, u.email
	               FROM generate_series(1, 4000) i JOIN users u ON u.id = 1 + i % 5`
	dec := &sqlguard.Decision{Allowed: true, Kind: "select", Statement: sql, Tables: []string{"users"}}
	for _, tc := range []struct {
		desc string
		h    *query.Handler
	}{
		{"primary", query.New(h.deps)},
		{"replica", query.New(withReplica)},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			id := h.grant(dev1, "unmasked_users", 3*time.Second, true)
			var ends time.Time
			if err := h.admin.QueryRow(context.Background(), `SELECT expires_at FROM airlock.grants WHERE id = $1`, id).Scan(&ends); err != nil {
				t.Fatal(err)
			}
			w := tc.h.Unguarded(context.Background(), dev1, query.Request{SQL: sql, MaxRows: 4000}, dec)
			var body struct {
				Rows  [][]any `json:"rows"`
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("decoding the answer: %v (%s)", err, w.Body)
			}
			if len(body.Rows) < 4000 && body.Error.Code != "grant_expired" {
				t.Fatalf("when a read is cut short by its grant's end, want = grant_expired, got = %d %s", w.Code, w.Body)
			}
			if w.Code == http.StatusForbidden && body.Error.Code == "grant_expired" {
				t.Logf("%s: 403 grant_expired, no rows: %s", tc.desc, w.Body)
			}
			for i, row := range body.Rows {
				at, err := time.Parse("2006-01-02T15:04:05.999999", row[0].(string))
				if err != nil {
					t.Fatal(err)
				}
				if !at.Before(ends) {
					t.Fatalf("row %d was computed at %s, after the grant ended at %s", i+1, at.Format(time.RFC3339Nano), ends.UTC().Format(time.RFC3339Nano))
				}
			}
			// Nothing of the read runs on after its answer.
			deadline := time.Now().Add(time.Minute)
			for h.scalar(`SELECT count(*)::text FROM pg_stat_activity WHERE application_name LIKE 'airlock r=%' AND state <> 'idle'`) != "0" {
				if time.Now().After(deadline) {
					t.Fatalf("a minute after the answer, the read's statement still runs")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
