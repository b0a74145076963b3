package access_test

import (
	"net/http"
	"testing"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit/audittest"
)

// TestKMSFailsClosed: when Cloud KMS cannot certify the instance's chain (it fails or
// hangs), the first request cannot be recorded, so RequestAccess creates nothing and
// answers 503 audit_unavailable; once KMS is back, the same request is created.
func TestKMSFailsClosed(t *testing.T) {
	for _, mode := range audittest.ChainStartFailures() {
		t.Run(mode.Desc, func(t *testing.T) {
			f := newFailClosed(t)
			reqs, notes := f.counts(t)
			mode.Fail(f.logs)
			body := map[string]any{"role": "unmasked_users", "reason": "Investigating support ticket SUP-881 about a wrong e-mail address", "duration": "10m"}
			r := f.Do("POST", f.url, dev1, body)
			if r.Status != http.StatusServiceUnavailable || r.Code() != "audit_unavailable" {
				t.Errorf("when %s, want 503 audit_unavailable, got = %d %s", mode.Desc, r.Status, r.Body)
			}
			rid, _ := r.JSON()["request_id"].(string)
			apptest.CheckAuditAlert(t, mode.Desc, f.log.Bytes(), access.EntryPoint, rid)
			if gr, gn := f.counts(t); gr != reqs || gn != notes {
				t.Errorf("when %s, want nothing created, got = %d requests and %d notifications more", mode.Desc, gr-reqs, gn-notes)
			}
			f.logs.Recover()
			if r := f.Do("POST", f.url, dev1, body); r.Status != http.StatusCreated {
				t.Errorf("when KMS is back, want 201, got = %d %s", r.Status, r.Body)
			}
		})
	}
}
