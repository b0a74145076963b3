package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// AlgorithmECP256SHA256 is the only certificate signature algorithm: ECDSA on P-256 over
// a SHA-256 digest, ASN.1 DER encoded, which is what Cloud KMS's EC_SIGN_P256_SHA256 keys
// produce.
const AlgorithmECP256SHA256 = "EC_SIGN_P256_SHA256"

// Domain-separation prefixes: the bytes signed for a certificate and for an entry (or
// head) start with these, so a signature of one kind can never pass for the other.
const (
	certDomain  = "airlock-audit-chain-certificate/v1\n"
	entryDomain = "airlock-audit-entry/v1\n"
	entryKeyPre = "ed25519:"
)

// A Signer signs chain certificates with a key that only Airlock's functions can use:
// an asymmetric Cloud KMS key in production ([NewKMSSigner]), a local PEM key for
// scripts/dev.sh ([ReadLocalSigner]). A Recorder calls it once per chain, when the chain
// starts, never per entry.
type Signer interface {
	// KeyName names the key (version) that signs, as certificates record it, for
	// example projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/1.
	KeyName() string
	// SignDigest signs a SHA-256 digest with ECDSA P-256 and returns the ASN.1 DER
	// signature. It must honour ctx.
	SignDigest(ctx context.Context, digest []byte) ([]byte, error)
}

// A Certificate binds a chain to the ephemeral Ed25519 key that signs its entries. The
// recorder makes the key when the chain starts, keeps its private half in memory only,
// and has the [Signer] sign the certificate; the certificate is written into the chain's
// first entry and every checkpoint, and kept with each head. A verifier that trusts the
// Signer's public key can then check every entry without any secret.
type Certificate struct {
	Chain     string    `json:"chain"`
	Function  string    `json:"function,omitempty"` // the recorder's function, if it has one
	Started   time.Time `json:"started"`
	EntryKey  string    `json:"entry_key"` // "ed25519:" + standard base64 of the 32-byte public key
	Signer    string    `json:"signer"`    // Signer.KeyName
	Algorithm string    `json:"alg"`       // AlgorithmECP256SHA256
	Signature string    `json:"signature"` // standard base64 of the DER signature of certDigest
}

// digest returns the SHA-256 the Signer signs: of certDomain and the RFC 8785 form of the
// certificate without its signature.
func (c *Certificate) digest() ([]byte, error) {
	cc := *c
	cc.Signature = ""
	b, err := marshal(&cc)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(b)
	if err != nil {
		return nil, err
	}
	canon, err := appendCanonicalObject([]byte(certDomain), v.(map[string]any), "signature")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(canon)
	return sum[:], nil
}

// entryKey decodes the certificate's Ed25519 public key.
func (c *Certificate) entryKey() (ed25519.PublicKey, error) {
	s, ok := strings.CutPrefix(c.EntryKey, entryKeyPre)
	if !ok {
		return nil, fmt.Errorf("entry_key %q is not %s…", short(c.EntryKey), entryKeyPre)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("entry_key is not a base64 Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

// newCertificate makes a chain's ephemeral key and has s sign its certificate.
func newCertificate(ctx context.Context, s Signer, chain, function string, started time.Time) (*Certificate, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: making the chain's key: %w", err)
	}
	c := &Certificate{
		Chain: chain, Function: function, Started: started.UTC().Truncate(time.Microsecond),
		EntryKey: entryKeyPre + base64.StdEncoding.EncodeToString(pub), Signer: s.KeyName(), Algorithm: AlgorithmECP256SHA256,
	}
	d, err := c.digest()
	if err != nil {
		return nil, nil, fmt.Errorf("audit: encoding the chain certificate: %w", err)
	}
	sig, err := s.SignDigest(ctx, d)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: signing the chain certificate with %s: %w", s.KeyName(), err)
	}
	c.Signature = base64.StdEncoding.EncodeToString(sig)
	return c, priv, nil
}

// entryMessage is what an entry's sig signs: the chain, the seq and the entry's hash.
// A head (chain, seq, hash) is authenticated by the same signature.
func entryMessage(chain string, seq int64, hash string) []byte {
	b := make([]byte, 0, len(entryDomain)+len(chain)+24+len(hash))
	b = append(b, entryDomain...)
	b = append(b, chain...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '\n')
	return append(b, hash...)
}

func signEntry(k ed25519.PrivateKey, chain string, seq int64, hash string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(k, entryMessage(chain, seq, hash)))
}

func verifyEntrySig(pub ed25519.PublicKey, chain string, seq int64, hash, sig string) bool {
	b, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(b) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, entryMessage(chain, seq, hash), b)
}

// A LocalSigner signs certificates with an ECDSA P-256 key held in memory: the local
// development server's stand-in for Cloud KMS. Its KeyName is "local:" and the first 16
// hex digits of the SHA-256 of its public key (PKIX DER).
type LocalSigner struct {
	key  *ecdsa.PrivateKey
	name string
}

