package query_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/cloudlog"
)

// With its database gone, ExecuteQuery answers 503 and leaves one structured line in its
// log naming the request and the cause, which the answer leaves out.
func TestFailureIsLogged(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var log bytes.Buffer
	h.deps.Log = cloudlog.New(&log)
	h.deps.Pool.Close()
	for _, tc := range []struct{ desc, path string }{
		{"a query runs", "/"},
		{"the schema is described", "/schema"},
	} {
		log.Reset()
		var r response
		if tc.path == "/" {
			r = h.post("dev1@example.com", query.Request{SQL: "SELECT 1"})
		} else {
			r = h.get("dev1@example.com", http.MethodGet, tc.path)
		}
		var body struct {
			RequestID string `json:"request_id"`
		}
		json.Unmarshal(r.body, &body)
		if r.status != http.StatusServiceUnavailable || r.err().Code != "database_unavailable" || bytes.Contains(r.body, []byte("closed pool")) {
			t.Errorf("when %s on a closed pool, want = 503 database_unavailable without the cause, got = %s", tc.desc, r)
		}
		apptest.CheckErrorLine(t, tc.desc+" on a closed pool", log.Bytes(), body.RequestID, "closed pool")
	}
}
