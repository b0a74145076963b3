package sweep

import (
	"bytes"
	"net/http"
	"testing"

	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/cloudlog"
)

// TestKMSUnavailable: when Cloud KMS cannot certify the instance's chain (it fails or
// hangs), no entry can be signed, so the sweep answers 503 audit_unavailable and marks
// nothing expired; once KMS is back, the next run does the work.
func TestKMSUnavailable(t *testing.T) {
	for _, mode := range audittest.ChainStartFailures() {
		t.Run(mode.Desc, func(t *testing.T) {
			h := newHarness(t)
			ids := h.grants(t, "dev1@example.com", "dev2@example.com")
			var log bytes.Buffer
			h.h.deps.Log = cloudlog.New(&log)
			mode.Fail(h.logs)
			code, body := h.call(t, scheduler)
			if code != http.StatusServiceUnavailable || errorCode(body) != "audit_unavailable" {
				t.Fatalf("when %s, want = 503 audit_unavailable, got = %d %v", mode.Desc, code, body)
			}
			rid, _ := body["request_id"].(string)
			apptest.CheckAuditAlert(t, "the sweep runs while "+mode.Desc, log.Bytes(), EntryPoint, rid)
			if st := h.statuses(t); st["active"] != len(ids) {
				t.Errorf("when %s, want every grant still marked active, got = %v", mode.Desc, st)
			}
			h.logs.Recover()
			if code, body := h.call(t, scheduler); code != http.StatusOK || body["expired_grants"] != float64(len(ids)) {
				t.Errorf("after KMS recovers, want = 200 with %d expired, got = %d %v", len(ids), code, body)
			}
		})
	}
}
