package query_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/cloudlog"
)

// TestAuditUnavailableAlert: every refusal for want of an audit record writes exactly one
// audit.unavailable line to the function's own log, the one the audit.unavailable metric
// of terraform/monitoring.tf counts, and a request that succeeds writes none.
func TestAuditUnavailableAlert(t *testing.T) {
	h := newHarness(t, harnessOptions{cloud: true, auditOpts: []audit.Option{audit.WithTimeout(auditTimeout)}})
	var log bytes.Buffer
	h.deps.Log = cloudlog.New(&log)
	h.grant(dev1, "write_accounts", time.Hour, true)
	read := query.Request{SQL: `SELECT id FROM trades LIMIT 1`}
	write := query.Request{SQL: `UPDATE accounts SET updated_at = '2031-01-01' WHERE id = 5`, Mode: "write", Reason: "ticket OPS-7 touch account"}

	tcs := []struct {
		desc  string
		fail  func(s *audittest.Server) // nil: the sink works
		req   query.Request
		alert bool
	}{
		{desc: "a read succeeds", req: read},
		{desc: "a write succeeds", req: write},
		{desc: "a read's attempt cannot be recorded", fail: func(s *audittest.Server) { s.FailWith(codes.Unavailable) }, req: read, alert: true},
		{desc: "a denial cannot be recorded", fail: func(s *audittest.Server) { s.FailWith(codes.Unavailable) }, req: query.Request{SQL: `DELETE FROM trades`}, alert: true},
		{desc: "a read's outcome cannot be recorded", fail: func(s *audittest.Server) { s.FailEventsWith(codes.Unavailable, audit.EventQueryResult) }, req: read, alert: true},
		// The write's outcome fails before COMMIT, and again when it is recorded as an
		// error: one refusal, so one line.
		{desc: "a write's outcome cannot be recorded", fail: func(s *audittest.Server) { s.FailEventsWith(codes.Unavailable, audit.EventQueryResult) }, req: write, alert: true},
		{desc: "the sink hangs", fail: (*audittest.Server).Hang, req: read, alert: true},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			log.Reset()
			if tc.fail != nil {
				tc.fail(h.fake)
			}
			r := h.post(dev1, tc.req)
			h.fake.Recover()

			if !tc.alert {
				if r.status != http.StatusOK {
					t.Fatalf("when %s, want = 200, got = %s", tc.desc, r)
				}
				if a := apptest.AuditAlerts(t, log.Bytes()); len(a) != 0 {
					t.Errorf("when %s, want = no audit.unavailable line, got = %v", tc.desc, a)
				}
				return
			}
			if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
				t.Errorf("when %s, want = 503 audit_unavailable, got = %s", tc.desc, r)
			}
			var body struct {
				RequestID string `json:"request_id"`
			}
			json.Unmarshal(r.body, &body)
			if body.RequestID == "" {
				t.Errorf("when %s, want = a request_id in the answer, got = %s", tc.desc, r)
			}
			apptest.CheckAuditAlert(t, tc.desc, log.Bytes(), query.EntryPoint, body.RequestID)
		})
	}
}
