package query_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/cloudsqlemu"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/sqlguard"
)

// The memory tests (issue 11, finding 2) send what an insider who read the guard would
// send through the real function, and measure the database backends that serve them
// while they run: the private memory (RssAnon) and peak resident memory (VmHWM) of every
// backend of the function's pool, read from /proc, and those backends' temporary files,
// read from the server's data directory. No database login is privileged for it: the
// function's login lists its own backends, and the rest is read from outside the
// server, which needs the test to run on the server's machine as root (or as the
// server's OS user), as scripts/test.sh runs it. Elsewhere the tests are skipped, saying
// why; a measurement that cannot be taken on the server's machine fails the test.
//
// The bound asserted is sqlguard.MemoryBound for the data the test runs on: what the
// guard's memory rules and the query login's settings allow, given the rows of the
// largest table and the longest stored row (README, "What it defends").

// usage is what one statement made the database hold.
type usage struct {
	anon, hwm int64 // the largest RssAnon and VmHWM of one backend, bytes
	temp      int64 // the largest total size of the backends' temporary files, bytes
	goHeap    uint64
	backends  int
}

func (u usage) String() string {
	return fmt.Sprintf("backend private %s, peak RSS %s, temporary files %s (%d backends); function heap %s",
		fmtMiB(u.anon), fmtMiB(u.hwm), fmtMiB(u.temp), u.backends, fmtMiB(int64(u.goHeap)))
}

func fmtMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// ended reports whether err says that a process has ended: reaped (its /proc entry is
// gone), or exiting (the kernel answers ESRCH), between its listing and its reading.
func ended(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// procStatus reads the kB fields of /proc/<pid>/status. A process that has ended (a
// zombie has no memory left to report) is fs.ErrNotExist, as one already reaped is.
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(v))
		if string(k) == "State" && len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			return nil, fmt.Errorf("process %d has ended: %w", pid, fs.ErrNotExist)
		}
		if len(f) == 2 && f[1] == "kB" {
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
			}
			out[string(k)] = n << 10
		}
	}
	for _, k := range []string{"RssAnon", "VmHWM"} {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("/proc/%d/status has no %s", pid, k)
		}
	}
	return out, nil
}

// parentPID reads the parent of pid from /proc/<pid>/stat.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ppid …": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	return strconv.Atoi(f[1])
}

// server is the database server seen from its own machine: the tests' observer of what
// no unprivileged login may read (other backends' memory, the temporary files).
type server struct {
	dataDir    string
	postmaster int // the pid in dataDir/postmaster.pid
}

