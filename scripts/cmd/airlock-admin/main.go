// Command airlock-admin does Airlock's administrator steps: applying the migrations that
// make the database enforce the policy (the one-time bootstrap in production, run as a
// Cloud SQL IAM admin), and, for local runs, setting up the demo and minting tokens.
//
//	airlock-admin migrate --policy FILE (--database-url URL | --instance P:R:I --iam-user EMAIL --database DB)
//	                      [--grant-logins query=LOGIN,requests=LOGIN,approvals=LOGIN,sweeper=LOGIN] [--prefix airlock_]
//	airlock-admin dev-setup --database-url SUPERUSER_URL --database airlock --state .dev --policy FILE
//	airlock-admin token --key .dev/auth-key.pem EMAIL
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
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
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: airlock-admin migrate|dev-setup|token|keygen [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout)
	case "dev-setup":
		err = cmdDevSetup(ctx, args[1:], stdout)
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	pol, err := loadPolicy(*polPath)
	if err != nil {
		return err
	}
	opts := migrate.Options{Prefix: *prefix, Logins: map[string][]string{}}
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

// cmdDevSetup prepares a local Airlock: the database, the demo tables and rows, a login
// role per function group, the migrations, and the signing key for local tokens. It
// writes STATE/logins.json with each function's connection URL.
func cmdDevSetup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dev-setup", flag.ContinueOnError)
	admin := fs.String("database-url", "", "superuser URL of the server")
	database := fs.String("database", "airlock", "database to create or reuse")
	state := fs.String("state", ".dev", "state directory")
	polPath := fs.String("policy", "", "policy file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pol, err := loadPolicy(*polPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*state, 0o700); err != nil {
		return err
	}
	// The URL may name a database that does not exist yet: create it from the
	// maintenance database.
	root, err := pgx.Connect(ctx, db.WithDatabase(*admin, "postgres"))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", redact(*admin), err)
	}
	var exists bool
	root.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, *database).Scan(&exists)
	if !exists {
		if _, err := root.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{*database}.Sanitize()); err != nil {
			root.Close(ctx)
			return fmt.Errorf("creating database: %w", err)
		}
	}
	root.Close(ctx)
	dbURL := db.WithDatabase(*admin, *database)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := demo.Load(ctx, conn); err != nil {
		return err
	}
	logins := map[string]string{}
	opts := migrate.Options{Prefix: migrate.DefaultPrefix, Logins: map[string][]string{}}
	for _, g := range migrate.Groups {
		login := migrate.DefaultPrefix + "login_" + g
		password := randomHex(16)
		_, err := conn.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s LOGIN NOINHERIT; END IF;
		END $$`, login))
		if err != nil {
			return fmt.Errorf("creating login %s: %w", login, err)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER ROLE %s LOGIN NOINHERIT PASSWORD '%s'`, login, password)); err != nil {
			return err
		}
		opts.Logins[g] = []string{login}
		logins[g] = db.WithUser(dbURL, login, password)
	}
	if err := migrate.Apply(ctx, conn, pol, opts); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(map[string]any{"admin": dbURL, "logins": logins}, "", "  ")
	if err := os.WriteFile(filepath.Join(*state, "logins.json"), b, 0o600); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*state, "auth-key.pem")); errors.Is(err, os.ErrNotExist) {
		if err := keygen(*state); err != nil {
			return err
		}
	}
	// The audit trail's stand-in for the Cloud KMS key that certifies each chain; the
	// verifier trusts its public half (scripts/audit-verify passes it).
	if _, err := os.Stat(filepath.Join(*state, "audit-key.pem")); errors.Is(err, os.ErrNotExist) {
		if err := writeKeyPair(*state, "audit-key"); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "database %s ready: demo data loaded, migrations applied\n", *database)
	return nil
}

func cmdKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	dir := fs.String("dir", ".dev", "where to write auth-key.pem and auth-key.pub.pem")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return keygen(*dir)
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

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the server"
	}
	return p.Redacted()
}
