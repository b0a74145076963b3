package authn_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/authn/authntest"
)

// h is one request header; raw stores the name as written, bypassing net/http's
// canonical form, as a proxy in front of the function might.
type h struct {
	name, value string
	raw         bool
}

func xsa(tok string) h  { return h{name: authn.HeaderServerless, value: "Bearer " + tok} }
func auth(tok string) h { return h{name: authn.HeaderAuthorization, value: "Bearer " + tok} }
func iap(tok string) h  { return h{name: authn.IAPHeader, value: tok} }

func request(hs ...h) *http.Request {
	r := httptest.NewRequest("POST", "/", nil)
	for _, x := range hs {
		if x.raw {
			r.Header[x.name] = append(r.Header[x.name], x.value)
		} else {
			r.Header.Add(x.name, x.value)
		}
	}
	return r
}

// verifyCase is one request and what a verifier must make of it: the e-mail it accepts,
// or the error it refuses with.
type verifyCase struct {
	desc    string
	headers []h
	want    string // accepted as; "" when refused
	wantErr error
}

// runCases runs tcs against v, then against a copy of v that caches verified tokens: once
// cold, and once more with every token the first pass accepted already in the cache. A
// warm cache must change no answer.
func runCases(t *testing.T, v authn.Verifier, tcs []verifyCase) {
	t.Helper()
	runCasesOnce(t, v, tcs)
	if c := withCache(v); c != nil {
		runCasesOnce(t, c, tcs)
		runCasesOnce(t, c, tcs)
	}
}

// withCache returns v with a fresh cache in each of its verifiers, or nil when v is of
// a kind that has none.
func withCache(v authn.Verifier) authn.Verifier {
	switch x := v.(type) {
	case authn.Local:
		x.Cache = authn.NewCache(0)
		return x
	case authn.CloudRun:
		x.Cache = authn.NewCache(0)
		return x
	case authn.GoogleIDToken:
		x.Cache = authn.NewCache(0)
		return x
	case authn.IAP:
		x.Cache = authn.NewCache(0)
		return x
	case authn.AnyOf:
		var out authn.AnyOf
		for _, e := range x {
			c := withCache(e)
			if c == nil {
				return nil
			}
			out = append(out, c)
		}
		return out
	}
	return nil
}

func runCasesOnce(t *testing.T, v authn.Verifier, tcs []verifyCase) {
	t.Helper()
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			id, err := func() (id authn.Identity, err error) {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("when %s, Verify panicked: %v", tc.desc, p)
					}
				}()
				return v.Verify(t.Context(), request(tc.headers...))
			}()
			if tc.want != "" {
				if err != nil || id.Email != tc.want {
					t.Fatalf("when %s, want = accepted as %s, got = %+v, %v", tc.desc, tc.want, id, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("when %s, want = refused with %v, got = accepted as %+v", tc.desc, tc.wantErr, id)
			}
			if !errors.Is(err, authn.ErrUnauthenticated) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("when %s, want = %v, got = %v", tc.desc, tc.wantErr, err)
			}
			if id != (authn.Identity{}) {
				t.Fatalf("when %s, a refusal still returned the identity %+v", tc.desc, id)
			}
		})
	}
}

const (
	dev1  = "dev1@example.com"
	lead1 = "lead1@example.com"
	// aud is the function's URL, the audience Cloud Run checks for callers' tokens.
	aud       = "https://europe-west1-airlock.cloudfunctions.net/ExecuteQuery"
	otherAud  = "https://europe-west1-airlock.cloudfunctions.net/ApprovalCallback"
	iapAud    = "/projects/123/global/backendServices/456"
	iapAgent  = "service-123@gcp-sa-iap.iam.gserviceaccount.com"
	scheduler = "scheduler@airlock.iam.gserviceaccount.com"
)

func with(c map[string]any, mod func(map[string]any)) map[string]any { mod(c); return c }

