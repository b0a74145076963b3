// Package authn establishes who is calling a function, from the Google ID token in the
// Authorization header.
//
// Deployed with IAM invocation, Cloud Run has already verified the token's signature and
// audience and passes it on with the signature removed; [CloudRun] reads its claims and
// checks issuer, expiry and the verified e-mail. Locally, [Local] first verifies an ES256
// signature made with the key scripts/dev.sh creates, then runs the same claim checks.
// Whether the person may use Airlock at all is the policy's decision, not this package's.
package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// Errors returned by Verify. Each wraps ErrUnauthenticated, so callers can answer 401
// with errors.Is and still tell the caller precisely what was wrong.
var (
	ErrUnauthenticated = errors.New("authn: unauthenticated")
	ErrNoToken         = fmt.Errorf("%w: no bearer token in the Authorization header", ErrUnauthenticated)
	ErrMalformed       = fmt.Errorf("%w: the bearer token is not a well-formed JWT", ErrUnauthenticated)
	ErrSignature       = fmt.Errorf("%w: the token's signature does not verify", ErrUnauthenticated)
	ErrExpired         = fmt.Errorf("%w: the token has expired", ErrUnauthenticated)
	ErrIssuer          = fmt.Errorf("%w: the token was not issued by Google", ErrUnauthenticated)
	ErrAudience        = fmt.Errorf("%w: the token was issued for another audience", ErrUnauthenticated)
	ErrEmail           = fmt.Errorf("%w: the token carries no verified e-mail address", ErrUnauthenticated)
)

// An Identity is a verified caller.
type Identity struct {
	Email   string // lower-case
	Subject string
}

// A Verifier establishes the identity behind a request.
type Verifier interface {
	Verify(ctx context.Context, r *http.Request) (Identity, error)
}

// Claims are the ID-token claims Airlock reads.
type Claims struct {
	Issuer        string   `json:"iss"`
	Subject       string   `json:"sub"`
	Audience      audience `json:"aud"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	IssuedAt      int64    `json:"iat"`
	Expiry        int64    `json:"exp"`
}

// audience accepts both forms JWT allows: a string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// Issuers Google signs ID tokens as.
var googleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// leeway tolerates clock skew between the issuer and this instance.
const leeway = 30 * time.Second

// check runs the claim checks every mode shares.
func (c *Claims) check(now time.Time, aud string) (Identity, error) {
	if !oneOf(c.Issuer, googleIssuers) {
		return Identity{}, fmt.Errorf("%w (iss %q)", ErrIssuer, c.Issuer)
	}
	if c.Expiry == 0 || now.After(time.Unix(c.Expiry, 0).Add(leeway)) {
		return Identity{}, fmt.Errorf("%w (exp %s)", ErrExpired, time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	if c.IssuedAt > 0 && time.Unix(c.IssuedAt, 0).After(now.Add(leeway)) {
		return Identity{}, fmt.Errorf("%w: issued in the future", ErrMalformed)
	}
	if aud != "" && !oneOf(aud, c.Audience) {
		return Identity{}, fmt.Errorf("%w (want %q)", ErrAudience, aud)
	}
	email := strings.ToLower(strings.TrimSpace(c.Email))
	if email == "" || !c.EmailVerified || !strings.Contains(email, "@") {
		return Identity{}, ErrEmail
	}
	return Identity{Email: email, Subject: c.Subject}, nil
}

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

// bearer extracts the token from the Authorization header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", ErrNoToken
	}
	return strings.TrimSpace(token), nil
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// split decodes a compact JWT into its header, claims, signed part and signature.
func split(token string) (jwtHeader, Claims, string, []byte, error) {
	var h jwtHeader
	var c Claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 16<<10 {
		return h, c, "", nil, ErrMalformed
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		return h, c, "", nil, ErrMalformed
	}
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return h, c, "", nil, ErrMalformed
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2]) // may be absent behind Cloud Run
	return h, c, parts[0] + "." + parts[1], sig, nil
}

// CloudRun trusts the signature check Cloud Run's IAM invocation has already made, and
// checks the claims. Use it only for functions deployed without allUsers invoker.
type CloudRun struct {
	Audience string // optional; Cloud Run has checked it already
	Now      func() time.Time
}

// Verify implements Verifier.
func (v CloudRun) Verify(_ context.Context, r *http.Request) (Identity, error) {
	token, err := bearer(r)
	if err != nil {
		return Identity{}, err
	}
	_, claims, _, _, err := split(token)
	if err != nil {
		return Identity{}, err
	}
	return claims.check(now(v.Now), v.Audience)
}

// Local verifies tokens signed with the local development key (ES256), then checks the
// same claims as CloudRun.
type Local struct {
	Key      *ecdsa.PublicKey
	Audience string
	Now      func() time.Time
}

// Verify implements Verifier.
func (v Local) Verify(_ context.Context, r *http.Request) (Identity, error) {
	token, err := bearer(r)
	if err != nil {
		return Identity{}, err
	}
	h, claims, signed, sig, err := split(token)
	if err != nil {
		return Identity{}, err
	}
	if h.Alg != "ES256" || len(sig) != 64 {
		return Identity{}, fmt.Errorf("%w (alg %q)", ErrSignature, h.Alg)
	}
	digest := sha256.Sum256([]byte(signed))
	rr, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(v.Key, digest[:], rr, ss) {
		return Identity{}, ErrSignature
	}
	return claims.check(now(v.Now), v.Audience)
}

func now(f func() time.Time) time.Time {
	if f != nil {
		return f()
	}
	return time.Now()
}

// Mint signs an ID token for email with key, shaped like Google's, for local runs and
// tests. audience may be empty.
func Mint(key *ecdsa.PrivateKey, email, audience string, ttl time.Duration) (string, error) {
	issued := time.Now()
	claims := map[string]any{
		"iss":            "https://accounts.google.com",
		"sub":            "local-" + email,
		"email":          email,
		"email_verified": true,
		"iat":            issued.Unix(),
		"exp":            issued.Add(ttl).Unix(),
	}
	if audience != "" {
		claims["aud"] = audience
	}
	return Sign(key, claims)
}

// Sign signs arbitrary claims with ES256; tests use it to make tokens that are wrong in
// exactly one way.
func Sign(key *ecdsa.PrivateKey, claims any) (string, error) {
	hb, _ := json.Marshal(jwtHeader{Alg: "ES256", Typ: "JWT", Kid: "airlock-dev"})
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("authn: encoding claims: %w", err)
	}
	signed := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("authn: signing: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// ParsePublicKey reads a PEM "PUBLIC KEY" holding a P-256 key.
func ParsePublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("authn: no PEM block in public key")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("authn: parsing public key: %w", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("authn: public key is not ECDSA")
	}
	return ek, nil
}

// ParsePrivateKey reads a PEM "PRIVATE KEY" (PKCS #8) holding a P-256 key.
func ParsePrivateKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("authn: no PEM block in private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("authn: parsing private key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("authn: private key is not ECDSA")
	}
	return ek, nil
}
