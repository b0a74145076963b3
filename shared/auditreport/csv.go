package auditreport

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Cell neutralises a value that a spreadsheet would read as a formula: one starting with
// =, +, -, @, a tab or a carriage return (OWASP's list; a line feed too) gets a leading
// apostrophe, which spreadsheets show as text and do not evaluate.
func Cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r\n", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func ids(v []int64) string {
	var s []string
	for _, id := range v {
		s = append(s, strconv.FormatInt(id, 10))
	}
	return strings.Join(s, " ")
}

// writeCSV writes header and rows, every cell through Cell.
func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range rows {
		for i := range r {
			r[i] = Cell(r[i])
		}
		if err := cw.Write(r); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteRequestsCSV writes one row per access request and grant: who asked, why, the
// ticket, who decided and when, the grant's window and how it ended.
func (r *Report) WriteRequestsCSV(w io.Writer) error {
	header := []string{"request_id", "requester", "role", "breakglass", "reason", "ticket", "requested_at", "status",
		"decisions", "grant_id", "grant_start", "grant_expires", "grant_ended", "ended_how", "ended_by", "statements", "request_entry", "grant_entry"}
	var rows [][]string
	for _, rq := range r.Requests {
		var decs []string
		for _, d := range rq.Decisions {
			decs = append(decs, fmt.Sprintf("%s %s at %s", d.Approver, d.Decision, csvTime(d.Time)))
		}
		if rq.Expired != nil {
			decs = append(decs, "expired undecided at "+csvTime(rq.Expired.Time))
		}
		base := []string{rq.ID, rq.Requester, rq.Role, strconv.FormatBool(rq.Breakglass), rq.Reason, rq.Ticket, csvTime(rq.Created), rq.Status(), strings.Join(decs, "; ")}
		if len(rq.Grants) == 0 {
			rows = append(rows, append(base, "", "", "", "", "", "", "", rq.Ref.String(), ""))
			continue
		}
		for _, g := range rq.Grants {
			rows = append(rows, append(append([]string{}, base...), strconv.FormatInt(g.ID, 10), csvTime(g.Start), csvTime(g.Expires), csvTime(g.Ended),
				g.EndedHow, g.EndedBy, strconv.Itoa(len(g.Statements)), rq.Ref.String(), g.Ref.String()))
		}
	}
	return writeCSV(w, header, rows)
}

// WriteStatementsCSV writes one row per statement of the requests' grants (each row
// once per grant it ran under), or, with all, every statement of the period.
func (r *Report) WriteStatementsCSV(w io.Writer) error {
	header := []string{"grant_id", "access_request_id", "time", "actor", "request_id", "mode", "dry_run", "decision", "rule", "outcome",
		"fingerprint", "sql", "rows", "bytes", "duration_ms", "tables", "masked_columns", "unmasked_columns", "reverts",
		"attempt_entry", "attempt_hash", "result_entry", "result_hash"}
	var rows [][]string
	row := func(gid, rqid string, s *Statement) []string {
		return []string{gid, rqid, csvTime(s.Time), s.Actor, s.RequestID, s.Mode, strconv.FormatBool(s.DryRun), s.Decision, s.Rule, s.Outcome,
			s.Fingerprint, s.SQL, strconv.FormatInt(s.Rows, 10), strconv.FormatInt(s.Bytes, 10), strconv.FormatInt(s.DurationMS, 10),
			strings.Join(s.Tables, " "), strings.Join(s.MaskedColumns, " "), strings.Join(s.UnmaskedColumns, " "), s.Reverts,
			s.Ref.String(), s.Ref.Hash, s.ResultRef.String(), s.ResultRef.Hash}
	}
	for _, rq := range r.Requests {
		for _, g := range rq.Grants {
			for _, s := range g.Statements {
				rows = append(rows, row(strconv.FormatInt(g.ID, 10), rq.ID, s))
			}
		}
	}
	return writeCSV(w, header, rows)
}

// WriteAccessCSV writes the period's access review: one row per grant held, per person,
// and a row for each person who held none.
func (r *Report) WriteAccessCSV(w io.Writer) error {
	header := []string{"person", "grant_id", "role", "capabilities", "breakglass", "from", "until", "ended_how", "approvers",
		"access_request_id", "statements_under_grant", "requests", "decisions_given", "statements", "writes", "refusals", "alerts", "grant_entry"}
	var rows [][]string
	for _, p := range r.People {
		tail := []string{strconv.Itoa(p.Requests), strconv.Itoa(p.Decisions), strconv.Itoa(p.Statements), strconv.Itoa(p.Writes), strconv.Itoa(p.Refusals), strconv.Itoa(p.Alerts)}
		if len(p.Grants) == 0 {
			rows = append(rows, append([]string{p.Email, "", "no access held", "", "", "", "", "", "", "", ""}, append(tail, "")...))
			continue
		}
		for _, g := range p.Grants {
			rows = append(rows, append([]string{p.Email, strconv.FormatInt(g.ID, 10), g.Role, strings.Join(g.Capabilities, " "), strconv.FormatBool(g.Breakglass),
				csvTime(g.Start), csvTime(g.Until()), cmpOr(g.EndedHow, "active at the end of the trail"), strings.Join(g.Approvers, " "), g.RequestID,
				strconv.Itoa(len(g.Statements))}, append(tail, g.Ref.String())...))
		}
	}
	return writeCSV(w, header, rows)
}

// WriteEventsCSV writes every request, approval, denial, refusal, revocation, expiry and
// alert of the period.
func (r *Report) WriteEventsCSV(w io.Writer) error {
	header := []string{"time", "person", "kind", "event", "severity", "detail", "entry", "hash"}
	var rows [][]string
	for _, e := range r.Events {
		rows = append(rows, []string{csvTime(e.Time), e.Person, e.Kind, e.Event, e.Severity, e.Detail, e.Ref.String(), e.Ref.Hash})
	}
	return writeCSV(w, header, rows)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
