package grants

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// env is one throwaway database with an admin pool and the sweeper's store.
type env struct {
	d     *dbtest.DB
	admin *pgxpool.Pool
	store *Store
	trail string // audit file
}

func newEnv(t testing.TB) *env {
	t.Helper()
	d := dbtest.New(t)
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return &env{d: d, admin: admin, store: sweeperStore(t, d), trail: filepath.Join(t.TempDir(), "audit.jsonl")}
}

func sweeperStore(t testing.TB, d *dbtest.DB) *Store {
	t.Helper()
	pool, err := db.Open(context.Background(), db.Config{URL: d.URL(migrate.GroupSweeper)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return New(pool, d.Roles.Group(migrate.GroupSweeper))
}

func (e *env) recorder(t testing.TB) *audit.Recorder {
	t.Helper()
	rec, err := audit.NewFileRecorder(context.Background(), e.trail, audit.WithFunction("SweepExpired"), audit.WithSigner(audittest.NewLocalSigner(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	return rec
}

// entries reads the audit file's entries of event, by grant id.
func (e *env) entries(t testing.TB, event string) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	f, err := os.Open(e.trail)
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var en audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if en.Event == event {
			for _, id := range en.GrantIDs {
				out[id]++
			}
		}
	}
	return out
}

// grant inserts an active grant of capability cap for grantee, expiring after expiresIn.
func (e *env) grant(t testing.TB, grantee, cap string, expiresIn time.Duration) int64 {
	t.Helper()
	var id int64
	err := e.admin.QueryRow(context.Background(), `
		INSERT INTO airlock.grants (grantee, role, capabilities, starts_at, expires_at)
		VALUES ($1, $2, ARRAY[$2], now() - interval '2 hours', now() + $3 * interval '1 millisecond')
		RETURNING id`, grantee, cap, expiresIn.Milliseconds()).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) sync(t testing.TB, email string) string {
	t.Helper()
	role, err := e.d.SyncDeveloper(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return role
}

func (e *env) expireNow(t testing.TB, ids ...int64) {
	t.Helper()
	if _, err := e.admin.Exec(context.Background(), `UPDATE airlock.grants SET expires_at = now() - interval '1 second' WHERE id = ANY($1)`, ids); err != nil {
		t.Fatal(err)
	}
}

func (e *env) holds(t testing.TB, email, cap string) bool {
	t.Helper()
	var ok bool
	err := e.admin.QueryRow(context.Background(), `
		SELECT EXISTS (SELECT 1 FROM pg_auth_members m
		                 JOIN pg_roles b ON b.oid = m.roleid
		                 JOIN pg_roles u ON u.oid = m.member
		                 JOIN airlock.developers d ON d.db_role = u.rolname
		                WHERE d.email = $1 AND b.rolname = $2)`, email, e.d.Roles.Prefix+cap).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (e *env) status(t testing.TB, id int64) (status, endedBy string) {
	t.Helper()
	var by *string
	if err := e.admin.QueryRow(context.Background(), `SELECT status, ended_by FROM airlock.grants WHERE id = $1`, id).Scan(&status, &by); err != nil {
		t.Fatal(err)
	}
	if by != nil {
		endedBy = *by
	}
	return status, endedBy
}

// TestSweepEndsRunningQuery: a statement running under a grant that has run out is
// terminated by the sweep, the grant is expired and the role loses the capability.
func TestSweepEndsRunningQuery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const dev = "dev1@example.com"
	id := e.grant(t, dev, "unmasked_users", time.Hour)

	// The query function's way of running a statement under the grant.
	conn, err := pgx.Connect(ctx, e.d.URL(migrate.GroupQuery))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var devRole string
	steps := []func() error{
		func() error {
			_, err := conn.Exec(ctx, "SET ROLE "+pgx.Identifier{e.d.Roles.Group(migrate.GroupQuery)}.Sanitize())
			return err
		},
		func() error { return conn.QueryRow(ctx, `SELECT airlock.sync_developer($1)`, dev).Scan(&devRole) },
		func() error { _, err := conn.Exec(ctx, "SET ROLE "+pgx.Identifier{devRole}.Sanitize()); return err },
		func() error {
			_, err := conn.Exec(ctx, fmt.Sprintf("SET application_name = 'airlock r=test g=%d'", id))
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if !e.holds(t, dev, "unmasked_users") {
		t.Fatal("the developer's role does not hold the capability before the sweep")
	}
	// The statement waits on a lock the test holds, so it runs until something ends it,
	// however fast or slow the machine is.
	const lockKey = 727301
	holder, err := e.admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		t.Fatal(err)
	}
	defer holder.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, lockKey)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey)
		done <- err
	}()
	appName := fmt.Sprintf("airlock r=test g=%d", id)
	// Waiting: the statement's lock request is queued. Present: the backend is there.
	// (pg_locks and application_name are visible to any role, state is not.)
	waiting := func() bool {
		var n int
		err := e.admin.QueryRow(ctx, `
			SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			 WHERE a.datname = current_database() AND a.application_name = $1
			   AND l.locktype = 'advisory' AND NOT l.granted`, appName).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	present := func() bool {
		var n int
		if err := e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, appName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	waitFor(t, "the statement to wait on the test's lock", waiting)
	// A session of another login labelled as if it ran under the grant: the reaper may
	// not end it, and must neither fail because of it nor count it.
	stray, err := pgx.Connect(ctx, e.d.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close(context.Background())
	if _, err := stray.Exec(ctx, "SET application_name = '"+appName+"'"); err != nil {
		t.Fatal(err)
	}

	e.expireNow(t, id)
	res, err := e.store.Sweep(ctx, SweepOptions{Audit: e.recorder(t), Function: "SweepExpired"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExpiredGrants != 1 || res.TerminatedSessions != 1 || res.Remaining != 0 {
		t.Errorf("result = %+v, want 1 expired grant, 1 terminated session, 0 remaining", res)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("the long query finished without error; it should have been terminated")
		} else {
			t.Logf("the long query ended with: %v", err)
		}
	case <-time.After(eventTimeout):
		t.Fatalf("the long query is still running %v after the sweep", eventTimeout)
	}
	// The stray session is still there, and was never the reaper's to end.
	if err := stray.Ping(ctx); err != nil {
		t.Errorf("the owner's session labelled with the grant: want it untouched by the sweep, got = %v", err)
	}
	stray.Close(ctx)
	waitFor(t, "the terminated backend to leave pg_stat_activity", func() bool { return !present() })
	if st, by := e.status(t, id); st != StatusExpired || by != SweeperActor {
		t.Errorf("grant status %q ended_by %q, want expired by sweeper", st, by)
	}
	if e.holds(t, dev, "unmasked_users") {
		t.Error("the developer's role still holds the capability after the sweep")
	}
	if n := e.entries(t, audit.EventGrantExpired)[id]; n != 1 {
		t.Errorf("%d grant.expired entries for grant %d, want 1", n, id)
	}
	if n := e.entries(t, audit.EventSessionTerminated)[id]; n != 1 {
		t.Errorf("%d session.terminated entries for grant %d, want 1", n, id)
	}

	// Idempotent: a second run finds nothing.
	res, err = e.store.Sweep(ctx, SweepOptions{Audit: e.recorder(t)})
	if err != nil || res != (SweepResult{}) {
		t.Errorf("second run = %+v, %v; want nothing done", res, err)
	}
}

// TestSweepReminders: a grant ending within ten minutes is reminded once, by a
// notification to its grantee; a grant ending later is not.
func TestSweepReminders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	soon := e.grant(t, "dev2@example.com", "unmasked_accounts", 5*time.Minute)
	e.grant(t, "dev2@example.com", "unmasked_users", time.Hour)

	rec := e.recorder(t)
	res, err := e.store.Sweep(ctx, SweepOptions{Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	if want := (SweepResult{Reminders: 1}); res != want {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	rows, err := e.admin.Query(ctx, `SELECT channel, coalesce(recipient, 'NULL'), payload->>'event', coalesce((payload->>'grant_id')::bigint, 0) FROM airlock.notifications ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var ch, to, ev string
		var gid int64
		if err := rows.Scan(&ch, &to, &ev, &gid); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %d", ch, to, ev, gid))
	}
	if want := fmt.Sprintf("requester dev2@example.com grant.expiring %d", soon); strings.Join(got, "\n") != want {
		t.Errorf("notifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}

	res, err = e.store.Sweep(ctx, SweepOptions{Audit: rec})
	if err != nil || res != (SweepResult{}) {
		t.Errorf("second run = %+v, %v; want nothing done (reminded once)", res, err)
	}
}

// TestConcurrentSweepers: two sweepers started together over 10,000 expired grants
// expire each exactly once and record each grant.expired exactly once.
func TestConcurrentSweepers(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 grants")
	}
	e := newEnv(t)
	ctx := context.Background()
	const n = 10000
	insertExpired(t, e.admin, n, 50)
	stores := []*Store{e.store, sweeperStore(t, e.d)}
	recs := []*audit.Recorder{e.recorder(t), e.recorder(t)}
	start := make(chan struct{})
	var wg sync.WaitGroup
	totals := make([]SweepResult, 2)
	errs := make([]error, 2)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				res, err := stores[i].Sweep(ctx, SweepOptions{Audit: recs[i]})
				if err != nil {
					errs[i] = err
					return
				}
				totals[i].ExpiredGrants += res.ExpiredGrants
				if res.ExpiredGrants == 0 && res.Remaining == 0 {
					return
				}
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("two sweepers expired %d + %d grants in %s", totals[0].ExpiredGrants, totals[1].ExpiredGrants, time.Since(began).Round(time.Millisecond))
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := totals[0].ExpiredGrants + totals[1].ExpiredGrants; got != n {
		t.Errorf("sweepers report %d expiries, want %d", got, n)
	}
	var expired, ids int
	e.admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'expired' AND ended_by = 'sweeper'), count(*) FROM airlock.grants`).Scan(&expired, &ids)
	if expired != n || ids != n {
		t.Errorf("%d of %d grants expired, want %d of %d", expired, ids, n, n)
	}
	counts := e.entries(t, audit.EventGrantExpired)
	if len(counts) != n {
		t.Errorf("grant.expired entries name %d grants, want %d", len(counts), n)
	}
	for id, c := range counts {
		if c != 1 {
			t.Errorf("grant %d has %d grant.expired entries, want 1", id, c)
		}
	}
}

// insertExpired inserts n active grants past their expiry, spread over developers developers.
func insertExpired(t testing.TB, admin *pgxpool.Pool, n, developers int) {
	t.Helper()
	_, err := admin.Exec(context.Background(), `
		INSERT INTO airlock.grants (grantee, role, capabilities, starts_at, expires_at)
		SELECT 'dev' || (i % $2) || '@example.com', 'unmasked_users', ARRAY['unmasked_users'],
		       now() - interval '2 hours', now() - interval '1 hour' + i * interval '1 millisecond'
		  FROM generate_series(1, $1) AS i`, n, developers)
	if err != nil {
		t.Fatal(err)
	}
}

// TestSweepConnectionLost: the sweeper's connection is killed in the middle of a batch,
// just before the COMMIT of the transaction that holds grant #4: with one grant per
// transaction, and with four (grants #4 to #7 then share the lost transaction). The run
// fails, every grant is fully active (status active, capability held) or fully expired
// (status expired, capability gone), and a rerun finishes the job.
func TestSweepConnectionLost(t *testing.T) {
	tcs := []struct {
		desc   string
		txSize int
	}{
		{desc: "one grant per transaction", txSize: 1},
		{desc: "four grants per transaction", txSize: 4},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) { sweepConnectionLost(t, tc.txSize) })
	}
}

func sweepConnectionLost(t *testing.T, txSize int) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 12
	ids := make([]int64, n)
	devs := make([]string, n)
	for i := range ids {
		devs[i] = fmt.Sprintf("crash%d@example.com", i)
		ids[i] = e.grant(t, devs[i], "unmasked_users", time.Hour)
		e.sync(t, devs[i])
	}
	e.expireNow(t, ids...)

	seen := 0
	opts := SweepOptions{Audit: e.recorder(t), TxSize: txSize}
	opts.beforeCommit = func(ctx context.Context, tx pgx.Tx, gs []Grant) error {
		if len(gs) != txSize {
			return fmt.Errorf("a transaction of %d grants, want %d", len(gs), txSize)
		}
		seen += len(gs)
		if seen < 5 || seen-len(gs) >= 5 {
			return nil
		}
		var pid int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		// As the sweeper's own login, which may end its own backends.
		killer, err := pgx.Connect(ctx, e.d.URL(migrate.GroupSweeper))
		if err != nil {
			return err
		}
		defer killer.Close(context.Background())
		_, err = killer.Exec(ctx, `SELECT pg_terminate_backend($1, 60000)`, pid)
		return err
	}
	res, err := e.store.Sweep(ctx, opts)
	if err == nil {
		t.Fatalf("the sweep survived losing its connection: %+v", res)
	}
	t.Logf("the interrupted run: %+v, %v", res, err)
	if res.ExpiredGrants != 4 {
		t.Errorf("interrupted run expired %d grants, want 4", res.ExpiredGrants)
	}
	consistent := func() (expired int) {
		for i, id := range ids {
			st, _ := e.status(t, id)
			held := e.holds(t, devs[i], "unmasked_users")
			switch {
			case st == StatusExpired && !held:
				expired++
			case st == StatusActive && held:
			default:
				t.Errorf("grant %d is half-expired: status %s, capability held %v", id, st, held)
			}
		}
		return expired
	}
	if got := consistent(); got != 4 {
		t.Errorf("%d grants expired after the interrupted run, want 4", got)
	}

	res, err = e.store.Sweep(ctx, SweepOptions{Audit: e.recorder(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExpiredGrants != n-4 || res.Remaining != 0 {
		t.Errorf("rerun = %+v, want %d expired and 0 remaining", res, n-4)
	}
	if got := consistent(); got != n {
		t.Errorf("%d grants expired after the rerun, want %d", got, n)
	}
	// The grants whose commit was lost were recorded before their commit, so they may
	// have two entries (at least once); every other grant has exactly one.
	counts := e.entries(t, audit.EventGrantExpired)
	for i, id := range ids {
		want := 1
		if i >= 4 && i < 4+txSize {
			want = 2
		}
		if counts[id] != want {
			t.Errorf("grant %d (#%d) has %d grant.expired entries, want %d", id, i, counts[id], want)
		}
	}
}

// TestRevoke: a manual revocation ends the grant now, with the same effects as expiry.
func TestRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const dev = "dev2@example.com"
	id := e.grant(t, dev, "write_accounts", time.Hour)
	e.sync(t, dev)
	if !e.holds(t, dev, "write_accounts") {
		t.Fatal("capability not held before revocation")
	}
	rv, err := e.store.Revoke(ctx, id, "lead1@example.com", e.recorder(t), "ApprovalCallback", "0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if rv.Grant.ID != id || rv.Grant.Status != StatusRevoked {
		t.Errorf("revocation = %+v", rv)
	}
	if st, by := e.status(t, id); st != StatusRevoked || by != "lead1@example.com" {
		t.Errorf("grant status %q ended_by %q, want revoked by lead1", st, by)
	}
	if e.holds(t, dev, "write_accounts") {
		t.Error("capability still held after revocation")
	}
	if n := e.entries(t, audit.EventGrantRevoked)[id]; n != 1 {
		t.Errorf("%d grant.revoked entries, want 1", n)
	}
	if _, err := e.store.Revoke(ctx, id, "lead1@example.com", e.recorder(t), "ApprovalCallback", "0123456789abcdef"); !errors.Is(err, ErrNotActive) {
		t.Errorf("second revocation: %v, want ErrNotActive", err)
	}
}

// eventTimeout bounds the wait for an event that must come (a backend ending, a lock
// request being queued): reaching it means the event never came, not that the machine
// was slow.
const eventTimeout = 2 * time.Minute

// waitFor polls cond until it holds, failing the test after eventTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(eventTimeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", eventTimeout, what)
		}
	}
}

// TestEndOnReplica: a store with a read replica ends, there, the sessions running under
// a grant it ends. A second pool to the same database stands in for the replica, and the
// session is ended through it alone (endOnReplica), so the count is the replica's.
func TestEndOnReplica(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.grant(t, "dev1@example.com", "unmasked_users", time.Hour)
	replica, err := db.Open(ctx, db.Config{URL: e.d.URL(migrate.GroupSweeper)})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	store := New(nil, e.d.Roles.Group(migrate.GroupSweeper)).WithReplica(replica)

	conn, err := pgx.Connect(ctx, e.d.URL(migrate.GroupQuery))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET application_name = 'airlock r=test g=%d'", id)); err != nil {
		t.Fatal(err)
	}
	if n := store.endOnReplica(ctx, id+1); n != 0 {
		t.Errorf("for another grant, want = 0 sessions ended on the replica, got = %d", n)
	}
	if n := store.endOnReplica(ctx, id); n != 1 {
		t.Fatalf("want = 1 session ended on the replica, got = %d", n)
	}
	waitFor(t, "the replica's session to end", func() bool { return conn.Ping(ctx) != nil })
	if n := New(nil, "").endOnReplica(ctx, id); n != 0 {
		t.Errorf("without a replica, want = 0, got = %d", n)
	}
}