// TestCloudRun is the insider's attempts against the verifier of the IAM-guarded
// functions (ExecuteQuery, RequestAccess, SweepExpired). Tokens Cloud Run verified
// reach the function stripped (authntest.Strip); the caller controls everything else.
func TestCloudRun(t *testing.T) {
	g := authntest.New(t)
	mine := g.IDToken(t, dev1, aud) // dev1 may invoke, and holds this
	theirs := g.IDToken(t, lead1, otherAud)
	forged := func(email, sig string) string { return authntest.Forge(authntest.Claims(email, aud), sig) }
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	localKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	local, _ := authn.Mint(localKey, lead1, aud, time.Hour)
	expiredSigned := g.Sign(t, with(authntest.Claims(dev1, aud), func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))
	parts := strings.Split(mine, ".")

	tcs := []verifyCase{
		// What Cloud Run forwards.
		{desc: "X-Serverless-Authorization alone, stripped by Cloud Run", headers: []h{xsa(authntest.Strip(mine))}, want: dev1},
		{desc: "Authorization alone, stripped by Cloud Run", headers: []h{auth(authntest.Strip(mine))}, want: dev1},
		{desc: "the same token in both headers, Authorization untouched", headers: []h{xsa(authntest.Strip(mine)), auth(mine)}, want: dev1},
		{desc: "the same token in both headers, both stripped", headers: []h{xsa(authntest.Strip(mine)), auth(authntest.Strip(mine))}, want: dev1},
		{desc: "a token that kept its signature, verified in full", headers: []h{xsa(mine)}, want: dev1},
		{desc: "lower-case scheme", headers: []h{{name: "Authorization", value: "bearer " + authntest.Strip(mine)}}, want: dev1},
		{desc: "upper-case scheme, two spaces", headers: []h{{name: "Authorization", value: "BEARER  " + authntest.Strip(mine)}}, want: dev1},
		{desc: "an empty X-Serverless-Authorization names nobody", headers: []h{{name: authn.HeaderServerless, value: ""}, auth(authntest.Strip(mine))}, want: dev1},

		// The finding: my token where Cloud Run looks, someone else's where Airlock looked.
		{desc: "two headers: an unsigned token for lead1 in Authorization", headers: []h{xsa(authntest.Strip(mine)), auth(forged(lead1, ""))}, wantErr: authn.ErrAmbiguous},
		{desc: "two headers: a token claiming Cloud Run stripped it", headers: []h{xsa(authntest.Strip(mine)), auth(forged(lead1, authntest.StrippedSignature))}, wantErr: authn.ErrAmbiguous},
		{desc: "two headers: lead1's genuine token for another function", headers: []h{xsa(authntest.Strip(mine)), auth(theirs)}, wantErr: authn.ErrAmbiguous},
		{desc: "two headers: the scheduler's genuine token", headers: []h{xsa(authntest.Strip(mine)), auth(g.IDToken(t, scheduler, aud))}, wantErr: authn.ErrAmbiguous},
		{desc: "two headers: alg none in X-Serverless-Authorization", headers: []h{xsa(authntest.Encode(map[string]any{"alg": "none"}, authntest.Claims(lead1, aud)) + "."), auth(mine)}, wantErr: authn.ErrAmbiguous},
		{desc: "two headers: Basic credentials beside the token", headers: []h{xsa(authntest.Strip(mine)), {name: "Authorization", value: "Basic bGVhZDE6cHc="}}, wantErr: authn.ErrAmbiguous},
		{desc: "two headers: my claims with a garbage signature", headers: []h{xsa(authntest.Strip(mine)), auth(parts[0] + "." + parts[1] + ".AAAA")}, wantErr: authn.ErrSignature},
		{desc: "Authorization twice", headers: []h{auth(authntest.Strip(mine)), auth(forged(lead1, ""))}, wantErr: authn.ErrAmbiguous},
		{desc: "X-Serverless-Authorization twice", headers: []h{xsa(authntest.Strip(mine)), xsa(forged(lead1, ""))}, wantErr: authn.ErrAmbiguous},
		{desc: "two tokens joined by a comma", headers: []h{{name: "Authorization", value: "Bearer " + authntest.Strip(mine) + ", Bearer " + forged(lead1, "")}}, wantErr: authn.ErrMalformed},
		{desc: "a token followed by another word", headers: []h{{name: "Authorization", value: "Bearer " + authntest.Strip(mine) + " " + forged(lead1, "")}}, wantErr: authn.ErrMalformed},
		{desc: "X_Serverless_Authorization, underscores", headers: []h{auth(authntest.Strip(mine)), {name: "X_Serverless_Authorization", value: "Bearer " + forged(lead1, ""), raw: true}}, wantErr: authn.ErrAmbiguous},
		{desc: "authorization, not canonical", headers: []h{xsa(authntest.Strip(mine)), {name: "authorization", value: "Bearer " + forged(lead1, ""), raw: true}}, wantErr: authn.ErrAmbiguous},
		{desc: "an IAP assertion header spelled with underscores", headers: []h{auth(authntest.Strip(mine)), {name: "X_Goog_Iap_Jwt_Assertion", value: "x", raw: true}}, wantErr: authn.ErrAmbiguous},

		// Signatures that are present are Google's, for this audience, unexpired.
		{desc: "signed by another key under Google's key id", headers: []h{xsa(authntest.SignRS256(t, otherKey, authntest.KeyID, authntest.Claims(dev1, aud)))}, wantErr: authn.ErrSignature},
		{desc: "signed under an unknown key id", headers: []h{xsa(authntest.SignRS256(t, otherKey, "k9", authntest.Claims(dev1, aud)))}, wantErr: authn.ErrSignature},
		{desc: "signed with the local development key", headers: []h{auth(local)}, wantErr: authn.ErrSignature},
		{desc: "an IAP assertion offered as an ID token", headers: []h{auth(g.IAPAssertion(t, lead1, aud))}, wantErr: authn.ErrSignature},
		{desc: "an ES256 token with a one-byte signature", headers: []h{auth(authntest.Encode(map[string]any{"alg": "ES256", "kid": authntest.IAPKeyID}, authntest.Claims(lead1, aud)) + ".AA")}, wantErr: authn.ErrSignature},
		{desc: "expired but signed", headers: []h{xsa(expiredSigned)}, wantErr: authn.ErrSignature},
		{desc: "expired and stripped", headers: []h{xsa(authntest.Strip(expiredSigned))}, wantErr: authn.ErrExpired},
		{desc: "a service account's token without email_verified", headers: []h{xsa(authntest.Strip(g.Sign(t, with(authntest.Claims(scheduler, aud), func(c map[string]any) { delete(c, "email_verified") }))))}, wantErr: authn.ErrEmail},
		{desc: "a service account's token without email", headers: []h{xsa(authntest.Strip(g.Sign(t, with(authntest.Claims(scheduler, aud), func(c map[string]any) { delete(c, "email") }))))}, wantErr: authn.ErrEmail},
		{desc: "email_verified as a string", headers: []h{xsa(authntest.Strip(g.Sign(t, with(authntest.Claims(dev1, aud), func(c map[string]any) { c["email_verified"] = "true" }))))}, wantErr: authn.ErrMalformed},
		{desc: "a foreign issuer", headers: []h{xsa(authntest.Strip(g.Sign(t, with(authntest.Claims(dev1, aud), func(c map[string]any) { c["iss"] = "https://evil.example" }))))}, wantErr: authn.ErrIssuer},

		// Malformed tokens.
		{desc: "no token", wantErr: authn.ErrNoToken},
		{desc: "Basic credentials alone", headers: []h{{name: "Authorization", value: "Basic bGVhZDE6cHc="}}, wantErr: authn.ErrNoToken},
		{desc: "padding in a segment", headers: []h{auth(parts[0] + "=." + parts[1] + "." + authntest.StrippedSignature)}, wantErr: authn.ErrMalformed},
		{desc: "standard base64 characters", headers: []h{auth(strings.ReplaceAll(parts[0], "-", "+") + "+/." + parts[1] + ".")}, wantErr: authn.ErrMalformed},
		{desc: "four segments", headers: []h{auth(mine + ".AAAA")}, wantErr: authn.ErrMalformed},
		{desc: "longer than 16 KB", headers: []h{auth(authntest.Forge(with(authntest.Claims(dev1, aud), func(c map[string]any) { c["pad"] = strings.Repeat("x", 17<<10) }), ""))}, wantErr: authn.ErrMalformed},
	}
	runCases(t, authn.CloudRun{Validator: g.Validator(t)}, tcs)

	// With AUTH_AUDIENCE set, a token for another of the service's audiences is refused
	// too, signed or stripped.
	runCases(t, authn.CloudRun{Audience: aud, Validator: g.Validator(t)}, []verifyCase{
		{desc: "audience set: my token", headers: []h{xsa(authntest.Strip(mine))}, want: dev1},
		{desc: "audience set: another function's, stripped", headers: []h{xsa(authntest.Strip(g.IDToken(t, dev1, otherAud)))}, wantErr: authn.ErrAudience},
		{desc: "audience set: another function's, signed", headers: []h{xsa(g.IDToken(t, dev1, otherAud))}, wantErr: authn.ErrSignature},
	})
	if g.Fetches() == 0 {
		t.Errorf("want = Google's keys fetched from the fake to verify the signed tokens, got = no fetch")
	}
}