// localServer finds the server of the test's database on this machine through the data
// directory the emulation recorded, and proves it is the one serving the test: the
// function's login's backend is a child of that directory's postmaster. It skips the
// test when the server runs elsewhere or this process may not read its files.
func (h *harness) localServer(t *testing.T) server {
	t.Helper()
	e := dbtest.Emulation(t)
	if e.DataDirectory == "" {
		t.Fatalf("%s records no data directory: rebuild the emulation (scripts/test.sh does)", os.Getenv(cloudsqlemu.EnvFile))
	}
	s := server{dataDir: e.DataDirectory}
	b, err := os.ReadFile(filepath.Join(s.dataDir, "postmaster.pid"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.Skipf("the server's data directory %s is not on this machine: its backends' memory and temporary files can be measured only on its machine", s.dataDir)
	case errors.Is(err, fs.ErrPermission):
		t.Skipf("cannot read the server's files (%v): run the test as root or as the server's OS user", err)
	case err != nil:
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if s.postmaster, err = strconv.Atoi(strings.TrimSpace(first)); err != nil {
		t.Fatalf("%s/postmaster.pid: %v", s.dataDir, err)
	}
	var pid int
	if err := h.login.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	ppid, err := parentPID(pid)
	if ended(err) {
		t.Skipf("backend %d of the test's connection is no process of this machine: the server runs elsewhere", pid)
	}
	if err != nil {
		t.Fatal(err)
	}
	if ppid != s.postmaster {
		t.Fatalf("backend %d of the test's connection is a child of %d, not of the postmaster %d of %s: the emulation names another server's data directory", pid, ppid, s.postmaster, s.dataDir)
	}
	return s
}

// tempBytes is the total size of the temporary files of the backends pids, in every
// tablespace's temporary directory: the files PostgreSQL names pgsql_tmp<pid>.<n> and
// the shared filesets (directories) named the same way after the backend that made them.
// A directory that does not exist holds nothing (PostgreSQL makes it on first use).
func (s server) tempBytes(pids map[int]bool) (int64, error) {
	dirs, err := filepath.Glob(filepath.Join(s.dataDir, "pg_tblspc", "*", "PG_*", "pgsql_tmp"))
	if err != nil {
		return 0, err
	}
	dirs = append(dirs, filepath.Join(s.dataDir, "base", "pgsql_tmp"))
	var total int64
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		for _, en := range entries {
			digits, _, _ := strings.Cut(strings.TrimPrefix(en.Name(), "pgsql_tmp"), ".")
			if pid, err := strconv.Atoi(digits); err != nil || !pids[pid] {
				continue
			}
			// Files come and go while the statement runs: one gone is no longer counted.
			err := filepath.WalkDir(filepath.Join(dir, en.Name()), func(_ string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					var info fs.FileInfo
					if info, err = d.Info(); err == nil {
						total += info.Size()
					}
				}
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			})
			if err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

// backends are the function's backends: the sessions of the query login that the
// function's pool opened (application_name airlock, or airlock r=… while a request runs,
// shared/db and run.go), and their parallel workers. The login lists them itself: a
// login sees every column of its own backends, and no one else needs to.
func (h *harness) backends(ctx context.Context) ([]int, error) {
	rows, err := h.login.Query(ctx, `
		WITH pool AS (
			SELECT pid FROM pg_stat_activity
			 WHERE usename = session_user AND (application_name = 'airlock' OR application_name LIKE 'airlock r=%'))
		SELECT pid FROM pool
		 UNION
		SELECT pid FROM pg_stat_activity WHERE leader_pid IN (SELECT pid FROM pool)`)
	if err != nil {
		return nil, fmt.Errorf("listing the function's backends: %w", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("listing the function's backends: %w", err)
	}
	return pids, nil
}

// measure runs fn and samples every 20 ms, until fn returns, the memory and temporary
// files of the function's backends. A sample that cannot be taken fails the test (after
// fn returns): a measure that silently read nothing would pass every bound.
func (h *harness) measure(t *testing.T, fn func()) usage {
	t.Helper()
	ctx := context.Background()
	srv := h.localServer(t)
	// A fresh backend: memory a backend's allocator kept from an earlier statement would
	// otherwise count against this one.
	h.deps.Pool.Reset()
	pids, err := h.backends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		// Writing 5 resets VmHWM to the current RSS, so it is this statement's peak.
		err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
		switch {
		case ended(err): // the backend has ended since it was listed
		case errors.Is(err, fs.ErrPermission):
			t.Skipf("cannot reset the peak memory of backend %d (%v): run the test as root or as the server's OS user", pid, err)
		case err != nil:
			t.Fatalf("resetting the peak memory of backend %d: %v", pid, err)
		}
	}
	var u usage
	seen := map[int]bool{}
	sample := func() error {
		pids, err := h.backends(ctx)
		if err != nil {
			return err
		}
		current := map[int]bool{}
		for _, pid := range pids {
			st, err := procStatus(pid)
			if ended(err) {
				continue // ended between the listing and the reading
			}
			if err != nil {
				return err
			}
			// The right processes: backends of the test's server, not pids of another machine.
			ppid, err := parentPID(pid)
			if ended(err) {
				continue
			}
			if err != nil {
				return err
			}
			if ppid != srv.postmaster {
				return fmt.Errorf("backend %d is a child of %d, not of the server's postmaster %d", pid, ppid, srv.postmaster)
			}
			current[pid] = true
			seen[pid] = true
			u.anon = max(u.anon, st["RssAnon"])
			u.hwm = max(u.hwm, st["VmHWM"])
		}
		temp, err := srv.tempBytes(current)
		if err != nil {
			return fmt.Errorf("reading the temporary files of backends %v: %w", slices.Sorted(maps.Keys(current)), err)
		}
		u.temp = max(u.temp, temp)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		u.goHeap = max(u.goHeap, ms.HeapInuse)
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var failed error
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
		}
		if failed == nil {
			failed = sample()
		}
	}
	if failed != nil {
		t.Fatalf("measuring the function's backends while the statement ran: %v", failed)
	}
	u.backends = len(seen)
	if u.backends == 0 {
		t.Fatalf("no backend of %s was seen while the statement ran", h.d.Login(migrate.GroupQuery))
	}
	return u
}

// memoryPolicy is the demo policy with the given statement timeout. The attacks that
// run until the database stops them get 10 s: one the guard lets through must stay under
// the bound for as long as it runs, and 10 s is long enough for an unbounded one to pass
// it (the example grew by about 500 MB/s); on a slower machine it grows less,
// and any way of stopping it is accepted. Statements that must finish get honestTimeout,
// which no load can reach.
func memoryPolicy(t *testing.T, timeout string) []byte {
	return policyVariant(t, "statement_timeout: 30s", "statement_timeout: "+timeout)
}

// A memoryAttack is one statement: either the guard refuses it with rule, or it runs and
// its answer's code is one of outcomes ("" is 200).
type memoryAttack struct {
	name     string
	sql      string
	rule     string
	outcomes []string
}

func memoryAttacks() []memoryAttack {
	// Five sorted branches (a FROM item and a sort each) and the FROM item around them:
	// 28 of the 32 work areas.
	sorts := "SELECT count(*) FROM (" + strings.Repeat("(SELECT pair, executed_at FROM trades WHERE id % 2 = 0 ORDER BY executed_at) UNION ALL ", 4) +
		"(SELECT pair, executed_at FROM trades WHERE id % 2 = 0 ORDER BY executed_at)) s"
	// Each kept row at the budget: 128 bytes (with the aggregate's own 16) plus twice a row.
	kept := "SELECT cardinality(array_agg(concat(repeat('x', 90), t, t))) FROM trades t"
	return []memoryAttack{
		// Refused: each would grow a backend without a limit.
		{name: "the issue's example: array_agg of repeat over generate_series", sql: "SELECT cardinality(array_agg(repeat(repeat('x',1000),400000))) FROM generate_series(1,16)", rule: sqlguard.RuleValueTooLarge},
		{name: "a 2 GB string_agg (A329)", sql: "SELECT string_agg(repeat('x', 100000), '') FROM generate_series(1, 20000)", rule: sqlguard.RuleAccumulationUnbounded},
		{name: "array_agg over a cross join", sql: "SELECT cardinality(array_agg(a.id)) FROM trades a, trades b", rule: sqlguard.RuleAccumulationUnbounded},
		{name: "ARRAY(subquery) of a hundred million rows", sql: "SELECT cardinality(ARRAY(SELECT g FROM generate_series(1, 100000000) g))", rule: sqlguard.RuleAccumulationUnbounded},
		{name: "a hashed IN the planner thinks holds one row", sql: "SELECT 1 WHERE 0 IN (SELECT a.id * 100000 + b.id FROM trades a, trades b WHERE a.fee * 0 = 0 AND b.fee * 0 = 0 AND a.id * 0 = 0 AND b.id * 0 = 0)", rule: sqlguard.RuleSubqueryUnbounded},
		{name: "a hashed IN over a series with a hidden bound", sql: "SELECT 1 WHERE 0 IN (SELECT generate_series(1, (SELECT 100000000)))", rule: sqlguard.RuleSubqueryUnbounded},
		{name: "INTERSECT with a cross join", sql: "SELECT user_id FROM trades INTERSECT SELECT a.user_id * 100000 + b.user_id FROM trades a, trades b", rule: sqlguard.RuleSubqueryUnbounded},
		{name: "a recursive UNION's hash table", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n + 1 FROM r) SELECT count(*) FROM r", rule: sqlguard.RuleRecursiveGrowth},
		{name: "a string doubling in a recursive CTE", sql: "WITH RECURSIVE r(s) AS (SELECT 'x'::text UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r", rule: sqlguard.RuleRecursiveGrowth},
		{name: "jsonb_pretty of a deeply nested literal", sql: "SELECT length(jsonb_pretty('" + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + "'))", rule: sqlguard.RuleValueTooLarge},
		{name: "numbers in exponent notation", sql: "SELECT length('{" + strings.TrimSuffix(strings.Repeat("1e131071,", 100), ",") + "}'::numeric[]::text)", rule: sqlguard.RuleValueTooLarge},
		{name: "format with a huge width", sql: "SELECT length(format('%999999999s', 'x'))", rule: sqlguard.RuleValueTooLarge},
		{name: "a hundred sorts kept until the end", sql: "SELECT count(*) FROM (" + strings.Repeat("(SELECT pair FROM trades ORDER BY pair) UNION ALL ", 99) + "(SELECT pair FROM trades ORDER BY pair)) s", rule: sqlguard.RuleMemoryBudget},
		{name: "CUBE of eight columns", sql: "SELECT count(*) FROM trades GROUP BY CUBE (id, user_id, pair, side, price, quantity, fee, executed_at)", rule: sqlguard.RuleMemoryBudget},

		// Allowed, at or past the guard's limits: the database bounds them.
		{name: "a hash join whose inner rows share one key (enable_hashjoin off)", sql: "SELECT count(*) FROM (SELECT x1.fee * 0 + 1 AS z FROM trades x1, trades x2 OFFSET 0) x JOIN (SELECT a.fee * 0 + 1 AS z FROM trades a, trades b WHERE a.fee * 0 = 0 AND b.fee * 0 = 0 AND a.id * 0 = 0 AND b.id * 0 = 0 OFFSET 0) y ON x.z = y.z", outcomes: []string{"timeout", "temp_file_limit"}},
		{name: "work areas at the limit, in-memory sorts", sql: sorts, outcomes: []string{""}},
		{name: "kept rows at the budget over the largest table", sql: kept, outcomes: []string{""}},
		{name: "kept rows, work areas and values at their limits at once", sql: "SELECT (" + kept + "), (" + sorts + "), length(repeat('x', 1048576))", outcomes: []string{""}},
		{name: "values at the per-row limit", sql: "SELECT length(repeat('x', 1048576)), length(repeat('y', 1048576)), length(repeat('z', 1048576)), length(repeat('w', 1000000))", outcomes: []string{""}},
		{name: "a hashed NOT IN over one table", sql: "SELECT count(*) FROM trades WHERE id NOT IN (SELECT user_id FROM trades)", outcomes: []string{""}},
		{name: "an endless recursive count (A325)", sql: "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", outcomes: []string{"timeout", "temp_file_limit"}},
		{name: "a hundred billion generated rows", sql: "SELECT count(*) FROM generate_series(1, 100000000000)", outcomes: []string{"timeout", "temp_file_limit"}},
	}
}

// TestMemoryIsBounded runs every attack through the function and checks, while it runs,
// that no backend grows past backendBound and temporary files stay under temp_file_limit.
func TestMemoryIsBounded(t *testing.T) {
	// endless runs what only the database can stop; h the rest, which must finish.
	h := newHarness(t, harnessOptions{policy: memoryPolicy(t, honestTimeout)})
	endless := newHarness(t, harnessOptions{policy: memoryPolicy(t, "10s")})
	limit := tempFileLimit(t, h)
	backendBound := h.memoryBound(t)
	for i, a := range memoryAttacks() {
		t.Run(a.name, func(t *testing.T) {
			h := h
			if slices.Contains(a.outcomes, "timeout") {
				h = endless
			}
			who := []string{dev1, dev2}[i%2] // denied-burst alerts are not the subject here
			var r response
			u := h.measure(t, func() { r = h.query(who, a.sql) })
			t.Logf("%d: %s", r.status, u)
			if u.anon > backendBound || u.hwm > backendBound {
				t.Errorf("when %s runs %q, want every backend under %s, got %s", who, trim(a.sql), fmtMiB(backendBound), u)
			}
			if u.temp > limit {
				t.Errorf("when %s runs %q, want temporary files under temp_file_limit (%s), got %s", who, trim(a.sql), fmtMiB(limit), fmtMiB(u.temp))
			}
			if a.rule != "" {
				if e := r.err(); r.status != http.StatusForbidden || e.Code != "denied" || e.Rule != a.rule || e.Message == "" {
					t.Errorf("when %s runs %q, want = 403 denied by %s with a message, got = %s", who, trim(a.sql), a.rule, r)
				}
				return
			}
			code := ""
			if r.status != http.StatusOK {
				code = r.err().Code
			}
			if !slices.Contains(a.outcomes, code) {
				t.Errorf("when %s runs %q, want an answer in %q (\"\" is 200), got = %s", who, trim(a.sql), a.outcomes, r)
			}
		})
	}
	h.quiescent(t, "after the memory attacks")
	endless.quiescent(t, "after the memory attacks")
}

// TestTempFileLimit runs the 100-million-row sort with a statement timeout long
// enough that only temp_file_limit can stop it: it must, with a 400 naming the limit,
// and the temporary files must never pass it.
func TestTempFileLimit(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: memoryPolicy(t, "10m")})
	limit := tempFileLimit(t, h)
	backendBound := h.memoryBound(t)
	const sql = "SELECT count(*) FROM (SELECT md5(g::text) AS h FROM generate_series(1, 100000000) AS g ORDER BY 1) AS s"
	var r response
	u := h.measure(t, func() { r = h.query(dev1, sql) })
	t.Logf("%d: %s", r.status, u)
	e := r.err()
	want := fmt.Sprintf("temp_file_limit (%dkB)", limit>>10)
	if r.status != http.StatusBadRequest || e.Code != "temp_file_limit" || !strings.Contains(e.Message, want) {
		t.Errorf("when dev1 sorts 100 million rows, want = 400 temp_file_limit naming %q, got = %s", want, r)
	}
	if u.temp > limit || u.temp < limit/2 {
		t.Errorf("when dev1 sorts 100 million rows, want temporary files to grow to the limit (%s) and no further, got = %s", fmtMiB(limit), fmtMiB(u.temp))
	}
	if u.anon > backendBound {
		t.Errorf("when dev1 sorts 100 million rows, want the backend under %s, got %s", fmtMiB(backendBound), u)
	}
	var result map[string]any
	for _, en := range h.entriesFor("query.result") {
		result = en
	}
	if result == nil || !strings.Contains(fmt.Sprint(result), "temp_file_limit") {
		t.Errorf("after the sort was stopped, want a query.result audit entry naming temp_file_limit, got = %v", result)
	}
}

