package query

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswerStopsAtGrantEnd: an answer being written when the grants it was read under
// end stops there, and says so in every format: a JSON error record (the rows so far,
// truncated_by grant_expired), a last line in CSV and table answers.
func TestAnswerStopsAtGrantEnd(t *testing.T) {
	const textOID = 25
	res := &result{
		requestID: "0123456789abcdef",
		columns:   []Column{{Name: "email", Type: "text"}},
		kinds:     []kind{kindOf(textOID)},
		maxRows:   10, maxBytes: 1 << 20,
		until: time.Now().Add(-time.Millisecond),
	}
	res.rows = [][][]byte{{[]byte("a@example.com")}, {[]byte("b@example.com")}}
	for _, format := range []string{"json", "csv", "table"} {
		w := httptest.NewRecorder()
		if err := render(w, format, res); err != nil {
			t.Fatal(err)
		}
		body := w.Body.String()
		if strings.Contains(body, "a@example.com") {
			t.Errorf("in a %s answer written after the grant ended, want no row, got = %q", format, body)
		}
		switch format {
		case "json":
			var got struct {
				Rows        []any  `json:"rows"`
				Truncated   bool   `json:"truncated"`
				TruncatedBy string `json:"truncated_by"`
				Error       struct{ Code, Message string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("the JSON answer cut at the grant's end does not parse: %v (%q)", err, body)
			}
			if got.Error.Code != "grant_expired" || !got.Truncated || got.TruncatedBy != "grant_expired" || len(got.Rows) != 0 {
				t.Errorf("in a JSON answer cut at the grant's end, want error grant_expired, truncated_by grant_expired and no rows, got = %+v", got)
			}
		default:
			if !strings.HasSuffix(body, "\n") || !strings.Contains(body, "ERROR: grant_expired: ") || !strings.Contains(body, "after 0 of 2 rows") {
				t.Errorf("in a %s answer cut at the grant's end, want a last line saying grant_expired after 0 of 2 rows, got = %q", format, body)
			}
		}
	}
	res.until = time.Now().Add(time.Hour)
	w := httptest.NewRecorder()
	render(w, "csv", res)
	if got := w.Body.String(); got != "email\na@example.com\nb@example.com\n" {
		t.Errorf("before the grant's end, want the whole answer, got = %q", got)
	}
}