// Claims are read by their exact names: a second member spelled "EMAIL" is not the e-mail.
func TestClaimsExactNames(t *testing.T) {
	tok := authntest.Encode(map[string]any{"alg": "RS256"}, with(authntest.Claims(dev1, aud), func(c map[string]any) { c["EMAIL"] = lead1 })) + "." + authntest.StrippedSignature
	id, err := authn.CloudRun{}.Verify(t.Context(), request(xsa(tok)))
	if err != nil || id.Email != dev1 {
		t.Fatalf("when the claims also hold EMAIL, want = %s, got = %+v, %v", dev1, id, err)
	}
}

// TestGoogleIDTokenHeaders is the public function's verifier (ApprovalCallback): nothing
// upstream checked anything, so every token present must carry Google's signature.
func TestGoogleIDTokenHeaders(t *testing.T) {
	g := authntest.New(t)
	mine, theirs := g.IDToken(t, dev1, otherAud), g.IDToken(t, lead1, otherAud)
	runCases(t, authn.GoogleIDToken{Audience: otherAud, Validator: g.Validator(t)}, []verifyCase{
		{desc: "Authorization, signed", headers: []h{auth(theirs)}, want: lead1},
		{desc: "X-Serverless-Authorization, signed", headers: []h{xsa(theirs)}, want: lead1},
		{desc: "the same signed token in both", headers: []h{xsa(theirs), auth(theirs)}, want: lead1},
		{desc: "stripped", headers: []h{auth(authntest.Strip(theirs))}, wantErr: authn.ErrSignature},
		{desc: "signed copy beside a stripped one", headers: []h{xsa(authntest.Strip(theirs)), auth(theirs)}, wantErr: authn.ErrSignature},
		{desc: "two different signed tokens", headers: []h{xsa(mine), auth(theirs)}, wantErr: authn.ErrAmbiguous},
		{desc: "a signed token beside a forged one", headers: []h{xsa(mine), auth(authntest.Forge(authntest.Claims(lead1, otherAud), ""))}, wantErr: authn.ErrAmbiguous},
		{desc: "another function's audience", headers: []h{auth(g.IDToken(t, lead1, aud))}, wantErr: authn.ErrSignature},
		{desc: "an IAP assertion in Authorization", headers: []h{auth(g.IAPAssertion(t, lead1, otherAud))}, wantErr: authn.ErrSignature},
		{desc: "Authorization twice", headers: []h{auth(mine), auth(theirs)}, wantErr: authn.ErrAmbiguous},
	})
}

