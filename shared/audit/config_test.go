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

func TestFromConfig(t *testing.T) {
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
	local := audit.Config{SigningKeyFile: keyFile}
	kms := audit.Config{KMSKey: audittest.KMSKeyVersion}
	with := func(c audit.Config, sink, file string) audit.Config {
		c.Sink, c.File = sink, file
		return c
	}
	tcs := []struct {
		desc    string
		cfg     audit.Config
		wantErr bool
		check   func(t *testing.T)
	}{
		{desc: "unset", cfg: with(local, "", ""), wantErr: true},
		{desc: "unknown", cfg: with(local, "stdout", ""), wantErr: true},
		{desc: "no signing key", cfg: with(audit.Config{}, "file", filepath.Join(dir, "n.jsonl")), wantErr: true},
		{desc: "both signing keys", cfg: with(audit.Config{SigningKeyFile: keyFile, KMSKey: audittest.KMSKeyVersion}, "file", filepath.Join(dir, "n.jsonl")), wantErr: true},
		{desc: "missing key file", cfg: with(audit.Config{SigningKeyFile: filepath.Join(dir, "none.pem")}, "file", filepath.Join(dir, "n.jsonl")), wantErr: true},
		{desc: "RSA key file", cfg: with(audit.Config{SigningKeyFile: rsaFile}, "file", filepath.Join(dir, "n.jsonl")), wantErr: true},
		{desc: "KMS key that is not a version", cfg: audit.Config{Sink: "cloudlogging", Project: "p1", KMSKey: audittest.KMSKeyName}, wantErr: true},
		{desc: "file", cfg: with(local, "file", filepath.Join(dir, "a.jsonl")), check: func(t *testing.T) {
			if rep := verifyFile(t, filepath.Join(dir, "a.jsonl")); !rep.OK() || rep.Entries != 2 {
				t.Errorf("want 2 verified entries, got = %s %v", rep.Summary(), rep.Findings)
			}
			heads, err := audit.ReadHeadsFile(filepath.Join(dir, "a.jsonl.heads.jsonl"))
			if err != nil || len(heads) != 2 {
				t.Errorf("want a head per entry in a.jsonl.heads.jsonl, got = %d (%v)", len(heads), err)
			}
		}},
		{desc: "file, signed in Cloud KMS", cfg: with(kms, "file", filepath.Join(dir, "k.jsonl")), check: func(t *testing.T) {
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
		{desc: "cloudlogging, project p1", cfg: audit.Config{Sink: "cloudlogging", Project: "p1", KMSKey: audittest.KMSKeyVersion}, check: func(t *testing.T) {
			if got := srv.Entries(); len(got) == 0 || got[len(got)-1].GetLogName() != "projects/p1/logs/airlock-audit" {
				t.Errorf("want log projects/p1/logs/airlock-audit, got = %v", got)
			}
		}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			rec, err := audit.FromConfig(t.Context(), tc.cfg, audit.WithClientOptions(srv.ClientOptions()...),
				audit.WithLoggerOptions(srv.LoggerOptions()...), audit.WithMirror(nil))
			if tc.wantErr {
				if err == nil || errors.Is(err, audit.ErrUnavailable) {
					t.Errorf("when %+v, want a configuration error, got = %v", tc.cfg, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromConfig: %v", err)
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
