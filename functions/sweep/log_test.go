package sweep

import (
	"bytes"
	"net/http"
	"testing"

	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/cloudlog"
)

// With its database gone, SweepExpired answers 503 and leaves one structured line in its
// log naming the request and the cause, which the answer leaves out.
func TestFailureIsLogged(t *testing.T) {
	h := newHarness(t)
	var log bytes.Buffer
	h.h.deps.Log = cloudlog.New(&log)
	h.h.deps.Pool.Close()
	code, body := h.call(t, scheduler)
	rid, _ := body["request_id"].(string)
	if code != http.StatusServiceUnavailable || errorCode(body) != "database_unavailable" {
		t.Errorf("when the sweep runs on a closed pool, want = 503 database_unavailable, got = %d %v", code, body)
	}
	apptest.CheckErrorLine(t, "the sweep runs on a closed pool", log.Bytes(), rid, "closed pool")
}
