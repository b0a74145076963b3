package query

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// writers holds answers' buffers, so that a request does not allocate and clear 32 KB.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// render answers with the result in the requested format. The answer is written as it is
// built, through a small buffer, so it is never held whole in memory besides the rows.
// Values are written as the comment on kind says.
func render(w http.ResponseWriter, format string, res *result) error {
	hd := w.Header()
	hd.Set("X-Airlock-Request-Id", res.requestID)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	switch {
	case format == "table":
		hd.Set("Content-Type", "text/plain; charset=utf-8")
	case res.write == nil && format == "csv":
		hd.Set("Content-Type", "text/csv; charset=utf-8")
	default:
		hd.Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(http.StatusOK)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil) // keeps no reference to w
		writers.Put(bw)
	}()
	e := &encoder{w: bw}
	switch {
	case res.write != nil && format == "table":
		writeSummary(e, res)
	case res.write != nil:
		b, err := json.Marshal(struct {
			RequestID string `json:"request_id"`
			*WriteResult
			DurationMS int64 `json:"duration_ms"`
		}{res.requestID, res.write, res.duration.Milliseconds()})
		if err != nil {
			return fmt.Errorf("query: encoding a write's answer: %w", err) // cannot happen: all fields encode
		}
		e.jsonText(b)
		e.byte('\n')
	case format == "table":
		writeTable(e, res)
	case format == "csv":
		writeCSV(e, res)
	default:
		writeJSON(e, res)
	}
	bw.Flush() // an error here is the client gone: there is no one left to answer
	return nil
}

// writeJSON writes a read's answer: {"columns", "duration_ms", "request_id", "row_count",
// "rows", "truncated"}.
func writeJSON(e *encoder, res *result) {
	e.ascii(`{"columns":[`)
	for i, c := range res.columns {
		if i > 0 {
			e.byte(',')
		}
		e.ascii(`{"name":`)
		e.jsonString([]byte(c.Name))
		e.ascii(`,"type":`)
		e.jsonString([]byte(c.Type))
		e.ascii(`,"masked":` + strconv.FormatBool(c.Masked))
		if c.Mask != "" {
			e.ascii(`,"mask":`)
			e.jsonString([]byte(c.Mask))
		}
		if c.GrantRole != "" {
			e.ascii(`,"grant_role":`)
			e.jsonString([]byte(c.GrantRole))
		}
		e.byte('}')
	}
	e.ascii(`],"duration_ms":` + strconv.FormatInt(res.duration.Milliseconds(), 10))
	e.ascii(`,"request_id":`)
	e.jsonString([]byte(res.requestID))
	e.ascii(`,"row_count":` + strconv.Itoa(len(res.rows)) + `,"rows":[`)
	for r, row := range res.rows {
		if res.expired() {
			// row_count said more: the error record below says why the rows stop here.
			e.ascii(`],"truncated":true,"truncated_by":"grant_expired","error":{"code":"grant_expired","message":`)
			e.jsonString([]byte(expiredNote(res, r)))
			e.ascii("}}\n")
			return
		}
		if r > 0 {
			e.byte(',')
		}
		e.byte('[')
		for i, v := range row {
			if i > 0 {
				e.byte(',')
			}
			e.jsonValue(res.kinds[i], v)
		}
		e.byte(']')
	}
	e.ascii(`],"truncated":` + strconv.FormatBool(res.truncated))
	if res.truncated {
		// The row cap is reached when the rows fill it; otherwise the bytes were.
		by := "max_bytes"
		if len(res.rows) >= res.maxRows {
			by = "max_rows"
		}
		e.ascii(`,"truncated_by":"` + by + `"`)
	}
	e.ascii("}\n")
}

// writeCSV writes a header of column names and one record per row.
func writeCSV(e *encoder, res *result) {
	for i, c := range res.columns {
		if i > 0 {
			e.byte(',')
		}
		e.textValue(csvStyle, []byte(c.Name))
	}
	e.byte('\n')
	for r, row := range res.rows {
		if res.expired() {
			e.ascii("ERROR: grant_expired: " + expiredNote(res, r) + "\n")
			return
		}
		for i, v := range row {
			if i > 0 {
				e.byte(',')
			}
			e.textValue(csvStyle, v)
		}
		e.byte('\n')
	}
}

