// Package authntest stands in for Google's side of identity in tests: an in-process server
// answering the two certificate endpoints google.golang.org/api/idtoken reads (Google's
// ID-token keys and Identity-Aware Proxy's), the private keys that match them, and the
// shapes of a token that Cloud Run forwards and that an insider might send instead.
//
// The real idtoken client talks to it: [Google.ClientOptions] gives idtoken an HTTP client
// whose requests for www.googleapis.com and www.gstatic.com reach the fake server, and any
// other host is an error, so a test can never fetch the real keys by accident.
package authntest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/idtoken"

	"airlock.dev/airlock/shared/authn"
)

// Key ids of the fake's signing keys, as Google publishes them in each JWK.
const (
	KeyID    = "authntest-google"
	IAPKeyID = "authntest-iap"
)

// StrippedSignature is what Cloud Run puts in place of the signature of the token it
// verified before it hands the request to the container.
const StrippedSignature = authn.StrippedSignature

// The paths of the two endpoints idtoken fetches keys from.
const (
	certsPath    = "/oauth2/v3/certs"           // https://www.googleapis.com/oauth2/v3/certs
	iapCertsPath = "/iap/verify/public_key-jwk" // https://www.gstatic.com/iap/verify/public_key-jwk
)

// Google is the fake. Use New to make one.
type Google struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey   // signs ID tokens (RS256)
	iapKey  *ecdsa.PrivateKey // signs IAP assertions (ES256)
	fetches atomic.Int64
}

// New starts the fake; t's cleanup stops it.
func New(t testing.TB) *Google {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iapKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g := &Google{key: key, iapKey: iapKey}
	certs, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": KeyID,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	iapCerts, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "kid": IAPKeyID,
		"x": b64(iapKey.X.FillBytes(make([]byte, 32))), "y": b64(iapKey.Y.FillBytes(make([]byte, 32))),
	}}})
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		switch r.URL.Path {
		case certsPath:
			body = certs
		case iapCertsPath:
			body = iapCerts
		default:
			http.NotFound(w, r)
			return
		}
		g.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(body)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// ClientOptions make idtoken fetch keys from the fake: pass them to idtoken.NewValidator,
// or to app.Config.IDTokenOptions.
func (g *Google) ClientOptions() []idtoken.ClientOption {
	return []idtoken.ClientOption{idtoken.WithHTTPClient(&http.Client{Transport: redirect{g.srv}})}
}

// Validator is a real idtoken.Validator that fetches keys from the fake.
func (g *Google) Validator(t testing.TB) *idtoken.Validator {
	t.Helper()
	v, err := idtoken.NewValidator(t.Context(), g.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Fetches is how many times the certificate endpoints were read.
func (g *Google) Fetches() int { return int(g.fetches.Load()) }

// redirect sends requests for Google's certificate hosts to the fake and refuses the rest.
type redirect struct{ srv *httptest.Server }

func (rt redirect) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.URL.Host {
	case "www.googleapis.com", "www.gstatic.com":
	default:
		return nil, fmt.Errorf("authntest: unexpected request to %s", r.URL)
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.Host = "http", rt.srv.Listener.Addr().String(), ""
	return rt.srv.Client().Transport.RoundTrip(out)
}

// Claims are the claims of a Google ID token for email with audience aud, valid for an
// hour from now: what gcloud or the metadata server gets for a person or service account.
func Claims(email, aud string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": "https://accounts.google.com", "aud": aud, "azp": "1234567890", "sub": "sub-" + email,
		"email": email, "email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// IDToken is a Google-signed ID token for email and audience aud.
func (g *Google) IDToken(t testing.TB, email, aud string) string {
	return g.Sign(t, Claims(email, aud))
}

// Sign signs claims as Google signs ID tokens (RS256, Google's key id).
func (g *Google) Sign(t testing.TB, claims map[string]any) string {
	return SignRS256(t, g.key, KeyID, claims)
}

// SignKeyID signs claims with Google's key but names key id kid: a token whose key id
// Google never published.
func (g *Google) SignKeyID(t testing.TB, kid string, claims map[string]any) string {
	return SignRS256(t, g.key, kid, claims)
}

// IAPAssertion is the X-Goog-Iap-Jwt-Assertion IAP adds for email, signed with IAP's key,
// for the backend audience aud.
func (g *Google) IAPAssertion(t testing.TB, email, aud string) string {
	t.Helper()
	now := time.Now()
	return SignES256(t, g.iapKey, IAPKeyID, map[string]any{
		"iss": "https://cloud.google.com/iap", "aud": aud, "sub": "accounts.google.com:" + email,
		"email": email, "hd": "example.com", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
}

// SignIAP signs arbitrary claims with IAP's key (ES256): an IAP assertion made wrong in
// one way, or a token of the wrong kind signed by a key idtoken trusts.
func (g *Google) SignIAP(t testing.TB, claims map[string]any) string {
	return SignES256(t, g.iapKey, IAPKeyID, claims)
}

// SignRS256 signs claims with key under key id kid.
func SignRS256(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signed := Encode(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

// SignES256 signs claims with key under key id kid.
func SignES256(t testing.TB, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signed := Encode(map[string]any{"alg": "ES256", "typ": "JWT", "kid": kid}, claims)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + b64(sig)
}

// Encode is the signed part of a JWT, "header.claims", each JSON in unpadded base64url.
func Encode(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64(h) + "." + b64(c)
}

// Strip is tok as Cloud Run forwards the token it verified: the signature replaced by
// StrippedSignature.
func Strip(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	return tok[:i+1] + StrippedSignature
}

// Forge is what an insider who cannot sign writes: Google's header, any claims, and
// sig (empty, StrippedSignature or garbage) in place of a signature.
func Forge(claims map[string]any, sig string) string {
	return Encode(map[string]any{"alg": "RS256", "typ": "JWT", "kid": KeyID}, claims) + "." + sig
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
