package sqlguard

import (
	"math"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// TestEveryFunctionHasASizeClass: the memory rules refuse a function without a
// size class, so an allowlisted function must have one, and set-returning
// functions and accumulators the rules they need.
func TestEveryFunctionHasASizeClass(t *testing.T) {
	for _, g := range allowedFunctionGroups {
		for _, f := range g {
			if f.size == nil {
				t.Errorf("%s has no size rule", f.name)
			}
			if (f.kind == setFn) != (f.rows != nil) {
				t.Errorf("%s: a row rule is needed exactly by set-returning functions", f.name)
			}
			if (f.kind == accumulateFn) != (f.held != nil) {
				t.Errorf("%s: a per-row rule is needed exactly by accumulating aggregates", f.name)
			}
		}
	}
}

// TestUnsizedFunctionFailsClosed runs the memory rules on a call of a function
// they do not know, as if the allowlist had gained one without a size class.
func TestUnsizedFunctionFailsClosed(t *testing.T) {
	g := New(demoCatalog())
	tree, err := pg.Parse("SELECT brand_new_function(1)")
	if err != nil {
		t.Fatal(err)
	}
	d := g.memory(tree.Stmts[0].Stmt)
	if d == nil || d.rule != RuleFunctionNotAllowed {
		t.Errorf("when sizing a function without a size class, want %s, got %+v", RuleFunctionNotAllowed, d)
	}
}

func TestParseFormat(t *testing.T) {
	tcs := []struct {
		in      string
		want    []formatSpec
		wantErr bool
	}{
		{in: "%s-%s", want: []formatSpec{{conv: 's'}, {conv: 's'}}},
		{in: "100%% %I", want: []formatSpec{{conv: 'I'}}},
		{in: "%2$s %1$L", want: []formatSpec{{pos: 2, conv: 's'}, {pos: 1, conv: 'L'}}},
		{in: "%-20s", want: []formatSpec{{width: 20, conv: 's'}}},
		{in: "%3$-999999999s", want: []formatSpec{{pos: 3, width: 999999999, conv: 's'}}},
		{in: "%*s", want: []formatSpec{{widthArg: true, conv: 's'}}},
		{in: "%1$*2$s", want: []formatSpec{{pos: 1, widthArg: true, conv: 's'}}},
		{in: "%d", wantErr: true},
		{in: "abc %", wantErr: true},
	}
	for _, tc := range tcs {
		got, err := parseFormat(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseFormat(%q): want error = %v, got = %v", tc.in, tc.wantErr, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("parseFormat(%q): want = %+v, got = %+v", tc.in, tc.want, got)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("parseFormat(%q)[%d]: want = %+v, got = %+v", tc.in, i, tc.want[i], got[i])
			}
		}
	}
}

func TestLiteralText(t *testing.T) {
	tcs := []struct {
		in   string
		want float64
	}{
		{"hello", 5},
		{"", 0},
		{"1e5", 1 + 5 + 2},
		{"1e131071", 1 + 131071 + 2},
		{"1e999999", capBytes},
		{"[1e10, 2.5E-3]", 1 + (1 + 10 + 2) + 2 + (2 + 3 + 2) + 1},
		{"release 2e", 11}, // no exponent digits: 2 counts as a number (.2 would print 0.2)
		{"e-mail", 6},
	}
	for _, tc := range tcs {
		if got := literalText(tc.in); got != tc.want {
			t.Errorf("literalText(%q): want = %v, got = %v", tc.in, tc.want, got)
		}
	}
}

func TestConstInterval(t *testing.T) {
	tcs := []struct {
		in   string
		want float64 // hours, the shortest reading
		ok   bool
	}{
		{"1 day", 23, true},
		{"4 hours", 4, true},
		{"1 mon 2 days", 28*23 + 2*23, true},
		{"@ 30 minutes", 0.5, true},
		{"01:30:00", 1.5, true},
		{"1h", 1, true},
		{"1 day -22 hours", 1, true},            // a day may be 23 hours
		{"1 mon -27 days", 28*23 - 27*25, true}, // a month may be 28 days, 27 days may be 675 hours
		{"2 days -1 day", 23, true},             // days add up before they are applied
		{"-01:30:00", -1.5, true},
		{"1 fortnight", 0, false},
		{"P1D", 0, false},
	}
	for _, tc := range tcs {
		n := &pg.Node{Node: &pg.Node_AConst{AConst: &pg.A_Const{Val: &pg.A_Const_Sval{Sval: &pg.String{Sval: tc.in}}}}}
		got, ok := constInterval(n)
		if ok != tc.ok || (ok && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("constInterval(%q): want = %v %v, got = %v %v", tc.in, tc.want, tc.ok, got, ok)
		}
	}
}

// TestSeriesRows: generate_series with constant bounds counts its rows; any
// other form has no static bound.
func TestSeriesRows(t *testing.T) {
	tcs := []struct {
		sql  string
		want rowBound
	}{
		{"SELECT generate_series(1, 10)", rowBound{n: 10}},
		{"SELECT generate_series(1, 10, 3)", rowBound{n: 4}},
		{"SELECT generate_series(10, 1, -1)", rowBound{n: 10}},
		{"SELECT generate_series(5, 1)", rowBound{n: 0}},
		{"SELECT generate_series(1, 10 * 1000)", rowBound{n: 10000}},
		{"SELECT generate_series(date '2024-06-01', date '2024-06-30', interval '1 day')", rowBound{n: math.Floor((29*24+48)/23.0) + 1}},
		{"SELECT generate_series(1, (SELECT 10))", rowBound{open: true}},
		{"SELECT generate_series(now() - interval '1 day', now(), interval '1 hour')", rowBound{open: true}},
		{"SELECT generate_series(1, 10, 0)", rowBound{open: true}},
	}
	for _, tc := range tcs {
		tree, err := pg.Parse(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		fc := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val.GetFuncCall()
		c := &call{m: &memCheck{}, fc: fc, name: "generate_series", args: fc.Args}
		if got := seriesRows(c); got != tc.want {
			t.Errorf("rows of %q: want = %+v, got = %+v", tc.sql, tc.want, got)
		}
	}
}