// NewLocalSigner returns a LocalSigner for k, which must be a P-256 key.
func NewLocalSigner(k *ecdsa.PrivateKey) (*LocalSigner, error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, errors.New("audit: a local signing key must be ECDSA P-256")
	}
	name, err := localKeyName(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &LocalSigner{key: k, name: name}, nil
}

// ReadLocalSigner reads a PEM "PRIVATE KEY" (PKCS #8, ECDSA P-256) file, such as the one
// airlock-admin keygen (run by scripts/dev.sh) writes to .dev/audit-key.pem.
func ReadLocalSigner(path string) (*LocalSigner, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: reading the signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("audit: %s holds no PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: %s holds a %T, not an ECDSA P-256 key", path, k)
	}
	return NewLocalSigner(ek)
}

// KeyName returns "local:" and a fingerprint of the public key.
func (s *LocalSigner) KeyName() string { return s.name }

// Public returns the public key a verifier needs.
func (s *LocalSigner) Public() *ecdsa.PublicKey { return &s.key.PublicKey }

// SignDigest signs digest with the local key.
func (s *LocalSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ecdsa.SignASN1(rand.Reader, s.key, digest)
}

func localKeyName(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("audit: encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "local:" + hex.EncodeToString(sum[:8]), nil
}

// A Keyring is the set of public keys a verifier trusts to sign chain certificates. A
// chain whose certificate no key of the ring signed is not trusted, whatever it holds.
// The zero value trusts nothing.
type Keyring struct {
	keys []trustedKey
}

type trustedKey struct {
	name   string // the Signer's KeyName, or the file it came from
	source string // where the verifier got it, for messages
	pub    *ecdsa.PublicKey
}

// Add trusts pub, a P-256 key, under name (the KeyName certificates signed with it
// carry; "" to match it whatever name a certificate gives). source says where it came
// from, for messages.
func (k *Keyring) Add(name, source string, pub *ecdsa.PublicKey) error {
	if pub == nil || pub.Curve != elliptic.P256() {
		return fmt.Errorf("audit: key %s from %s is not ECDSA P-256", name, source)
	}
	k.keys = append(k.keys, trustedKey{name: name, source: source, pub: pub})
	return nil
}

// AddPEM trusts the PEM "PUBLIC KEY" in b (as `gcloud kms keys versions get-public-key`
// prints it, or .dev/audit-key.pub.pem). A key read from a file matches certificates
// whatever key name they carry: the signature decides.
func (k *Keyring) AddPEM(name, source string, b []byte) error {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return fmt.Errorf("audit: %s holds no PEM PUBLIC KEY", source)
	}
	pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("audit: %s: %w", source, err)
	}
	ek, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("audit: %s holds a %T, not an ECDSA P-256 key", source, pk)
	}
	return k.Add(name, source, ek)
}

// AddPEMFile trusts the public key in the PEM file at path.
func (k *Keyring) AddPEMFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("audit: reading trusted key: %w", err)
	}
	return k.AddPEM("", path, b)
}

// Len is the number of keys trusted.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// String lists the trusted keys' names and sources.
func (k *Keyring) String() string {
	if k.Len() == 0 {
		return "no key"
	}
	var parts []string
	for _, t := range k.keys {
		name := t.name
		if name == "" {
			name, _ = localKeyName(t.pub)
		}
		parts = append(parts, name+" (from "+t.source+")")
	}
	return strings.Join(parts, ", ")
}

// verifyCert checks c's signature against the ring. It returns the certificate's entry key
// and the trusted key's description, or why the certificate cannot be trusted.
func (k *Keyring) verifyCert(c *Certificate) (ed25519.PublicKey, error) {
	if c.Algorithm != AlgorithmECP256SHA256 {
		return nil, fmt.Errorf("certificate algorithm %q is not %s", c.Algorithm, AlgorithmECP256SHA256)
	}
	pub, err := c.entryKey()
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(c.Signature)
	if err != nil {
		return nil, errors.New("certificate signature is not base64")
	}
	d, err := c.digest()
	if err != nil {
		return nil, err
	}
	if k.Len() == 0 {
		return nil, fmt.Errorf("certificate signed by %s, but no key is trusted (give --key or --kms-key)", c.Signer)
	}
	named := false
	for _, t := range k.keys {
		if t.name != "" && t.name != c.Signer {
			continue
		}
		named = named || t.name != ""
		if ecdsa.VerifyASN1(t.pub, d, sig) {
			return pub, nil
		}
	}
	if named {
		return nil, fmt.Errorf("certificate claims to be signed by %s, but its signature does not verify with that key", c.Signer)
	}
	return nil, fmt.Errorf("certificate signed by %s, which is not a trusted key (trusted: %s)", c.Signer, k)
}
