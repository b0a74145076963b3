package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/outbox"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// env is a throwaway database, a pool of the sweeper's login (the least privileged
// group that queues notifications) and the admin login, which reads the outbox.
type env struct {
	pool  *db.Pool
	role  string
	admin *pgxpool.Pool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	ctx := context.Background()
	pool, err := db.Open(ctx, db.Config{URL: d.URL(migrate.GroupSweeper)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	admin, err := pgxpool.New(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return &env{pool: pool, role: d.Roles.Group(migrate.GroupSweeper), admin: admin}
}

// row is one outbox row as stored.
type row struct {
	channel   string
	recipient *string
	payload   outbox.Message
}

func (e *env) rows(t *testing.T) []row {
	t.Helper()
	rs, err := e.admin.Query(context.Background(), `SELECT channel, recipient, payload::text FROM airlock.notifications ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (row, error) {
		var x row
		var payload string
		if err := r.Scan(&x.channel, &x.recipient, &payload); err != nil {
			return x, err
		}
		return x, json.Unmarshal([]byte(payload), &x.payload)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// show prints a nullable column: NULL, or the quoted value.
func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

// TestEnqueue: a message to a person keeps its recipient; a message to a channel is
// stored with a NULL recipient, never ”; the payload is the message.
func TestEnqueue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	person := outbox.Message{Channel: outbox.ChannelRequester, Recipient: "dev1@example.com", Event: "grant.expiring", Text: "ends soon", GrantID: 7}
	channel := outbox.Message{Channel: outbox.ChannelSecurity, Event: "breakglass.activated", Text: "BREAK-GLASS", BreakGlass: true}
	err := db.InRole(ctx, e.pool, e.role, func(tx pgx.Tx) error { return outbox.Enqueue(ctx, tx, person, channel) })
	if err != nil {
		t.Fatal(err)
	}
	got := e.rows(t)
	if len(got) != 2 {
		t.Fatalf("after enqueuing 2 messages, want 2 rows, got = %d", len(got))
	}
	if got[0].channel != "requester" || show(got[0].recipient) != `"dev1@example.com"` {
		t.Errorf("a message to a person: want channel requester, recipient dev1@example.com, got = %q, %s", got[0].channel, show(got[0].recipient))
	}
	if got[0].payload.GrantID != 7 || got[0].payload.Text != "ends soon" {
		t.Errorf("a message to a person: want its payload stored, got = %+v", got[0].payload)
	}
	if got[1].channel != "security" || got[1].recipient != nil {
		t.Errorf("a message to a channel: want channel security, recipient NULL, got = %q, %s", got[1].channel, show(got[1].recipient))
	}
	if !got[1].payload.BreakGlass {
		t.Errorf("a message to a channel: want its payload stored, got = %+v", got[1].payload)
	}
}

// TestEnqueueRolledBack: what a transaction queued and then rolled back leaves nothing,
// and a repeatable message rolled back does not hold back the next one.
func TestEnqueueRolledBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	boom := errors.New("the change failed")
	m := outbox.Message{Channel: outbox.ChannelSecurity, Event: "security.bulk_write", Text: "x", Key: "k1"}
	err := db.InRole(ctx, e.pool, e.role, func(tx pgx.Tx) error {
		if err := outbox.Enqueue(ctx, tx, m); err != nil {
			return err
		}
		b := &pgx.Batch{}
		var n int
		if err := outbox.Queue(b, m, time.Hour, &n); err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want the transaction to fail with %v, got = %v", boom, err)
	}
	if got := e.rows(t); len(got) != 0 {
		t.Fatalf("after a rolled-back transaction, want an empty outbox, got = %d rows", len(got))
	}
	if n := e.queue(t, m, time.Hour); n != 1 {
		t.Errorf("after a rolled-back repeat, want the next one queued, got = %d inserted", n)
	}
}

// queue queues m (repeatable every) in a transaction of its own and returns how many
// rows it inserted.
func (e *env) queue(t *testing.T, m outbox.Message, every time.Duration) int {
	t.Helper()
	ctx := context.Background()
	var n int
	err := db.InRole(ctx, e.pool, e.role, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if err := outbox.Queue(b, m, every, &n); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQueueDedupe: a repeatable message is queued once per key and channel within its
// interval; another key, another channel, or the interval having passed queues it again;
// a message that is not repeatable is always queued.
func TestQueueDedupe(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m := outbox.Message{Channel: outbox.ChannelSecurity, Event: "security.masked_column_access", Text: "x", Key: "security.masked_column_access|dev1@example.com|users.email"}
	other := m
	other.Key += ",users.phone"
	elsewhere := m
	elsewhere.Channel = outbox.ChannelApprovers
	steps := []struct {
		desc  string
		m     outbox.Message
		every time.Duration
		want  int
	}{
		{"the first", m, time.Hour, 1},
		{"a repeat within the hour", m, time.Hour, 0},
		{"another key", other, time.Hour, 1},
		{"the same key on another channel", elsewhere, time.Hour, 1},
		{"the same message, not repeatable", m, 0, 1},
	}
	for _, s := range steps {
		if got := e.queue(t, s.m, s.every); got != s.want {
			t.Errorf("when queuing %s, want %d inserted, got = %d", s.desc, s.want, got)
		}
	}
	if _, err := e.admin.Exec(ctx, `UPDATE airlock.notifications SET created_at = created_at - interval '61 minutes'`); err != nil {
		t.Fatal(err)
	}
	if got := e.queue(t, m, time.Hour); got != 1 {
		t.Errorf("when queuing a repeat after the hour has passed, want 1 inserted, got = %d", got)
	}
	if got := len(e.rows(t)); got != 5 {
		t.Errorf("want 5 rows in the outbox, got = %d", got)
	}
	b := &pgx.Batch{}
	if err := outbox.Queue(b, outbox.Message{Channel: outbox.ChannelSecurity, Event: "security.x"}, time.Hour, nil); err == nil {
		t.Error("when queuing a repeatable message without a key, want an error, got = nil")
	}
}

// TestQueueDedupeConcurrent: two transactions queuing the same repeatable message at
// once insert it once: the second waits for the first's key lock, then sees its row.
func TestQueueDedupeConcurrent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	m := outbox.Message{Channel: outbox.ChannelSecurity, Event: "security.denial_burst", Text: "x", Key: "security.denial_burst|dev1@example.com"}

	first, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(ctx)
	if _, err := first.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{e.role}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	var n1 int
	b := &pgx.Batch{}
	if err := outbox.Queue(b, m, time.Hour, &n1); err != nil {
		t.Fatal(err)
	}
	if err := first.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}

	second := make(chan int, 1)
	go func() {
		var n int
		err := db.InRole(ctx, e.pool, e.role, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			if err := outbox.Queue(b, m, time.Hour, &n); err != nil {
				return err
			}
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			t.Error(err)
		}
		second <- n
	}()
	// The second transaction is queued behind the first's advisory lock.
	dbtest.WaitForLockWait(t, e.admin, "the second transaction (for the first's key lock)")
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n2 := <-second; n1 != 1 || n2 != 0 {
		t.Errorf("when two transactions queue the same alert at once, want 1 and 0 inserted, got = %d and %d", n1, n2)
	}
	if got := len(e.rows(t)); got != 1 {
		t.Errorf("want 1 row in the outbox, got = %d", got)
	}
}

// queueLimited queues m under lim (and every) in a transaction of its own, rolled back
// when rollback is set, and returns how many rows it inserted.
func (e *env) queueLimited(t *testing.T, m outbox.Message, every time.Duration, lim outbox.Limit, rollback bool) int {
	t.Helper()
	ctx := context.Background()
	var n int
	undo := errors.New("rolled back")
	err := db.InRole(ctx, e.pool, e.role, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if err := outbox.QueueLimited(b, m, every, lim, &n); err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if rollback {
			return undo
		}
		return nil
	})
	if err != nil && !(rollback && errors.Is(err, undo)) {
		t.Fatal(err)
	}
	return n
}

// TestQueueLimited: at most Max messages per limit key and channel within the window;
// what a rolled-back transaction or a skipped repeat queued does not count; the first
// message after the window says how many were held back, once.
func TestQueueLimited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	lim := outbox.Limit{Key: "security.forbidden_statement|dev1@example.com", Max: 2, Window: 10 * time.Minute}
	m := outbox.Message{Channel: outbox.ChannelSecurity, Event: "security.forbidden_statement", Text: "dev1 tried a DELETE", Key: "k-a"}
	other := lim
	other.Key = "security.forbidden_statement|dev2@example.com"
	steps := []struct {
		desc     string
		m        outbox.Message
		every    time.Duration
		lim      outbox.Limit
		rollback bool
		want     int
	}{
		{"the first, rolled back", m, 0, lim, true, 1},
		{"the first", m, 0, lim, false, 1},
		{"the same subject again, a repeat within the hour", m, time.Hour, lim, false, 0},
		{"the second (the repeat did not count)", m, 0, lim, false, 1},
		{"a third", m, 0, lim, false, 0},
		{"a fourth", m, 0, lim, false, 0},
		{"another limit key", m, 0, other, false, 1},
		{"the same message unlimited", m, 0, outbox.Limit{}, false, 1},
	}
	for _, s := range steps {
		if got := e.queueLimited(t, s.m, s.every, s.lim, s.rollback); got != s.want {
			t.Errorf("when queuing %s, want %d inserted, got = %d", s.desc, s.want, got)
		}
	}
	rows := e.rows(t)
	if len(rows) != 4 {
		t.Fatalf("want 4 rows, got = %d", len(rows))
	}
	if p := rows[0].payload; p.HeldUntil != "" || p.Held != 0 || p.Text != m.Text {
		t.Errorf("want the first message as queued, got = %+v", p)
	}
	if p := rows[1].payload; p.HeldUntil == "" || !strings.Contains(p.Text, "Limit of 2 per 10m reached") {
		t.Errorf("want the message that reaches the limit to say so, got = %+v", p)
	}
	if _, err := e.admin.Exec(ctx, `UPDATE airlock.notification_limits SET window_start = window_start - interval '10 minutes'`); err != nil {
		t.Fatal(err)
	}
	if got := e.queueLimited(t, m, 0, lim, false); got != 1 {
		t.Fatalf("after the window, want the next message queued, got = %d", got)
	}
	if got := e.queueLimited(t, m, 0, lim, false); got != 1 {
		t.Fatalf("want the second of the new window queued, got = %d", got)
	}
	rows = e.rows(t)
	if p := rows[4].payload; p.Held != 2 || p.HeldSince == "" || !strings.HasPrefix(p.Text, m.Text+" (2 more like this were held back since ") {
		t.Errorf("want the first message after the window to say 2 were held back, got = %+v", p)
	}
	if p := rows[5].payload; p.Held != 0 {
		t.Errorf("want the held count told once, got = %+v", p)
	}
	for _, bad := range []outbox.Limit{{Max: 1, Window: time.Minute}, {Key: "k", Max: 1}} {
		if err := outbox.QueueLimited(&pgx.Batch{}, m, 0, bad, nil); err == nil {
			t.Errorf("when limiting with %+v, want an error, got = nil", bad)
		}
	}
}
