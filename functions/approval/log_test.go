package approval_test

import (
	"bytes"
	"net/http"
	"testing"

	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/migrate"
)

// With its database gone, ApprovalCallback answers 503 and leaves one structured line in
// its log naming the request and the cause, which the answer leaves out.
func TestFailureIsLogged(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(approval.EntryPoint, migrate.GroupApprovals)
	var log bytes.Buffer
	deps.Log = cloudlog.New(&log)
	url := env.Serve(approval.New(deps)).URL + "/"
	deps.Pool.Close()
	for _, tc := range []struct {
		desc string
		body map[string]any
	}{
		{"a decision is stored", map[string]any{"request_id": "ar_0123456789ab", "decision": "approve", "comment": "looked at it"}},
		{"a grant is revoked", map[string]any{"grant_id": 1, "decision": "revoke"}},
	} {
		log.Reset()
		r := env.Do(http.MethodPost, url, "lead1@example.com", tc.body)
		rid, _ := r.JSON()["request_id"].(string)
		if r.Status != http.StatusServiceUnavailable || r.Code() != "database_unavailable" || bytes.Contains(r.Body, []byte("closed pool")) {
			t.Errorf("when %s on a closed pool, want = 503 database_unavailable without the cause, got = %d %s", tc.desc, r.Status, r.Body)
		}
		apptest.CheckErrorLine(t, tc.desc+" on a closed pool", log.Bytes(), rid, "closed pool")
	}
}
