package sqlguard

import (
	"errors"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
	pgparser "github.com/pganalyze/pg_query_go/v5/parser"
	"google.golang.org/protobuf/proto"
)

// TestParseMatchesPgQuery: parse calls pg_query's C functions by hand, so it is held
// to pg_query_go's exported ones: the same tree as pg_query.Parse, the same error,
// and for one statement the fingerprint pg_query.Fingerprint gives the statement
// alone, over both corpora and some inputs that fail to parse.
func TestParseMatchesPgQuery(t *testing.T) {
	var inputs []string
	for _, name := range []string{"legit-public.jsonl", "attacks-public.jsonl"} {
		for _, it := range loadCorpus(t, name) {
			inputs = append(inputs, it.SQL)
		}
	}
	inputs = append(inputs,
		"SELECT 1; SELECT 2",
		"  ;; SELECT id FROM trades ;; ",
		"/* lead */ SELECT 'a--b' -- tail",
		"SELEC 1",
		"SELECT 'unterminated",
		"",
		"-- only a comment",
	)
	g := New(demoCatalog())
	fingerprinted := 0
	for _, sql := range inputs {
		d := g.Check(sql, readNoGrants)
		switch d.Rule {
		case RuleInputTooLarge, RuleInputTooDeep, RuleInvalidInput, RuleAmbiguousLiteral:
			continue // never given to the parser: deep input can crash it
		}
		tree, fp, err := parse(sql)
		want, wantErr := pg.Parse(sql)
		if wantErr != nil {
			var got, exp *pgparser.Error
			if !errors.As(err, &got) || !errors.As(wantErr, &exp) || *got != *exp {
				t.Errorf("when parsing %q, want error %#v, got = %#v", sql, wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("when parsing %q, want no error, got = %v", sql, err)
			continue
		}
		if !proto.Equal(tree, want) {
			t.Errorf("when parsing %q, the tree differs from pg_query.Parse's", sql)
		}
		if len(want.Stmts) != 1 {
			continue
		}
		if d.Statement == "" {
			continue // refused before the statement was isolated
		}
		wantFP, err := pg.Fingerprint(d.Statement)
		if err != nil {
			t.Errorf("fingerprinting %q: %v", d.Statement, err)
			continue
		}
		if fp != wantFP || d.Fingerprint != wantFP {
			t.Errorf("when checking %q, want fingerprint %s (pg_query.Fingerprint of %q), got parse %s, Check %s", sql, wantFP, d.Statement, fp, d.Fingerprint)
		}
		fingerprinted++
	}
	if fingerprinted < 50 {
		t.Errorf("only %d inputs reached the fingerprint; the test compares too little", fingerprinted)
	}
}
