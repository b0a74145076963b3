package audittest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"hash/crc32"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"airlock.dev/airlock/shared/audit"
)

// KMSKeyName is the CryptoKey the fake Cloud KMS serves; [KMSKeyVersion] is its one
// version, an EC_SIGN_P256_SHA256 key.
const (
	KMSKeyName    = "projects/audittest/locations/europe-west1/keyRings/airlock/cryptoKeys/audit-chain"
	KMSKeyVersion = KMSKeyName + "/cryptoKeyVersions/1"
)

// A KMSHook decides how the fake KMS answers one AsymmetricSign call: a non-nil error
// fails it. A hook may block; it should return when ctx is done.
type KMSHook func(ctx context.Context, req *kmspb.AsymmetricSignRequest) error

// kmsServer is the fake Cloud KMS half of a Server: AsymmetricSign, GetPublicKey and
// ListCryptoKeyVersions on one P-256 key, as the real service answers them (checksums
// included). It shares the Server's gRPC listener, so ClientOptions reach both APIs.
type kmsServer struct {
	kmspb.UnimplementedKeyManagementServiceServer
	s   *Server
	key *ecdsa.PrivateKey
}

func newKMSKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("audittest: making the KMS key: %v", err)
	}
	return k
}

func crc(b []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

func (k *kmsServer) AsymmetricSign(ctx context.Context, req *kmspb.AsymmetricSignRequest) (*kmspb.AsymmetricSignResponse, error) {
	k.s.mu.Lock()
	k.s.kmsCalls++
	hook := k.s.kmsHook
	k.s.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, req); err != nil {
			return nil, err
		}
	}
	if req.GetName() != KMSKeyVersion {
		return nil, status.Errorf(codes.NotFound, "audittest: no key version %s", req.GetName())
	}
	d := req.GetDigest().GetSha256()
	if len(d) != 32 {
		return nil, status.Error(codes.InvalidArgument, "audittest: want a SHA-256 digest")
	}
	if c := req.GetDigestCrc32C(); c != nil && c.GetValue() != crc(d).GetValue() {
		return nil, status.Error(codes.InvalidArgument, "audittest: digest checksum mismatch")
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, d)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &kmspb.AsymmetricSignResponse{Signature: sig, SignatureCrc32C: crc(sig), VerifiedDigestCrc32C: req.GetDigestCrc32C() != nil, Name: KMSKeyVersion}, nil
}

func (k *kmsServer) pem() string {
	der, _ := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (k *kmsServer) GetPublicKey(_ context.Context, req *kmspb.GetPublicKeyRequest) (*kmspb.PublicKey, error) {
	if req.GetName() != KMSKeyVersion {
		return nil, status.Errorf(codes.NotFound, "audittest: no key version %s", req.GetName())
	}
	p := k.pem()
	return &kmspb.PublicKey{Pem: p, PemCrc32C: crc([]byte(p)), Algorithm: kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256, Name: KMSKeyVersion,
		ProtectionLevel: kmspb.ProtectionLevel_HSM}, nil
}

func (k *kmsServer) ListCryptoKeyVersions(_ context.Context, req *kmspb.ListCryptoKeyVersionsRequest) (*kmspb.ListCryptoKeyVersionsResponse, error) {
	if req.GetParent() != KMSKeyName {
		return nil, status.Errorf(codes.NotFound, "audittest: no key %s", req.GetParent())
	}
	v := &kmspb.CryptoKeyVersion{Name: KMSKeyVersion, State: kmspb.CryptoKeyVersion_ENABLED,
		Algorithm: kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256, ProtectionLevel: kmspb.ProtectionLevel_HSM}
	return &kmspb.ListCryptoKeyVersionsResponse{CryptoKeyVersions: []*kmspb.CryptoKeyVersion{v}, TotalSize: 1}, nil
}

// SetKMSHook makes hook answer every later AsymmetricSign call; nil restores service.
func (s *Server) SetKMSHook(hook KMSHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kmsHook = hook
}

// FailKMSWith makes every later AsymmetricSign fail with code.
func (s *Server) FailKMSWith(code codes.Code) {
	s.SetKMSHook(func(context.Context, *kmspb.AsymmetricSignRequest) error {
		return status.Error(code, "audittest: injected KMS failure")
	})
}

// HangKMS makes every later AsymmetricSign block until the caller gives up.
func (s *Server) HangKMS() {
	s.SetKMSHook(func(ctx context.Context, _ *kmspb.AsymmetricSignRequest) error {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	})
}

// KMSCalls counts AsymmetricSign calls, failed ones and the client's retries included.
func (s *Server) KMSCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kmsCalls
}

// Signer returns a real KMSSigner, through the real Cloud KMS client, for the fake's key.
func (s *Server) Signer(t testing.TB) *audit.KMSSigner {
	t.Helper()
	ks, err := audit.NewKMSSigner(KMSKeyVersion, s.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// PublicKeyPEM is the fake KMS key's public key, as `gcloud kms keys versions
// get-public-key` prints it.
func (s *Server) PublicKeyPEM() []byte { return []byte(s.kms.pem()) }

// Keyring trusts the fake KMS key, and any local signers given.
func (s *Server) Keyring(t testing.TB, local ...*audit.LocalSigner) *audit.Keyring {
	t.Helper()
	k := Keyring(t, local...)
	if err := k.AddPEM(KMSKeyVersion, "audittest", s.PublicKeyPEM()); err != nil {
		t.Fatal(err)
	}
	return k
}

// NewLocalSigner returns a LocalSigner with a fresh P-256 key, as
// `airlock-admin keygen` makes for scripts/dev.sh.
func NewLocalSigner(t testing.TB) *audit.LocalSigner {
	t.Helper()
	s, err := audit.NewLocalSigner(newKMSKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Keyring trusts the public keys of signers.
func Keyring(t testing.TB, signers ...*audit.LocalSigner) *audit.Keyring {
	t.Helper()
	k := &audit.Keyring{}
	for _, s := range signers {
		if err := k.Add(s.KeyName(), "audittest", s.Public()); err != nil {
			t.Fatal(err)
		}
	}
	return k
}
