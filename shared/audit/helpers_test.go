package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"sync"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

// localKey is the file recorders' signing key in these tests; keys trusts it.
var localKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

func localSignerKey(t *testing.T) *ecdsa.PrivateKey { return localKey() }

func localSigner() *audit.LocalSigner {
	s, err := audit.NewLocalSigner(localKey())
	if err != nil {
		panic(err)
	}
	return s
}

// keys trusts localSigner and, given a fake server, its KMS key.
func keys(t *testing.T, srv ...*audittest.Server) *audit.Keyring {
	t.Helper()
	if len(srv) > 0 {
		return srv[0].Keyring(t, localSigner())
	}
	return audittest.Keyring(t, localSigner())
}

// memHeads is a HeadStore that keeps every head it is given.
type memHeads struct {
	mu    sync.Mutex
	heads []audit.Head
}

func (m *memHeads) SaveHead(_ context.Context, h audit.Head) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.heads = append(m.heads, h)
	return nil
}

func (m *memHeads) all() []audit.Head {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.heads)
}

// assertVerifies renders the fake server's entries as a gcloud export and verifies them.
func assertVerifies(t *testing.T, srv *audittest.Server) audit.Report {
	t.Helper()
	return assertVerifiesWithHeads(t, srv, nil)
}

func assertVerifiesWithHeads(t *testing.T, srv *audittest.Server, heads []audit.Head) audit.Report {
	t.Helper()
	export, err := srv.GcloudJSON()
	if err != nil {
		t.Fatalf("GcloudJSON: %v", err)
	}
	trail, err := audit.ReadTrail(bytes.NewReader(export))
	if err != nil {
		t.Fatalf("ReadTrail: %v", err)
	}
	if trail.Format != audit.FormatGcloud {
		t.Errorf("want format = gcloud, got = %s", trail.Format)
	}
	rep := audit.Verify(trail, keys(t, srv), heads)
	for _, f := range rep.Findings {
		t.Errorf("want an intact trail, got finding: %s", f)
	}
	return rep
}
