package sqlguard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The database-backed checks run when DATABASE_URL names a role that may create a
// schema in its database: scripts/test.sh gives the Cloud SQL emulation's admin login,
// no superuser. They create (once, idempotently) schema sqlguard_fuzz with the five
// demo tables.

var (
	dbMu   sync.Mutex
	dbConn *pgx.Conn
)

const fuzzSchema = `
CREATE SCHEMA IF NOT EXISTS sqlguard_fuzz;
CREATE TABLE IF NOT EXISTS sqlguard_fuzz.users (
	id bigserial PRIMARY KEY, email text, full_name text, phone text, country text,
	kyc_status text, created_at timestamptz);
CREATE TABLE IF NOT EXISTS sqlguard_fuzz.accounts (
	id bigserial PRIMARY KEY, user_id bigint, currency text, balance numeric, updated_at timestamptz);
CREATE TABLE IF NOT EXISTS sqlguard_fuzz.deposits (
	id bigserial PRIMARY KEY, user_id bigint, currency text, amount numeric, wallet_address text,
	tx_hash text, status text, created_at timestamptz);
CREATE TABLE IF NOT EXISTS sqlguard_fuzz.withdrawals (
	id bigserial PRIMARY KEY, user_id bigint, currency text, amount numeric,
	destination_address text, status text, created_at timestamptz);
CREATE TABLE IF NOT EXISTS sqlguard_fuzz.trades (
	id bigserial PRIMARY KEY, user_id bigint, pair text, side text, price numeric,
	quantity numeric, fee numeric, executed_at timestamptz);
INSERT INTO sqlguard_fuzz.users (email, full_name, phone, country, kyc_status, created_at)
	SELECT 'u' || g || '@pii-mail.test', 'User ' || g, '+81-90-0000-000' || g, 'JP', 'verified', now()
	FROM generate_series(1, 3) g WHERE NOT EXISTS (SELECT 1 FROM sqlguard_fuzz.users);
INSERT INTO sqlguard_fuzz.accounts (user_id, currency, balance, updated_at)
	SELECT g, 'BTC', g * 1.5, now() FROM generate_series(1, 3) g
	WHERE NOT EXISTS (SELECT 1 FROM sqlguard_fuzz.accounts);
INSERT INTO sqlguard_fuzz.deposits (user_id, currency, amount, wallet_address, tx_hash, status, created_at)
	SELECT g, 'BTC', g, 'bc1qwallet' || g, '0x4e' || g, 'confirmed', now() FROM generate_series(1, 3) g
	WHERE NOT EXISTS (SELECT 1 FROM sqlguard_fuzz.deposits);
INSERT INTO sqlguard_fuzz.withdrawals (user_id, currency, amount, destination_address, status, created_at)
	SELECT g, 'BTC', g, 'bc1qdest' || g, 'pending', now() FROM generate_series(1, 3) g
	WHERE NOT EXISTS (SELECT 1 FROM sqlguard_fuzz.withdrawals);
INSERT INTO sqlguard_fuzz.trades (user_id, pair, side, price, quantity, fee, executed_at)
	SELECT g, 'BTC-USDT', 'buy', 65000, g, 0.1, now() FROM generate_series(1, 3) g
	WHERE NOT EXISTS (SELECT 1 FROM sqlguard_fuzz.trades);
`

// testDB returns a shared connection with the fuzz schema in place, or nil
// when DATABASE_URL is not set. Callers hold dbMu while using it.
func testDB(t testing.TB) *pgx.Conn {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return nil
	}
	if dbConn != nil && !dbConn.IsClosed() {
		return dbConn
	}
	// Connecting and creating the schema must come; the bound only stops a test that
	// would hang, far beyond what a loaded machine needs.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to DATABASE_URL: %v", err)
	}
	// Serialise concurrent fuzz workers creating the schema; the lock is
	// transaction-scoped, so a failure cannot leave it held.
	_, err = conn.Exec(ctx, "BEGIN; SELECT pg_advisory_xact_lock(727274);"+fuzzSchema+"COMMIT;")
	if err != nil {
		conn.Close(context.Background())
		t.Fatalf("creating schema sqlguard_fuzz: %v", err)
	}
	dbConn = conn
	return conn
}

// Statement timeouts of runReadOnly. A statement that must succeed (the legit corpus)
// gets honestTimeout, which no load on the machine can reach. Attacks and fuzz inputs,
// some of which run until they are stopped, get boundedTimeout: for them only SQLSTATE
// 25006 fails the test, and however else they end (the timeout included) is accepted,
// so the outcome does not depend on the machine's speed either.
const (
	honestTimeout  = 5 * time.Minute
	boundedTimeout = 2 * time.Second
)

// runReadOnly runs stmt as the gateway would for a read: extended protocol,
// inside BEGIN READ ONLY with the given statement_timeout, then ROLLBACK. It
// returns the server's error (nil on success).
func runReadOnly(t testing.TB, conn *pgx.Conn, stmt string, timeout time.Duration) error {
	t.Helper()
	// The server's timeout ends the statement; the context only stops a test that
	// would hang, and never fires first (its cancellation could close the connection).
	ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Minute)
	defer cancel()
	setTimeout := fmt.Sprintf("SET LOCAL statement_timeout = %d", timeout.Milliseconds())
	for _, s := range []string{"BEGIN TRANSACTION READ ONLY", "SET LOCAL search_path = sqlguard_fuzz", setTimeout} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	rows, err := conn.Query(ctx, stmt, pgx.QueryExecModeExec)
	if err == nil {
		for n := 0; rows.Next() && n < 1000; n++ {
		}
		rows.Close()
		err = rows.Err()
	}
	if _, rerr := conn.Exec(context.Background(), "ROLLBACK"); rerr != nil {
		if conn.IsClosed() {
			dbConn = nil
		}
		t.Fatalf("ROLLBACK after %q: %v", stmt, rerr)
	}
	return err
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
