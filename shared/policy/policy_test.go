package policy_test

import (
	"strconv"
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
		{"no concurrent statements", strings.Replace(base, "limits:\n", "limits:\n  concurrent_statements: 0\n", 1), "limits.concurrent_statements: must be between 1 and 64, got 0"},
		{"negative concurrent statements", strings.Replace(base, "limits:\n", "limits:\n  concurrent_statements: -2\n", 1), "got -2"},
		{"too many concurrent statements", strings.Replace(base, "limits:\n", "limits:\n  concurrent_statements: 65\n", 1), "got 65"},
		{"concurrent statements not a number", strings.Replace(base, "limits:\n", "limits:\n  concurrent_statements: many\n", 1), "line 118"},
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

// TestConcurrentStatementsLimit: limits.concurrent_statements defaults to 4 when left out
// and is read as written within 1..64 (the refusals are in TestLoadRejects).
func TestConcurrentStatementsLimit(t *testing.T) {
	if got := demoPolicy(t).Limits.ConcurrentStatements; got != 4 {
		t.Errorf("when limits.concurrent_statements is left out, want = 4, got = %d", got)
	}
	for _, n := range []string{"1", "7", "64"} {
		p, err := policy.Load([]byte(strings.Replace(string(demo.Policy), "limits:\n", "limits:\n  concurrent_statements: "+n+"\n", 1)))
		if err != nil {
			t.Fatalf("when limits.concurrent_statements is %s, want = loaded, got = %v", n, err)
		}
		if got := p.Limits.ConcurrentStatements; strconv.Itoa(got) != n {
			t.Errorf("when limits.concurrent_statements is %s, want = %s, got = %d", n, n, got)
		}
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

// edit applies old→new replacements to the demo policy; each old must be there.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	doc := string(demo.Policy)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			t.Fatalf("the demo policy has no %q", pairs[i])
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return doc
}

func TestHashDomains(t *testing.T) {
	p := demoPolicy(t)
	got := p.HashDomains()
	want := map[string][]string{
		"users.email":    {"users.email"},
		"tx_hash":        {"deposits.tx_hash"},
		"wallet_address": {"deposits.wallet_address", "withdrawals.destination_address"},
	}
	if len(got) != len(want) {
		t.Errorf("HashDomains() = %v, want = %v", got, want)
	}
	for d, cols := range want {
		if strings.Join(got[d], ",") != strings.Join(cols, ",") {
			t.Errorf("HashDomains()[%q] = %v, want = %v", d, got[d], cols)
		}
	}
	if m := p.Tables["users"].Masked["email"]; m.Domain != policy.DefaultDomain("users", "email") || m.String() != "hash (domain users.email)" {
		t.Errorf("users.email without a domain: want its own domain users.email, got = %q (%s)", m.Domain, m)
	}
	if m := p.Tables["deposits"].Masked["amount"]; m.Kind != policy.MaskRound || m.Digits != 1 {
		t.Errorf("deposits.amount = %s, want round to 1 digit", m)
	}
	if m := p.Tables["withdrawals"].Masked["created_at"]; m.Kind != policy.MaskTruncate || m.Unit != "day" {
		t.Errorf("withdrawals.created_at = %s, want truncate to the day", m)
	}
	if w := p.Writers("withdrawals"); strings.Join(w, ",") != "breakglass,write_withdrawals" {
		t.Errorf("Writers(withdrawals) = %v, want breakglass and write_withdrawals", w)
	}
}

// TestLoadRefusesWritableHashes: a column a write grant can set may not be hash-masked,
// whatever domain it is in and whoever writes it: its writer could store guesses and
// find, by hash, the rows that hold them. Each case is a way an insider editing the
// policy might try to get such a column past the loader.
func TestLoadRefusesWritableHashes(t *testing.T) {
	const bgWrites = "    write: [accounts, withdrawals]\n"
	tcs := []struct {
		desc string
		doc  string
		want []string // fragments of the error
	}{
		{"the issue's policy: a writable destination hashed with users' e-mails",
			edit(t, "destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: hash}",
				"columns: [currency, status]", "columns: [user_id, currency, amount, destination_address, status, created_at]"),
			[]string{"line 65: tables.withdrawals.masked.destination_address: hashed (domain withdrawals.destination_address)", "the other rows of withdrawals.destination_address", "through breakglass and write_withdrawals"}},
		{"writable, in a domain shared with another table",
			edit(t, "columns: [currency, status]", "columns: [currency, status, destination_address]"),
			[]string{"line 65: tables.withdrawals.masked.destination_address: hashed (domain wallet_address)", "the rows of deposits.wallet_address"}},
		{"the domain spelt in another case",
			edit(t, "destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: hash, domain: Wallet_Address}",
				"columns: [currency, status]", "columns: [currency, status, destination_address]"),
			[]string{`tables.withdrawals.masked.destination_address.domain: "Wallet_Address" is not a domain name`}},
		{"the domain in upper case, the column not writable",
			edit(t, "wallet_address: {mask: hash, domain: wallet_address}", "wallet_address: {mask: hash, domain: WALLET_ADDRESS}"),
			[]string{`"WALLET_ADDRESS" is not a domain name`}},
		{"the domain with a trailing space",
			edit(t, "wallet_address: {mask: hash, domain: wallet_address}", `wallet_address: {mask: hash, domain: "wallet_address "}`),
			[]string{`"wallet_address " is not a domain name`}},
		{"another column's implicit domain named outright",
			edit(t, "wallet_address: {mask: hash, domain: wallet_address}", "wallet_address: {mask: hash, domain: users.email}"),
			[]string{`"users.email" is not a domain name`}},
		{"the implicit domain, the column writable",
			edit(t, "destination_address: {mask: hash, domain: wallet_address}", "destination_address: {mask: hash, domain: ~}",
				"columns: [currency, status]", "columns: [currency, status, destination_address]"),
			[]string{"hashed (domain withdrawals.destination_address)"}},
		{"a table only breakglass writes",
			edit(t, "      created_at: {mask: truncate, unit: day}\n  withdrawals:",
				"      created_at: {mask: truncate, unit: day}\n    write:\n      operations: [update]\n      columns: [status, tx_hash]\n      max_rows: 5\n  withdrawals:",
				bgWrites, "    write: [accounts, withdrawals, deposits]\n"),
			[]string{"line 59: tables.deposits.masked.tx_hash: hashed (domain tx_hash) and writable (tables.deposits.write.columns, through breakglass)"}},
		{"a writable table no role writes yet",
			edit(t, "      created_at: {mask: truncate, unit: day}\n  withdrawals:",
				"      created_at: {mask: truncate, unit: day}\n    write:\n      operations: [insert]\n      columns: [user_id, wallet_address]\n      max_rows: 5\n  withdrawals:"),
			[]string{"tables.deposits.masked.wallet_address: hashed (domain wallet_address) and writable (tables.deposits.write.columns, through write_deposits)", "the rows of withdrawals.destination_address"}},
		{"breakglass unmasks every table of the domain and writes",
			edit(t, "columns: [currency, status]", "columns: [currency, status, destination_address]",
				"  write_withdrawals:\n", "  write_unused:\n"),
			[]string{"tables.withdrawals.masked.destination_address: hashed (domain wallet_address) and writable (tables.withdrawals.write.columns, through breakglass)"}},
		{"the column listed twice",
			edit(t, "columns: [currency, status]", "columns: [destination_address, currency, destination_address]"),
			[]string{"tables.withdrawals.masked.destination_address: hashed"}},
		{"a second withdrawals table further down",
			edit(t, "  trades:\n", "  withdrawals:\n    primary_key: [id]\n  trades:\n"),
			[]string{`"withdrawals" already defined`}},
		{"a second mask for the column",
			edit(t, "      destination_address: {mask: hash, domain: wallet_address}\n", "      destination_address: {mask: hash, domain: wallet_address}\n      destination_address: {mask: partial, keep_last: 4}\n"),
			[]string{`"destination_address" already defined`}},
		{"the writable column in another case",
			edit(t, "columns: [currency, status]", "columns: [currency, status, Destination_Address]"),
			[]string{`"Destination_Address" is not a column name`}},
		{"a domain on a partial mask",
			edit(t, "phone: {mask: partial, keep_last: 2}", "phone: {mask: partial, keep_last: 2, domain: wallet_address}"),
			[]string{"tables.users.masked.phone.domain: domain does not apply to mask: partial"}},
		{"keep_last on a hash",
			edit(t, "email: {mask: hash}", "email: {mask: hash, keep_last: 4}"),
			[]string{"tables.users.masked.email.keep_last: keep_last does not apply to mask: hash"}},
		{"the mask in upper case",
			edit(t, "email: {mask: hash}", "email: {mask: HASH}"),
			[]string{`"HASH" is not a mask`}},
		{"a misspelt domain key",
			edit(t, "email: {mask: hash}", "email: {mask: hash, domian: wallet_address}"),
			[]string{"domian"}},
		{"round without digits",
			edit(t, "amount: {mask: round, digits: 1}", "amount: {mask: round}"),
			[]string{"tables.deposits.masked.amount.digits: round keeps 1 to 6 significant digits, got 0"}},
		{"round keeping everything",
			edit(t, "amount: {mask: round, digits: 1}", "amount: {mask: round, digits: 36}"),
			[]string{"round keeps 1 to 6 significant digits, got 36"}},
		{"truncate to the minute",
			edit(t, "created_at: {mask: truncate, unit: day}", "created_at: {mask: truncate, unit: minute}"),
			[]string{`tables.deposits.masked.created_at.unit: "minute" is not a unit: use hour, day, week, month, year`}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := policy.Load([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Load succeeded, want an error mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error = %v\nwant it to mention %q", err, w)
				}
			}
		})
	}
}

// TestLoadAcceptsWritableKeylessMasks: partial, round and truncate need no key, so anyone
// can compute them from a guess; a writable column may use them (the database tests in
// functions/query show that comparing such a column with another reveals nothing).
func TestLoadAcceptsWritableKeylessMasks(t *testing.T) {
	for _, mask := range []string{"{mask: partial, keep_first: 4, keep_last: 4}", "{mask: redact}", "{mask: null}"} {
		doc := edit(t, "destination_address: {mask: hash, domain: wallet_address}", "destination_address: "+mask,
			"columns: [currency, status]", "columns: [currency, status, destination_address, amount, created_at]")
		if _, err := policy.Load([]byte(doc)); err != nil {
			t.Errorf("when the writable destination is masked %s (amount rounded, created_at truncated), want Load to succeed, got = %v", mask, err)
		}
	}
}
