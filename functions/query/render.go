package query

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"airlock.dev/airlock/shared/httpapi"
)

// render answers with the result in the requested format.
func render(w http.ResponseWriter, format string, res *result) error {
	if res.write != nil && format == "table" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Airlock-Request-Id", res.requestID)
		w.WriteHeader(http.StatusOK)
		writeSummary(w, res)
		return nil
	}
	if res.write != nil {
		httpapi.WriteJSON(w, http.StatusOK, struct {
			RequestID string `json:"request_id"`
			*WriteResult
			DurationMS int64 `json:"duration_ms"`
		}{res.requestID, res.write, res.duration.Milliseconds()})
		return nil
	}
	switch format {
	case "table":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Airlock-Request-Id", res.requestID)
		w.WriteHeader(http.StatusOK)
		writeTable(w, res)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("X-Airlock-Request-Id", res.requestID)
		w.WriteHeader(http.StatusOK)
		cw := csv.NewWriter(w)
		header := make([]string, len(res.columns))
		for i, c := range res.columns {
			header[i] = c.Name
		}
		cw.Write(header)
		for _, row := range res.rows {
			cw.Write(cells(row))
		}
		cw.Flush()
	default:
		rows := res.rows
		if rows == nil {
			rows = [][]json.RawMessage{}
		}
		cols := res.columns
		if cols == nil {
			cols = []Column{}
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{
			"request_id":  res.requestID,
			"columns":     cols,
			"rows":        rows,
			"row_count":   len(res.rows),
			"truncated":   res.truncated,
			"duration_ms": res.duration.Milliseconds(),
		})
	}
	return nil
}

// cells turns JSON values into text the way psql prints them: strings bare, NULL empty.
func cells(row []json.RawMessage) []string {
	out := make([]string, len(row))
	for i, v := range row {
		var s string
		switch {
		case string(v) == "null":
		case json.Unmarshal(v, &s) == nil:
			out[i] = s
		default:
			out[i] = string(v)
		}
	}
	return out
}

// writeTable prints a psql-style aligned table, so gcloud functions call reads well.
func writeTable(w http.ResponseWriter, res *result) {
	widths := make([]int, len(res.columns))
	for i, c := range res.columns {
		widths[i] = utf8.RuneCountInString(c.Name)
	}
	text := make([][]string, len(res.rows))
	for r, row := range res.rows {
		text[r] = cells(row)
		for i, s := range text[r] {
			s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
			text[r][i] = s
			widths[i] = max(widths[i], utf8.RuneCountInString(s))
		}
	}
	pad := func(s string, n int) string { return s + strings.Repeat(" ", n-utf8.RuneCountInString(s)) }
	var b strings.Builder
	for i, c := range res.columns {
		if i > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(pad(c.Name, widths[i]))
	}
	b.WriteString("\n")
	for i := range res.columns {
		if i > 0 {
			b.WriteString("-+-")
		}
		b.WriteString(strings.Repeat("-", widths[i]))
	}
	b.WriteString("\n")
	for _, row := range text {
		for i, s := range row {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(pad(s, widths[i]))
		}
		b.WriteString("\n")
	}
	suffix := ""
	if res.truncated {
		suffix = ", truncated"
	}
	fmt.Fprintf(&b, "(%d row%s%s)\n", len(res.rows), map[bool]string{true: "", false: "s"}[len(res.rows) == 1], suffix)
	w.Write([]byte(b.String()))
}

// writeSummary prints a write's or a revert's answer as SQL comments followed by the
// statements, so that it reads well in a terminal and a review.
func writeSummary(w http.ResponseWriter, res *result) {
	wr := res.write
	var b strings.Builder
	switch {
	case wr.Committed:
		fmt.Fprintf(&b, "-- request %s: %d row(s) changed, committed\n", res.requestID, wr.RowsAffected)
	case wr.Note != "":
		fmt.Fprintf(&b, "-- request %s: %s\n", res.requestID, wr.Note)
	default:
		fmt.Fprintf(&b, "-- request %s: dry run, %d row(s) would change; nothing was committed\n", res.requestID, wr.RowsAffected)
	}
	if wr.Reverts != "" {
		fmt.Fprintf(&b, "-- reverts the write %s\n", wr.Reverts)
	}
	for _, row := range wr.Preview {
		j, _ := json.Marshal(row)
		fmt.Fprintf(&b, "-- row after: %s\n", j)
	}
	for _, s := range wr.Statements {
		b.WriteString(s)
		b.WriteString("\n")
	}
	w.Write([]byte(b.String()))
}
