package authn

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Defaults for [NewCache].
const (
	// DefaultCacheEntries bounds a cache: about 100 bytes an entry, so well under a MB.
	DefaultCacheEntries = 4096
	// maxCacheAge bounds how long a verification is remembered, however far off the
	// token's exp is, so that a key Google stops publishing soon stops being trusted.
	maxCacheAge = 10 * time.Minute
)

// A Cache remembers which tokens a verifier has verified in full, so that a caller's
// next request with the same token skips the signature check (an ECDSA or RSA verify, and
// for idtoken a map of Google's keys): the largest part of authenticating a request.
//
// An entry is keyed by the SHA-256 of the whole token as sent, signature included: a
// token with the same claims and any other signature, or none, is a different key and is
// verified in full. Only verifications that succeeded are remembered, each until the
// token's exp and at most ten minutes; every use still checks the claims (issuer,
// expiry, issue time, audience, e-mail) against the clock. A cache belongs to one
// verifier: what was verified (the key or validator, the audience) is recorded with it,
// and a verifier whose settings differ does not use it. When full, the oldest entry
// goes: eviction only ever sends a token back to full verification.
//
// A Cache is safe for concurrent use. The zero value is not usable; use [NewCache].
type Cache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]time.Time // token hash -> remembered until
	order   [][sha256.Size]byte             // insertion order, oldest first, as a ring
	next    int                             // where the ring's oldest entry is once full

	// What the entries were verified against; see bind.
	bound   bool
	binding binding
}

// A binding is what a verification depended on besides the token: the verifier's kind,
// its audience, and its key or validator (compared by identity).
type binding struct {
	kind     string
	audience string
	key      any
}

// NewCache returns a cache of at most max verified tokens; max <= 0 means
// DefaultCacheEntries.
func NewCache(max int) *Cache {
	if max <= 0 {
		max = DefaultCacheEntries
	}
	return &Cache{max: max, entries: make(map[[sha256.Size]byte]time.Time, max)}
}

// Len reports how many verifications the cache holds.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// usable reports whether c may serve a verifier with binding b. The first verifier to
// use c binds it; a copy of that verifier with another key or audience then finds it
// unusable and verifies everything in full.
func (c *Cache) usable(b binding) bool {
	if c == nil {
		return false
	}
	if !c.bound {
		c.bound, c.binding = true, b
	}
	return c.binding == b
}

// verified reports whether raw was verified for b and is still remembered at now.
func (c *Cache) verified(b binding, raw string, now time.Time) bool {
	if c == nil {
		return false
	}
	k := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usable(b) {
		return false
	}
	until, ok := c.entries[k]
	return ok && now.Before(until)
}

// remember records that raw, whose claims expire at exp (Unix seconds), was verified in
// full for b at now.
func (c *Cache) remember(b binding, raw string, exp int64, now time.Time) {
	if c == nil {
		return
	}
	until := now.Add(maxCacheAge)
	if e := time.Unix(exp, 0); e.Before(until) {
		until = e
	}
	if !now.Before(until) {
		return
	}
	k := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usable(b) {
		return
	}
	if old, ok := c.entries[k]; ok {
		// A hit is not a new verification: the ten minutes run from the last one.
		if now.Before(old) {
			return
		}
		c.entries[k] = until
		return
	}
	if len(c.order) < c.max {
		c.order = append(c.order, k)
	} else {
		delete(c.entries, c.order[c.next])
		c.order[c.next] = k
		c.next = (c.next + 1) % c.max
	}
	c.entries[k] = until
}
