package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A KMSSigner signs chain certificates with an asymmetric Cloud KMS key version
// (purpose ASYMMETRIC_SIGN, algorithm EC_SIGN_P256_SHA256, protection level HSM in
// Airlock's Terraform), through the cloudkms.cryptoKeyVersions.useToSign permission that
// only the functions' service accounts hold. Use [NewKMSSigner] to make one.
type KMSSigner struct {
	name string
	opts []option.ClientOption

	// mu guards client. It is held while the client is created, so only one creation
	// runs; a failed creation leaves client nil and the next call retries.
	mu     sync.Mutex
	client *kms.KeyManagementClient
}

// NewKMSSigner returns a KMSSigner for the key version name
// (projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N). It does no I/O:
// the KMS client is made on the first SignDigest, and again on a later one if making it
// failed. opts go to the client (option.WithEndpoint reaches a fake server in tests).
func NewKMSSigner(name string, opts ...option.ClientOption) (*KMSSigner, error) {
	if !strings.HasPrefix(name, "projects/") || !strings.Contains(name, "/cryptoKeyVersions/") {
		return nil, fmt.Errorf("audit: %q is not a Cloud KMS key version name (projects/…/cryptoKeys/K/cryptoKeyVersions/N)", name)
	}
	return &KMSSigner{name: name, opts: opts}, nil
}

// KeyName returns the key version name.
func (s *KMSSigner) KeyName() string { return s.name }

func (s *KMSSigner) getClient(ctx context.Context) (*kms.KeyManagementClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	// The client keeps its context for background work, so it must outlive this call.
	c, err := kms.NewKeyManagementClient(context.WithoutCancel(ctx), s.opts...)
	if err != nil {
		return nil, fmt.Errorf("creating Cloud KMS client: %w", err)
	}
	s.client = c
	return c, nil
}

// SignDigest has Cloud KMS sign digest (AsymmetricSign), checking the CRC32C checksums
// both ways as Google recommends, so a corrupted request or answer is an error rather
// than a certificate that will not verify.
func (s *KMSSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	c, err := s.getClient(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{
		Name:         s.name,
		Digest:       &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: digest}},
		DigestCrc32C: wrapperspb.Int64(int64(crc32c(digest))),
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !resp.GetVerifiedDigestCrc32C():
		return nil, errors.New("Cloud KMS did not confirm the digest's checksum")
	case resp.GetName() != s.name:
		return nil, fmt.Errorf("Cloud KMS answered for key %q, not %q", resp.GetName(), s.name)
	case resp.GetSignatureCrc32C() == nil || resp.GetSignatureCrc32C().GetValue() != int64(crc32c(resp.GetSignature())):
		return nil, errors.New("the signature's checksum does not match: corrupted in transit")
	}
	return resp.GetSignature(), nil
}

// Close closes the KMS client, if one was made.
func (s *KMSSigner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// AddKMS trusts the public keys of a Cloud KMS key: of the version name names, or, when
// name is a CryptoKey (…/cryptoKeys/K), of each of its versions that is enabled, so that
// chains certified before and after a rotation verify. It needs
// cloudkms.cryptoKeyVersions.viewPublicKey (roles/cloudkms.publicKeyViewer), nothing
// that can sign. opts go to the KMS client.
func (k *Keyring) AddKMS(ctx context.Context, name string, opts ...option.ClientOption) error {
	if !strings.HasPrefix(name, "projects/") || !strings.Contains(name, "/cryptoKeys/") {
		return fmt.Errorf("audit: %q is not a Cloud KMS key name (projects/…/cryptoKeys/K[/cryptoKeyVersions/N])", name)
	}
	c, err := kms.NewKeyManagementClient(ctx, opts...)
	if err != nil {
		return fmt.Errorf("audit: creating Cloud KMS client: %w", err)
	}
	defer c.Close()
	versions := []string{name}
	if !strings.Contains(name, "/cryptoKeyVersions/") {
		versions = nil
		it := c.ListCryptoKeyVersions(ctx, &kmspb.ListCryptoKeyVersionsRequest{Parent: name, Filter: "state=ENABLED"})
		for {
			v, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return fmt.Errorf("audit: listing the versions of %s: %w", name, err)
			}
			if v.GetState() == kmspb.CryptoKeyVersion_ENABLED {
				versions = append(versions, v.GetName())
			}
		}
		if len(versions) == 0 {
			return fmt.Errorf("audit: %s has no enabled version", name)
		}
	}
	for _, v := range versions {
		pk, err := c.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: v})
		if err != nil {
			return fmt.Errorf("audit: reading the public key of %s: %w", v, err)
		}
		if pk.GetAlgorithm() != kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256 {
			return fmt.Errorf("audit: %s is a %s key, not %s", v, pk.GetAlgorithm(), AlgorithmECP256SHA256)
		}
		if pk.GetPemCrc32C() == nil || pk.GetPemCrc32C().GetValue() != int64(crc32c([]byte(pk.GetPem()))) {
			return fmt.Errorf("audit: the public key of %s does not match its checksum", v)
		}
		if err := k.AddPEM(v, "Cloud KMS", []byte(pk.GetPem())); err != nil {
			return err
		}
	}
	return nil
}
