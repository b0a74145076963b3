package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/policy"
)

// get sends GET path (with its query string, unescaped as typed) as email; "" sends no token.
func (h *harness) get(email, method, path string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatalf("new request %s: %v", path, err)
	}
	if email != "" {
		req.Header.Set("Authorization", "Bearer "+h.token(email))
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading response: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

type schemaList struct {
	RequestID string               `json:"request_id"`
	Tables    []query.TableSummary `json:"tables"`
}

type schemaTable struct {
	RequestID string            `json:"request_id"`
	Table     query.TableDetail `json:"table"`
}

func decodeStrict[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
	return v
}

// demoPolicy is the policy the harness runs (the demo's, with a longer timeout).
func demoPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load(policyVariant(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDescribe checks what GET /schema and GET /schema/{table} say, against the policy
// itself (so a change of masks in the demo policy changes the expectation, not the test)
// and the database's own columns.
func TestDescribe(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	pol := demoPolicy(t)

	r := h.get(dev1, http.MethodGet, "/schema")
	if r.status != http.StatusOK {
		t.Fatalf("GET /schema as dev1: want 200, got = %s", r)
	}
	list := decodeStrict[schemaList](t, r)
	var names []string
	for _, s := range list.Tables {
		names = append(names, s.Name)
		tbl, _ := pol.Table(s.Name)
		// The columns are the base table's, in order, as its owner sees them.
		want := h.collectStrings(fmt.Sprintf(`SELECT attname::text FROM pg_attribute WHERE attrelid = 'public.%s'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, s.Name))
		if !slices.Equal(s.Columns, want) {
			t.Errorf("GET /schema, table %s: want columns = %v, got = %v", s.Name, want, s.Columns)
		}
		if !slices.Equal(s.Masked, tbl.SensitiveColumns()) || s.Unmasked || s.Writable != (tbl.Write != nil) || s.WriteGranted {
			t.Errorf("GET /schema, table %s as dev1 without grants: want masked = %v, unmasked false, writable %v, no write grant, got = %+v",
				s.Name, tbl.SensitiveColumns(), tbl.Write != nil, s)
		}
	}
	if !slices.Equal(names, pol.TableNames()) {
		t.Errorf("GET /schema: want exactly the policy's tables %v, got = %v", pol.TableNames(), names)
	}

	for _, name := range pol.TableNames() {
		tbl, _ := pol.Table(name)
		r := h.get(dev1, http.MethodGet, "/schema/"+name)
		if r.status != http.StatusOK {
			t.Fatalf("GET /schema/%s as dev1: want 200, got = %s", name, r)
		}
		d := decodeStrict[schemaTable](t, r).Table
		if d.Name != name || !slices.Equal(d.PrimaryKey, tbl.PrimaryKey) || d.Unmasked || len(d.Grants) != 0 {
			t.Errorf("GET /schema/%s: want name, primary key %v, masked, no grants, got = %+v", name, tbl.PrimaryKey, d)
		}
		if want := roleFor(pol, name, false); len(tbl.Masked) > 0 && d.UnmaskRole != want {
			t.Errorf("GET /schema/%s: want unmask_role = %q, got = %q", name, want, d.UnmaskRole)
		}
		// Types as a query returns them: the masked view's columns.
		types := map[string]string{}
		for _, l := range h.collectStrings(fmt.Sprintf(`SELECT attname || '=' || format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'masked.%s'::regclass AND attnum > 0 AND NOT attisdropped`, name)) {
			k, v, _ := strings.Cut(l, "=")
			types[k] = v
		}
		for _, c := range d.Columns {
			m, sensitive := tbl.Masked[c.Name]
			writable := tbl.Write != nil && slices.Contains(tbl.Write.Columns, c.Name)
			if c.Type != types[c.Name] || c.Sensitive != sensitive || c.Masked != sensitive || c.Mask != m.Kind || c.Writable != writable {
				t.Errorf("GET /schema/%s column %s: want type %s, sensitive/masked %v, mask %q, writable %v, got = %+v", name, c.Name, types[c.Name], sensitive, m.Kind, writable, c)
			}
			if sensitive && (c.MaskShows == "" || c.GrantRole != d.UnmaskRole) {
				t.Errorf("GET /schema/%s column %s: want a mask description and grant_role %q, got = %+v", name, c.Name, d.UnmaskRole, c)
			}
		}
		switch {
		case tbl.Write == nil && d.Write != nil:
			t.Errorf("GET /schema/%s: want no write section for a table never written, got = %+v", name, d.Write)
		case tbl.Write != nil && (d.Write == nil || !slices.Equal(d.Write.Columns, tbl.Write.Columns) || d.Write.MaxRows != tbl.Write.MaxRows ||
			len(d.Write.Granted) != 0 || d.Write.GrantRole != roleFor(pol, name, true)):
			t.Errorf("GET /schema/%s: want write columns %v, max_rows %d, nothing granted, grant_role %s, got = %+v",
				name, tbl.Write.Columns, tbl.Write.MaxRows, roleFor(pol, name, true), d.Write)
		}
	}
	// The demo's users.email is masked by a keyed hash, and says so.
	if d := decodeStrict[schemaTable](t, h.get(dev1, http.MethodGet, "/schema/users")).Table; !slices.ContainsFunc(d.Columns, func(c query.ColumnInfo) bool {
		return c.Name == "email" && c.Masked && c.Mask == policy.MaskHash && strings.Contains(c.MaskShows, "keyed hash") && c.GrantRole == "unmasked_users"
	}) {
		t.Errorf("GET /schema/users: want email masked by a keyed hash, unmasked by unmasked_users, got = %+v", d.Columns)
	}

	// Every description is in the trail, with its actor, before the answer.
	var described []map[string]any
	for _, e := range h.entriesFor("query.describe") {
		if e["actor"] != dev1 || e["function"] != query.EntryPoint || e["decision"] != "allowed" || e["request_id"] == "" {
			t.Errorf("want each query.describe entry with actor %s, function, decision allowed and a request id, got = %v", dev1, e)
		}
		described = append(described, e)
	}
	if want := 1 + len(pol.TableNames()) + 1; len(described) != want {
		t.Errorf("after %d descriptions, want %d query.describe entries, got = %d", want, want, len(described))
	}
}

// roleFor is the role a developer of the demo policy may request to unmask or write
// table: the one scoped to it, as the policy names them.
func roleFor(pol *policy.Policy, table string, write bool) string {
	name := "unmasked_" + table
	if write {
		name = "write_" + table
	}
	if _, ok := pol.Role(name); ok {
		return name
	}
	return policy.BreakGlass
}

// TestDescribeForTheCallerOnly checks that a description follows the caller's own grants
// and says nothing of anyone else's.
func TestDescribeForTheCallerOnly(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	unmask := h.grant(dev1, "unmasked_users", time.Hour, true)
	write := h.grant(dev1, "write_accounts", time.Hour, true)

	users := decodeStrict[schemaTable](t, h.get(dev1, http.MethodGet, "/schema/users")).Table
	if !users.Unmasked || len(users.Grants) != 1 || users.Grants[0].ID != unmask || users.Grants[0].Role != "unmasked_users" {
		t.Errorf("dev1 with unmasked_users: want users unmasked, grant %d listed, got = %+v", unmask, users)
	}
	for _, c := range users.Columns {
		if c.Masked || c.GrantRole != "" {
			t.Errorf("dev1 with unmasked_users: want column %s not masked and no role to request, got = %+v", c.Name, c)
		}
	}
	accounts := decodeStrict[schemaTable](t, h.get(dev1, http.MethodGet, "/schema/accounts")).Table
	if accounts.Write == nil || !slices.Equal(accounts.Write.Granted, []string{"insert", "update"}) || len(accounts.Grants) != 1 || accounts.Grants[0].ID != write {
		t.Errorf("dev1 with write_accounts: want insert and update granted, grant %d listed, got = %+v", write, accounts)
	}

	// dev2 sees the masks, no grant, and nothing that names dev1 or dev1's grants, also
	// when asking as dev1 in the query string.
	for _, path := range []string{"/schema", "/schema/users", "/schema/accounts", "/schema/users?as=" + dev1, "/schema/users?email=" + dev1 + "&grantee=" + dev1} {
		r := h.get(dev2, http.MethodGet, path)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s as dev2: want 200, got = %s", path, r)
		}
		if strings.Contains(string(r.body), "dev1") || strings.Contains(string(r.body), `"grant_id"`) {
			t.Errorf("GET %s as dev2: want nothing about dev1 or any grant, got = %s", path, r.body)
		}
	}
	if d := decodeStrict[schemaTable](t, h.get(dev2, http.MethodGet, "/schema/users?as="+dev1)).Table; d.Unmasked || len(d.Grants) != 0 {
		t.Errorf("GET /schema/users?as=dev1 as dev2: want dev2's own view (masked, no grants), got = %+v", d)
	}

	// A lead may not request unmasked_users; break-glass is what would open users to them.
	if d := decodeStrict[schemaTable](t, h.get("lead1@example.com", http.MethodGet, "/schema/users")).Table; d.UnmaskRole != policy.BreakGlass {
		t.Errorf("GET /schema/users as lead1: want unmask_role = breakglass (the only role lead1 may request that unmasks users), got = %q", d.UnmaskRole)
	}
	// Security may request nothing, so no role is named.
	if d := decodeStrict[schemaTable](t, h.get("sec1@example.com", http.MethodGet, "/schema/users")).Table; d.UnmaskRole != "" || slices.ContainsFunc(d.Columns, func(c query.ColumnInfo) bool { return c.GrantRole != "" }) {
		t.Errorf("GET /schema/users as sec1: want no role named (sec1 may request none), got = %+v", d)
	}
}

// TestDescribeRevealsNothingElse is an insider who has read the code trying to learn,
// through the description, about tables outside the policy: system catalogs, Airlock's
// own tables, a table the policy does not list, a view planted in the masked schema, and
// names spelled to slip past the check.
func TestDescribeRevealsNothingElse(t *testing.T) {
	// A policy without trades: the table exists in the database, but not for Airlock.
	doc := policyVariant(t, "  trades:\n    primary_key: [id]\n", "")
	h := newHarness(t, harnessOptions{policy: doc})
	ctx := context.Background()
	// A view in the masked schema that no policy table made (as the admin would plant it).
	if _, err := h.admin.Exec(ctx, `CREATE VIEW masked.planted AS SELECT 'secret'::text AS secret_col`); err != nil {
		t.Fatalf("planting a view in the masked schema: %v", err)
	}

	list := h.get(dev1, http.MethodGet, "/schema")
	for _, leak := range []string{"trades", "planted", "secret_col", "grants", "pg_"} {
		if strings.Contains(string(list.body), leak) {
			t.Errorf("GET /schema: want nothing outside the policy's tables, got %q in %s", leak, list.body)
		}
	}

	notFound := func(path string) string {
		t.Helper()
		r := h.get(dev1, http.MethodGet, path)
		if r.status != http.StatusNotFound || (r.err().Code != "table_not_found" && r.err().Code != "not_found") {
			t.Errorf("GET %s: want 404 table_not_found or not_found, got = %s", path, r)
		}
		for _, leak := range []string{"secret_col", "rolpassword", "grantee", "attname", "public.trades"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("GET %s: want nothing about the object, got %q in %s", path, leak, r.body)
			}
		}
		return r.err().Message
	}
	// The same answer whether the name exists in the database or not: only the name
	// itself, quoted, differs.
	base := notFound("/schema/no_such_table")
	for _, name := range []string{"trades", "planted", "pg_authid", "pg_class", "grants", "access_requests", "masking_key",
		"airlock.grants", "masked.users", "public.users", "Users", "USERS", "users%00", "users%20", "%22users%22", "users;", "users'--"} {
		got := notFound("/schema/" + name)
		if strings.Replace(got, fmt.Sprintf("%q", unescape(name)), "", 1) != strings.Replace(base, `"no_such_table"`, "", 1) {
			t.Errorf("GET /schema/%s: want the same refusal as for a table that does not exist, got = %q (for no_such_table: %q)", name, got, base)
		}
	}
	for _, path := range []string{"/schema/users/../grants", "/schema/users/", "/schema/users%2F..%2Fgrants", "/schema/../schema/grants", "/schemas", "/schema_users"} {
		r := h.get(dev1, http.MethodGet, path)
		if r.status == http.StatusOK {
			t.Errorf("GET %s: want a refusal, got = %s", path, r)
		}
	}

	// Only GET (and HEAD), only members, only with a token.
	if r := h.get(dev1, http.MethodPost, "/schema/users"); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /schema/users: want 405 with Allow: GET, HEAD, got = %s", r)
	}
	if r := h.get("", http.MethodGet, "/schema"); r.status != http.StatusUnauthorized {
		t.Errorf("GET /schema without a token: want 401, got = %s", r)
	}
	if r := h.get("mallory@example.com", http.MethodGet, "/schema/users"); r.status != http.StatusForbidden || r.err().Code != "not_a_member" {
		t.Errorf("GET /schema/users as someone outside the policy: want 403 not_a_member, got = %s", r)
	}

	// Each refused name is in the trail, as refused, with its actor.
	refused := 0
	for _, e := range h.entriesFor("query.describe") {
		if e["decision"] == audit.DecisionDenied {
			refused++
			if e["actor"] != dev1 || e["rule"] != "table_not_found" {
				t.Errorf("want a refused description recorded with actor and rule table_not_found, got = %v", e)
			}
		}
	}
	if refused < 18 {
		t.Errorf("want every description of a name outside the policy recorded as refused, got = %d", refused)
	}
}

func unescape(s string) string {
	r := strings.NewReplacer("%00", "\x00", "%20", " ", "%22", `"`)
	return r.Replace(s)
}

// TestDescribeFailsClosed checks that a description the trail cannot record is not given.
func TestDescribeFailsClosed(t *testing.T) {
	h := newHarness(t, harnessOptions{cloud: true, auditOpts: []audit.Option{audit.WithTimeout(auditTimeout)}})
	if r := h.get(dev1, http.MethodGet, "/schema/users"); r.status != http.StatusOK { // starts the chain
		t.Fatalf("GET /schema/users: want 200, got = %s", r)
	}
	h.fake.FailWith(codes.Unavailable)
	defer h.fake.Recover()
	r := h.get(dev1, http.MethodGet, "/schema/users")
	if r.status != http.StatusServiceUnavailable || r.err().Code != "audit_unavailable" || strings.Contains(string(r.body), "email") {
		t.Errorf("GET /schema/users with the trail down: want 503 audit_unavailable and no description, got = %s", r)
	}
}

// TestGrantRoleHints checks that a refusal a grant would lift, and a masked column, name
// the role the caller may request; and that the answer says why it was truncated.
func TestGrantRoleHints(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	w := h.post(dev1, query.Request{Mode: "write", Reason: "INC-1: testing the hint", SQL: `UPDATE accounts SET balance = 1 WHERE id = 1`})
	if w.status != http.StatusForbidden || w.err().Rule != "no_write_grant" || grantRole(w) != "write_accounts" {
		t.Errorf("a write without a grant: want 403 no_write_grant with grant_role write_accounts, got = %s", w)
	}
	if r := h.query(dev1, `DELETE FROM trades`); grantRole(r) != "" {
		t.Errorf("DELETE: want no role named (no grant allows it), got = %s", r)
	}
	for _, tc := range []struct{ who, want string }{{dev1, "unmasked_users"}, {"lead1@example.com", policy.BreakGlass}, {"sec1@example.com", ""}} {
		r := h.query(tc.who, `SELECT id, email FROM users ORDER BY id LIMIT 1`)
		var v struct {
			Columns []map[string]any `json:"columns"`
		}
		json.Unmarshal(r.body, &v)
		if len(v.Columns) != 2 || v.Columns[1]["masked"] != true || v.Columns[1]["mask"] != policy.MaskHash || fmt.Sprint(v.Columns[1]["grant_role"]) != fmt.Sprint(orNil(tc.want)) {
			t.Errorf("%s reads users.email: want it masked (hash) with grant_role %q, got = %s", tc.who, tc.want, r)
		}
		if _, ok := v.Columns[0]["grant_role"]; ok {
			t.Errorf("%s reads users.id: want no grant_role on a column that is not masked, got = %s", tc.who, r)
		}
	}
	for _, tc := range []struct {
		max  int
		want string
	}{{2, "max_rows"}, {0, ""}} {
		r := h.post(dev1, query.Request{SQL: `SELECT id FROM trades ORDER BY id LIMIT 3`, MaxRows: tc.max})
		var v map[string]any
		json.Unmarshal(r.body, &v)
		if fmt.Sprint(v["truncated_by"]) != fmt.Sprint(orNil(tc.want)) {
			t.Errorf("3 rows with max_rows %d: want truncated_by %q, got = %s", tc.max, tc.want, r)
		}
	}
	small := newHarness(t, harnessOptions{policy: policyVariant(t, "max_bytes: 4194304", "max_bytes: 1024")})
	r := small.query(dev1, `SELECT md5(id::text) FROM trades ORDER BY id LIMIT 100`)
	var v map[string]any
	json.Unmarshal(r.body, &v)
	if v["truncated"] != true || v["truncated_by"] != "max_bytes" {
		t.Errorf("100 rows of 32 bytes with max_bytes 1 KiB: want truncated_by max_bytes, got = %s", r)
	}
}

func grantRole(r response) string {
	var v struct {
		Error struct {
			GrantRole string `json:"grant_role"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &v)
	return v.Error.GrantRole
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}
