package sqlguard

import (
	"strconv"
	"strings"
	"testing"
)

// parserDoSInputs are inputs that crash, exhaust or slow pg_query_go when
// they reach the parser (sql-defense.md finding 7).
func parserDoSInputs() map[string]string {
	in := make([]string, 0, 20000)
	for i := range 20000 {
		in = append(in, strconv.Itoa(i))
	}
	return map[string]string{
		"60 KB 1+1 chain":            "SELECT 1" + strings.Repeat("+1", 30000),
		"3 KB 1+1 chain":             "SELECT 1" + strings.Repeat("+1", 1500),
		"10,000 nested parentheses":  "SELECT " + strings.Repeat("(", 10000) + "1" + strings.Repeat(")", 10000),
		"85 KB IN list":              "SELECT 1 WHERE 1 IN (" + strings.Join(in, ",") + ")",
		"2,000 nested subqueries":    "SELECT " + strings.Repeat("(SELECT ", 2000) + "1" + strings.Repeat(")", 2000),
		"5,000 NOTs":                 "SELECT " + strings.Repeat("NOT ", 5000) + "true",
		"3,000 nested CASEs":         "SELECT " + strings.Repeat("CASE WHEN true THEN ", 3000) + "1" + strings.Repeat(" END", 3000),
		"unclosed 10,000 parens":     "SELECT " + strings.Repeat("(", 10000),
		"4,000 UNIONs":               "SELECT 1" + strings.Repeat(" UNION SELECT 1", 4000),
		"chain hidden after comment": "SELECT 1 -- '\n" + strings.Repeat("+1", 7000),
		"10,000 nested arrays":       "SELECT " + strings.Repeat("ARRAY[", 10000) + "1" + strings.Repeat("]", 10000),
	}
}

// TestParserDoSSurvives runs every parser-DoS input through Check. A crash
// here kills the test binary, which is the failure this test exists for.
func TestParserDoSSurvives(t *testing.T) {
	guards := map[string]*Guard{
		"default":  New(demoCatalog()),
		"1 MB cap": New(demoCatalog(), WithMaxBytes(1<<20)), // only the depth/operator pre-scan stands in the way
	}
	for gname, g := range guards {
		for _, it := range loadCorpus(t, "attacks-public.jsonl") {
			if it.Category != "parser-dos" {
				continue
			}
			t.Run(gname+"/"+it.ID, func(t *testing.T) {
				if d := g.Check(it.SQL, readNoGrants); d.Allowed && gname == "default" {
					t.Errorf("when checking %s, want denied, got allowed", it.ID)
				}
			})
		}
		for name, sql := range parserDoSInputs() {
			t.Run(gname+"/"+name, func(t *testing.T) {
				d := g.Check(sql, readNoGrants)
				if gname == "1 MB cap" && name == "85 KB IN list" {
					return // a long flat list is not deep; with a 1 MB cap it may parse
				}
				if d.Allowed {
					t.Errorf("when checking %s, want denied, got allowed", name)
				}
				if gname == "1 MB cap" && d.Rule != RuleInputTooDeep && d.Rule != RuleParseError {
					t.Errorf("when checking %s with a 1 MB cap, want input_too_deep, got %s: %s", name, d.Rule, d.Message)
				}
			})
		}
	}
}

// TestLimitsEdgeParses feeds the deepest inputs the limits let through to the
// parser: they must come back as a decision, never a crash.
func TestLimitsEdgeParses(t *testing.T) {
	g := New(demoCatalog())
	for name, sql := range map[string]string{
		"500 additions":         "SELECT 1" + strings.Repeat("+1", 499),
		"64 parens around 400+": "SELECT " + strings.Repeat("(", 64) + "1" + strings.Repeat("+1", 400) + strings.Repeat(")", 64),
		"63 nested subqueries":  "SELECT " + strings.Repeat("(SELECT ", 63) + "1" + strings.Repeat(")", 63),
		"250 nested CASEs":      "SELECT " + strings.Repeat("CASE WHEN true THEN ", 250) + "1" + strings.Repeat(" END", 250),
		"500 NOTs":              "SELECT " + strings.Repeat("NOT ", 500) + "true",
	} {
		t.Run(name, func(t *testing.T) {
			if d := g.Check(sql, readNoGrants); !d.Allowed {
				t.Errorf("when checking %s, want allowed at the limit, got %s: %s", name, d.Rule, d.Message)
			}
		})
	}
}
