package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/authn/authntest"
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestGoogleIDToken(t *testing.T) {
	g := authntest.New(t) // Google's certificate endpoints, read by the real idtoken client
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	val := g.Validator(t)
	const aud = "https://approval-abc.a.run.app"
	v := authn.GoogleIDToken{Audience: aud, Validator: val}
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "https://accounts.google.com", "aud": aud, "sub": "123", "email": "Lead1@example.com",
			"email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	call := func(tok string) (authn.Identity, error) {
		r, _ := http.NewRequest("POST", "/", nil)
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		return v.Verify(context.Background(), r)
	}
	id, err := call(g.Sign(t, claims(nil)))
	if err != nil || id.Email != "lead1@example.com" {
		t.Fatalf("valid token: %+v %v", id, err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	localTok, _ := authn.Mint(ecKey, "lead1@example.com", aud, time.Hour)
	bad := map[string]string{
		"none":          "",
		"other key":     authntest.SignRS256(t, other, authntest.KeyID, claims(nil)),
		"unknown kid":   g.SignKeyID(t, "k2", claims(nil)),
		"audience":      g.Sign(t, claims(func(c map[string]any) { c["aud"] = "https://elsewhere" })),
		"expired":       g.Sign(t, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })),
		"issuer":        g.Sign(t, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })),
		"unverified":    g.Sign(t, claims(func(c map[string]any) { c["email_verified"] = false })),
		"no email":      g.Sign(t, claims(func(c map[string]any) { delete(c, "email") })),
		"local dev key": localTok,
		"signature cut": strings.Join(strings.Split(g.Sign(t, claims(nil)), ".")[:2], ".") + ".",
		"alg none":      b64([]byte(`{"alg":"none","kid":"`+authntest.KeyID+`"}`)) + "." + b64(mustJSON(claims(nil))) + ".",
	}
	for name, tok := range bad {
		if id, err := call(tok); err == nil || !errors.Is(err, authn.ErrUnauthenticated) {
			t.Errorf("%s: accepted as %+v (%v)", name, id, err)
		}
	}
	if _, err := (authn.GoogleIDToken{Validator: val}).Verify(context.Background(), &http.Request{Header: http.Header{"Authorization": {"Bearer " + g.Sign(t, claims(nil))}}}); err == nil {
		t.Errorf("a verifier without an audience accepted a token")
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
