// Package authn establishes who is calling a function, from the Google ID token the
// request carries, and refuses a request whose headers name more than one identity.
//
// # Where the token is
//
// A token comes as "Bearer <JWT>" in Authorization or in X-Serverless-Authorization. Cloud
// Run's IAM invocation check verifies the token in X-Serverless-Authorization when that
// header is present, and the one in Authorization only when it is not; the header it did
// not use reaches the container untouched, whatever a caller put in it. The identity is
// therefore taken from the header Cloud Run verified, and a request whose two headers
// carry different tokens, or one header twice, or a header that merely looks like one of
// them, is refused with [ErrAmbiguous] (README, "Identity").
//
// # What is checked
//
// [CloudRun] trusts Cloud Run's check of the header it verified: that token arrives with
// its signature replaced, so its claims (issuer, expiry, verified e-mail, and audience
// when one is configured) are all that is left to check. Any token that still carries a
// signature, in either header, is verified in full against Google's keys
// (google.golang.org/api/idtoken). [GoogleIDToken] is for a function nothing verifies
// upstream (ApprovalCallback): every token must carry a signature that verifies, for its
// audience. [IAP] verifies Identity-Aware Proxy's signed header. [Local] verifies an
// ES256 signature made with the key scripts/dev.sh creates, then the same claims.
//
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
	// ErrAmbiguous is returned when the request's headers could name more than one
	// identity: two different tokens, a header sent twice, or a header spelled so that
	// one reader could take it for an identity header and another not.
	ErrAmbiguous = fmt.Errorf("%w: the request names more than one identity", ErrUnauthenticated)
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

// check runs the claim checks every mode shares. needVerified says the e-mail must be
// marked verified (IAP's assertions carry no such claim: IAP asserts only identities it
// authenticated).
func (c *Claims) check(now time.Time, aud string, issuers []string, needVerified bool) (Identity, error) {
	if !oneOf(c.Issuer, issuers) {
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
	if email == "" || (needVerified && !c.EmailVerified) || !strings.Contains(email, "@") {
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

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// maxToken bounds a token; Google's ID tokens are about 1 KB.
const maxToken = 16 << 10

// A token is one compact JWT taken from a request header.
type token struct {
	from   string // the header it came in
	raw    string
	header jwtHeader
	claims Claims
	// signed is "header.claims", what a signature covers. Two copies of one token have
	// the same signed part, whatever became of their signatures on the way.
	signed string
	sig    []byte // nil when there is no signature left (see stripped)
}

// stripped reports whether the token carries no signature: either Cloud Run replaced it
// (StrippedSignature) after verifying the token, or nobody ever signed it.
func (t *token) stripped() bool { return t.sig == nil }

// StrippedSignature is what Cloud Run puts in place of the signature of the token it
// verified, before handing the request to the container.
const StrippedSignature = "SIGNATURE_REMOVED_BY_GOOGLE"

// parse decodes a compact JWT. It accepts only the base64url alphabet, one encoding of
// each segment, and claims spelled exactly as JWT spells them (encoding/json would match
// "EMAIL" to email). A token whose third segment is empty, missing or StrippedSignature
// has no signature; anything else there must decode as one.
func parse(from, raw string) (*token, error) {
	bad := func(why string) (*token, error) {
		return nil, fmt.Errorf("%w (%s: %s)", ErrMalformed, from, why)
	}
	if len(raw) > maxToken {
		return bad("longer than 16 KB")
	}
	parts := strings.Split(raw, ".")
	if len(parts) == 2 {
		parts = append(parts, "")
	}
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return bad("not three dot-separated segments")
	}
	for _, p := range parts {
		if strings.IndexFunc(p, notBase64URL) >= 0 {
			return bad("a character outside base64url")
		}
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err1 := enc.DecodeString(parts[0])
	cb, err2 := enc.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		return bad("a segment is not base64url")
	}
	t := &token{from: from, raw: raw, signed: parts[0] + "." + parts[1]}
	if err := decodeExact(hb, map[string]any{"alg": &t.header.Alg, "kid": &t.header.Kid, "typ": &t.header.Typ}); err != nil {
		return bad("the header is not a JSON object of strings")
	}
	c := &t.claims
	if err := decodeExact(cb, map[string]any{"iss": &c.Issuer, "sub": &c.Subject, "aud": &c.Audience, "email": &c.Email,
		"email_verified": &c.EmailVerified, "iat": &c.IssuedAt, "exp": &c.Expiry}); err != nil {
		return bad("the claims are not a JSON object of the expected types")
	}
	if s := parts[2]; s != "" && s != StrippedSignature {
		sig, err := enc.DecodeString(s)
		if err != nil || len(sig) == 0 {
			return bad("the signature is not base64url")
		}
		t.sig = sig
	}
	return t, nil
}

func notBase64URL(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

// decodeExact decodes the JSON object b, filling each field from the member of exactly
// that name; other members are ignored.
func decodeExact(b []byte, fields map[string]any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for name, dst := range fields {
		if raw, ok := m[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// Local verifies tokens signed with the local development key (ES256), then checks the
// same claims as CloudRun. Nothing stands in front of the local server, so every token
// in the request must carry a signature that verifies.
type Local struct {
	Key      *ecdsa.PublicKey
	Audience string
	Now      func() time.Time
	// Cache, when set, remembers tokens verified in full (see [Cache]); give each
	// verifier its own.
	Cache *Cache
}

// Verify implements Verifier.
func (v Local) Verify(_ context.Context, r *http.Request) (Identity, error) {
	primary, all, err := bearers(r)
	if err != nil {
		return Identity{}, err
	}
	at := now(v.Now)
	b := binding{kind: "local", audience: v.Audience, key: v.Key}
	for _, t := range all {
		if v.Cache.verified(b, t.raw, at) {
			continue
		}
		if t.header.Alg != "ES256" || len(t.sig) != 64 {
			return Identity{}, fmt.Errorf("%w (%s: alg %q, %d-byte signature)", ErrSignature, t.from, t.header.Alg, len(t.sig))
		}
		digest := sha256.Sum256([]byte(t.signed))
		rr, ss := new(big.Int).SetBytes(t.sig[:32]), new(big.Int).SetBytes(t.sig[32:])
		if v.Key == nil || !ecdsa.Verify(v.Key, digest[:], rr, ss) {
			return Identity{}, fmt.Errorf("%w (%s)", ErrSignature, t.from)
		}
	}
	return remember(v.Cache, b, primary, all, at, v.Audience, googleIssuers, true)
}

// remember checks primary's claims at time at and, when they pass, records that every
// token in all (each verified in full by the caller, or found in c) is verified for b.
// The tokens in all share primary's claims (bearers).
func remember(c *Cache, b binding, primary *token, all []*token, at time.Time, aud string, issuers []string, needVerified bool) (Identity, error) {
	id, err := primary.claims.check(at, aud, issuers, needVerified)
	if err != nil {
		return Identity{}, err
	}
	for _, t := range all {
		if !t.stripped() {
			c.remember(b, t.raw, t.claims.Expiry, at)
		}
	}
	return id, nil
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
