package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeGcloud writes an executable standing in for the Google Cloud CLI: it records its
// arguments, one call a line, and prints an unsigned JWT expiring at exp.
func fakeGcloud(t *testing.T, exp time.Time) (path, calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"email":"me@example.com","exp":%d}`, exp.Unix())))
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %q\necho 'e30.%s.c2ln'\n", calls, payload)
	path = filepath.Join(dir, "gcloud")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, calls
}

func TestGcloudIdentity(t *testing.T) {
	tcs := []struct {
		desc, impersonate string
		exp               time.Duration
		wantArgs          []string // each call's arguments
	}{
		{desc: "the user's own token, kept while it is valid", exp: time.Hour,
			wantArgs: []string{"auth print-identity-token"}},
		{desc: "a service account only when asked, for each function's audience", impersonate: "sa@p.iam.gserviceaccount.com", exp: time.Hour,
			wantArgs: []string{"auth print-identity-token --impersonate-service-account=sa@p.iam.gserviceaccount.com --audiences=https://a.run.app --include-email",
				"auth print-identity-token --impersonate-service-account=sa@p.iam.gserviceaccount.com --audiences=https://b.run.app --include-email"}},
		{desc: "a token about to expire is fetched again", exp: time.Minute,
			wantArgs: []string{"auth print-identity-token", "auth print-identity-token", "auth print-identity-token"}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			bin, calls := fakeGcloud(t, time.Now().Add(tc.exp))
			g := &gcloudIdentity{impersonate: tc.impersonate, gcloud: bin}
			for _, aud := range []string{"https://a.run.app", "https://b.run.app", "https://a.run.app"} {
				tok, err := g.token(t.Context(), aud)
				if err != nil || strings.Count(tok, ".") != 2 {
					t.Fatalf("token(%s): want a JWT, got = %q, %v", aud, tok, err)
				}
			}
			b, _ := os.ReadFile(calls)
			got := strings.Split(strings.TrimSpace(string(b)), "\n")
			if strings.Join(got, "|") != strings.Join(tc.wantArgs, "|") {
				t.Errorf("when %s, want gcloud called as %q, got = %q", tc.desc, tc.wantArgs, got)
			}
		})
	}
}

func TestGcloudIdentityFailures(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "gcloud")
	os.WriteFile(bad, []byte("#!/bin/sh\necho 'ERROR: (gcloud.auth.print-identity-token) You do not currently have an active account selected.\x1b[2J' >&2\nexit 1\n"), 0o755)
	notJWT := filepath.Join(dir, "gcloud-nojwt")
	os.WriteFile(notJWT, []byte("#!/bin/sh\necho hello\n"), 0o755)
	for _, tc := range []struct{ bin, want string }{
		{filepath.Join(dir, "missing"), "gcloud auth login"},
		{bad, `active account selected.\u{1b}[2J`},
		{notJWT, "printed no ID token"},
	} {
		_, err := (&gcloudIdentity{gcloud: tc.bin}).token(t.Context(), "https://a.run.app")
		ae, ok := err.(*authError)
		if !ok || !strings.Contains(ae.msg, tc.want) || exitCode(err) != exitAuth {
			t.Errorf("gcloud %s: want an authError (exit 4) saying %q, got = %v", filepath.Base(tc.bin), tc.want, err)
		}
	}
}
