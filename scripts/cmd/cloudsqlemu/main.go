// Command cloudsqlemu builds a Cloud SQL emulation (package shared/cloudsqlemu) on a
// PostgreSQL server, as its superuser, and saves what it made as JSON: the URLs of the
// admin login (a member of cloudsqlsuperuser), the application owner and the functions'
// logins. scripts/dev.sh, scripts/test.sh and scripts/bench.sh run it once; nothing of
// Airlock's uses the superuser after it.
//
//	cloudsqlemu --superuser-url URL --out FILE [--terraform DIR] [--database NAME,...]
//	            [--logins query=NAME,requests=NAME,approvals=NAME,sweeper=NAME] [--env]
//	cloudsqlemu --from FILE [--database NAME,...] [--env]
//
// --env prints, for a shell's eval, EMU_ADMIN_URL, EMU_OWNER_URL, EMU_ROLE (the role the
// admin acts as) and EMU_GRANT_LOGINS (airlock-admin's --grant-logins value).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/cloudsqlemu"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloudsqlemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	su := fs.String("superuser-url", os.Getenv("DATABASE_URL"), "URL of a superuser of the server (default $DATABASE_URL)")
	out := fs.String("out", "", "where to save the emulation's URLs (JSON, mode 0600)")
	tf := fs.String("terraform", "terraform", "directory of sql.tf and variables.tf, whose database flags are applied")
	dbs := fs.String("database", "", "databases to create as Terraform would, comma-separated")
	logins := fs.String("logins", "", "function logins to create as Cloud SQL creates IAM users, group=name,…")
	from := fs.String("from", "", "an emulation saved before: print it (with --env) instead of building one")
	env := fs.Bool("env", false, "print the emulation as shell variables on standard output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from != "" {
		e, err := cloudsqlemu.Load(*from)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := createDatabases(ctx, e, *dbs); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if *env {
			printEnv(os.Stdout, e)
		}
		return 0
	}
	if *su == "" || *out == "" {
		fmt.Fprintln(stderr, "cloudsqlemu: --superuser-url (or DATABASE_URL) and --out are required")
		return 2
	}
	flags, err := cloudsqlemu.ReadFlags(*tf)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	opts := cloudsqlemu.Options{Flags: flags, Logins: map[string]string{}}
	for _, d := range strings.Split(*dbs, ",") {
		if d != "" {
			opts.Databases = append(opts.Databases, d)
		}
	}
	for _, kv := range strings.Split(*logins, ",") {
		if kv == "" {
			continue
		}
		g, name, ok := strings.Cut(kv, "=")
		if !ok || g == "" || name == "" {
			fmt.Fprintf(stderr, "cloudsqlemu: --logins: %q is not group=name\n", kv)
			return 2
		}
		opts.Logins[g] = name
	}
	e, err := cloudsqlemu.Build(ctx, *su, opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := e.Save(*out); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "cloudsqlemu: built the Cloud SQL emulation (%s, an admin login in it, the application owner, %d function login(s), %d database flag(s) of terraform/sql.tf); the superuser is not used again\n",
		cloudsqlemu.SuperuserRole, len(opts.Logins), len(flags)-len(e.Skipped))
	for _, s := range e.Skipped {
		fmt.Fprintln(stderr, "cloudsqlemu: not applied:", s)
	}
	if *env {
		printEnv(os.Stdout, e)
	}
	return 0
}

// createDatabases creates databases on a built emulation, through its admin login.
func createDatabases(ctx context.Context, e *cloudsqlemu.Emulation, dbs string) error {
	if dbs == "" {
		return nil
	}
	admin, err := pgx.Connect(ctx, e.AdminURL)
	if err != nil {
		return fmt.Errorf("cloudsqlemu: connecting as the admin: %w", err)
	}
	defer admin.Close(ctx)
	owner, err := pgx.ParseConfig(e.OwnerURL)
	if err != nil {
		return err
	}
	for _, d := range strings.Split(dbs, ",") {
		if d == "" {
			continue
		}
		if err := cloudsqlemu.CreateDatabase(ctx, admin, d, owner.User); err != nil {
			return err
		}
	}
	return nil
}

func printEnv(w io.Writer, e *cloudsqlemu.Emulation) {
	var logins []string
	for _, g := range slices.Sorted(maps.Keys(e.Logins)) {
		u, err := url.Parse(e.Logins[g])
		if err == nil {
			logins = append(logins, g+"="+u.User.Username())
		}
	}
	for _, kv := range [][2]string{
		{"EMU_ADMIN_URL", e.AdminURL}, {"EMU_OWNER_URL", e.OwnerURL}, {"EMU_ROLE", e.Role},
		{"EMU_GRANT_LOGINS", strings.Join(logins, ",")},
	} {
		fmt.Fprintf(w, "%s='%s'\n", kv[0], strings.ReplaceAll(kv[1], "'", `'\''`))
	}
}
