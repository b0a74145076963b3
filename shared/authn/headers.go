package authn

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The headers an identity can come in. Cloud Run verifies the token in
// HeaderServerless when the request has it, otherwise the one in HeaderAuthorization.
const (
	HeaderAuthorization = "Authorization"
	HeaderServerless    = "X-Serverless-Authorization"
	// IAPHeader is the header Identity-Aware Proxy signs.
	IAPHeader = "X-Goog-Iap-Jwt-Assertion"
)

// identityHeaders are the headers checked for look-alike spellings.
var identityHeaders = []string{HeaderAuthorization, HeaderServerless, IAPHeader}

// errNotBearer marks a header holding a credential of another scheme (Basic, say).
var errNotBearer = errors.New("authn: not a bearer credential")

// bearers reads the bearer tokens of r. primary is the token to take the identity from:
// the one in X-Serverless-Authorization when that header is present (Cloud Run verified
// it), otherwise the one in Authorization. all holds every token present, primary first.
//
// It refuses, with ErrAmbiguous, a header sent more than once, a header whose name
// differs from an identity header only in case or in '_' for '-' (net/http leaves such
// names alone, a proxy in front might not), and a request whose two headers hold
// anything but the same token. An empty header counts as absent: it names nobody.
func bearers(r *http.Request) (primary *token, all []*token, err error) {
	if err := lookalikes(r.Header); err != nil {
		return nil, nil, err
	}
	srv, srvErr := bearer(r.Header, HeaderServerless)
	auth, authErr := bearer(r.Header, HeaderAuthorization)
	for _, e := range []error{srvErr, authErr} {
		if errors.Is(e, ErrAmbiguous) {
			return nil, nil, e
		}
	}
	srvSent, authSent := srv != nil || srvErr != nil, auth != nil || authErr != nil
	switch {
	case srvSent && authSent:
		if errors.Is(srvErr, errNotBearer) || errors.Is(authErr, errNotBearer) {
			return nil, nil, fmt.Errorf("%w: %s and %s are both present and do not hold the same token; send one", ErrAmbiguous, HeaderServerless, HeaderAuthorization)
		}
		if err := errors.Join(srvErr, authErr); err != nil {
			return nil, nil, err
		}
		if srv.signed != auth.signed {
			return nil, nil, fmt.Errorf("%w: %s and %s hold different tokens; send one", ErrAmbiguous, HeaderServerless, HeaderAuthorization)
		}
		return srv, []*token{srv, auth}, nil
	case srvSent:
		if errors.Is(srvErr, errNotBearer) {
			return nil, nil, fmt.Errorf("%w (%s holds no bearer token)", ErrNoToken, HeaderServerless)
		}
		if srvErr != nil {
			return nil, nil, srvErr
		}
		return srv, []*token{srv}, nil
	case authSent:
		if errors.Is(authErr, errNotBearer) {
			return nil, nil, ErrNoToken
		}
		if authErr != nil {
			return nil, nil, authErr
		}
		return auth, []*token{auth}, nil
	}
	return nil, nil, ErrNoToken
}

// bearer reads the token in header name: nil and no error when the header is absent or
// empty.
func bearer(h http.Header, name string) (*token, error) {
	vs := h.Values(name)
	if len(vs) > 1 {
		return nil, fmt.Errorf("%w: %s is sent %d times", ErrAmbiguous, name, len(vs))
	}
	if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
		return nil, nil
	}
	scheme, rest, ok := strings.Cut(strings.TrimSpace(vs[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errNotBearer
	}
	return parse(name, strings.TrimLeft(rest, " "))
}

// lookalikes refuses header names that are not an identity header but could be read as
// one: "authorization" stored as is, "X_Serverless_Authorization", and so on.
func lookalikes(h http.Header) error {
	for k := range h {
		for _, name := range identityHeaders {
			if k != name && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
				return fmt.Errorf("%w: header %q looks like %s", ErrAmbiguous, k, name)
			}
		}
	}
	return nil
}
