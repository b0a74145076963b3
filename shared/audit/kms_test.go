package audit_test

import (
	"errors"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

// One instance asks Cloud KMS once, when its chain starts, however many entries and
// checkpoints it writes.
func TestKMSSignsOncePerChain(t *testing.T) {
	heads := &memHeads{}
	srv, rec := setupCloudLogging(t, audit.WithHeadStore(heads), audit.WithCheckpoint(5, 0))
	for range 20 {
		if err := rec.Record(t.Context(), audit.Entry{Event: audit.EventQueryAttempt}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := srv.KMSCalls(); n != 1 {
		t.Errorf("want 1 AsymmetricSign call for a chain of %d entries, got = %d", len(srv.Payloads()), n)
	}
	ps := srv.Payloads()
	var certs int
	for _, p := range ps {
		if p["sig"] == nil {
			t.Errorf("want every entry signed, got = %v", p)
		}
		if p["cert"] != nil {
			certs++
			if p["seq"] != 1.0 && p["event"] != audit.EventCheckpoint {
				t.Errorf("want the certificate on seq 1 and checkpoints only, got it on %v", p)
			}
		}
	}
	if certs < 2 {
		t.Errorf("want the certificate on seq 1 and on the checkpoints, got it %d times", certs)
	}
	assertVerifiesWithHeads(t, srv, heads.all())
}

// When Cloud KMS fails or hangs as a chain starts, nothing can be signed: Record fails
// closed within its timeout, writes nothing, and the next Record starts the chain.
func TestKMSUnavailableAtChainStart(t *testing.T) {
	for _, mode := range audittest.ChainStartFailures() {
		t.Run(mode.Desc, func(t *testing.T) {
			srv, rec := setupCloudLogging(t, audit.WithTimeout(recordTimeout))
			mode.Fail(srv)
			err := rec.Record(t.Context(), audit.Entry{Event: audit.EventQueryAttempt})
			if !errors.Is(err, audit.ErrUnavailable) {
				t.Errorf("when %s, want ErrUnavailable, got = %v", mode.Desc, err)
			}
			if n := len(srv.Payloads()); n != 0 {
				t.Errorf("when %s, want nothing written, got = %d entries", mode.Desc, n)
			}
			srv.Recover()
			if err := rec.Record(t.Context(), audit.Entry{Event: audit.EventQueryAttempt}); err != nil {
				t.Fatalf("after KMS recovered, want Record to succeed, got = %v", err)
			}
			if ps := srv.Payloads(); len(ps) != 1 || ps[0]["seq"] != 1.0 || ps[0]["cert"] == nil {
				t.Errorf("after KMS recovered, want the chain to start at seq 1 with its certificate, got = %v", ps)
			}
			assertVerifies(t, srv)
		})
	}
}