// memoryBound is sqlguard.MemoryBound for the test's data and the query login's work_mem.
func (h *harness) memoryBound(t *testing.T) int64 {
	t.Helper()
	var rows, rowBytes int64
	for _, tbl := range []string{"users", "accounts", "deposits", "withdrawals", "trades"} {
		var n, l int64
		// As the tables' owner: the admin may not read them, as on Cloud SQL.
		if err := h.owner.QueryRow(context.Background(), `SELECT count(*), coalesce(max(length(row_to_json(t)::text)), 0) FROM public.`+tbl+` t`).Scan(&n, &l); err != nil {
			t.Fatalf("reading the size of %s as its owner: %v", tbl, err)
		}
		rows, rowBytes = max(rows, n), max(rowBytes, l)
	}
	var workMem int64
	for _, s := range migrate.QuerySettings {
		if s.Name == "work_mem" {
			n, err := strconv.ParseInt(strings.TrimSuffix(s.Value, "MB"), 10, 64)
			if err != nil {
				t.Fatalf("work_mem %q is not in MB", s.Value)
			}
			workMem = n << 20
		}
	}
	b := sqlguard.MemoryBound(rows, rowBytes, workMem)
	t.Logf("bound: %s for %d rows in the largest table, rows of at most %d bytes as JSON, work_mem %s", fmtMiB(b), rows, rowBytes, fmtMiB(workMem))
	return b
}

