package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
)

// TestNoPoolIsSuperuser: on the Cloud SQL emulation, every pool a function opens (its
// own and its replica's) logs in as a role that is not a superuser, and so does the admin
// that ran the migrations; the function's login holds no privilege on the application's
// data until it sets its role.
func TestNoPoolIsSuperuser(t *testing.T) {
	d := dbtest.New(t)
	ctx := t.Context()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pub.pem")
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file sink's chains are certified with a local key, as scripts/dev.sh's are.
	priv, _ := x509.MarshalPKCS8PrivateKey(k)
	signingKey := filepath.Join(dir, "audit-key.pem")
	if err := os.WriteFile(signingKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, g := range migrate.Groups {
		t.Run(g, func(t *testing.T) {
			deps, err := app.Build(ctx, app.Config{
				Function: "Test" + g, Group: g, Policy: demo.Policy, Prefix: d.Roles.Prefix,
				DB: db.Config{URL: d.URL(g)}, Replica: db.Config{URL: d.URL(g)},
				AuthMode: "local", AuthKeyFile: keyFile,
				Audit: audit.Config{Sink: audit.SinkFile, File: filepath.Join(dir, g+".audit.jsonl"), SigningKeyFile: signingKey},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer deps.Close()
			for name, pool := range map[string]*db.Pool{"pool": deps.Pool, "replica pool": deps.Replica} {
				var super bool
				var user string
				if err := pool.QueryRow(ctx, `SELECT rolsuper, rolname::text FROM pg_roles WHERE rolname = session_user`).Scan(&super, &user); err != nil {
					t.Fatal(err)
				}
				if super || user != d.Login(g) {
					t.Errorf("%s's %s: want session_user = %s, not a superuser, got = %s (rolsuper %v)", g, name, d.Login(g), user, super)
				}
				var data bool
				if err := pool.QueryRow(ctx, `
					SELECT bool_or(has_table_privilege(c.oid, 'SELECT')) FROM pg_class c
					 WHERE c.relname = 'users' AND c.relnamespace IN ('public'::regnamespace, 'masked'::regnamespace)`).Scan(&data); err != nil {
					t.Fatal(err)
				}
				if data {
					t.Errorf("%s's %s: want the login itself unable to read users (it holds nothing until SET ROLE), got = it can", g, name)
				}
			}
		})
	}
	for name, u := range map[string]string{"admin": d.AdminURL, "owner": d.OwnerURL} {
		conn, err := db.Open(ctx, db.Config{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		var super, createrole bool
		if err := conn.QueryRow(ctx, `SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = session_user`).Scan(&super, &createrole); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if super || createrole {
			t.Errorf("the %s: want a login that is neither a superuser nor CREATEROLE itself (an IAM user's attributes), got = rolsuper %v, rolcreaterole %v", name, super, createrole)
		}
	}
}
