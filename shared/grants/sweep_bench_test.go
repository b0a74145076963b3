package grants

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkSweep10k times expiring 10,000 grants with Sweep (DefaultSweepTx grants per
// transaction: lock and mark them, sync_developer once per grantee, look for their
// sessions, one signed audit entry per grant to a file, commit) against 10,000 bare
// UPDATE statements, and reports both and their ratio. The two alternate in ten rounds of
// 1,000 (the bare ones in one transaction per round), so that other work on the machine
// weighs on both alike; ratio is the median of the rounds' ratios. scripts/bench.sh runs
// it with
//
//	go test -run '^$' -bench BenchmarkSweep10k -benchtime 1x ./shared/grants
func BenchmarkSweep10k(b *testing.B) {
	const n, rounds = 10000, 10
	e := newEnv(b)
	ctx := context.Background()
	rec := e.recorder(b)
	var sweepTotal, bareTotal time.Duration
	var ratios []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := e.admin.Exec(ctx, `TRUNCATE airlock.grants`); err != nil {
			b.Fatal(err)
		}
		// The bare UPDATEs' rows are not due (they expire in a day), so the sweep
		// leaves them alone; then the sweep's 10,000.
		if _, err := e.admin.Exec(ctx, `
			INSERT INTO airlock.grants (grantee, role, capabilities, starts_at, expires_at)
			SELECT 'bare' || (i % 50) || '@example.com', 'unmasked_users', ARRAY['unmasked_users'], now(), now() + interval '1 day'
			  FROM generate_series(1, $1) AS i`, n); err != nil {
			b.Fatal(err)
		}
		rows, err := e.admin.Query(ctx, `SELECT id FROM airlock.grants ORDER BY id`)
		if err != nil {
			b.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			b.Fatal(err)
		}
		insertExpired(b, e.admin, n, 50)
		b.StartTimer()

		expired := 0
		for r := range rounds {
			began := time.Now()
			tx, err := e.admin.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, id := range ids[r*n/rounds : (r+1)*n/rounds] {
				if _, err := tx.Exec(ctx, `UPDATE airlock.grants SET status = 'expired', ended_at = now(), ended_by = 'bench' WHERE id = $1`, id); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			bare := time.Since(began)

			began = time.Now()
			res, err := e.store.Sweep(ctx, SweepOptions{Audit: rec, Function: "SweepExpired", Batch: n / rounds})
			if err != nil {
				b.Fatal(err)
			}
			sweep := time.Since(began)
			expired += res.ExpiredGrants
			sweepTotal += sweep
			bareTotal += bare
			ratios = append(ratios, float64(sweep)/float64(bare))
		}
		if expired != n {
			b.Fatalf("swept %d grants, want %d", expired, n)
		}
	}
	slices.Sort(ratios)
	sweepMS := float64(sweepTotal.Milliseconds()) / float64(b.N)
	bareMS := float64(bareTotal.Milliseconds()) / float64(b.N)
	b.ReportMetric(sweepMS, "sweep-ms/op")
	b.ReportMetric(bareMS, "bare-update-ms/op")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.Logf("10,000 grants: sweep %.0f ms, bare UPDATEs %.0f ms, median ratio of %d rounds %.2f", sweepMS, bareMS, len(ratios), ratios[len(ratios)/2])
}