// width is how many characters v takes in a table cell.
func width(v []byte) int {
	var e encoder
	e.textValue(tableStyle, v)
	return e.runes
}

// writeTable prints a psql-style aligned table, so that gcloud functions call and curl
// read well in a terminal. Padding is bounded: when padding every cell to its column's
// width would make the table larger than twice max_bytes (one long value in a column of
// short ones, over many rows), cells are separated but not padded, and the footer says so.
func writeTable(e *encoder, res *result) {
	widths := make([]int, len(res.columns))
	for i, c := range res.columns {
		widths[i] = width([]byte(c.Name))
	}
	for _, row := range res.rows {
		for i, v := range row {
			widths[i] = max(widths[i], width(v))
		}
	}
	line := int64(1)
	for i, w := range widths {
		line += int64(w)
		if i > 0 {
			line += 3
		}
	}
	aligned := line*int64(len(res.rows)+2) <= 2*res.maxBytes
	cell := func(i int, v []byte) {
		if i > 0 {
			e.ascii(" | ")
		}
		start := e.runes
		e.textValue(tableStyle, v)
		if aligned {
			for pad := widths[i] - (e.runes - start); pad > 0; pad-- {
				e.byte(' ')
			}
		}
	}
	for i, c := range res.columns {
		cell(i, []byte(c.Name))
	}
	e.byte('\n')
	if aligned {
		for i, w := range widths {
			if i > 0 {
				e.ascii("-+-")
			}
			for range w {
				e.byte('-')
			}
		}
		e.byte('\n')
	}
	for r, row := range res.rows {
		if res.expired() {
			e.ascii("ERROR: grant_expired: " + expiredNote(res, r) + "\n")
			return
		}
		for i, v := range row {
			cell(i, v)
		}
		e.byte('\n')
	}
	plural := "s"
	if len(res.rows) == 1 {
		plural = ""
	}
	suffix := ""
	if res.truncated {
		suffix = ", truncated"
	}
	if !aligned {
		suffix += ", not aligned: padding would make the table too large"
	}
	e.ascii(fmt.Sprintf("(%d row%s%s)\n", len(res.rows), plural, suffix))
}

// writeSummary prints a write's or a revert's answer as SQL comments followed by the
// statements, so that it reads well in a terminal and a review. The previews are JSON,
// written with unsafe characters escaped (see kind); the statements spell unsafe
// characters in E'…' literals (shared/revert), and visible is a second guard on that.
func writeSummary(e *encoder, res *result) {
	wr := res.write
	switch {
	case wr.Committed:
		e.visible(fmt.Sprintf("-- request %s: %d row(s) changed, committed\n", res.requestID, wr.RowsAffected))
	case wr.Note != "":
		e.visible(fmt.Sprintf("-- request %s: %s\n", res.requestID, wr.Note))
	default:
		e.visible(fmt.Sprintf("-- request %s: dry run, %d row(s) would change; nothing was committed\n", res.requestID, wr.RowsAffected))
	}
	if wr.Reverts != "" {
		e.visible(fmt.Sprintf("-- reverts the write %s\n", wr.Reverts))
	}
	for _, row := range wr.Preview {
		j, err := json.Marshal(row)
		if err != nil {
			continue // cannot happen: a preview holds JSON values
		}
		e.ascii("-- row after: ")
		e.jsonText(j)
		e.byte('\n')
	}
	for _, s := range wr.Statements {
		e.visible(s)
		e.byte('\n')
	}
}

// expiredNote says that an answer stopped after n rows because the grants it was read
// under ended while it was being sent. It holds only ASCII.
func expiredNote(res *result, n int) string {
	return fmt.Sprintf("your grant ended at %s while the answer was being sent; it stops after %d of %d rows",
		res.until.UTC().Format(time.RFC3339), n, len(res.rows))
}
