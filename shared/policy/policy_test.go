package policy_test

import (
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/policy"
	"airlock.dev/airlock/shared/sqlguard"
)

func demoPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load(demo.Policy)
	if err != nil {
		t.Fatalf("demo policy: %v", err)
	}
	return p
}

func TestDemoPolicy(t *testing.T) {
	p := demoPolicy(t)
	for _, tc := range []struct {
		email        string
		member       bool
		approver     bool
		requestables int
	}{
		{"dev1@example.com", true, false, 7},
		{"DEV2@Example.com", true, false, 7},
		{"lead1@example.com", true, true, 1},
		{"sec1@example.com", true, true, 0},
		{"eve@example.com", false, false, 0},
		{"dev1@example.com.evil.test", false, false, 0},
		{"", false, false, 0},
	} {
		if got := p.IsMember(tc.email); got != tc.member {
			t.Errorf("IsMember(%q) = %v, want %v", tc.email, got, tc.member)
		}
		if got := p.IsApprover(tc.email); got != tc.approver {
			t.Errorf("IsApprover(%q) = %v, want %v", tc.email, got, tc.approver)
		}
		if got := len(p.RequestableRoles(tc.email)); got != tc.requestables {
			t.Errorf("RequestableRoles(%q) = %d roles, want %d", tc.email, got, tc.requestables)
		}
	}
	bg, _ := p.Role(policy.BreakGlass)
	if !bg.BreakGlass() || bg.Approvals != 2 || bg.MaxDuration != time.Hour {
		t.Errorf("breakglass = %+v, want two approvals and 1h", bg)
	}
	if got := p.Approvers(bg); strings.Join(got, ",") != "lead1@example.com,lead2@example.com,sec1@example.com" {
		t.Errorf("breakglass approvers = %v", got)
	}
	if e, ok := p.SlackUser("U0LEAD1"); !ok || e != "lead1@example.com" {
		t.Errorf("SlackUser(U0LEAD1) = %q, %v", e, ok)
	}
	if m := p.Tables["accounts"].Masked["balance"]; m.Kind != policy.MaskNull {
		t.Errorf("unquoted `mask: null` read as %q, want null", m.Kind)
	}
}

func TestPermissionsFollowGrantedRoles(t *testing.T) {
	p := demoPolicy(t)
	perms := p.Permissions(sqlguard.Write, []string{"unmasked_users", "write_accounts", "no_such_role"})
	if !perms.Unmasked["users"] || perms.Unmasked["accounts"] || len(perms.Unmasked) != 1 {
		t.Errorf("Unmasked = %v, want only users", perms.Unmasked)
	}
	if g := perms.Write["accounts"]; !g.Insert || !g.Update || len(perms.Write) != 1 {
		t.Errorf("Write = %v, want accounts insert+update only", perms.Write)
	}
	bg := p.Permissions(sqlguard.Read, []string{policy.BreakGlass})
	if len(bg.Unmasked) != 4 || len(bg.Write) != 2 {
		t.Errorf("breakglass permissions = %+v, want 4 unmasked and 2 writable tables", bg)
	}
	none := p.Permissions(sqlguard.Read, nil)
	if len(none.Unmasked) != 0 || len(none.Write) != 0 {
		t.Errorf("no roles gave permissions %+v", none)
	}
}

