package sqlguard

import (
	"slices"
	"testing"
	"time"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// BenchmarkCheck and BenchmarkParse run over the whole legit corpus per
// iteration, so their ns/op compare directly: the ratio is the cost of the
// guard over a bare pg_query.Parse.
func BenchmarkCheck(b *testing.B) {
	g := New(demoCatalog())
	items := loadCorpus(b, "legit-public.jsonl")
	for b.Loop() {
		for _, it := range items {
			if d := g.Check(it.SQL, readNoGrants); !d.Allowed {
				b.Fatalf("%s: %s", it.ID, d.Message)
			}
		}
	}
}

func BenchmarkParse(b *testing.B) {
	items := loadCorpus(b, "legit-public.jsonl")
	for b.Loop() {
		for _, it := range items {
			if _, err := pg.Parse(it.SQL); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFingerprint and BenchmarkScan show the two extra cgo calls Check
// may make.
func BenchmarkFingerprint(b *testing.B) {
	items := loadCorpus(b, "legit-public.jsonl")
	for b.Loop() {
		for _, it := range items {
			if _, err := pg.Fingerprint(it.SQL); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkScan(b *testing.B) {
	items := loadCorpus(b, "legit-public.jsonl")
	for b.Loop() {
		for _, it := range items {
			if _, err := pg.Scan(it.SQL); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCheckVsParse times Check and a bare pg_query.Parse of the same
// statement one after the other, statement by statement, so that whatever else
// loads the machine weighs on both alike. It reports the median over passes of
// the corpus of Check's time over Parse's (the guard's target is at most 1.25;
// a median, because other work on the machine lands in bursts), and each one's
// total time per pass. scripts/bench.sh runs it.
func BenchmarkCheckVsParse(b *testing.B) {
	g := New(demoCatalog())
	items := loadCorpus(b, "legit-public.jsonl")
	var check, parse time.Duration
	var ratios []float64
	for b.Loop() {
		var c, p time.Duration
		for _, it := range items {
			t0 := time.Now()
			if _, err := pg.Parse(it.SQL); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if d := g.Check(it.SQL, readNoGrants); !d.Allowed {
				b.Fatalf("%s: %s", it.ID, d.Message)
			}
			c += time.Since(t1)
			p += t1.Sub(t0)
		}
		check += c
		parse += p
		ratios = append(ratios, float64(c)/float64(p))
	}
	slices.Sort(ratios)
	b.ReportMetric(float64(check.Microseconds())/float64(b.N), "check-µs/op")
	b.ReportMetric(float64(parse.Microseconds())/float64(b.N), "parse-µs/op")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}

// BenchmarkFingerprintTree is the Go fingerprint alone, over trees already
// parsed: what Check adds over a parse for it.
func BenchmarkFingerprintTree(b *testing.B) {
	var trees [][]*pg.RawStmt
	for _, it := range loadCorpus(b, "legit-public.jsonl") {
		tree, err := pg.Parse(it.SQL)
		if err != nil {
			b.Fatal(err)
		}
		trees = append(trees, tree.Stmts)
	}
	for b.Loop() {
		for _, t := range trees {
			fingerprint(t)
		}
	}
}
