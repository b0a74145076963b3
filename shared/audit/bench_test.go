package audit_test

import (
	"context"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/shared/audit"
)

// benchEntry is a query.result as ExecuteQuery records it for a 100-row read.
func benchEntry() audit.Entry {
	return audit.Entry{
		Event: audit.EventQueryResult, Actor: "dev1@example.com", Function: "ExecuteQuery", RequestID: "3765ceec0f608ee6",
		GrantIDs: []int64{1}, SQL: "SELECT id, pair, side, price, qty FROM trades ORDER BY id LIMIT 100", Fingerprint: "7763e0edc2e6e6f3",
		Mode: "read", Decision: audit.DecisionAllowed, Tables: []string{"trades"}, Rows: 100, Bytes: 5120, DurationMS: 1,
		Details: map[string]any{"dry_run": false, "kind": "select"},
	}
}

// BenchmarkRecord measures one Record call on the file sink: sealing (canonical JSON and
// SHA-256), signing, and one write(2). "heads" is the devserver's set-up, which also
// appends the head to the heads file after every entry.
func BenchmarkRecord(b *testing.B) {
	for _, bc := range []struct {
		name  string
		heads bool
	}{{"file", false}, {"file+heads", true}} {
		b.Run(bc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "audit.jsonl")
			opts := []audit.Option{audit.WithCheckpoint(0, 0), audit.WithSigner(localSigner())}
			if bc.heads {
				opts = append(opts, audit.WithHeadStore(audit.NewFileHeadStore(path+audit.HeadsFileSuffix)), audit.WithHeadsEveryEntry())
			}
			rec, err := audit.NewFileRecorder(context.Background(), path, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer rec.Close(context.Background())
			ctx := context.Background()
			if err := rec.Record(ctx, benchEntry()); err != nil { // the chain starts outside the loop
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := rec.Record(ctx, benchEntry()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
