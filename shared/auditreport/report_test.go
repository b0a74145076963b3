package auditreport_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/auditreport"
)

func TestCell(t *testing.T) {
	tcs := []struct{ in, want string }{
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+1", "'+1"}, {"-2+3", "'-2+3"}, {"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"}, {"\r=1", "'\r=1"}, {"\n=1", "'\n=1"},
		{"dev1@example.com", "dev1@example.com"}, {"", ""}, {"a=b", "a=b"},
	}
	for _, tc := range tcs {
		if got := auditreport.Cell(tc.in); got != tc.want {
			t.Errorf("when Cell(%q), want = %q, got = %q", tc.in, tc.want, got)
		}
	}
}

// trail records a request, its approval, a grant, statements under it and outside it,
// with hostile text in the fields a person types.
func trail(t *testing.T) (*audit.Trail, audit.Report) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	signer := audittest.NewLocalSigner(t)
	rec, err := audit.NewFileRecorder(t.Context(), path, audit.WithSigner(signer),
		audit.WithHeadStore(audit.NewFileHeadStore(path+audit.HeadsFileSuffix)), audit.WithHeadsEveryEntry())
	if err != nil {
		t.Fatal(err)
	}
	const evil = `=cmd|' /C calc'!A0 <script>alert(1)</script>`
	for _, e := range []audit.Entry{
		{Event: audit.EventQueryAttempt, Actor: "dev1@example.com", RequestID: "r0", SQL: "SELECT email FROM users", Mode: "read", Decision: "allowed", MaskedColumns: []string{"users.email"}},
		{Event: audit.EventRequestCreated, Actor: "dev1@example.com", AccessRequestID: "ar_1", Reason: evil, Details: map[string]any{"role": "unmasked_users", "duration": "10m0s", "ticket": "-SUP-1"}},
		{Event: audit.EventRequestApproved, Actor: "lead1@example.com", AccessRequestID: "ar_1", Reason: "ok", Details: map[string]any{"requester": "dev1@example.com", "role": "unmasked_users"}},
		{Event: audit.EventGrantCreated, Actor: "lead1@example.com", AccessRequestID: "ar_1", GrantIDs: []int64{7},
			Details: map[string]any{"grantee": "dev1@example.com", "role": "unmasked_users", "capabilities": []string{"unmasked_users"}, "starts_at": "2026-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z", "approvers": []string{"lead1@example.com"}, "breakglass": false}},
		{Event: audit.EventQueryAttempt, Actor: "dev1@example.com", RequestID: "r1", GrantIDs: []int64{7}, SQL: "SELECT email FROM users", Mode: "read", Decision: "allowed", Details: map[string]any{"unmasked_columns": []string{"users.email"}}},
		{Event: audit.EventQueryResult, Actor: "dev1@example.com", RequestID: "r1", GrantIDs: []int64{7}, SQL: "SELECT email FROM users", Rows: 3, Bytes: 90},
		{Event: audit.EventQueryAttempt, Actor: "dev2@example.com", RequestID: "r2", SQL: "DELETE FROM trades", Mode: "read", Decision: "denied", Rule: "delete_forbidden"},
		{Event: "security.forbidden_statement", Actor: "dev2@example.com", Message: "dev2 tried a DELETE"},
		{Event: audit.EventRequestRefused, Actor: "dev2@example.com", RequestID: "r3", Decision: "denied", Rule: "role_not_requestable",
			Message: "dev2@example.com may not request the role \"superuser\"", Details: map[string]any{"role": "superuser", "status": 403}},
		{Event: audit.EventDecisionRefused, Actor: "dev2@example.com", RequestID: "r4", AccessRequestID: "ar_1", Decision: "denied", Rule: "not_an_approver",
			Message: "dev2@example.com may not decide unmasked_users requests", Details: map[string]any{"via": "api", "status": 403}},
	} {
		if err := rec.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	rec.Close(t.Context())
	tr, err := audit.ReadTrailFile(path)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := audit.ReadHeadsFile(path + audit.HeadsFileSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return tr, audit.Verify(tr, audittest.Keyring(t, signer), heads)
}

func TestBuild(t *testing.T) {
	tr, rep := trail(t)
	if !rep.OK() {
		t.Fatalf("fixture: %v", rep.Findings)
	}
	r, err := auditreport.Build(tr, rep, "test key", auditreport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Requests) != 1 || len(r.Requests[0].Grants) != 1 || len(r.Requests[0].Decisions) != 1 {
		t.Fatalf("want one request with one decision and one grant, got = %+v", r.Requests)
	}
	g := r.Requests[0].Grants[0]
	if len(g.Statements) != 1 || g.Statements[0].RequestID != "r1" || g.Statements[0].Rows != 3 || g.Statements[0].UnmaskedColumns[0] != "users.email" {
		t.Errorf("want grant 7 to hold exactly statement r1 (3 rows, users.email unmasked), got = %+v", g.Statements)
	}
	var people []string
	for _, p := range r.People {
		people = append(people, p.Email)
	}
	if strings.Join(people, ",") != "dev1@example.com,dev2@example.com,lead1@example.com" {
		t.Errorf("want every person of the trail, got = %v", people)
	}

	// Refused access requests and decisions are the person's refusals, named by code.
	var refused []string
	for _, p := range r.People {
		if p.Email != "dev2@example.com" {
			continue
		}
		if p.Refusals != 3 {
			t.Errorf("want dev2's refusals counted (a statement, a request, a decision), got = %d", p.Refusals)
		}
		for _, ev := range p.Events {
			if ev.Kind == "refusal" {
				refused = append(refused, ev.Detail)
			}
		}
	}
	want := []string{
		"read refused (delete_forbidden): DELETE FROM trades",
		`access request refused (role_not_requestable) for superuser: dev2@example.com may not request the role "superuser"`,
		"decision on ar_1 refused (not_an_approver): dev2@example.com may not decide unmasked_users requests",
	}
	if strings.Join(refused, "\n") != strings.Join(want, "\n") {
		t.Errorf("want dev2's refusals listed as\n%s\ngot =\n%s", strings.Join(want, "\n"), strings.Join(refused, "\n"))
	}

	var buf bytes.Buffer
	if err := r.WriteRequestsHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("want the reason escaped in the page")
	}
	if !strings.Contains(page, `href="#`+g.Statements[0].Ref.ID()+`"`) || !strings.Contains(page, `id="`+g.Statements[0].Ref.ID()+`"`) {
		t.Errorf("want the statement linked to its audit entry, listed on the page")
	}
	for _, external := range []string{"<script", "<link", "src=", "@import", "url("} {
		if strings.Contains(page, external) {
			t.Errorf("want a self-contained page, found %q", external)
		}
	}
	buf.Reset()
	if err := r.WriteReviewHTML(&buf); err != nil || !strings.Contains(buf.String(), "<svg") {
		t.Errorf("want the review page with timelines, got err = %v", err)
	}

	for name, write := range map[string]func(*bytes.Buffer) error{
		"requests":   func(b *bytes.Buffer) error { return r.WriteRequestsCSV(b) },
		"statements": func(b *bytes.Buffer) error { return r.WriteStatementsCSV(b) },
		"access":     func(b *bytes.Buffer) error { return r.WriteAccessCSV(b) },
		"events":     func(b *bytes.Buffer) error { return r.WriteEventsCSV(b) },
	} {
		buf.Reset()
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatalf("%s.csv: %v", name, err)
		}
		for _, row := range rows {
			for _, c := range row {
				if c != "" && strings.ContainsRune("=+-@\t\r\n", rune(c[0])) {
					t.Errorf("%s.csv: want no cell starting with a formula trigger, got = %q", name, c)
				}
			}
		}
	}
}

func TestBuildRefusesUnverified(t *testing.T) {
	tr, _ := trail(t)
	rep := audit.Verify(tr, &audit.Keyring{}, nil) // nothing trusted: every chain fails
	if _, err := auditreport.Build(tr, rep, "", auditreport.Options{}); !errors.Is(err, auditreport.ErrUnverified) {
		t.Errorf("when the trail did not verify, want ErrUnverified, got = %v", err)
	}
}