// TestIAP is Identity-Aware Proxy's signed header, alone and beside a bearer token.
func TestIAP(t *testing.T) {
	g := authntest.New(t)
	val := g.Validator(t)
	assertion := g.IAPAssertion(t, lead1, iapAud)
	runCases(t, authn.IAP{Audience: iapAud, Validator: val}, []verifyCase{
		{desc: "IAP's assertion", headers: []h{iap(assertion)}, want: lead1},
		{desc: "for another backend", headers: []h{iap(g.IAPAssertion(t, lead1, "/projects/123/global/backendServices/999"))}, wantErr: authn.ErrSignature},
		{desc: "a Google ID token in IAP's header", headers: []h{iap(g.IDToken(t, lead1, iapAud))}, wantErr: authn.ErrSignature},
		{desc: "signed by a key that is not IAP's", headers: []h{iap(func() string {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return authntest.SignES256(t, k, authntest.IAPKeyID, authntest.Claims(lead1, iapAud))
		}())}, wantErr: authn.ErrSignature},
		{desc: "a short ES256 signature", headers: []h{iap(authntest.Encode(map[string]any{"alg": "ES256", "kid": authntest.IAPKeyID}, authntest.Claims(lead1, iapAud)) + ".AA")}, wantErr: authn.ErrSignature},
		{desc: "unsigned", headers: []h{iap(authntest.Forge(authntest.Claims(lead1, iapAud), ""))}, wantErr: authn.ErrSignature},
		{desc: "a Google issuer in an IAP-signed token", headers: []h{iap(g.SignIAP(t, authntest.Claims(lead1, iapAud)))}, wantErr: authn.ErrIssuer},
		{desc: "the header twice", headers: []h{iap(assertion), iap(g.IAPAssertion(t, dev1, iapAud))}, wantErr: authn.ErrAmbiguous},
		{desc: "no header", wantErr: authn.ErrNoToken},
	})

	// Behind IAP (RequestAccess with enable_iap): Cloud Run verified IAP's service agent,
	// IAP's header names the person.
	agent := authntest.Strip(g.IDToken(t, iapAgent, aud))
	runCases(t, authn.AnyOf{authn.IAP{Audience: iapAud, Validator: val}, authn.CloudRun{Validator: val}}, []verifyCase{
		{desc: "behind IAP: agent and assertion", headers: []h{xsa(agent), iap(assertion)}, want: lead1},
		{desc: "behind IAP: the same person in both", headers: []h{xsa(authntest.Strip(g.IDToken(t, lead1, aud))), iap(assertion)}, want: lead1},
		{desc: "behind IAP: bearer alone", headers: []h{xsa(authntest.Strip(g.IDToken(t, dev1, aud)))}, want: dev1},
		{desc: "behind IAP: dev1's bearer and lead1's assertion", headers: []h{xsa(authntest.Strip(g.IDToken(t, dev1, aud))), iap(assertion)}, wantErr: authn.ErrAmbiguous},
		{desc: "behind IAP: dev1's bearer and a forged assertion", headers: []h{xsa(authntest.Strip(g.IDToken(t, dev1, aud))), iap(authntest.Forge(authntest.Claims(lead1, iapAud), ""))}, wantErr: authn.ErrSignature},
		{desc: "behind IAP: the agent without an assertion", headers: []h{xsa(agent)}, wantErr: authn.ErrUnauthenticated},
		{desc: "behind IAP: assertion and a forged bearer for someone else", headers: []h{xsa(agent), auth(authntest.Forge(authntest.Claims(dev1, aud), ""))}, wantErr: authn.ErrAmbiguous},
	})
	// The public function with IAP: an assertion and a signed token must agree too.
	runCases(t, authn.AnyOf{authn.IAP{Audience: iapAud, Validator: val}, authn.GoogleIDToken{Audience: otherAud, Validator: val}}, []verifyCase{
		{desc: "public: assertion alone", headers: []h{iap(assertion)}, want: lead1},
		{desc: "public: assertion and lead1's token", headers: []h{iap(assertion), auth(g.IDToken(t, lead1, otherAud))}, want: lead1},
		{desc: "public: assertion and dev1's token", headers: []h{iap(assertion), auth(g.IDToken(t, dev1, otherAud))}, wantErr: authn.ErrAmbiguous},
		{desc: "public: a bad assertion beside a good token", headers: []h{iap(g.IAPAssertion(t, lead1, "/other")), auth(g.IDToken(t, lead1, otherAud))}, wantErr: authn.ErrSignature},
	})
}

