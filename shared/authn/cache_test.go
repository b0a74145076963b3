package authn_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/authn/authntest"
)

// clock is a settable time for a verifier's Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

func mustVerify(t *testing.T, v authn.Verifier, want string, hs ...h) {
	t.Helper()
	id, err := v.Verify(t.Context(), request(hs...))
	if err != nil || id.Email != want {
		t.Fatalf("want = accepted as %s, got = %+v, %v", want, id, err)
	}
}

func mustRefuse(t *testing.T, v authn.Verifier, wantErr error, hs ...h) {
	t.Helper()
	id, err := v.Verify(t.Context(), request(hs...))
	if err == nil || !errors.Is(err, wantErr) {
		t.Fatalf("want = refused with %v, got = %+v, %v", wantErr, id, err)
	}
}

// A warm cache holds the token as sent, signature included: the same claims under any
// other signature are verified in full, and refused.
func TestCacheKeyIsTheWholeToken(t *testing.T) {
	key, other := newKey(t), newKey(t)
	c := authn.NewCache(0)
	v := authn.Local{Key: &key.PublicKey, Cache: c}
	good, _ := authn.Sign(key, claims(nil))
	mustVerify(t, v, dev1, auth(good))
	mustVerify(t, v, dev1, auth(good)) // a hit
	if c.Len() != 1 {
		t.Fatalf("after two uses of one token, want = 1 entry, got = %d", c.Len())
	}
	signed := good[:strings.LastIndexByte(good, '.')]
	byOther, _ := authn.Sign(other, claims(nil))
	zeros := strings.Repeat("A", 86) // 64 zero bytes
	for desc, tok := range map[string]string{
		"another key's signature":          signed + byOther[strings.LastIndexByte(byOther, '.'):],
		"a signature of zeros":             signed + "." + zeros,
		"no signature":                     signed + ".",
		"Cloud Run's stripped marker":      authntest.Strip(good),
		"the signature with a bit flipped": signed + "." + flipLast(good[strings.LastIndexByte(good, '.')+1:]),
	} {
		t.Run(desc, func(t *testing.T) {
			mustRefuse(t, v, authn.ErrSignature, auth(tok))
			// And beside the cached token, in the other header: the copy is checked too.
			mustRefuse(t, v, authn.ErrSignature, xsa(good), auth(tok))
		})
	}
	if c.Len() != 1 {
		t.Fatalf("refused tokens were remembered: want = 1 entry, got = %d", c.Len())
	}
}

// flipLast changes a character of s, a signature in base64url, near its end, to another
// (the very last one also carries padding bits, which strict decoding requires zero).
func flipLast(s string) string {
	i := len(s) - 2
	repl := byte('A')
	if s[i] == 'A' {
		repl = 'B'
	}
	return s[:i] + string(repl) + s[i+1:]
}

// Time-dependent claims are checked at every use, not only when the token was cached.
func TestCacheRechecksTime(t *testing.T) {
	key := newKey(t)
	t0 := time.Now().Truncate(time.Second)
	clk := &clock{t: t0}
	v := authn.Local{Key: &key.PublicKey, Now: clk.now, Cache: authn.NewCache(0)}
	tok, _ := authn.Sign(key, claims(func(c map[string]any) {
		c["iat"] = t0.Add(20 * time.Second).Unix() // within the 30 s skew allowed
		c["exp"] = t0.Add(time.Hour).Unix()
	}))
	mustVerify(t, v, dev1, auth(tok))

	clk.set(t0.Add(-20 * time.Second)) // now issued 40 s in the future
	mustRefuse(t, v, authn.ErrMalformed, auth(tok))

	clk.set(t0.Add(time.Hour + time.Minute)) // past exp and the skew
	mustRefuse(t, v, authn.ErrExpired, auth(tok))

	// A token cached close to its exp is not kept past it either.
	short, _ := authn.Sign(key, claims(func(c map[string]any) {
		c["iat"] = t0.Unix()
		c["exp"] = t0.Add(2 * time.Minute).Unix()
	}))
	clk.set(t0)
	mustVerify(t, v, dev1, auth(short))
	clk.add(2*time.Minute + 31*time.Second)
	mustRefuse(t, v, authn.ErrExpired, auth(short))
}

