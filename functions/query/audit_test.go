package query_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/audit"
)

func TestAuditToCloudLogging(t *testing.T) {
	h := newHarness(t, harnessOptions{cloud: true, auditOpts: []audit.Option{audit.WithTimeout(auditTimeout)}})
	const sql = `SELECT id, email FROM users ORDER BY id LIMIT 3`
	r := h.query(dev1, sql)
	if r.status != http.StatusOK {
		t.Fatalf("when dev1 reads with the Cloud Logging sink, want = 200, got = %s", r)
	}

	var events []string
	var attempt, result map[string]any
	for _, e := range h.fake.Entries() {
		if !strings.HasSuffix(e.GetLogName(), "/logs/airlock-audit") {
			t.Errorf("want every audit entry in log airlock-audit, got logName = %q", e.GetLogName())
		}
		p := e.GetJsonPayload().AsMap()
		ev, _ := p["event"].(string)
		events = append(events, ev)
		switch ev {
		case audit.EventQueryAttempt:
			attempt = p
		case audit.EventQueryResult:
			result = p
		}
	}
	// email is sensitive and dev1 holds no unmasked grant: the read runs (masked by the
	// database) and raises a masked-column alert before it does.
	if want := "query.attempt,security.masked_column_access,query.result"; strings.Join(events, ",") != want {
		t.Errorf("after one read of a masked column, want events = %s, got = %v", want, events)
	}
	for name, p := range map[string]map[string]any{"query.attempt": attempt, "query.result": result} {
		if p == nil {
			continue
		}
		if p["actor"] != dev1 || p["sql"] != sql || p["fingerprint"] == nil || p["fingerprint"] == "" || p["decision"] != "allowed" || p["function"] != query.EntryPoint {
			t.Errorf("in %s, want actor=%s sql=%q a fingerprint decision=allowed function=%s, got = %v", name, dev1, sql, query.EntryPoint, p)
		}
	}
	if result != nil && result["rows"] != float64(3) {
		t.Errorf("in query.result, want rows = 3, got = %v", result["rows"])
	}
	if attempt != nil && result != nil && attempt["request_id"] != result["request_id"] {
		t.Errorf("want attempt and result to share a request_id, got = %v and %v", attempt["request_id"], result["request_id"])
	}

	// A denial is recorded too, with its rule.
	n := len(h.fake.Entries())
	r = h.query(dev1, `DELETE FROM trades`)
	if r.status != http.StatusForbidden {
		t.Fatalf("when dev1 deletes, want = 403, got = %s", r)
	}
	es := h.fake.Payloads()[n:]
	if len(es) != 2 || es[0]["event"] != audit.EventQueryAttempt || es[0]["decision"] != "denied" || es[0]["rule"] != "delete_forbidden" ||
		es[1]["event"] != alerts.EventForbiddenStatement {
		t.Errorf("after a denied DELETE, want a query.attempt decision=denied rule=delete_forbidden and a %s alert, got = %v", alerts.EventForbiddenStatement, es)
	}
	// The severity reaches Cloud Logging itself, where log-based metrics count it.
	if got := h.fake.Entries()[n+1].GetSeverity().String(); got != "ALERT" {
		t.Errorf("want the forbidden-statement alert logged with severity ALERT, got = %s", got)
	}
}

func TestAuditFailsClosed(t *testing.T) {
	h := newHarness(t, harnessOptions{cloud: true, auditOpts: []audit.Option{audit.WithTimeout(auditTimeout)}})
	h.grant(dev1, "write_accounts", time.Hour, true)
	write := query.Request{SQL: `UPDATE accounts SET updated_at = '2031-01-01' WHERE id = 5`, Mode: "write", Reason: "ticket OPS-7 touch account"}
	if r := h.query(dev1, `SELECT 1`); r.status != http.StatusOK {
		t.Fatalf("before any failure, want = 200, got = %s", r)
	}

	t.Run("sink unavailable", func(t *testing.T) {
		h.fake.FailWith(codes.Unavailable)
		defer h.fake.Recover()
		r := h.query(dev1, `SELECT id FROM trades LIMIT 1`)
		if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
			t.Errorf("when the audit sink fails, want read = 503 audit_unavailable, got = %s", r)
		}
		before := h.checksum("accounts")
		r = h.post(dev1, write)
		if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
			t.Errorf("when the audit sink fails, want write = 503 audit_unavailable, got = %s", r)
		}
		if h.checksum("accounts") != before {
			t.Errorf("when the audit sink fails, want accounts unchanged, got a different checksum")
		}
	})

	t.Run("outcome unrecordable rolls the write back", func(t *testing.T) {
		// The attempt is recorded; the committed write's outcome, recorded before COMMIT, is not.
		h.fake.SetHook(func(_ context.Context, req *loggingpb.WriteLogEntriesRequest) (bool, error) {
			for _, e := range req.GetEntries() {
				if e.GetLabels()["event"] == audit.EventQueryResult {
					return false, status.Error(codes.Unavailable, "injected")
				}
			}
			return true, nil
		})
		defer h.fake.Recover()
		before := h.checksum("accounts")
		r := h.post(dev1, write)
		if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
			t.Errorf("when the write's outcome cannot be recorded, want = 503 audit_unavailable, got = %s", r)
		}
		if h.checksum("accounts") != before {
			t.Errorf("when the write's outcome cannot be recorded, want the write rolled back, got accounts changed")
		}
	})

	t.Run("sink hangs", func(t *testing.T) {
		h.fake.Hang()
		defer h.fake.Recover()
		calls := h.fake.Calls()
		r := h.query(dev1, `SELECT id FROM trades LIMIT 1`)
		attempts := h.fake.Calls() - calls
		if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" {
			t.Errorf("when the audit sink hangs, want = 503 audit_unavailable, got = %s", r)
		}
		if attempts > maxAuditAttempts {
			t.Errorf("when the audit sink hangs, want the refusal after at most %d audit writes (each bounded by the %v audit timeout), got = %d", maxAuditAttempts, auditTimeout, attempts)
		}
	})

	t.Run("recovers", func(t *testing.T) {
		h.fake.Recover()
		if r := h.query(dev1, `SELECT id FROM trades LIMIT 1`); r.status != http.StatusOK {
			t.Errorf("after the sink recovers, want a read = 200, got = %s", r)
		}
		before := h.checksum("accounts")
		r := h.post(dev1, write)
		if r.status != http.StatusOK || !r.write(t).Committed {
			t.Fatalf("after the sink recovers, want the write = 200 committed, got = %s", r)
		}
		if h.checksum("accounts") == before {
			t.Errorf("after a committed write, want accounts changed, got the same checksum")
		}
	})
}

func TestAuditFileRecordsDenialsAndWrites(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.query(dev1, `TRUNCATE trades`)
	es := h.entriesFor(audit.EventQueryAttempt)
	if len(es) != 1 || es[0]["rule"] != "truncate_forbidden" || es[0]["severity"] != string(audit.SeverityAlert) {
		t.Errorf("after a TRUNCATE attempt, want one query.attempt rule=truncate_forbidden severity=ALERT, got = %v", es)
	}
}