// tempFileLimit returns the cluster's temp_file_limit in bytes and checks that it is
// the one terraform/sql.tf gives Cloud SQL, so that the tests meet the deployed limit.
func tempFileLimit(t *testing.T, h *harness) int64 {
	t.Helper()
	tf, err := os.ReadFile("../../terraform/sql.tf")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`name\s*=\s*"temp_file_limit"\s*\n\s*value\s*=\s*"(\d+)"`).FindSubmatch(tf)
	if m == nil {
		t.Fatal("terraform/sql.tf sets no temp_file_limit database flag")
	}
	want, err := strconv.ParseInt(string(m[1]), 10, 64)
	if err != nil {
		t.Fatalf("terraform/sql.tf: temp_file_limit: %v", err)
	}
	setting := h.scalar(`SELECT setting FROM pg_settings WHERE name = 'temp_file_limit'`)
	got, err := strconv.ParseInt(setting, 10, 64)
	if err != nil {
		t.Fatalf("the test cluster's temp_file_limit %q: %v", setting, err)
	}
	if got != want {
		t.Fatalf("the test cluster runs with temp_file_limit = %d kB, terraform/sql.tf deploys %d kB: the emulation applies sql.tf's flags (scripts/cmd/cloudsqlemu); rebuild it", got, want)
	}
	return want << 10
}

