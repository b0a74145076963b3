package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// TestStep8: the commands of terraform/README.md's step 8, as the tool runs them on the
// Cloud SQL emulation: migrate as the admin acting as cloudsqlsuperuser, owner-grants
// printed for the owner and run by it. None of them connects as a superuser.
func TestStep8(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	for name, u := range map[string]string{"--database-url": d.AdminURL, "--owner-url": d.OwnerURL} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var super bool
		err = conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = session_user`).Scan(&super)
		conn.Close(ctx)
		if err != nil || super {
			t.Fatalf("the admin tool's %s: want a login that is not a superuser, got rolsuper = %v (%v)", name, super, err)
		}
	}
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, demo.Policy, 0o600); err != nil {
		t.Fatal(err)
	}
	logins := "query=" + d.Login(migrate.GroupQuery) + ",requests=" + d.Login(migrate.GroupRequests) +
		",approvals=" + d.Login(migrate.GroupApprovals) + ",sweeper=" + d.Login(migrate.GroupSweeper)
	// Step 8 of terraform/README.md, command by command as printed, in order, with the
	// Cloud SQL connection flags pointed at the emulation.
	readme := step8Commands(t)
	if len(readme) != 3 {
		t.Fatalf("terraform/README.md step 8: want 3 airlock-admin commands (migrate, owner-grants printed, owner-grants run), got = %q", readme)
	}
	for _, cmd := range readme {
		args := strings.Fields(strings.NewReplacer(
			"--instance PROJECT:REGION:INSTANCE --iam-user you@example.com --database airlock", "--database-url "+d.AdminURL,
			`"$OWNER_URL"`, d.OwnerURL,
			"policy.yaml", pol,
			"query=…,requests=…,approvals=…,sweeper=…", logins,
			"> owner-grants.sql", "",
		).Replace(cmd))
		args = append(args, "--prefix", d.Roles.Prefix)
		if strings.Contains(cmd, "cloudsqlsuperuser") && !slices.Contains(args, d.AdminRole) {
			t.Fatalf("the emulation's admin role %s is not the README's cloudsqlsuperuser", d.AdminRole)
		}
		var stdout, stderr bytes.Buffer
		if code := run(ctx, args, &stdout, &stderr); code != 0 {
			t.Errorf("README step 8: %s\nwant exit 0, got = %d\nstdout: %s\nstderr: %s", cmd, code, &stdout, &stderr)
		}
	}
	for _, tc := range []struct {
		desc     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"migrate without --role: an IAM admin's own attributes cannot create roles",
			[]string{"migrate", "--database-url", d.AdminURL, "--policy", pol, "--prefix", d.Roles.Prefix, "--grant-logins", logins}, 1, ""},
		{"migrate as cloudsqlsuperuser",
			[]string{"migrate", "--database-url", d.AdminURL, "--role", d.AdminRole, "--policy", pol, "--prefix", d.Roles.Prefix, "--grant-logins", logins}, 0, "granted everything Airlock needs"},
		{"owner-grants printed",
			[]string{"owner-grants", "--database-url", d.AdminURL, "--policy", pol, "--prefix", d.Roles.Prefix}, 0,
			"GRANT SELECT ON \"public\".\"users\" TO \"" + d.Roles.Prefix + "masker\";"},
		{"owner-grants run as the admin is refused",
			[]string{"owner-grants", "--owner-url", d.AdminURL, "--policy", pol, "--prefix", d.Roles.Prefix}, 1, ""},
		{"owner-grants run as the owner",
			[]string{"owner-grants", "--owner-url", d.OwnerURL, "--policy", pol, "--prefix", d.Roles.Prefix}, 0, "the owner's statements ran"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(ctx, tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("airlock-admin %s: want exit = %d and output containing %q, got = %d\nstdout: %s\nstderr: %s",
					strings.Join(tc.args[:1], " "), tc.wantCode, tc.wantOut, code, &stdout, &stderr)
			}
		})
	}
}

// step8Commands returns the airlock-admin commands of terraform/README.md's step 8, in
// order, each joined onto one line.
func step8Commands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../../terraform/README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "### 8. ")
	end := strings.Index(s, "### 9. ")
	if start < 0 || end < start {
		t.Fatal("terraform/README.md has no step 8")
	}
	var cmds []string
	for _, block := range strings.Split(s[start:end], "```sh\n")[1:] {
		block = block[:strings.Index(block, "```")]
		block = strings.ReplaceAll(block, "\\\n", " ")
		for _, line := range strings.Split(block, "\n") {
			if strings.HasPrefix(line, "./airlock-admin ") {
				cmds = append(cmds, strings.Join(strings.Fields(strings.TrimPrefix(line, "./airlock-admin ")), " "))
			}
		}
	}
	return cmds
}
