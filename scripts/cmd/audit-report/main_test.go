package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	signer := audittest.NewLocalSigner(t)
	rec, err := audit.NewFileRecorder(t.Context(), path, audit.WithSigner(signer),
		audit.WithHeadStore(audit.NewFileHeadStore(path+audit.HeadsFileSuffix)), audit.WithHeadsEveryEntry())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []audit.Entry{
		{Event: audit.EventRequestCreated, Actor: "dev1@example.com", AccessRequestID: "ar_1", Reason: "ticket SUP-1", Details: map[string]any{"role": "unmasked_users"}},
		{Event: audit.EventRequestApproved, Actor: "lead1@example.com", AccessRequestID: "ar_1"},
	} {
		if err := rec.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	rec.Close(t.Context())
	der, _ := x509.MarshalPKIXPublicKey(signer.Public())
	key := filepath.Join(dir, "key.pem")
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	raw, _ := os.ReadFile(path)
	edited := filepath.Join(dir, "edited.jsonl")
	os.WriteFile(edited, bytes.Replace(raw, []byte("lead1@"), []byte("lead2@"), 1), 0o600)

	tcs := []struct {
		desc     string
		args     []string
		wantCode int
		wantErr  string
		files    bool
	}{
		{desc: "verified", args: []string{"--key", key, "--heads", path + ".heads.jsonl", "--out", filepath.Join(dir, "ok"), path}, files: true},
		{desc: "one request", args: []string{"--key", key, "--heads", path + ".heads.jsonl", "--request", "ar_1", "--out", filepath.Join(dir, "one"), path}, files: true},
		{desc: "an unknown request", args: []string{"--key", key, "--heads", path + ".heads.jsonl", "--request", "ar_2", "--out", filepath.Join(dir, "none"), path}, wantCode: 2, wantErr: "no access request ar_2"},
		{desc: "tampered", args: []string{"--key", key, "--heads", path + ".heads.jsonl", "--out", filepath.Join(dir, "bad"), edited}, wantCode: 1, wantErr: "refusing to report"},
		{desc: "no heads", args: []string{"--key", key, "--out", filepath.Join(dir, "nh"), path}, wantCode: 2, wantErr: "no heads given"},
		{desc: "bad period", args: []string{"--key", key, "--no-heads", "--from", "June", "--out", filepath.Join(dir, "bp"), path}, wantCode: 2, wantErr: "--from"},
		{desc: "no --out", args: []string{"--key", key, "--no-heads", path}, wantCode: 2, wantErr: "want --out DIR"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stdout, &stderr); code != tc.wantCode {
				t.Errorf("when %v, want exit = %d, got = %d\n%s%s", tc.args, tc.wantCode, code, &stdout, &stderr)
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("want stderr to contain %q, got = %s", tc.wantErr, &stderr)
			}
			out := tc.args[len(tc.args)-2]
			for _, f := range files {
				_, err := os.Stat(filepath.Join(out, f.name))
				if tc.files && err != nil {
					t.Errorf("want %s written, got = %v", f.name, err)
				}
				if !tc.files && err == nil {
					t.Errorf("want nothing written, got %s", f.name)
				}
			}
		})
	}
}
