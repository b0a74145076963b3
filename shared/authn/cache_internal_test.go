package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http/httptest"
	"testing"
	"time"
)

// A token used again and again is verified in full at least every ten minutes: a hit
// does not extend its entry.
func TestCacheAgeRunsFromVerification(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := Mint(key, "dev1@example.com", "", 2*time.Hour)
	t0 := time.Now()
	at := t0
	c := NewCache(0)
	v := Local{Key: &key.PublicKey, Now: func() time.Time { return at }, Cache: c}
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set(HeaderAuthorization, "Bearer "+tok)
	until := func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.entries[sha256.Sum256([]byte(tok))]
	}
	for _, step := range []struct {
		after time.Duration
		want  time.Time // the entry's end after the call
	}{
		{0, t0.Add(maxCacheAge)},
		{9 * time.Minute, t0.Add(maxCacheAge)},                   // a hit
		{11 * time.Minute, t0.Add(11*time.Minute + maxCacheAge)}, // verified in full again
	} {
		at = t0.Add(step.after)
		if _, err := v.Verify(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if got := until(); !got.Equal(step.want) {
			t.Fatalf("after a use at +%v, want = the entry kept until +%v, got = +%v", step.after, step.want.Sub(t0), got.Sub(t0))
		}
		if !c.verified(binding{kind: "local", key: &key.PublicKey}, tok, at) {
			t.Fatalf("at +%v, want = a hit for the token just used", step.after)
		}
	}
	// The token's exp bounds the entry below ten minutes.
	short, _ := Mint(key, "dev1@example.com", "", 2*time.Minute)
	at = time.Now()
	r.Header.Set(HeaderAuthorization, "Bearer "+short)
	if _, err := v.Verify(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	got := c.entries[sha256.Sum256([]byte(short))]
	c.mu.Unlock()
	if got.After(at.Add(2*time.Minute + time.Second)) {
		t.Fatalf("a token expiring in 2 minutes is kept until +%v", got.Sub(at))
	}
}
