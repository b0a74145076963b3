package access_test

import (
	"bytes"
	"net/http"
	"testing"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/migrate"
)

// With its database gone, RequestAccess answers 503 and leaves one structured line in its
// log naming the request and the cause, which the answer leaves out.
func TestFailureIsLogged(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(access.EntryPoint, migrate.GroupRequests)
	var log bytes.Buffer
	deps.Log = cloudlog.New(&log)
	url := env.Serve(access.New(deps)).URL + "/"
	deps.Pool.Close()
	for _, tc := range []struct {
		desc   string
		method string
		body   any
	}{
		{"a request is stored", http.MethodPost, map[string]any{"role": "unmasked_users", "reason": "Investigating support ticket SUP-881 about a wrong e-mail address", "duration": "10m"}},
		{"the requests are listed", http.MethodGet, nil},
	} {
		log.Reset()
		r := env.Do(tc.method, url+"?format=json", dev1, tc.body)
		rid, _ := r.JSON()["request_id"].(string)
		if r.Status != http.StatusServiceUnavailable || r.Code() != "database_unavailable" || bytes.Contains(r.Body, []byte("closed pool")) {
			t.Errorf("when %s on a closed pool, want = 503 database_unavailable without the cause, got = %d %s", tc.desc, r.Status, r.Body)
		}
		apptest.CheckErrorLine(t, tc.desc+" on a closed pool", log.Bytes(), rid, "closed pool")
	}
}