// A cache remembers what was verified for one verifier: a verifier with another key,
// validator or audience handed the same cache verifies in full.
func TestCacheBoundToItsVerifier(t *testing.T) {
	key, other := newKey(t), newKey(t)
	c := authn.NewCache(0)
	tok, _ := authn.Mint(key, dev1, aud, time.Hour)
	mustVerify(t, authn.Local{Key: &key.PublicKey, Audience: aud, Cache: c}, dev1, auth(tok))
	mustRefuse(t, authn.Local{Key: &other.PublicKey, Audience: aud, Cache: c}, authn.ErrSignature, auth(tok))

	// Two fake Googles with keys of their own under the same key id: a token of the
	// first, cached by a CloudRun that trusts it, is nothing to one that trusts the
	// second.
	g1, g2 := authntest.New(t), authntest.New(t)
	mine := g1.IDToken(t, dev1, aud)
	c2 := authn.NewCache(0)
	mustVerify(t, authn.CloudRun{Audience: aud, Validator: g1.Validator(t), Cache: c2}, dev1, xsa(mine))
	mustRefuse(t, authn.CloudRun{Audience: aud, Validator: g2.Validator(t), Cache: c2}, authn.ErrSignature, xsa(mine))

	// Audience: a token cached for one audience is verified in full (idtoken checks the
	// audience with the signature, hence ErrSignature rather than the claims' ErrAudience)
	// by a verifier for another.
	both := g1.IDToken(t, dev1, aud)
	val := g1.Validator(t)
	c3 := authn.NewCache(0)
	mustVerify(t, authn.GoogleIDToken{Audience: aud, Validator: val, Cache: c3}, dev1, auth(both))
	mustRefuse(t, authn.GoogleIDToken{Audience: otherAud, Validator: val, Cache: c3}, authn.ErrSignature, auth(both))
	// And the verifier that filled it still hits.
	mustVerify(t, authn.GoogleIDToken{Audience: aud, Validator: val, Cache: c3}, dev1, auth(both))
}

// The bound holds under many tokens, and flooding the cache only ever sends tokens back to
// full verification: evicted tokens are verified again (and still accepted when good),
// bad ones are refused however full the cache is.
func TestCacheBound(t *testing.T) {
	key, other := newKey(t), newKey(t)
	const bound = 8
	c := authn.NewCache(bound)
	v := authn.Local{Key: &key.PublicKey, Cache: c}
	var toks []string
	for i := range 5 * bound {
		email := fmt.Sprintf("flood%d@example.com", i)
		tok, _ := authn.Mint(key, email, "", time.Hour)
		toks = append(toks, tok)
		mustVerify(t, v, email, auth(tok))
		if n := c.Len(); n > bound {
			t.Fatalf("after %d tokens, want = at most %d entries, got = %d", i+1, bound, n)
		}
	}
	if c.Len() != bound {
		t.Fatalf("want = a full cache of %d, got = %d", bound, c.Len())
	}
	mustVerify(t, v, "flood0@example.com", auth(toks[0])) // evicted long ago: verified again
	forged, _ := authn.Mint(other, "flood1@example.com", "", time.Hour)
	mustRefuse(t, v, authn.ErrSignature, auth(forged))

	// Many callers at once (run with -race): the bound holds and no answer changes.
	var wg sync.WaitGroup
	errs := make(chan error, len(toks))
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				id, err := v.Verify(t.Context(), request(auth(tok)))
				if want := fmt.Sprintf("flood%d@example.com", i); err != nil || id.Email != want {
					errs <- fmt.Errorf("token %d: want = %s, got = %+v, %v", i, want, id, err)
					return
				}
				if _, err := v.Verify(t.Context(), request(auth(forged))); !errors.Is(err, authn.ErrSignature) {
					errs <- fmt.Errorf("forged token beside token %d: want = ErrSignature, got = %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := c.Len(); n > bound {
		t.Fatalf("after concurrent use, want = at most %d entries, got = %d", bound, n)
	}
}

// The two-identity rules hold with both people's tokens in the cache (runCases also runs
// every verifier's table again warm).
func TestCacheWarmTwoHeaders(t *testing.T) {
	g := authntest.New(t)
	mine, theirs := g.IDToken(t, dev1, aud), g.IDToken(t, lead1, aud)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	v := authn.CloudRun{Audience: aud, Validator: g.Validator(t), Cache: authn.NewCache(0)}
	mustVerify(t, v, dev1, xsa(mine))
	mustVerify(t, v, lead1, xsa(theirs))
	// Both tokens are cached: still, two different ones are ambiguous in either order,
	// and a stripped copy of one beside the other is too.
	mustRefuse(t, v, authn.ErrAmbiguous, xsa(mine), auth(theirs))
	mustRefuse(t, v, authn.ErrAmbiguous, xsa(theirs), auth(mine))
	mustRefuse(t, v, authn.ErrAmbiguous, xsa(authntest.Strip(mine)), auth(theirs))
	mustRefuse(t, v, authn.ErrAmbiguous, auth(mine), auth(mine))
	// My cached claims signed by another key under Google's key id.
	resigned := authntest.SignRS256(t, otherKey, authntest.KeyID, authntest.Claims(dev1, aud))
	mustRefuse(t, v, authn.ErrSignature, xsa(resigned))
	mustVerify(t, v, dev1, xsa(authntest.Strip(mine)), auth(mine))
}

// BenchmarkLocalVerify is one request's identity check in local mode, the ES256 verify
// each time ("cold") or the token found in the verifier's cache ("cached").
func BenchmarkLocalVerify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := authn.Mint(key, dev1, "", time.Hour)
	for _, bc := range []struct {
		name  string
		cache *authn.Cache
	}{{"cold", nil}, {"cached", authn.NewCache(0)}} {
		b.Run(bc.name, func(b *testing.B) {
			v := authn.Local{Key: &key.PublicKey, Cache: bc.cache}
			r := request(auth(tok))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(b.Context(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
