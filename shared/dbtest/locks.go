package dbtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// WaitForLockWait returns once a backend of q's database is waiting for a lock (a row or
// advisory lock another transaction holds): the moment a race test has its second
// transaction queued behind the first. Waiting is an event that must come; the bound only
// stops a test that would hang, and it fails naming what never waited.
func WaitForLockWait(t testing.TB, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, what string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var waiting int
		if err := q.QueryRow(ctx, `
			SELECT count(*) FROM pg_locks
			 WHERE NOT granted AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never waited for a lock", what)
		}
	}
}
