package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/mattn/go-runewidth"
)

// A readAnswer is ExecuteQuery's answer to a read (README, "Querying").
type readAnswer struct {
	RequestID   string              `json:"request_id"`
	Columns     []column            `json:"columns"`
	Rows        [][]json.RawMessage `json:"rows"`
	RowCount    int                 `json:"row_count"`
	Truncated   bool                `json:"truncated"`
	TruncatedBy string              `json:"truncated_by"`
	DurationMS  int64               `json:"duration_ms"`
	raw         []byte              // the answer as it came
}

// A column is one result column. A masked column names its mask and, when there is
// one, the role the caller may request to see it.
type column struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Masked    bool   `json:"masked"`
	Mask      string `json:"mask"`
	GrantRole string `json:"grant_role"`
}

// numeric reports whether the column's values are numbers, which tables right-align.
func (c column) numeric() bool {
	switch c.Type {
	case "int2", "int4", "int8", "oid", "float4", "float8", "numeric":
		return true
	}
	return false
}

func (c column) isJSON() bool { return c.Type == "json" || c.Type == "jsonb" }

// nullText is how a table shows NULL. A text value spelled the same is shown with its
// first letter escaped (\u{4e}ULL), so the two never look alike and the escape rule
// still gives the value back.
const nullText = "NULL"

// A value is one decoded cell: its text as psql prints it, or NULL.
type value struct {
	text string
	null bool
}

// decodeValue turns an answer's JSON value into the text psql shows for it: numbers
// with the server's digits, booleans t and f, json and jsonb as their JSON text, every
// other type the string the server sent.
func decodeValue(c column, raw json.RawMessage) value {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return value{null: true}
	case c.isJSON():
		return value{text: string(raw)}
	case string(raw) == "true":
		return value{text: "t"}
	case string(raw) == "false":
		return value{text: "f"}
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return value{text: s}
		}
	}
	return value{text: string(raw)} // a number, as the server wrote it
}

// tableText is v as a table cell.
func tableText(c column, v value) string {
	switch {
	case v.null:
		return nullText
	case v.text == nullText && !c.numeric():
		return `\u{4e}` + v.text[1:]
	}
	return cell(v.text)
}

// display is how many terminal columns s takes.
func display(s string) int { return runewidth.StringWidth(s) }

// header is a column's heading: its name, and "(masked)" when the caller sees the mask.
func header(c column) string {
	if c.Masked {
		return cell(c.Name) + " (masked)"
	}
	return cell(c.Name)
}

// writeTable prints rows as psql's aligned format does: a heading centred over each
// column, numbers right-aligned, a footer with the row count and, when the caps cut the
// answer, that it was truncated and why. Trailing blanks are left off.
func writeTable(w io.Writer, a *readAnswer, maxRowsAsked int) {
	heads := make([]string, len(a.Columns))
	widths := make([]int, len(a.Columns))
	for i, c := range a.Columns {
		heads[i] = header(c)
		widths[i] = display(heads[i])
	}
	cells := make([][]string, len(a.Rows))
	for r, row := range a.Rows {
		cells[r] = make([]string, len(a.Columns))
		for i, c := range a.Columns {
			var raw json.RawMessage
			if i < len(row) {
				raw = row[i]
			}
			cells[r][i] = tableText(c, decodeValue(c, raw))
			widths[i] = max(widths[i], display(cells[r][i]))
		}
	}
	var b strings.Builder
	line := func(parts []string) {
		b.WriteString(strings.TrimRight(strings.Join(parts, "|"), " "))
		b.WriteByte('\n')
	}
	parts := make([]string, len(a.Columns))
	for i, h := range heads {
		pad := widths[i] - display(h)
		parts[i] = " " + strings.Repeat(" ", pad/2) + h + strings.Repeat(" ", pad-pad/2) + " "
	}
	line(parts)
	for i, w := range widths {
		parts[i] = strings.Repeat("-", w+2)
	}
	b.WriteString(strings.Join(parts, "+") + "\n")
	for _, row := range cells {
		for i, s := range row {
			pad := strings.Repeat(" ", widths[i]-display(s))
			if a.Columns[i].numeric() {
				parts[i] = " " + pad + s + " "
			} else {
				parts[i] = " " + s + pad + " "
			}
		}
		line(parts)
	}
	b.WriteString(footer(a, maxRowsAsked) + "\n")
	io.WriteString(w, b.String())
}

// writeExpanded prints each row as a record of "name | value" lines, as psql's \x does.
func writeExpanded(w io.Writer, a *readAnswer, maxRowsAsked int) {
	heads := make([]string, len(a.Columns))
	nameWidth := 0
	for i, c := range a.Columns {
		heads[i] = header(c)
		nameWidth = max(nameWidth, display(heads[i]))
	}
	var b strings.Builder
	for r, row := range a.Rows {
		vals := make([]string, len(a.Columns))
		valWidth := 0
		for i, c := range a.Columns {
			var raw json.RawMessage
			if i < len(row) {
				raw = row[i]
			}
			vals[i] = tableText(c, decodeValue(c, raw))
			valWidth = max(valWidth, display(vals[i]))
		}
		title := fmt.Sprintf("-[ RECORD %d ]", r+1)
		b.WriteString(title + strings.Repeat("-", max(0, nameWidth+3+valWidth-len(title))) + "\n")
		for i, h := range heads {
			b.WriteString(strings.TrimRight(h+strings.Repeat(" ", nameWidth-display(h))+" | "+vals[i], " ") + "\n")
		}
	}
	b.WriteString(footer(a, maxRowsAsked) + "\n")
	io.WriteString(w, b.String())
}

