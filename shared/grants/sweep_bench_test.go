package grants

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkSweep10k times expiring 10,000 grants with Sweep (DefaultSweepTx grants per
// transaction: lock and mark them, sync_developer once per grantee, look for their
// sessions, one signed audit entry per grant to a file, commit)
// against 10,000 bare UPDATE statements in one transaction, and reports both and their
// ratio. scripts/bench.sh runs it with
//
//	go test -run '^$' -bench BenchmarkSweep10k -benchtime 1x ./shared/grants
func BenchmarkSweep10k(b *testing.B) {
	const n = 10000
	e := newEnv(b)
	ctx := context.Background()
	rec := e.recorder(b)
	var sweepTotal, bareTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := e.admin.Exec(ctx, `TRUNCATE airlock.grants`); err != nil {
			b.Fatal(err)
		}
		insertExpired(b, e.admin, n, 50)
		b.StartTimer()

		began := time.Now()
		expired := 0
		for {
			res, err := e.store.Sweep(ctx, SweepOptions{Audit: rec, Function: "SweepExpired"})
			if err != nil {
				b.Fatal(err)
			}
			expired += res.ExpiredGrants
			if res.Remaining == 0 {
				break
			}
		}
		sweepTotal += time.Since(began)
		if expired != n {
			b.Fatalf("swept %d grants, want %d", expired, n)
		}

		b.StopTimer()
		if _, err := e.admin.Exec(ctx, `TRUNCATE airlock.grants`); err != nil {
			b.Fatal(err)
		}
		insertExpired(b, e.admin, n, 50)
		rows, err := e.admin.Query(ctx, `SELECT id FROM airlock.grants ORDER BY id`)
		if err != nil {
			b.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		began = time.Now()
		tx, err := e.admin.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `UPDATE airlock.grants SET status = 'expired', ended_at = now(), ended_by = 'bench' WHERE id = $1`, id); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		bareTotal += time.Since(began)
	}
	sweepMS := float64(sweepTotal.Milliseconds()) / float64(b.N)
	bareMS := float64(bareTotal.Milliseconds()) / float64(b.N)
	b.ReportMetric(sweepMS, "sweep-ms/op")
	b.ReportMetric(bareMS, "bare-update-ms/op")
	if bareMS > 0 {
		b.ReportMetric(sweepMS/bareMS, "ratio")
	}
	b.Logf("10,000 grants: sweep %.0f ms, bare UPDATEs in one transaction %.0f ms, ratio %.1f", sweepMS, bareMS, sweepMS/max(bareMS, 1))
}
