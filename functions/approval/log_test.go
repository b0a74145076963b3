package approval_test

import (
	"net/http"
	"testing"

	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/migrate"
)

// With its database gone, ApprovalCallback answers 503 and leaves one structured line in
// its log naming the request and the cause, which the answer leaves out.
func TestFailureIsLogged(t *testing.T) {
	env := apptest.New(t)
	url, log := env.ClosedDB(approval.EntryPoint, migrate.GroupApprovals, func(d *app.Deps) http.Handler { return approval.New(d) })
	decide := map[string]any{"request_id": "ar_0123456789ab", "decision": "approve", "comment": "looked at it"}
	apptest.CheckFailureLogged(t, "a decision is made on a closed pool", env.Do(http.MethodPost, url, "lead1@example.com", decide), log, "database_unavailable", "closed pool")
	revoke := map[string]any{"grant_id": 1, "decision": "revoke"}
	apptest.CheckFailureLogged(t, "a grant is revoked on a closed pool", env.Do(http.MethodPost, url, "lead1@example.com", revoke), log, "database_unavailable", "closed pool")
}