// footer is "(N rows)", and why the answer stopped when the caps cut it.
func footer(a *readAnswer, maxRowsAsked int) string {
	n := len(a.Rows)
	s := fmt.Sprintf("(%d row%s", n, plural(n))
	if a.Truncated {
		s += "; " + truncation(a, maxRowsAsked)
	}
	return s + ")"
}

// truncation says why an answer was cut.
func truncation(a *readAnswer, maxRowsAsked int) string {
	switch {
	case a.TruncatedBy == "max_rows" && maxRowsAsked > 0:
		return fmt.Sprintf("truncated: more rows than --max-rows %d", maxRowsAsked)
	case a.TruncatedBy == "max_rows":
		return "truncated: more rows than the policy's default_max_rows; ask for more with --max-rows, up to its max_rows"
	case a.TruncatedBy == "max_bytes":
		return "truncated: the rows reached the policy's max_bytes; select fewer or narrower columns"
	}
	return "truncated"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeCSV writes a header of column names and one record per row, as the server's csv
// format does: NULL is an empty field, an empty string "", a field holding a comma, a
// quote or a newline is quoted (RFC 4180), unsafe characters are escaped (csvStyle).
func writeCSV(w io.Writer, a *readAnswer) {
	var b strings.Builder
	field := func(i int, v value) {
		if i > 0 {
			b.WriteByte(',')
		}
		if v.null {
			return
		}
		if v.text != "" && !strings.ContainsAny(v.text, ",\"\n") {
			csvStyle.escape(&b, v.text)
			return
		}
		b.WriteByte('"')
		csvStyle.escape(&b, strings.ReplaceAll(v.text, `"`, `""`))
		b.WriteByte('"')
	}
	for i, c := range a.Columns {
		field(i, value{text: c.Name})
	}
	b.WriteByte('\n')
	for _, row := range a.Rows {
		for i, c := range a.Columns {
			var raw json.RawMessage
			if i < len(row) {
				raw = row[i]
			}
			field(i, decodeValue(c, raw))
		}
		b.WriteByte('\n')
	}
	io.WriteString(w, b.String())
}

// writeJSONLines writes one JSON object per row, keyed by column name (a repeated name
// gets _2, _3, ...), with the values exactly as the answer holds them.
func writeJSONLines(w io.Writer, a *readAnswer) {
	keys := make([]string, len(a.Columns))
	seen := map[string]bool{}
	for i, c := range a.Columns {
		k := c.Name
		for n := 2; seen[k]; n++ {
			k = c.Name + "_" + strconv.Itoa(n)
		}
		seen[k] = true
		keys[i] = jsonString(k)
	}
	var b bytes.Buffer
	for _, row := range a.Rows {
		b.WriteByte('{')
		for i := range a.Columns {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(keys[i])
			b.WriteByte(':')
			if i < len(row) && len(row[i]) > 0 {
				var c bytes.Buffer
				if json.Compact(&c, row[i]) == nil {
					b.Write(safeJSON(c.Bytes()))
					continue
				}
			}
			b.WriteString("null")
		}
		b.WriteString("}\n")
	}
	w.Write(b.Bytes())
}

// writeJSON writes the answer as the server sent it (escaped again).
func writeJSON(w io.Writer, raw []byte) {
	out := safeJSON(bytes.TrimRight(raw, "\n"))
	w.Write(append(slices.Clip(out), '\n'))
}

// maskedNote is the line that says which columns came back masked and how to see them,
// or "" when none did.
func maskedNote(a *readAnswer) (string, []string) {
	var cols []string
	var roles []string
	for _, c := range a.Columns {
		if !c.Masked {
			continue
		}
		s := cell(c.Name)
		if c.Mask != "" {
			s += " (" + maskName(c.Mask) + ")"
		}
		cols = append(cols, s)
		if c.GrantRole != "" && !slices.Contains(roles, c.GrantRole) {
			roles = append(roles, c.GrantRole)
		}
	}
	if len(cols) == 0 {
		return "", nil
	}
	note := "masked: " + strings.Join(cols, ", ")
	switch len(roles) {
	case 0:
		note += "; no role you may request shows them"
	case 1:
		note += "; the role " + line(roles[0]) + " shows " + pronoun(len(cols))
	default:
		note += "; the roles " + line(strings.Join(roles, ", ")) + " show them"
	}
	return note, roles
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// maskName is a mask kind as a person reads it.
func maskName(kind string) string {
	switch kind {
	case "hash":
		return "keyed hash"
	case "partial":
		return "partly hidden"
	case "redact":
		return "redacted"
	case "null":
		return "shown as NULL"
	}
	return line(kind)
}
