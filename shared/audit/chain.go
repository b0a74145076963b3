package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// A Head is the latest link of a chain: the seq and hash of its newest confirmed entry.
// Heads are kept outside the log (see [HeadStore]) so that cutting entries off the end of
// the log can be detected.
//
// Sig is the entry's own signature, which covers chain, seq and hash, so a head is as
// hard to forge as an entry; Cert is the chain's certificate, so that a head can be
// checked even when its whole chain is missing from a trail.
type Head struct {
	Chain string       `json:"chain"`
	Seq   int64        `json:"seq"`
	Hash  string       `json:"hash"`
	Time  time.Time    `json:"time"` // the time of the entry at Seq
	Sig   string       `json:"sig,omitempty"`
	Cert  *Certificate `json:"cert,omitempty"`
}

// newChainID returns a fresh chain id: the UTC start time, then 64 random bits, for example
// "20260301T101500Z-9f86d081884c7d65". The time prefix sorts chains by start; the random
// part keeps instances started in the same second apart.
func newChainID(now time.Time) (string, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("audit: choosing a chain id: %w", err)
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:]), nil
}

// seal computes e's hash, signs it with key, and returns the JSON line to store (without
// a newline). The hash is the SHA-256 of the canonical form of e without its hash and
// sig, written straight from the struct (appendEntryHashed): the same bytes a verifier
// gets by decoding the line and canonicalizing it.
func seal(e *Entry, key ed25519.PrivateKey) ([]byte, error) {
	e.Hash, e.Sig = "", ""
	c, err := appendEntryHashed(make([]byte, 0, 1024), e)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(c)
	e.Hash = hex.EncodeToString(sum[:])
	e.Sig = signEntry(key, e.Chain, e.Seq, e.Hash)
	return marshal(e)
}

// marshal encodes v as compact JSON without HTML escaping, so SQL stays readable
// ("a < b" rather than "a \u003c b") in the file and in Cloud Logging.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
