// Command airlock-admin does Airlock's administrator steps, in the order of step 8 of
// terraform/README.md: applying the migrations that make the database enforce the policy
// (run as a Cloud SQL IAM admin, a member of cloudsqlsuperuser, never a superuser), then
// the statements the owner of the application's tables runs for Airlock (owner-grants);
// and, for local runs, loading the demo tables and minting tokens.
//
//	airlock-admin migrate --policy FILE (--database-url URL | --instance P:R:I --iam-user EMAIL --database DB)
//	                      [--role cloudsqlsuperuser] [--grant-logins query=LOGIN,requests=LOGIN,approvals=LOGIN,sweeper=LOGIN]
//	                      [--prefix airlock_]
//	airlock-admin owner-grants --policy FILE --owner-url OWNER_URL [--prefix airlock_]
//	airlock-admin owner-grants --policy FILE (--database-url URL | --instance … --iam-user … --database …) [--prefix airlock_]
//	airlock-admin demo --database-url OWNER_URL
//	airlock-admin keygen --dir .dev
//	airlock-admin token --key .dev/auth-key.pem EMAIL
//
// owner-grants with --owner-url runs the statements as the owner and checks the result;
// otherwise it prints them (as one transaction, for psql) for the owner to run.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/cloudsqlconn"
	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: airlock-admin migrate|owner-grants|demo|token|keygen [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout)
	case "owner-grants":
		err = cmdOwnerGrants(ctx, args[1:], stdout)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout)
	case "token":
		err = cmdToken(args[1:], stdout)
	case "keygen":
		err = cmdKeygen(args[1:], stdout)
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		fmt.Fprintln(stderr, "airlock-admin:", err)
		return 1
	}
	return 0
}

func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, errors.New("--policy is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return policy.Load(b)
}

func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dsn := fs.String("database-url", "", "URL of the database, as an administrator")
	instance := fs.String("instance", "", "Cloud SQL instance connection name (project:region:instance)")
	iamUser := fs.String("iam-user", "", "your IAM database user (e-mail) when using --instance")
	database := fs.String("database", "airlock", "database name when using --instance")
	privateIP := fs.Bool("private-ip", true, "dial the instance's private IP (run from inside the VPC)")
	polPath := fs.String("policy", "", "policy file")
	logins := fs.String("grant-logins", "", "function logins, e.g. query=airlock-query@p.iam,requests=…")
	prefix := fs.String("prefix", migrate.DefaultPrefix, "role name prefix")
	role := fs.String("role", "", "run the migrations as this role (SET ROLE); on Cloud SQL: cloudsqlsuperuser")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pol, err := loadPolicy(*polPath)
	if err != nil {
		return err
	}
	opts := migrate.Options{Prefix: *prefix, Logins: map[string][]string{}, Role: *role}
	for _, kv := range strings.Split(*logins, ",") {
		if kv == "" {
			continue
		}
		g, login, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--grant-logins: %q is not group=login", kv)
		}
		opts.Logins[g] = append(opts.Logins[g], login)
	}
	conn, err := connect(ctx, *dsn, *instance, *iamUser, *database, *privateIP)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := migrate.Apply(ctx, conn, pol, opts); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied; masked views and roles follow", *polPath)
	missing, err := migrate.Pending(ctx, conn, pol, *prefix)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		fmt.Fprintln(stdout, "the owner of the application's tables has granted everything Airlock needs")
		return nil
	}
	fmt.Fprintf(stdout, "next, the owner of the application's tables must run airlock-admin owner-grants --policy %s (%d missing, first: %s)\n",
		*polPath, len(missing), missing[0])
	return nil
}

