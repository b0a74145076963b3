package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/api/idtoken"
)

// GoogleIDToken fully verifies a Google-signed ID token: signature against Google's
// published keys, audience, expiry (google.golang.org/api/idtoken), then issuer and
// verified e-mail. Functions reachable without IAM invocation (ApprovalCallback) use it,
// because nothing in front of them has checked the token.
type GoogleIDToken struct {
	Audience string // required: the function's URL the token was minted for
	// Validator validates tokens; nil uses idtoken.NewValidator with default options.
	Validator *idtoken.Validator
}

// Verify implements Verifier.
func (v GoogleIDToken) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	if v.Audience == "" {
		return Identity{}, fmt.Errorf("%w: the function has no AUTH_AUDIENCE configured, so no token can be accepted", ErrUnauthenticated)
	}
	token, err := bearer(r)
	if err != nil {
		return Identity{}, err
	}
	return validate(ctx, v.Validator, token, v.Audience, googleIssuers)
}

// IAP verifies the signed header Identity-Aware Proxy adds (x-goog-iap-jwt-assertion,
// ES256, issuer https://cloud.google.com/iap) for the audience IAP_AUDIENCE.
type IAP struct {
	Audience  string
	Validator *idtoken.Validator
}

// IAPHeader is the header IAP signs.
const IAPHeader = "X-Goog-Iap-Jwt-Assertion"

var iapIssuers = []string{"https://cloud.google.com/iap"}

// Verify implements Verifier.
func (v IAP) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	token := strings.TrimSpace(r.Header.Get(IAPHeader))
	if token == "" || v.Audience == "" {
		return Identity{}, fmt.Errorf("%w: no Identity-Aware Proxy assertion", ErrUnauthenticated)
	}
	return validate(ctx, v.Validator, token, v.Audience, iapIssuers)
}

func validate(ctx context.Context, val *idtoken.Validator, token, aud string, issuers []string) (Identity, error) {
	if val == nil {
		var err error
		if val, err = sharedValidator(ctx); err != nil {
			return Identity{}, fmt.Errorf("%w: cannot fetch Google's signing keys: %v", ErrUnauthenticated, err)
		}
	}
	p, err := val.Validate(ctx, token, aud)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if !oneOf(p.Issuer, issuers) {
		return Identity{}, fmt.Errorf("%w (iss %q)", ErrIssuer, p.Issuer)
	}
	email, _ := p.Claims["email"].(string)
	verified, _ := p.Claims["email_verified"].(bool)
	if issuers[0] == iapIssuers[0] {
		verified = email != "" // IAP asserts only identities it authenticated
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || !verified || !strings.Contains(email, "@") {
		return Identity{}, ErrEmail
	}
	return Identity{Email: email, Subject: p.Subject}, nil
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

// AnyOf tries each verifier in turn and accepts the first identity one of them verifies.
type AnyOf []Verifier

// Verify implements Verifier.
func (vs AnyOf) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	err := error(ErrNoToken)
	for _, v := range vs {
		id, e := v.Verify(ctx, r)
		if e == nil {
			return id, nil
		}
		if !errors.Is(err, ErrSignature) { // keep the most telling reason
			err = e
		}
	}
	return Identity{}, err
}
