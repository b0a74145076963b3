package audit_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

func TestFromEnv(t *testing.T) {
	srv := audittest.NewServer(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "audit-key.pem")
	der, err := x509.MarshalPKCS8PrivateKey(localSignerKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	rsaFile := filepath.Join(dir, "rsa.pem")
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ = x509.MarshalPKCS8PrivateKey(rk)
	os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	local := map[string]string{"AUDIT_SIGNING_KEY_FILE": keyFile, "AUDIT_KMS_KEY": ""}
	kms := map[string]string{"AUDIT_SIGNING_KEY_FILE": "", "AUDIT_KMS_KEY": audittest.KMSKeyVersion}
	with := func(keys map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range keys {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tcs := []struct {
		desc    string
		env     map[string]string
		wantErr bool
		check   func(t *testing.T)
	}{
		{desc: "unset", env: with(local, "AUDIT_SINK", ""), wantErr: true},
		{desc: "unknown", env: with(local, "AUDIT_SINK", "stdout"), wantErr: true},
		{desc: "no signing key", env: with(nil, "AUDIT_SINK", "file", "AUDIT_FILE", filepath.Join(dir, "n.jsonl"), "AUDIT_KMS_KEY", "", "AUDIT_SIGNING_KEY_FILE", ""), wantErr: true},
		{desc: "both signing keys", env: with(local, "AUDIT_SINK", "file", "AUDIT_FILE", filepath.Join(dir, "n.jsonl"), "AUDIT_KMS_KEY", audittest.KMSKeyVersion), wantErr: true},
		{desc: "missing key file", env: with(nil, "AUDIT_SINK", "file", "AUDIT_FILE", filepath.Join(dir, "n.jsonl"), "AUDIT_KMS_KEY", "", "AUDIT_SIGNING_KEY_FILE", filepath.Join(dir, "none.pem")), wantErr: true},
		{desc: "RSA key file", env: with(nil, "AUDIT_SINK", "file", "AUDIT_FILE", filepath.Join(dir, "n.jsonl"), "AUDIT_KMS_KEY", "", "AUDIT_SIGNING_KEY_FILE", rsaFile), wantErr: true},
		{desc: "KMS key that is not a version", env: with(nil, "AUDIT_SINK", "cloudlogging", "AUDIT_PROJECT", "p1", "AUDIT_SIGNING_KEY_FILE", "", "AUDIT_KMS_KEY", audittest.KMSKeyName), wantErr: true},
		{desc: "file", env: with(local, "AUDIT_SINK", "file", "AUDIT_FILE", filepath.Join(dir, "a.jsonl")), check: func(t *testing.T) {
			if rep := verifyFile(t, filepath.Join(dir, "a.jsonl")); !rep.OK() || rep.Entries != 2 {
				t.Errorf("want 2 verified entries, got = %s %v", rep.Summary(), rep.Findings)
			}
			heads, err := audit.ReadHeadsFile(filepath.Join(dir, "a.jsonl.heads.jsonl"))
			if err != nil || len(heads) != 2 {
				t.Errorf("want a head per entry in a.jsonl.heads.jsonl, got = %d (%v)", len(heads), err)
			}
		}},
		{desc: "file, signed in Cloud KMS", env: with(kms, "AUDIT_SINK", "file", "AUDIT_FILE", filepath.Join(dir, "k.jsonl")), check: func(t *testing.T) {
			trail, err := audit.ReadTrailFile(filepath.Join(dir, "k.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			heads, err := audit.ReadHeadsFile(filepath.Join(dir, "k.jsonl.heads.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if rep := audit.Verify(trail, srv.Keyring(t), heads); !rep.OK() || rep.Entries != 2 {
				t.Errorf("want 2 entries verified with the KMS key, got = %s %v", rep.Summary(), rep.Findings)
			}
			if rep := audit.Verify(trail, keys(t), heads); rep.OK() {
				t.Errorf("want the trail untrusted with only the local key, got = %s", rep.Summary())
			}
		}},
		{desc: "cloudlogging, AUDIT_PROJECT", env: with(kms, "AUDIT_SINK", "cloudlogging", "AUDIT_PROJECT", "p1", "GOOGLE_CLOUD_PROJECT", "p2"), check: func(t *testing.T) {
			if got := srv.Entries(); len(got) == 0 || got[len(got)-1].GetLogName() != "projects/p1/logs/airlock-audit" {
				t.Errorf("want log projects/p1/logs/airlock-audit, got = %v", got)
			}
		}},
		{desc: "cloudlogging, GOOGLE_CLOUD_PROJECT", env: with(kms, "AUDIT_SINK", "cloudlogging", "AUDIT_PROJECT", "", "GOOGLE_CLOUD_PROJECT", "p2"), check: func(t *testing.T) {
			if got := srv.Entries(); len(got) == 0 || got[len(got)-1].GetLogName() != "projects/p2/logs/airlock-audit" {
				t.Errorf("want log projects/p2/logs/airlock-audit, got = %v", got)
			}
		}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			rec, err := audit.FromEnv(t.Context(), audit.WithClientOptions(srv.ClientOptions()...),
				audit.WithLoggerOptions(srv.LoggerOptions()...), audit.WithMirror(nil))
			if tc.wantErr {
				if err == nil || errors.Is(err, audit.ErrUnavailable) {
					t.Errorf("when %v, want a configuration error, got = %v", tc.env, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if err := rec.Record(t.Context(), audit.Entry{Event: "x"}); err != nil {
				t.Fatal(err)
			}
			if err := rec.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			tc.check(t)
		})
	}
}
