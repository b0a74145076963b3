package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/api/idtoken"
)

// CloudRun takes the caller's identity from the token Cloud Run's IAM invocation check
// verified: X-Serverless-Authorization when the request has it, otherwise Authorization.
// That token reaches the function with its signature stripped, so its claims are checked
// (issuer, expiry, verified e-mail, and Audience when set). Every token in the request
// that still carries a signature is verified in full against Google's keys, and a second
// token in the other header must be a copy of the first. Use it only for functions that
// allUsers may not invoke.
type CloudRun struct {
	// Audience, when set, must be the token's audience. Cloud Run has checked it
	// already (against the service's URLs and custom audiences); setting it here also
	// refuses a token Cloud Run would take for another of the service's audiences.
	Audience string
	// Validator checks signatures; nil uses one shared idtoken.Validator per instance.
	Validator *idtoken.Validator
	Now       func() time.Time
	// Cache, when set, remembers signed tokens verified in full (see [Cache]); give
	// each verifier its own.
	Cache *Cache
}

// Verify implements Verifier.
func (v CloudRun) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	primary, all, err := bearers(r)
	if err != nil {
		return Identity{}, err
	}
	at := now(v.Now)
	b := binding{kind: "cloudrun", audience: v.Audience, key: v.Validator}
	for _, t := range all {
		if t.stripped() {
			// Cloud Run verified the primary token; another stripped one is a copy of
			// it (bearers), so its claims are the primary's.
			continue
		}
		if v.Cache.verified(b, t.raw, at) {
			continue
		}
		if err := signature(ctx, v.Validator, t, v.Audience, "RS256"); err != nil {
			return Identity{}, err
		}
	}
	return remember(v.Cache, b, primary, all, at, v.Audience, googleIssuers, true)
}

// GoogleIDToken fully verifies Google-signed ID tokens: signature against Google's
// published keys, audience, expiry (google.golang.org/api/idtoken), then issuer and
// verified e-mail. Functions reachable without IAM invocation (ApprovalCallback) use it,
// because nothing in front of them has checked the token: a token without its signature
// is refused, in either header.
type GoogleIDToken struct {
	Audience string // required: the function's URL the token was minted for
	// Validator validates tokens; nil uses idtoken.NewValidator with default options.
	Validator *idtoken.Validator
	// Cache, when set, remembers tokens verified in full (see [Cache]); give each
	// verifier its own.
	Cache *Cache
}

// Verify implements Verifier.
func (v GoogleIDToken) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	if v.Audience == "" {
		return Identity{}, fmt.Errorf("%w: the function has no AUTH_AUDIENCE configured, so no token can be accepted", ErrUnauthenticated)
	}
	primary, all, err := bearers(r)
	if err != nil {
		return Identity{}, err
	}
	at := time.Now()
	b := binding{kind: "google", audience: v.Audience, key: v.Validator}
	for _, t := range all {
		if t.stripped() {
			return Identity{}, fmt.Errorf("%w (%s: the token carries no signature, and this function verifies every token itself)", ErrSignature, t.from)
		}
		if v.Cache.verified(b, t.raw, at) {
			continue
		}
		if err := signature(ctx, v.Validator, t, v.Audience, "RS256"); err != nil {
			return Identity{}, err
		}
	}
	return remember(v.Cache, b, primary, all, at, v.Audience, googleIssuers, true)
}

// IAP verifies the signed header Identity-Aware Proxy adds (x-goog-iap-jwt-assertion,
// ES256, issuer https://cloud.google.com/iap) for the audience IAP_AUDIENCE. The unsigned
// X-Goog-Authenticated-User-* headers IAP also adds are never read.
type IAP struct {
	Audience  string
	Validator *idtoken.Validator
	// Cache, when set, remembers assertions verified in full (see [Cache]); give each
	// verifier its own.
	Cache *Cache
}

var iapIssuers = []string{"https://cloud.google.com/iap"}

