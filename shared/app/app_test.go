package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/cloudlog"
)

func TestAuditUnavailable(t *testing.T) {
	var log bytes.Buffer
	d := &app.Deps{Config: app.Config{Function: "RequestAccess"}, Log: cloudlog.New(&log)}
	cause := fmt.Errorf("%w: writing request.created entry: rpc error: code = Unavailable", audit.ErrUnavailable)

	e := d.AuditUnavailable("0123456789abcdef", cause, "nothing was created; try again shortly")

	if e.Status != http.StatusServiceUnavailable || e.Code != "audit_unavailable" || e.Message != "nothing was created; try again shortly" {
		t.Errorf("when the trail fails, want = 503 audit_unavailable with the caller's message, got = %v", e)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.HasSuffix(log.String(), "\n") {
		t.Fatalf("when the trail fails, want = exactly one newline-terminated log line, got = %q", log.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("when the trail fails, want = a JSON log line, got = %q (%v)", lines[0], err)
	}
	want := map[string]any{"severity": "ALERT", "event": "audit.unavailable", "function": "RequestAccess", "request_id": "0123456789abcdef"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("in the audit.unavailable line, want %s = %v, got = %v", k, v, got[k])
		}
	}
	if msg, _ := got["message"].(string); !strings.Contains(msg, cause.Error()) {
		t.Errorf("in the audit.unavailable line, want a message naming the cause %q, got = %q", cause, msg)
	}
	if _, ok := got["time"].(string); !ok || len(got) != 6 {
		t.Errorf("in the audit.unavailable line, want exactly the fields time, severity, event, function, request_id, message, got = %v", got)
	}
}
