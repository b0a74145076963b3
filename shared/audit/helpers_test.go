package audit_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

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
	rep := audit.Verify(trail, heads)
	for _, f := range rep.Findings {
		t.Errorf("want an intact trail, got finding: %s", f)
	}
	return rep
}
