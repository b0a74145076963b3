package approval_test

import (
	"net/http"
	"testing"

	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit/audittest"
)

// TestKMSFailsClosed: when Cloud KMS cannot certify the instance's chain (it fails or
// hangs), ApprovalCallback's first decision cannot be recorded, so nothing changes and
// it answers 503 audit_unavailable; once KMS is back, the same decision is made.
func TestKMSFailsClosed(t *testing.T) {
	for _, mode := range audittest.ChainStartFailures() {
		t.Run(mode.Desc, func(t *testing.T) {
			f := newDecideFlow(t)
			tg := f.request(t, "dev1@example.com", "unmasked_users", f.DB.Roles.Unmasked("users"))
			before := f.state(t, tg)
			mode.Fail(f.logs)
			r := f.api("lead1@example.com", map[string]any{"request_id": tg.request, "decision": "approve"})
			if r.Status != http.StatusServiceUnavailable || r.Code() != "audit_unavailable" {
				t.Errorf("when %s, want 503 audit_unavailable, got = %d %s", mode.Desc, r.Status, r.Body)
			}
			rid, _ := r.JSON()["request_id"].(string)
			apptest.CheckAuditAlert(t, mode.Desc, f.log.Bytes(), approval.EntryPoint, rid)
			if got := f.state(t, tg); got != before {
				t.Errorf("when %s, want nothing changed (%+v), got = %+v", mode.Desc, before, got)
			}
			f.logs.Recover()
			if r := f.api("lead1@example.com", map[string]any{"request_id": tg.request, "decision": "approve"}); r.Status != http.StatusOK {
				t.Errorf("when KMS is back, want 200, got = %d %s", r.Status, r.Body)
			}
			if got := f.state(t, tg); got.Status != "approved" || got.Grants != 1 || !got.Member {
				t.Errorf("when KMS is back, want the request approved and granted, got = %+v", got)
			}
		})
	}
}