func TestLoadRejects(t *testing.T) {
	base := string(demo.Policy)
	tcs := []struct {
		desc string
		doc  string
		want string // a fragment of the error, naming key and line
	}{
		{"empty", "", "empty"},
		{"not yaml", "::: [", "yaml"},
		{"unknown top-level key", base + "\nsuperusers: [eve@example.com]\n", "superusers"},
		{"unknown role key", strings.Replace(base, "    approvals: 1\n    max_duration: 8h\n  unmasked_accounts:", "    approvals: 1\n    auto_approve: true\n    max_duration: 8h\n  unmasked_accounts:", 1), "auto_approve"},
		{"wrong version", strings.Replace(base, "version: 1", "version: 2", 1), "line 4: version"},
		{"unknown mask", strings.Replace(base, "full_name: {mask: redact}", "full_name: {mask: rot13}", 1), `tables.users.masked.full_name.mask: "rot13"`},
		{"partial keeps nothing", strings.Replace(base, "phone: {mask: partial, keep_last: 2}", "phone: {mask: partial}", 1), "keep 1 to 16"},
		{"delete operation", strings.Replace(base, "operations: [insert, update]", "operations: [insert, update, delete]", 1), "DELETE is never allowed"},
		{"zero approvals", strings.Replace(base, "approvals: 1", "approvals: 0", 1), "at least one approval"},
		{"breakglass with one approval", strings.Replace(base, "    approvals: 2\n    max_duration: 1h", "    approvals: 1\n    max_duration: 1h", 1), "break-glass needs at least two"},
		{"bad duration", strings.Replace(base, "max_duration: 8h", "max_duration: forever", 1), `"forever" is not a duration`},
		{"negative duration", strings.Replace(base, "max_duration: 8h", "max_duration: -1h", 1), "must be positive"},
		{"over 14 days", strings.Replace(base, "max_duration: 8h", "max_duration: 400h", 1), "14 days"},
		{"undefined group", strings.Replace(base, "members: [group:developers", "members: [group:contractors, group:developers", 1), "group:contractors"},
		{"bad email", strings.Replace(base, "dev2@example.com]", "dev2-at-example]", 1), "not an e-mail"},
		{"role for unknown table", strings.Replace(base, "  write_accounts:", "  unmasked_ledger:\n    requesters: [group:developers]\n    approvers: [group:leads]\n    approvals: 1\n    max_duration: 1h\n  write_accounts:", 1), "unmasked_ledger needs a policy table"},
		{"write role for read-only table", strings.Replace(base, "  write_accounts:", "  write_trades:\n    requesters: [group:developers]\n    approvers: [group:leads]\n    approvals: 1\n    max_duration: 1h\n  write_accounts:", 1), "write_trades needs"},
		{"odd role name", strings.Replace(base, "  write_accounts:", "  superuser:\n    requesters: [group:developers]\n    approvers: [group:leads]\n    approvals: 1\n    max_duration: 1h\n  write_accounts:", 1), "role names are"},
		{"masked primary key", strings.Replace(base, "      full_name: {mask: redact}", "      full_name: {mask: redact}\n      id: {mask: \"null\"}", 1), "primary key column cannot be masked"},
		{"max_rows zero", strings.Replace(base, "max_rows: 20", "max_rows: 0", 1), "max_rows"},
		{"bad working hours", strings.Replace(base, `start: "07:00"`, `start: "7am"`, 1), "time of day"},
		{"bad time zone", strings.Replace(base, "timezone: UTC", "timezone: Mars/Olympus", 1), "time zone"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := policy.Load([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Load succeeded, want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v\nwant it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadReportsEveryProblemWithLines(t *testing.T) {
	doc := strings.Replace(strings.Replace(string(demo.Policy), "approvals: 1", "approvals: 0", 1), "max_duration: 4h", "max_duration: soon", 1)
	_, err := policy.Load([]byte(doc))
	perr, ok := err.(*policy.Error)
	if !ok || len(perr.Problems) < 2 {
		t.Fatalf("Load error = %v, want both problems reported", err)
	}
	for _, p := range perr.Problems {
		if !strings.HasPrefix(p, "line ") {
			t.Errorf("problem %q does not name its line", p)
		}
	}
}

func TestWorkingHours(t *testing.T) {
	p := demoPolicy(t)
	wh := p.Alerts.WorkingHours
	monday10 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{monday10, true},
		{monday10.Add(9 * time.Hour), false},    // 19:00, the end is exclusive
		{monday10.Add(-3*time.Hour - 1), false}, // 06:59:59
		{monday10.AddDate(0, 0, 5), false},      // Saturday
		{monday10.In(time.FixedZone("X", 3600)), true},
	} {
		if got := wh.Contains(tc.at); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
}
