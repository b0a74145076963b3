package sqlguard

import (
	"reflect"
	"testing"
)

// FuzzCheck: the guard never panics or fails internally, is deterministic,
// its Statement re-checks to the same verdict, and it never allows a
// statement that PostgreSQL refuses inside a READ ONLY transaction
// (SQLSTATE 25006, read_only_sql_transaction). The last property needs
// DATABASE_URL (a role that may create a schema: scripts/test.sh gives the
// Cloud SQL emulation's admin); without it the DB part is skipped.
//
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	    go test -fuzz=FuzzCheck -fuzztime=3m ./shared/sqlguard
func FuzzCheck(f *testing.F) {
	for _, name := range []string{"legit-public.jsonl", "attacks-public.jsonl"} {
		for _, it := range loadCorpus(f, name) {
			if len(it.SQL) < 4096 {
				f.Add(it.SQL, false)
				f.Add(it.SQL, true)
			}
		}
	}
	for _, tc := range ruleCases() {
		if len(tc.sql) < 4096 {
			f.Add(tc.sql, tc.p.Mode == Write)
		}
	}
	g := New(demoCatalog())
	f.Fuzz(func(t *testing.T, sql string, write bool) {
		p := readNoGrants
		if write {
			p = writeMasked
		}
		d := g.Check(sql, p)
		if d.Rule == RuleInternalError {
			t.Fatalf("internal error on %q: %s", sql, d.Message)
		}
		if d2 := g.Check(sql, p); !reflect.DeepEqual(d, d2) {
			t.Fatalf("two checks of %q differ:\n%+v\n%+v", sql, d, d2)
		}
		if !d.Allowed {
			if d.Rule == "" || d.Message == "" {
				t.Fatalf("denial of %q without rule or message: %+v", sql, d)
			}
			return
		}
		if d.Statement == "" || d.Fingerprint == "" {
			t.Fatalf("allowed %q without Statement or Fingerprint", sql)
		}
		// What runs is Statement: it must stand on its own.
		if s := g.Check(d.Statement, p); !s.Allowed || s.Fingerprint != d.Fingerprint || s.Statement != d.Statement {
			t.Fatalf("Statement %q of %q re-checks differently: %+v", d.Statement, sql, s)
		}
		if write {
			return
		}
		dbMu.Lock()
		defer dbMu.Unlock()
		conn := testDB(t)
		if conn == nil {
			return
		}
		if err := runReadOnly(t, conn, d.Statement, boundedTimeout); sqlState(err) == "25006" {
			t.Fatalf("allowed %q, but PostgreSQL refused it in a READ ONLY transaction: %v", d.Statement, err)
		}
	})
}

// TestReadOnlyCorpus is the seed part of FuzzCheck made explicit: every
// allowed corpus statement runs in a READ ONLY transaction without 25006.
func TestReadOnlyCorpus(t *testing.T) {
	dbMu.Lock()
	defer dbMu.Unlock()
	conn := testDB(t)
	if conn == nil {
		t.Log("DATABASE_URL not set; skipping the READ ONLY execution check")
		return
	}
	g := New(demoCatalog())
	for _, name := range []string{"legit-public.jsonl", "attacks-public.jsonl"} {
		for _, it := range loadCorpus(t, name) {
			d := g.Check(it.SQL, readNoGrants)
			if !d.Allowed {
				continue
			}
			timeout := boundedTimeout
			if name == "legit-public.jsonl" {
				timeout = honestTimeout // it must succeed
			}
			err := runReadOnly(t, conn, d.Statement, timeout)
			if sqlState(err) == "25006" {
				t.Errorf("%s allowed but refused by a READ ONLY transaction: %v", it.ID, err)
			}
			if name == "legit-public.jsonl" && err != nil {
				t.Errorf("legit %s failed on the demo schema: %v", it.ID, err)
			}
		}
	}
}
