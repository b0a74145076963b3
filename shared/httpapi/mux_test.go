package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/httpapi"
)

type answer struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func TestMux(t *testing.T) {
	m := httpapi.NewMux()
	ok := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteJSON(w, http.StatusOK, map[string]string{"route": name, "table": r.PathValue("table")})
		})
	}
	m.Handle("POST /{$}", ok("query"))
	m.Handle("GET /schema", ok("tables"))
	m.Handle("GET /schema/{table}", ok("table"))
	tcs := []struct {
		desc, method, path string
		wantStatus         int
		wantCode           string // error answers
		wantAllow          string
		wantRoute          string // successes
		wantTable          string
	}{
		{desc: "the query route", method: "POST", path: "/", wantStatus: 200, wantRoute: "query"},
		{desc: "a GET on the query route", method: "GET", path: "/", wantStatus: 405, wantCode: "method_not_allowed", wantAllow: "POST"},
		{desc: "a HEAD on the query route", method: "HEAD", path: "/", wantStatus: 405, wantAllow: "POST"},
		{desc: "the table list", method: "GET", path: "/schema", wantStatus: 200, wantRoute: "tables"},
		{desc: "HEAD is GET's", method: "HEAD", path: "/schema", wantStatus: 200},
		{desc: "one table", method: "GET", path: "/schema/users", wantStatus: 200, wantRoute: "table", wantTable: "users"},
		{desc: "a POST on a table", method: "POST", path: "/schema/users", wantStatus: 405, wantCode: "method_not_allowed", wantAllow: "GET, HEAD"},
		{desc: "a path no route has", method: "POST", path: "/nothing", wantStatus: 404, wantCode: "not_found"},
		{desc: "below a table", method: "GET", path: "/schema/users/x", wantStatus: 404, wantCode: "not_found"},
		{desc: "a trailing slash", method: "GET", path: "/schema/users/", wantStatus: 404, wantCode: "not_found"},
		{desc: "a path to clean, not redirected", method: "POST", path: "//", wantStatus: 404, wantCode: "not_found"},
		{desc: "dot-dot, not redirected", method: "GET", path: "/schema/x/../users", wantStatus: 404, wantCode: "not_found"},
		{desc: "a prefix of a route", method: "GET", path: "/schem", wantStatus: 404, wantCode: "not_found"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://x"+tc.path, nil)
			w := httptest.NewRecorder()
			m.ServeHTTP(w, r)
			if w.Code != tc.wantStatus || w.Header().Get("Allow") != tc.wantAllow {
				t.Fatalf("when %s %s, want = %d with Allow %q, got = %d, Allow %q: %s", tc.method, tc.path, tc.wantStatus, tc.wantAllow, w.Code, w.Header().Get("Allow"), w.Body)
			}
			if tc.method == "HEAD" {
				return
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("when %s %s, want = a JSON answer, got = Content-Type %q", tc.method, tc.path, ct)
			}
			if tc.wantCode != "" {
				var a answer
				if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || a.Error.Code != tc.wantCode || a.Error.Message == "" || len(a.RequestID) != 16 {
					t.Errorf("when %s %s, want = error %s with a message and a request id, got = %s (%v)", tc.method, tc.path, tc.wantCode, w.Body, err)
				}
				return
			}
			var got map[string]string
			json.Unmarshal(w.Body.Bytes(), &got)
			if got["route"] != tc.wantRoute || got["table"] != tc.wantTable {
				t.Errorf("when %s %s, want = route %q table %q, got = %v", tc.method, tc.path, tc.wantRoute, tc.wantTable, got)
			}
		})
	}
}

// A plain error is answered 500 internal and logged once, with the request id the
// answer carries and the cause; an *Error is answered as it is and not logged.
func TestServeLogsInternalErrors(t *testing.T) {
	var logs bytes.Buffer
	log := cloudlog.New(&logs)
	w := httptest.NewRecorder()
	httpapi.Serve(w, httptest.NewRequest("POST", "/", nil), log, func(w http.ResponseWriter, r *http.Request, rid string) error {
		return errors.New("pool closed: the cause")
	})
	var a answer
	json.Unmarshal(w.Body.Bytes(), &a)
	if w.Code != 500 || a.Error.Code != "internal" || strings.Contains(w.Body.String(), "the cause") {
		t.Errorf("when a handler fails with a plain error, want = 500 internal without the cause, got = %d %s", w.Code, w.Body)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var m map[string]any
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &m) != nil {
		t.Fatalf("when a handler fails with a plain error, want = one JSON log line, got = %q", logs.String())
	}
	if m["severity"] != "ERROR" || m["request_id"] != a.RequestID || m["error"] != "pool closed: the cause" || !strings.Contains(m["message"].(string), "the cause") {
		t.Errorf("when a handler fails with a plain error, want = an ERROR line with request_id %s and the cause, got = %v", a.RequestID, m)
	}

	logs.Reset()
	w = httptest.NewRecorder()
	httpapi.Serve(w, httptest.NewRequest("POST", "/", nil), log, func(w http.ResponseWriter, r *http.Request, rid string) error {
		return httpapi.Errorf(http.StatusForbidden, "denied", "no")
	})
	if w.Code != 403 || logs.Len() != 0 {
		t.Errorf("when a handler answers an *Error, want = that answer and no log line, got = %d %s, log %q", w.Code, w.Body, logs.String())
	}
}

// The cause an *Error carries is logged with the request id and never sent.
func TestServeLogsTheCauseOfAnError(t *testing.T) {
	var logs bytes.Buffer
	w := httptest.NewRecorder()
	httpapi.Serve(w, httptest.NewRequest("POST", "/", nil), cloudlog.New(&logs), func(w http.ResponseWriter, r *http.Request, rid string) error {
		return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "connection_lost", Message: "the database connection failed", Err: errors.New("dial tcp: secret-host refused")}
	})
	var a answer
	json.Unmarshal(w.Body.Bytes(), &a)
	var m map[string]any
	if err := json.Unmarshal(logs.Bytes(), &m); err != nil {
		t.Fatalf("want = one JSON log line, got = %q", logs.String())
	}
	if w.Code != 503 || a.Error.Code != "connection_lost" || strings.Contains(w.Body.String(), "secret-host") {
		t.Errorf("want = 503 connection_lost without the cause, got = %d %s", w.Code, w.Body)
	}
	if m["request_id"] != a.RequestID || m["error"] != "dial tcp: secret-host refused" || m["code"] != "connection_lost" {
		t.Errorf("want = the cause logged with request_id %s, got = %v", a.RequestID, m)
	}
}