// TestLocalHeaders: the development server applies the same header rules, with every
// token signed by the local key.
func TestLocalHeaders(t *testing.T) {
	key := newKey(t)
	mine, _ := authn.Mint(key, dev1, "", time.Hour)
	theirs, _ := authn.Mint(key, lead1, "", time.Hour)
	runCases(t, authn.Local{Key: &key.PublicKey}, []verifyCase{
		{desc: "local: X-Serverless-Authorization", headers: []h{xsa(mine)}, want: dev1},
		{desc: "local: the same token in both", headers: []h{xsa(mine), auth(mine)}, want: dev1},
		{desc: "local: two people", headers: []h{xsa(mine), auth(theirs)}, wantErr: authn.ErrAmbiguous},
		{desc: "local: a stripped copy", headers: []h{xsa(mine), auth(authntest.Strip(mine))}, wantErr: authn.ErrSignature},
		{desc: "local: stripped alone", headers: []h{auth(authntest.Strip(mine))}, wantErr: authn.ErrSignature},
		{desc: "local: a token Google signed", headers: []h{auth(authntest.New(t).IDToken(t, lead1, ""))}, wantErr: authn.ErrSignature},
		{desc: "local: signed by another local key", headers: []h{auth(func() string { tok, _ := authn.Mint(newKey(t), lead1, "", time.Hour); return tok }())}, wantErr: authn.ErrSignature},
	})
}
