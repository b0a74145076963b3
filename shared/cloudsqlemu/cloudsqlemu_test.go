package cloudsqlemu_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/cloudsqlemu"
)

// TestReadFlags: the flags come from terraform/sql.tf, variables resolved from their
// defaults; Cloud SQL's switches and pgAudit's are skipped, with a reason.
func TestReadFlags(t *testing.T) {
	flags, err := cloudsqlemu.ReadFlags("../../terraform")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cloudsqlemu.Flag{}
	for _, f := range flags {
		byName[f.Name] = f
	}
	for _, tc := range []struct {
		name, value string
		skipped     bool
	}{
		{"log_connections", "on", false},
		{"log_disconnections", "on", false},
		{"cloudsql.iam_authentication", "on", true},
		{"pgaudit.log", "ddl,role,write,read", true}, // var.pgaudit_log's default
	} {
		f, ok := byName[tc.name]
		if !ok {
			t.Errorf("want flag %s read from sql.tf, got none", tc.name)
			continue
		}
		if f.Value != tc.value || (f.Skip() != "") != tc.skipped {
			t.Errorf("flag %s: want value = %q, skipped = %v, got = %q, skip reason %q", tc.name, tc.value, tc.skipped, f.Value, f.Skip())
		}
	}
}

// TestReadFlagsRefusesWhatItCannotEvaluate: a flag whose value needs more than a
// variable's default is an error naming the flag, never a silently wrong emulation.
func TestReadFlagsRefusesWhatItCannotEvaluate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(dir+"/"+name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("variables.tf", `variable "limit" { type = number }`)
	write("sql.tf", `resource "google_sql_database_instance" "primary" {
  settings {
    database_flags {
      name  = "temp_file_limit"
      value = var.limit
    }
  }
}`)
	if _, err := cloudsqlemu.ReadFlags(dir); err == nil {
		t.Error("when a flag's value is a variable without a default, want an error, got none")
	}
	write("variables.tf", `variable "limit" {
  type    = number
  default = 1048576
}`)
	flags, err := cloudsqlemu.ReadFlags(dir)
	if err != nil || len(flags) != 1 || flags[0] != (cloudsqlemu.Flag{Name: "temp_file_limit", Value: "1048576"}) {
		t.Errorf("when a flag's value is a number variable with a default, want temp_file_limit = 1048576, got = %v, %v", flags, err)
	}
}

// TestEmulationMatchesTerraform: on the emulation scripts/test.sh built, every flag of
// sql.tf that applies to PostgreSQL is in force for a new session, and the roles are as
// Cloud SQL makes them: cloudsqlsuperuser with CREATEROLE and CREATEDB and nothing else,
// member of no predefined role; the admin a plain login in it.
func TestEmulationMatchesTerraform(t *testing.T) {
	path := os.Getenv(cloudsqlemu.EnvFile)
	if path == "" {
		t.Skip(cloudsqlemu.EnvFile + " is not set; scripts/test.sh builds the emulation")
	}
	e, err := cloudsqlemu.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	flags, err := cloudsqlemu.ReadFlags("../../terraform")
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := cloudsqlemu.CheckFlags(t.Context(), e.AdminURL, flags)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrong) > 0 {
		t.Errorf("want every PostgreSQL flag of terraform/sql.tf in force, got = %v", wrong)
	}
	conn, err := pgx.Connect(t.Context(), e.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var attrs string
	err = conn.QueryRow(t.Context(), `
		SELECT format('super=%s createrole=%s createdb=%s login=%s replication=%s bypassrls=%s', rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls)
		  FROM pg_roles WHERE rolname = $1`, cloudsqlemu.SuperuserRole).Scan(&attrs)
	if err != nil {
		t.Fatal(err)
	}
	if want := "super=f createrole=t createdb=t login=f replication=f bypassrls=f"; attrs != want {
		t.Errorf("%s: want %s, got = %s", cloudsqlemu.SuperuserRole, want, attrs)
	}
	rows, err := conn.Query(t.Context(), `
		SELECT r.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
		 WHERE m.member = $1::regrole`, cloudsqlemu.SuperuserRole)
	if err != nil {
		t.Fatal(err)
	}
	memberOf, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range memberOf {
		if len(r) > 3 && r[:3] == "pg_" {
			t.Errorf("%s: want no predefined role, got member of %s", cloudsqlemu.SuperuserRole, r)
		}
	}
	var admin string
	err = conn.QueryRow(t.Context(), `
		SELECT format('super=%s createrole=%s createdb=%s member=%s', rolsuper, rolcreaterole, rolcreatedb, pg_has_role(session_user, $1, 'MEMBER'))
		  FROM pg_roles WHERE rolname = session_user`, cloudsqlemu.SuperuserRole).Scan(&admin)
	if err != nil {
		t.Fatal(err)
	}
	if want := "super=f createrole=f createdb=f member=t"; admin != want {
		t.Errorf("the admin login: want %s, got = %s", want, admin)
	}
	if slices.Contains(memberOf, "pg_signal_backend") {
		t.Errorf("%s may signal any backend; Cloud SQL documents no such membership", cloudsqlemu.SuperuserRole)
	}
}

// TestEmulationRecordsDataDirectory: the emulation names the data directory of the
// server it was built on, which the memory tests read from outside. On the server's own
// machine it must hold a cluster of the server's major version.
func TestEmulationRecordsDataDirectory(t *testing.T) {
	path := os.Getenv(cloudsqlemu.EnvFile)
	if path == "" {
		t.Skip(cloudsqlemu.EnvFile + " is not set; scripts/test.sh builds the emulation")
	}
	e, err := cloudsqlemu.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(e.DataDirectory) {
		t.Fatalf("want the server's data directory recorded as an absolute path, got = %q", e.DataDirectory)
	}
	conn, err := pgx.Connect(t.Context(), e.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var major string
	if err := conn.QueryRow(t.Context(), `SELECT (current_setting('server_version_num')::int / 10000)::text`).Scan(&major); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(e.DataDirectory, "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s is not on this machine: the server runs elsewhere", e.DataDirectory)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != major {
		t.Errorf("want %s to hold a PostgreSQL %s cluster, got PG_VERSION = %s", e.DataDirectory, major, got)
	}
}