// Verify implements Verifier. A request without the header gets an error wrapping
// ErrNoToken.
func (v IAP) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	if err := lookalikes(r.Header); err != nil {
		return Identity{}, err
	}
	vs := r.Header.Values(IAPHeader)
	if len(vs) > 1 {
		return Identity{}, fmt.Errorf("%w: %s is sent %d times", ErrAmbiguous, IAPHeader, len(vs))
	}
	if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
		return Identity{}, fmt.Errorf("%w (nor an Identity-Aware Proxy assertion)", ErrNoToken)
	}
	if v.Audience == "" {
		return Identity{}, fmt.Errorf("%w: the function has no IAP_AUDIENCE configured, so no IAP assertion can be accepted", ErrUnauthenticated)
	}
	t, err := parse(IAPHeader, strings.TrimSpace(vs[0]))
	if err != nil {
		return Identity{}, err
	}
	if t.stripped() {
		return Identity{}, fmt.Errorf("%w (%s carries no signature)", ErrSignature, IAPHeader)
	}
	at := time.Now()
	b := binding{kind: "iap", audience: v.Audience, key: v.Validator}
	if !v.Cache.verified(b, t.raw, at) {
		if err := signature(ctx, v.Validator, t, v.Audience, "ES256"); err != nil {
			return Identity{}, err
		}
	}
	return remember(v.Cache, b, t, []*token{t}, at, v.Audience, iapIssuers, false)
}

// signature verifies t's signature with idtoken, which also checks the audience (when
// aud is set) and expiry. alg is the only algorithm accepted: idtoken checks RS256
// against Google's ID-token keys and ES256 against IAP's, so without it an IAP
// assertion would pass for an ID token, and the other way round. Issuer and e-mail are
// the caller's to check.
func signature(ctx context.Context, val *idtoken.Validator, t *token, aud, alg string) error {
	if t.header.Alg != alg {
		return fmt.Errorf("%w (%s: alg %q, want %s)", ErrSignature, t.from, t.header.Alg, alg)
	}
	if alg == "ES256" && len(t.sig) != 64 {
		return fmt.Errorf("%w (%s: an ES256 signature is 64 bytes, not %d)", ErrSignature, t.from, len(t.sig))
	}
	if val == nil {
		var err error
		if val, err = sharedValidator(ctx); err != nil {
			return fmt.Errorf("%w: cannot fetch Google's signing keys: %v", ErrUnauthenticated, err)
		}
	}
	if _, err := val.Validate(ctx, t.raw, aud); err != nil {
		return fmt.Errorf("%w (%s): %v", ErrSignature, t.from, err)
	}
	return nil
}

var (
	validatorMu sync.Mutex
	validator   *idtoken.Validator
)

// sharedValidator is one Validator per instance, so Google's keys are fetched once and
// cached as long as their Cache-Control allows, not on every request.
func sharedValidator(ctx context.Context) (*idtoken.Validator, error) {
	validatorMu.Lock()
	defer validatorMu.Unlock()
	if validator == nil {
		v, err := idtoken.NewValidator(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		validator = v
	}
	return validator, nil
}

// iapAgent is the e-mail of a project's Identity-Aware Proxy service agent, which
// carries requests from IAP to Cloud Run in its own token.
var iapAgent = regexp.MustCompile(`^service-[0-9]+@gcp-sa-iap\.iam\.gserviceaccount\.com$`)

// AnyOf accepts a request whose identity one of its verifiers establishes, and refuses
// one whose credentials disagree. Every verifier whose credential the request carries
// must accept it (a bad IAP assertion is never excused by a good bearer token), and all
// must name the same person. The one identity that does not count as a person is
// Identity-Aware Proxy's service agent: it is the proxy that carried a request whose
// person is in IAP's signed header, so it yields to that person, and alone it is refused.
type AnyOf []Verifier

// Verify implements Verifier.
func (vs AnyOf) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	var person *Identity
	var proxied bool
	for _, v := range vs {
		id, err := v.Verify(ctx, r)
		if errors.Is(err, ErrNoToken) {
			continue
		}
		if err != nil {
			return Identity{}, err
		}
		switch {
		case iapAgent.MatchString(id.Email):
			proxied = true
		case person == nil:
			person = &id
		case person.Email != id.Email:
			return Identity{}, fmt.Errorf("%w: the request's credentials name both %s and %s", ErrAmbiguous, person.Email, id.Email)
		}
	}
	switch {
	case person != nil:
		return *person, nil
	case proxied:
		return Identity{}, fmt.Errorf("%w: the request came from Identity-Aware Proxy's service agent without IAP's signed header", ErrUnauthenticated)
	}
	return Identity{}, ErrNoToken
}
