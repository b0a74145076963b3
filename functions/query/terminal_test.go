package query_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/sqlguard"
)

// hostile is a value a customer controls (a name, an address) crafted to drive a
// developer's terminal: set its title and ring (OSC … BEL), clear the screen (CSI 2J),
// a C1 CSI, a right-to-left override that makes "txt.exe" read "exe.txt", a zero-width
// space, a carriage return that hides what came before, and text that looks like
// Airlock's own escapes.
const hostile = "\x1b]0;owned\x07\x1b[2J\u009b31m\u202eexe.txt\u200b\rend \\u{41} \\n \\x01 ."

// noRawUnsafe fails when body holds an unsafe character raw, other than allowed.
func noRawUnsafe(t *testing.T, what string, body []byte, allowed string) {
	t.Helper()
	for i, r := range string(body) {
		if query.Unsafe(r) && !strings.ContainsRune(allowed, r) {
			t.Errorf("%s: want no control or format character raw, got %U at byte %d of %q", what, r, i, body)
			return
		}
	}
}

// TestNoValueDrivesTheTerminal: stored values and column names a developer reads come
// back with every control and format character escaped, in every format, and each
// format can be read back into the exact value.
func TestNoValueDrivesTheTerminal(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	const multiline = "first line\nsecond\tline, \"quoted\""
	if _, err := h.owner.Exec(ctx, `UPDATE public.users SET country = $1 WHERE id = 1`, hostile); err != nil {
		t.Fatal(err)
	}
	if _, err := h.owner.Exec(ctx, `UPDATE public.users SET country = $1 WHERE id = 2`, multiline); err != nil {
		t.Fatal(err)
	}
	const sql = `SELECT country, id FROM users WHERE id IN (1, 2) ORDER BY id`
	want := []string{hostile, multiline}

	r := h.post(dev1, query.Request{SQL: sql})
	noRawUnsafe(t, "JSON answer", r.body, "\n")
	if res := r.read(t); len(res.Rows) != 2 || res.Rows[0][0] != hostile || res.Rows[1][0] != multiline {
		t.Errorf("when reading hostile values as JSON, want them exactly, got = %q", res.Rows)
	}

	r = h.post(dev1, query.Request{SQL: sql, Format: "table"})
	noRawUnsafe(t, "table answer", r.body, "\n")
	lines := strings.Split(string(r.body), "\n")
	for i, w := range want {
		cell := strings.TrimRight(strings.Split(lines[2+i], " | ")[0], " ")
		if got := query.DecodeTableCell(cell); got != w {
			t.Errorf("when reading a hostile value as a table, want the cell %q to read back as %q, got = %q", cell, w, got)
		}
	}
	if !strings.Contains(string(r.body), `\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{202e}exe.txt\u{200b}\rend \u{5c}u{41} \u{5c}n \x01 .`) {
		t.Errorf("when reading a hostile value as a table, want the documented escapes, got = %s", r.body)
	}

	r = h.post(dev1, query.Request{SQL: sql, Format: "csv"})
	noRawUnsafe(t, "CSV answer", r.body, "\n\t")
	records, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil || len(records) != 3 {
		t.Fatalf("when reading hostile values as CSV, want a header and two records, got = %q (%v)", r.body, err)
	}
	for i, w := range want {
		if got := query.DecodeCSVField(records[1+i][0]); got != w {
			t.Errorf("when reading a hostile value as CSV, want the field %q to read back as %q, got = %q", records[1+i][0], w, got)
		}
	}
	if records[2][0] != multiline {
		t.Errorf("when reading a value with a newline, a tab, a comma and quotes as CSV, want it as it is, got = %q", records[2][0])
	}

	// A column name is the developer's own text, but still no terminal's business.
	handler := query.New(h.deps)
	dec := sqlguard.Decision{Allowed: true, Kind: "select", Statement: "SELECT 1 AS \"\x1b[31mred\u202e\""}
	for _, format := range []string{"json", "table", "csv"} {
		w := handler.Unguarded(ctx, dev1, query.Request{Format: format}, &dec)
		if w.Code != http.StatusOK {
			t.Fatalf("reading a column named with ESC as %s: want = 200, got = %d %s", format, w.Code, w.Body)
		}
		noRawUnsafe(t, "the column name in a "+format+" answer", w.Body.Bytes(), "\n")
	}
}

// TestWriteAnswersDriveNoTerminal: a write's preview and a revert's statements show the
// rows' values, which customers control; neither holds a control character raw, and a
// revert statement spells them in an E'…' literal that means the same value.
func TestWriteAnswersDriveNoTerminal(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	h.grant(dev1, "write_withdrawals", time.Hour, true)
	if _, err := h.owner.Exec(ctx, `UPDATE public.withdrawals SET status = $1 WHERE id = 1`, hostile); err != nil {
		t.Fatal(err)
	}
	const reason = "ticket OPS-9: terminal test"
	for _, format := range []string{"json", "table"} {
		r := h.post(dev1, query.Request{SQL: `UPDATE withdrawals SET currency = currency WHERE id = 1`, Mode: "write", DryRun: true, Reason: reason, Format: format})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `\u001b]0;owned`) {
			t.Errorf("when dry-running a write of a row holding a hostile value as %s, want = 200 with the preview escaped, got = %s", format, r)
		}
		noRawUnsafe(t, "a dry run's "+format+" answer", r.body, "\n")
	}

	r := h.post(dev1, query.Request{SQL: `UPDATE withdrawals SET status = 'sent' WHERE id = 1`, Mode: "write", Reason: reason})
	if r.status != http.StatusOK {
		t.Fatalf("writing the row: want = 200, got = %s", r)
	}
	var wr struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal(r.body, &wr)
	for _, format := range []string{"json", "table"} {
		r = h.post(dev1, query.Request{Mode: "revert", Revert: wr.RequestID, DryRun: true, Reason: reason, Format: format})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `E'\\u001b]0;owned\\u0007`) && !strings.Contains(string(r.body), `E'\u001b]0;owned\u0007`) {
			t.Errorf("when dry-running a revert to a hostile value as %s, want = 200 with an E'' literal, got = %s", format, r)
		}
		noRawUnsafe(t, "a revert's "+format+" answer", r.body, "\n")
	}
	// The revert restores the value exactly.
	r = h.post(dev1, query.Request{Mode: "revert", Revert: wr.RequestID, Reason: reason})
	if got := h.scalar(`SELECT status FROM public.withdrawals WHERE id = 1`); r.status != http.StatusOK || got != hostile {
		t.Errorf("when reverting to a hostile value, want = 200 and the value back exactly, got = %s, %q", r, got)
	}
}