// TestQuerySessionSettings: a developer's statement runs with the settings the memory
// bound relies on, after SET ROLE to the developer and after DISCARD ALL.
func TestQuerySessionSettings(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	role := h.sync(dev1)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, h.d.URL(migrate.GroupQuery))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	check := func(when string) {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		for _, r := range []string{h.d.Roles.Group(migrate.GroupQuery), role} {
			if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{r}.Sanitize()); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range migrate.QuerySettings {
			var got string
			if err := tx.QueryRow(ctx, "SELECT current_setting($1)", pgx.QueryExecModeExec, s.Name).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != s.Value {
				t.Errorf("%s, want %s = %s for dev1's statements, got = %s", when, s.Name, s.Value, got)
			}
		}
	}
	check("after SET ROLE to dev1's role")
	for _, s := range []string{"SET work_mem = '1GB'", "SET enable_hashjoin = on", "DISCARD ALL"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	check("after a connection changed them and was reset with DISCARD ALL")
}

// TestMeasureSeesMemory checks the measuring itself: a statement known to use memory (an
// allowed aggregate that keeps 60,000 rows of about 300 bytes) and one known to write
// temporary files (a sort of a million rows, about 40 MB, past work_mem) must register.
// Without it, a measure that always read zero would pass every bound.
func TestMeasureSeesMemory(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var r response
	u := h.measure(t, func() {
		r = h.query(dev1, "SELECT cardinality(array_agg(concat(repeat('x', 90), t, t))) FROM trades t")
	})
	if r.status != http.StatusOK {
		t.Fatalf("want the aggregate to run, got = %s", r)
	}
	t.Logf("aggregate: %s", u)
	if u.anon < 8<<20 {
		t.Errorf("when dev1 aggregates 60,000 rows of about 300 bytes, want the measure to see more than 8 MiB of backend memory, got %s", u)
	}
	u = h.measure(t, func() {
		r = h.query(dev1, "SELECT count(*) FROM (SELECT md5(g::text) AS h FROM generate_series(1, 1000000) AS g ORDER BY 1) AS s")
	})
	if r.status != http.StatusOK {
		t.Fatalf("want the sort to run, got = %s", r)
	}
	t.Logf("sort: %s", u)
	if u.temp < 8<<20 {
		t.Errorf("when dev1 sorts a million rows of about 40 bytes, want the measure to see more than 8 MiB of temporary files, got %s", u)
	}
}

func trim(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