// cmdOwnerGrants prints, or with --owner-url runs, what Airlock needs from the owner of
// the application's tables (migrate.OwnerStatements).
func cmdOwnerGrants(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("owner-grants", flag.ContinueOnError)
	ownerURL := fs.String("owner-url", "", "URL of the database as the owner of the application's tables: run the statements")
	dsn := fs.String("database-url", "", "URL of the database as anyone: print the statements")
	instance := fs.String("instance", "", "Cloud SQL instance connection name, to print the statements")
	iamUser := fs.String("iam-user", "", "your IAM database user (e-mail) when using --instance")
	database := fs.String("database", "airlock", "database name when using --instance")
	privateIP := fs.Bool("private-ip", true, "dial the instance's private IP (run from inside the VPC)")
	polPath := fs.String("policy", "", "policy file")
	prefix := fs.String("prefix", migrate.DefaultPrefix, "role name prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pol, err := loadPolicy(*polPath)
	if err != nil {
		return err
	}
	if *ownerURL != "" {
		conn, err := pgx.Connect(ctx, *ownerURL)
		if err != nil {
			return fmt.Errorf("connecting as the owner: %w", err)
		}
		defer conn.Close(ctx)
		if err := migrate.ApplyOwnerStatements(ctx, conn, pol, *prefix); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "the owner's statements ran: Airlock's roles have what the policy needs on the application's tables")
		return nil
	}
	conn, err := connect(ctx, *dsn, *instance, *iamUser, *database, *privateIP)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	stmts, err := migrate.OwnerStatements(ctx, conn, pol, *prefix)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "-- What Airlock needs from the owner of the application's tables, for %s.\n-- Run it as that owner, after airlock-admin migrate, e.g. psql \"$OWNER_URL\" -v ON_ERROR_STOP=1 -f FILE\n", *polPath)
	fmt.Fprint(stdout, migrate.OwnerScript(stmts))
	return nil
}

// cmdDemo creates and fills the demo tables, as the application's own migrations would:
// run it as the application's owner.
func cmdDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dsn := fs.String("database-url", "", "URL of the database as the owner of the application's tables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", redact(*dsn), err)
	}
	defer conn.Close(ctx)
	if err := demo.Load(ctx, conn); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "demo tables ready (users, accounts, deposits, withdrawals, trades)")
	return nil
}

func connect(ctx context.Context, dsn, instance, iamUser, database string, privateIP bool) (*pgx.Conn, error) {
	if dsn != "" {
		return pgx.Connect(ctx, dsn)
	}
	if instance == "" || iamUser == "" {
		return nil, errors.New("give --database-url, or --instance with --iam-user")
	}
	opts := []cloudsqlconn.Option{cloudsqlconn.WithIAMAuthN()}
	if privateIP {
		opts = append(opts, cloudsqlconn.WithDefaultDialOptions(cloudsqlconn.WithPrivateIP()))
	}
	d, err := cloudsqlconn.NewDialer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("user='%s' dbname='%s' sslmode=disable", iamUser, database))
	if err != nil {
		return nil, err
	}
	cfg.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) { return d.Dial(ctx, instance) }
	return pgx.ConnectConfig(ctx, cfg)
}

func cmdKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	dir := fs.String("dir", ".dev", "where to write auth-key.pem and audit-key.pem, with their .pub.pem halves")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	// The local token-signing key, and the audit trail's stand-in for the Cloud KMS key
	// that certifies each chain (scripts/audit-verify trusts its public half). Existing
	// keys are kept, so tokens and trails stay valid across runs.
	for _, name := range []string{"auth-key", "audit-key"} {
		if _, err := os.Stat(filepath.Join(*dir, name+".pem")); err == nil {
			fmt.Fprintf(stdout, "keeping %s in %s\n", name, *dir)
			continue
		}
		if err := writeKeyPair(*dir, name); err != nil {
			return err
		}
	}
	return nil
}

func keygen(dir string) error { return writeKeyPair(dir, "auth-key") }

// writeKeyPair writes a fresh ECDSA P-256 key to dir/NAME.pem (PKCS #8, 0600) and its
// public half to dir/NAME.pub.pem.
func writeKeyPair(dir, name string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func cmdToken(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	keyPath := fs.String("key", ".dev/auth-key.pem", "local signing key")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || !strings.Contains(fs.Arg(0), "@") {
		return errors.New("usage: token [--key FILE] [--ttl 12h] EMAIL")
	}
	b, err := os.ReadFile(*keyPath)
	if err != nil {
		return fmt.Errorf("%w (run scripts/dev.sh first: it creates the key)", err)
	}
	k, err := authn.ParsePrivateKey(b)
	if err != nil {
		return err
	}
	tok, err := authn.Mint(k, strings.ToLower(fs.Arg(0)), "", *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the server"
	}
	return p.Redacted()
}
