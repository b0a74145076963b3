package query

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/httpapi"
)

// Two bounds keep one person from taking the database from everyone else.
//
// Across instances, a person holds at most limits.concurrent_statements statement slots:
// transaction-level advisory locks on keys derived from their e-mail, taken on the
// statement's own connection in the round trip that sets the transaction up, before the
// statement is declared. They are released when the transaction ends (a read's ROLLBACK
// travels with its last FETCH), or with the session if the connection is closed or, still
// in a transaction, destroyed by the pool, so an error, a timeout or a client gone cannot
// leak one, and no round trip of its own frees them. The guard refuses every
// advisory-lock function, so no developer's statement can take or release someone's
// slot.
//
// Within an instance, developers' statements may hold at most all but reservedConns of
// the primary pool's connections (a gate), so that Airlock's own queries (grant lookups,
// audit heads, alerts) never wait behind them; and waiting for a place behind other
// people's statements is bounded by statementWait.

// reservedConns is how many of the primary pool's connections only Airlock's own
// queries may use.
const reservedConns = 2

// statementWait bounds how long a statement waits for a connection of the instance
// before it is answered 503 busy.
const statementWait = 2 * time.Second

// retryAfter is the Retry-After, in seconds, of the 429 and 503 answers above.
const retryAfter = "1"

// slotKeySpace is how many advisory-lock keys each person's slots span: the low bits of
// their key number the slot (policy.MaxConcurrentStatements at most).
const slotKeySpace = 64

// personKey is the first advisory-lock key of email's statement slots. The e-mail is
// folded as authn folds it (trimmed, lower case), so that no spelling of an address
// gets slots of its own; the hash keeps the keys apart from Airlock's other advisory
// locks, which are hashtext of a name (int4 range), and from other people's.
func personKey(email string) int64 {
	sum := sha256.Sum256([]byte("airlock.statement_slots\x00" + strings.ToLower(strings.TrimSpace(email))))
	k := int64(binary.BigEndian.Uint64(sum[:8]) &^ (slotKeySpace - 1))
	if k >= -(1<<31) && k < 1<<31 { // never in hashtext's range
		k += 1 << 40
	}
	return k
}

// slotSQL takes the first free of n slots starting at key $1, or fails: the CASE tries
// them in order and stops at the first it takes (a CASE evaluates its WHEN clauses in
// turn, and no further), and the cast of the ELSE text fails with 22P02, which aborts
// the transaction before the developer's statement is declared.
func slotSQL(n int) string {
	var b strings.Builder
	b.WriteString("SELECT (CASE")
	for i := range n {
		b.WriteString(" WHEN pg_catalog.pg_try_advisory_xact_lock($1::int8 + " + strconv.Itoa(i) + ") THEN '" + strconv.Itoa(i+1) + "'")
	}
	b.WriteString(" ELSE 'too_many_statements' END)::int4")
	return b.String()
}

// queueSlot queues the taking of one of the person's statement slots.
func (h *Handler) queueSlot(b *pgx.Batch, email string) {
	n := h.deps.Policy.Limits.ConcurrentStatements
	b.Queue(slotSQL(n), personKey(email)).QueryRow(func(row pgx.Row) error {
		var slot int32
		err := row.Scan(&slot)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "22P02" {
			return httpapi.Errorf(http.StatusTooManyRequests, "too_many_statements",
				"you already have %d statements running, the most one person may run at once (limits.concurrent_statements); nothing ran. Wait for one to finish and retry", n)
		}
		return err
	})
}

// A gate bounds how many of a pool's connections developers' statements hold at once.
type gate struct {
	pool  *db.Pool
	slots chan struct{}
}

func newGate(pool *db.Pool, reserved int32) *gate {
	n := max(1, pool.Config().MaxConns-reserved)
	return &gate{pool: pool, slots: make(chan struct{}, n)}
}

// acquire returns a connection for a developer's statement, waiting at most
// statementWait for one; release must be called when the statement is done.
func (g *gate) acquire(ctx context.Context) (conn *pgxpool.Conn, release func(), err error) {
	wait, cancel := context.WithTimeout(ctx, statementWait)
	defer cancel()
	select {
	case g.slots <- struct{}{}:
	case <-wait.Done():
		if ctx.Err() != nil {
			return nil, nil, dbError(ctx.Err())
		}
		return nil, nil, busy()
	}
	conn, err = g.pool.Acquire(wait)
	if err != nil {
		<-g.slots
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, busy()
		}
		return nil, nil, dbError(err)
	}
	return conn, func() { conn.Release(); <-g.slots }, nil
}

func busy() error {
	return httpapi.Errorf(http.StatusServiceUnavailable, "busy",
		"this instance's database connections are all running other statements; nothing ran. Retry in a moment")
}

// gateFor is the gate of pool: the replica's, when pool is the replica.
func (h *Handler) gateFor(pool *db.Pool) *gate {
	if h.replicaGate != nil && pool == h.replicaGate.pool {
		return h.replicaGate
	}
	return h.primaryGate
}
