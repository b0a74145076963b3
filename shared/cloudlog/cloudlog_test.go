package cloudlog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/shared/cloudlog"
)

// Each level comes out as the severity Cloud Logging knows, with the message under
// "message" and an RFC 3339 "time", one JSON object per line.
func TestSeverity(t *testing.T) {
	tcs := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, "DEBUG"}, {slog.LevelInfo, "INFO"}, {cloudlog.LevelNotice, "NOTICE"},
		{slog.LevelWarn, "WARNING"}, {slog.LevelError, "ERROR"}, {cloudlog.LevelCritical, "CRITICAL"},
		{cloudlog.LevelAlert, "ALERT"}, {cloudlog.LevelEmergency, "EMERGENCY"},
	}
	for _, tc := range tcs {
		var buf bytes.Buffer
		log := cloudlog.New(&buf)
		log.Log(t.Context(), tc.level, "something \"quoted\"\nhappened", "request_id", "0123456789abcdef", cloudlog.Error(errors.New("boom")))
		if strings.Count(buf.String(), "\n") != 1 || !strings.HasSuffix(buf.String(), "\n") {
			t.Fatalf("when logging at %v, want = one line, got = %q", tc.level, buf.String())
		}
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("when logging at %v, want = a JSON object, got = %q (%v)", tc.level, buf.String(), err)
		}
		if m["severity"] != tc.want || m["message"] != "something \"quoted\"\nhappened" || m["request_id"] != "0123456789abcdef" || m["error"] != "boom" {
			t.Errorf("when logging at %v, want = severity %s with the message, request_id and error, got = %v", tc.level, tc.want, m)
		}
		if _, ok := m["level"]; ok {
			t.Errorf("when logging at %v, want = no \"level\" key (Cloud Logging reads \"severity\"), got = %v", tc.level, m)
		}
		if _, ok := m["msg"]; ok {
			t.Errorf("when logging at %v, want = no \"msg\" key (Cloud Logging reads \"message\"), got = %v", tc.level, m)
		}
		ts, _ := m["time"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("when logging at %v, want = an RFC 3339 time, got = %q", tc.level, ts)
		}
	}
}

// Attributes in a group keep their names: only the top-level level and message are renamed.
func TestGroupsKeepKeys(t *testing.T) {
	var buf bytes.Buffer
	cloudlog.New(&buf).WithGroup("details").Info("x", "level", "deep", "msg", "inner")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	d, _ := m["details"].(map[string]any)
	if m["severity"] != "INFO" || d["level"] != "deep" || d["msg"] != "inner" {
		t.Errorf("want = top-level severity INFO and the group's own level and msg, got = %v", m)
	}
}
