package query_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
)

const corpusDir = "../../shared/sqlguard/testdata/corpus/"

type corpusItem struct {
	ID       string `json:"id"`
	SQL      string `json:"sql"`
	Category string `json:"category"`
	Why      string `json:"why"`
}

type expectation struct {
	Expect string `json:"expect"` // deny | allow-masked | allow-bounded
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

func loadCorpus(t *testing.T, name string) []corpusItem {
	t.Helper()
	f, err := os.Open(corpusDir + name)
	if err != nil {
		t.Fatalf("opening corpus: %v", err)
	}
	defer f.Close()
	var out []corpusItem
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var it corpusItem
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			t.Fatalf("corpus %s: %v", name, err)
		}
		out = append(out, it)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading corpus %s: %v", name, err)
	}
	return out
}

func loadExpectations(t *testing.T) map[string]expectation {
	t.Helper()
	b, err := os.ReadFile(corpusDir + "expectations.json")
	if err != nil {
		t.Fatalf("reading expectations: %v", err)
	}
	var doc struct {
		Expectations map[string]expectation `json:"expectations"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parsing expectations: %v", err)
	}
	return doc.Expectations
}

// secrets finds any of a set of sensitive values inside a text, indexing them by their
// first six bytes so a whole corpus run stays fast.
type secrets struct {
	byPrefix map[string][]secret
	n        int
}

type secret struct{ value, kind string }

const minSecret = 6

func newSecrets() *secrets { return &secrets{byPrefix: map[string][]secret{}} }

func (s *secrets) add(kind string, values []string) {
	for _, v := range values {
		if len(v) < minSecret {
			continue
		}
		s.byPrefix[v[:minSecret]] = append(s.byPrefix[v[:minSecret]], secret{v, kind})
		s.n++
	}
}

// find returns the first sensitive value in text whose kind is not skipped.
func (s *secrets) find(text string, skip ...string) (secret, bool) {
	for i := 0; i+minSecret <= len(text); i++ {
		for _, c := range s.byPrefix[text[i:i+minSecret]] {
			if strings.HasPrefix(text[i:], c.value) && !slices.Contains(skip, c.kind) {
				return c, true
			}
		}
	}
	return secret{}, false
}

// dbState is what a corpus run must leave exactly as it found it.
type dbState struct {
	checksums     map[string]string
	relations     []string
	functions     []string
	roles         []string
	memberships   []string
	largeObjects  string
	preparedXacts string
}

func (h *harness) state() dbState {
	h.t.Helper()
	return dbState{
		checksums: h.tableChecksums(),
		relations: h.collectStrings(`
			SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text
			  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`),
		functions: h.collectStrings(`
			SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`),
		roles: h.collectStrings(`SELECT rolname || ':' || rolsuper || rolcreaterole || rolcanlogin FROM pg_roles WHERE starts_with(rolname, '` + h.d.Roles.Prefix + `') ORDER BY 1`),
		memberships: h.collectStrings(`
			SELECT r.rolname || '>' || u.rolname FROM pg_auth_members m
			  JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
			 WHERE starts_with(u.rolname, '` + h.d.Roles.Prefix + `') ORDER BY 1`),
		largeObjects:  h.scalar(`SELECT count(*)::text FROM pg_largeobject_metadata`),
		preparedXacts: h.scalar(`SELECT count(*)::text FROM pg_prepared_xacts WHERE database = current_database()`),
	}
}

func diffLists(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
}

func (h *harness) compareState(t *testing.T, when string, before, after dbState) {
	t.Helper()
	for tbl, sum := range before.checksums {
		if after.checksums[tbl] != sum {
			t.Errorf("%s, want public.%s unchanged, got a different checksum (%s -> %s)", when, tbl, sum, after.checksums[tbl])
		}
	}
	for _, l := range []struct {
		what   string
		before []string
		after  []string
	}{{"relations", before.relations, after.relations}, {"functions", before.functions, after.functions}, {"roles", before.roles, after.roles}, {"role memberships", before.memberships, after.memberships}} {
		if added, removed := diffLists(l.before, l.after); len(added)+len(removed) > 0 {
			t.Errorf("%s, want %s unchanged, got added = %v, removed = %v", when, l.what, added, removed)
		}
	}
	if after.largeObjects != "0" {
		t.Errorf("%s, want large objects = 0, got = %s", when, after.largeObjects)
	}
	if after.preparedXacts != "0" {
		t.Errorf("%s, want prepared transactions = 0, got = %s", when, after.preparedXacts)
	}
}

// quiescent waits for every other backend of the function's login to be idle, then
// checks that no backend holds a lock or an open transaction.
func (h *harness) quiescent(t *testing.T, when string) {
	t.Helper()
	const busy = `
		SELECT coalesce(string_agg(pid || ' ' || coalesce(state, '') || ' ' || application_name || ' ' || left(query, 80), '; '), '')
		  FROM pg_stat_activity
		 WHERE datname = current_database() AND pid <> pg_backend_pid()
		   AND usename = session_user -- the function's backends (no one sees others' state)
		   AND (state IS DISTINCT FROM 'idle' OR application_name LIKE 'airlock r=%')`
	// Going idle is an event that must come: the bound only stops a test that would hang.
	deadline := time.Now().Add(2 * time.Minute)
	var got string
	for {
		if got = h.scalar(busy); got == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != "" {
		t.Errorf("%s, want no active, idle-in-transaction or still-labelled airlock backends, got = %s", when, got)
	}
	locks := h.scalar(`
		SELECT coalesce(string_agg(l.pid || ' ' || l.locktype || ' ' || l.mode, '; '), '')
		  FROM pg_locks l
		 WHERE l.pid <> pg_backend_pid()
		   -- client backends only: autovacuum's workers lock tables of this database on
		   -- their own schedule, and a worker caught at work is not a statement left behind
		   AND l.pid IN (SELECT pid FROM pg_stat_activity
		                  WHERE backend_type = 'client backend'
		                    AND (datname = current_database() OR datname IS NULL))`)
	if locks != "" {
		t.Errorf("%s, want no locks held by other backends, got = %s", when, locks)
	}
}

// loadSecrets reads every sensitive value of the demo data as the superuser.
func (h *harness) loadSecrets() *secrets {
	s := newSecrets()
	s.add("users.email", h.collectStrings(`SELECT email FROM public.users`))
	s.add("users.full_name", h.collectStrings(`SELECT full_name FROM public.users`))
	s.add("users.phone", h.collectStrings(`SELECT phone FROM public.users WHERE phone IS NOT NULL`))
	s.add("accounts.balance", h.collectStrings(`SELECT balance::text FROM public.accounts`))
	s.add("deposits.wallet_address", h.collectStrings(`SELECT wallet_address FROM public.deposits`))
	s.add("deposits.tx_hash", h.collectStrings(`SELECT tx_hash FROM public.deposits`))
	s.add("withdrawals.destination_address", h.collectStrings(`SELECT destination_address FROM public.withdrawals`))
	// Exact times locate a transaction on its chain; to the microsecond, no other value
	// of the data spells one by chance. (Exact amounts could: a trade's price or
	// quantity may share their digits, so they are checked by TestDemoMasksLocateNoTransaction.)
	s.add("deposits.created_at", h.collectStrings(`SELECT created_at::text FROM public.deposits`))
	s.add("withdrawals.created_at", h.collectStrings(`SELECT created_at::text FROM public.withdrawals`))
	return s
}

// corpusPolicy is the demo policy with the writable columns the guard's own corpus test
// uses (sqlguard's demoCatalog), which expectations.json was written against: in write
// mode balances and withdrawal destinations are not writable. Its statement timeout is
// timeout: honestTimeout for the statements that must succeed (a legit query must never
// time out because the machine is busy), a short one for the allow-bounded attacks,
// which are accepted however they are stopped (timeout, error or row cap).
func corpusPolicy(t *testing.T, timeout string) []byte {
	return policyVariant(t,
		"statement_timeout: 30s", "statement_timeout: "+timeout,
		"columns: [user_id, currency, balance, updated_at]", "columns: [currency, updated_at]",
		"columns: [currency, status]", "columns: [status]",
	)
}

// TestCorpusThroughHTTP is the done-when: every statement of both public corpora
// gets the expected verdict through the HTTP function, and none changes data, leaves a
// lock, a transaction or an object behind, or returns a sensitive value unmasked.
func TestCorpusThroughHTTP(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: corpusPolicy(t, honestTimeout)})
	legit := loadCorpus(t, "legit-public.jsonl")
	attacks := loadCorpus(t, "attacks-public.jsonl")
	exp := loadExpectations(t)
	sec := h.loadSecrets()
	if sec.n < 20000 {
		t.Fatalf("want the demo data's sensitive values (>20000), got = %d", sec.n)
	}
	// The detector itself finds a real value inside JSON.
	probe := h.scalar(`SELECT email FROM public.users WHERE id = 42`)
	if _, ok := sec.find(`{"rows":[["x` + probe + `y"]]}`); !ok {
		t.Fatalf("want the leak detector to find %q in a body, got nothing", probe)
	}
	// Times are spelt in answers as the detector holds them (the text of a timestamptz).
	if got, want := firstString(t, h.query(dev1, `SELECT executed_at FROM trades WHERE id = 1`)), h.scalar(`SELECT executed_at::text FROM public.trades WHERE id = 1`); got != want {
		t.Fatalf("want an answer to spell a time as its text %q, as the leak detector holds them, got = %q", want, got)
	}

	// The writer holds write and unmasked grants; both developers' roles exist before
	// the snapshot, so the run itself must create nothing.
	const writer = dev2
	h.grant(writer, "write_accounts", time.Hour, true)
	h.grant(writer, "write_withdrawals", time.Hour, true)
	h.grant(writer, "unmasked_accounts", time.Hour, true)
	h.sync(dev1)
	before := h.state()

	noLeak := func(t *testing.T, who string, r response, skip ...string) {
		t.Helper()
		if s, ok := sec.find(string(r.body), skip...); ok {
			t.Errorf("when %s, want no unmasked sensitive value in the answer, got %s %q in = %s", who, s.kind, s.value, r)
		}
	}

	t.Run("legit", func(t *testing.T) {
		for _, it := range legit {
			t.Run(it.ID, func(t *testing.T) {
				r := h.query(dev1, it.SQL)
				if r.status != http.StatusOK {
					t.Errorf("when dev1 runs legit %s (%s), want = 200, got = %s", it.ID, it.Why, r)
				}
				noLeak(t, "dev1 runs legit "+it.ID, r)
			})
		}
	})

	t.Run("attacks read", func(t *testing.T) {
		for _, it := range attacks {
			t.Run(it.ID, func(t *testing.T) {
				e, ok := exp[it.ID]
				if !ok {
					t.Fatalf("expectations.json has no entry for %s", it.ID)
				}
				if e.Expect == "allow-bounded" {
					t.Skip("run by TestCorpusBoundedThroughHTTP, under a short statement timeout")
				}
				r := h.query(dev1, it.SQL)
				checkVerdict(t, it, e, r)
				noLeak(t, "dev1 runs attack "+it.ID, r)
			})
		}
	})

	t.Run("attacks write", func(t *testing.T) {
		for _, it := range attacks {
			t.Run(it.ID, func(t *testing.T) {
				e := exp[it.ID]
				if e.Expect == "allow-bounded" {
					t.Skip("run by TestCorpusBoundedThroughHTTP, under a short statement timeout")
				}
				r := h.post(writer, query.Request{SQL: it.SQL, Mode: "write", Reason: "corpus run: attack " + it.ID})
				if r.status == http.StatusOK && e.Expect == "deny" {
					t.Errorf("when %s runs attack %s in write mode with write_accounts, write_withdrawals and unmasked_accounts, want refused, got = %s", writer, it.ID, r)
				}
				if r.status == http.StatusOK {
					if w := r.write(t); w.Committed {
						t.Errorf("when %s runs attack %s in write mode, want nothing committed, got = %s", writer, it.ID, r)
					}
				}
				// The writer may see balances; nothing else.
				noLeak(t, writer+" runs attack "+it.ID+" in write mode", r, "accounts.balance")
			})
		}
	})

	// Every refusal the guard made is in the audit trail with its rule, before the answer.
	denied := map[string][]string{} // sql -> rules recorded
	for _, e := range h.entriesFor("query.attempt") {
		if e["decision"] == "denied" && e["mode"] == "read" {
			sql, _ := e["sql"].(string)
			rule, _ := e["rule"].(string)
			denied[sql] = append(denied[sql], rule)
		}
	}
	for _, it := range attacks {
		e := exp[it.ID]
		if e.Expect != "deny" || len(it.SQL) > 64<<10 {
			continue // bodies over 64 KiB are refused before anything is decoded
		}
		if !slices.Contains(denied[it.SQL], e.Rule) {
			t.Errorf("after dev1 ran attack %s, want a query.attempt audit entry decision=denied rule=%s, got rules = %v", it.ID, e.Rule, denied[it.SQL])
		}
	}

	h.quiescent(t, "after the corpus run")
	h.compareState(t, "after the corpus run", before, h.state())
	if got := h.scalar(`SELECT count(*)::text FROM airlock.write_images`); got != "0" {
		t.Errorf("after the corpus run, want no write before-images (no row changed), got = %s", got)
	}
}

// TestCorpusBoundedThroughHTTP runs the attacks the database itself must stop
// (allow-bounded: unbounded recursion, a 100M-row sort, a 2 GB string) under a 1s
// statement timeout, in read and write mode. Any way of stopping them is accepted, so
// the outcome does not depend on the machine's speed.
func TestCorpusBoundedThroughHTTP(t *testing.T) {
	h := newHarness(t, harnessOptions{policy: corpusPolicy(t, "1s")})
	exp := loadExpectations(t)
	const writer = dev2
	h.grant(writer, "write_accounts", time.Hour, true)
	h.grant(writer, "write_withdrawals", time.Hour, true)
	n := 0
	for _, it := range loadCorpus(t, "attacks-public.jsonl") {
		e := exp[it.ID]
		if e.Expect != "allow-bounded" {
			continue
		}
		n++
		t.Run(it.ID, func(t *testing.T) {
			checkVerdict(t, it, e, h.query(dev1, it.SQL))
			r := h.post(writer, query.Request{SQL: it.SQL, Mode: "write", Reason: "corpus run: attack " + it.ID})
			if r.status == http.StatusOK && r.write(t).Committed {
				t.Errorf("when %s runs attack %s in write mode, want nothing committed, got = %s", writer, it.ID, r)
			}
		})
	}
	if n == 0 {
		t.Fatal("expectations.json lists no allow-bounded attack")
	}
	h.quiescent(t, "after the bounded attacks")
}

func checkVerdict(t *testing.T, it corpusItem, e expectation, r response) {
	t.Helper()
	switch e.Expect {
	case "deny":
		ok := r.status == http.StatusForbidden || r.status == http.StatusRequestEntityTooLarge || r.status == http.StatusBadRequest
		if e.Rule == "input_too_large" && r.status == http.StatusRequestEntityTooLarge && r.err().Code == "body_too_large" {
			// Over the 64 KiB body limit: the function refuses it before the guard sees it.
			return
		}
		if !ok || r.err().Rule != e.Rule {
			t.Errorf("when dev1 runs attack %s in read mode, want = denied by %s, got = %s", it.ID, e.Rule, r)
		}
	case "allow-masked":
		// A cast error over a masked value is refused by the database, with its message
		// withheld or naming only the masked value.
		if r.status != http.StatusOK && !(r.status == http.StatusBadRequest && r.err().Code == "query_failed") {
			t.Errorf("when dev1 runs attack %s in read mode, want = 200 over masked views (or 400 query_failed), got = %s", it.ID, r)
		}
		if r.status != http.StatusOK {
			t.Logf("allow-masked %s answered %s", it.ID, r)
		}
	case "allow-bounded":
		t.Logf("allow-bounded %s answered %s", it.ID, r)
		bounded := r.status == http.StatusGatewayTimeout && r.err().Code == "timeout" ||
			r.status == http.StatusBadRequest && r.err().Code == "query_failed"
		if r.status == http.StatusOK {
			// The cursor stops the server after the row cap: bounded as well.
			var res readResult
			json.Unmarshal(r.body, &res)
			bounded = res.Truncated || res.RowCount <= 1
		}
		if !bounded {
			t.Errorf("when dev1 runs attack %s in read mode, want it stopped by the timeout or limits (504 timeout / 400), got = %s", it.ID, r)
		}
	default:
		t.Fatalf("expectation for %s has unknown expect %q", it.ID, e.Expect)
	}
}
