package authn_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/idtoken"

	"airlock.dev/airlock/shared/authn"
)

// fakeGoogle serves a JWKS for every URL, standing in for Google's certificate endpoints.
type fakeGoogle struct{ jwks []byte }

func (f fakeGoogle) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=3600"}},
		Body: io.NopCloser(strings.NewReader(string(f.jwks))), Request: r}, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func signRS256(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	hb, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	cb, _ := json.Marshal(claims)
	signed := b64(hb) + "." + b64(cb)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

func TestGoogleIDToken(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	val, err := idtoken.NewValidator(context.Background(), idtoken.WithHTTPClient(&http.Client{Transport: fakeGoogle{jwks}}))
	if err != nil {
		t.Fatal(err)
	}
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
	id, err := call(signRS256(t, key, "k1", claims(nil)))
	if err != nil || id.Email != "lead1@example.com" {
		t.Fatalf("valid token: %+v %v", id, err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	localTok, _ := authn.Mint(ecKey, "lead1@example.com", aud, time.Hour)
	bad := map[string]string{
		"none":          "",
		"other key":     signRS256(t, other, "k1", claims(nil)),
		"unknown kid":   signRS256(t, key, "k2", claims(nil)),
		"audience":      signRS256(t, key, "k1", claims(func(c map[string]any) { c["aud"] = "https://elsewhere" })),
		"expired":       signRS256(t, key, "k1", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })),
		"issuer":        signRS256(t, key, "k1", claims(func(c map[string]any) { c["iss"] = "https://evil.example" })),
		"unverified":    signRS256(t, key, "k1", claims(func(c map[string]any) { c["email_verified"] = false })),
		"no email":      signRS256(t, key, "k1", claims(func(c map[string]any) { delete(c, "email") })),
		"local dev key": localTok,
		"signature cut": strings.Join(strings.Split(signRS256(t, key, "k1", claims(nil)), ".")[:2], ".") + ".",
		"alg none":      b64([]byte(`{"alg":"none","kid":"k1"}`)) + "." + b64(mustJSON(claims(nil))) + ".",
	}
	for name, tok := range bad {
		if id, err := call(tok); err == nil || !errors.Is(err, authn.ErrUnauthenticated) {
			t.Errorf("%s: accepted as %+v (%v)", name, id, err)
		}
	}
	if _, err := (authn.GoogleIDToken{Validator: val}).Verify(context.Background(), &http.Request{Header: http.Header{"Authorization": {"Bearer " + signRS256(t, key, "k1", claims(nil))}}}); err == nil {
		t.Errorf("a verifier without an audience accepted a token")
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
