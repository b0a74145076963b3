package sqlguard

import (
	"testing"

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
