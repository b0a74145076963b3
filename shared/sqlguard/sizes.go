package sqlguard

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// This file is the size model behind the memory rules (memory.go): how large a
// value can become, as a function of what it is made from.
//
// U, the unit of values read from the database, is the longest stored row
// written as JSON (row_to_json), which is at least as long as its text form.
//
// A bound is an upper limit on the size of one value, measured as the length
// of its text form (the form the database sends and the one functions such as
// format and string_agg produce):
//
//	a + b×U + h×T
//
// a is bytes the statement itself decides (constants, repeat counts, padding
// widths); U is the largest row stored in the database, which a read cannot
// change; T is the largest value an accumulating aggregate (array_agg,
// string_agg, ...) can build, itself bounded by the rows of one table (see
// memory.go). A function of two database values whose size is their product
// (replace(col, 'a', col)) has no such bound and is refused.

// capBytes is the longest text any numeric can have: 131,072 digits before the
// point, 16,383 after, a sign and the point. Numbers, dates and the like are
// "capped": whatever they are computed from, they cannot grow past it.
const capBytes = 131072 + 16383 + 2

// A bound limits the size of one value; see the file comment.
type bound struct {
	a, b, h float64
	// capped: the value's type has a hard maximum of capBytes (numbers,
	// dates, booleans, fixed-width text such as md5): it never grows,
	// whatever it is made of.
	capped bool
	// rec: the value is, or is made from, a column of the recursive CTE being
	// defined whose type is not capped (see recursiveTerm).
	rec bool
	// raw: the value is a stored value as it is, not computed from one. U is
	// measured as a row written as JSON text, so writing a raw value as JSON
	// (escaping it) does not make it larger than U.
	raw bool
}

// U is a bound of one stored row; stored is how a column of a table reads.
var stored = bound{b: 1, raw: true}

func fixed(n float64) sizeRule {
	return func(*call) bound { return bound{a: n, capped: true} }
}

// plus, times and add bound values built from others; the result is not
// capped (two capped texts concatenated can exceed capBytes): the rules
// that know their result is a number say so.
func (x bound) plus(y bound) bound {
	return bound{a: x.a + y.a, b: x.b + y.b, h: x.h + y.h, rec: x.rec || y.rec}
}

func (x bound) times(k float64) bound {
	return bound{a: x.a * k, b: x.b * k, h: x.h * k, rec: x.rec}
}

func (x bound) add(n float64) bound { x.a += n; x.raw, x.capped = false, false; return x }

// number marks a bound as a number's: capped whatever it is made of.
func (x bound) number() bound { x.capped, x.raw = true, false; return x }

func maxBound(x, y bound) bound {
	return bound{a: math.Max(x.a, y.a), b: math.Max(x.b, y.b), h: math.Max(x.h, y.h), capped: x.capped && y.capped, rec: x.rec || y.rec, raw: x.raw && y.raw}
}

// fromDB reports a bound that depends on stored data (U or T), not only on the
// statement.
func (x bound) fromDB() bool { return x.b > 0 || x.h > 0 }

func sumOf(bs []bound) bound {
	var s bound
	for _, b := range bs {
		s = s.plus(b)
	}
	return s
}

func maxOf(bs []bound) bound {
	var s bound
	for i, b := range bs {
		if i == 0 {
			s = b
			continue
		}
		s = maxBound(s, b)
	}
	return s
}

// describe says a bound in words, for messages.
func (x bound) describe() string {
	var parts []string
	if x.a > 0 || (x.b == 0 && x.h == 0) {
		parts = append(parts, humanBytes(x.a))
	}
	if x.b > 0 {
		parts = append(parts, fmt.Sprintf("%s× the largest stored row", trimFloat(x.b)))
	}
	if x.h > 0 {
		parts = append(parts, fmt.Sprintf("%s× an aggregated column", trimFloat(x.h)))
	}
	return strings.Join(parts, " plus ")
}

func trimFloat(f float64) string {
	if f >= 1e15 {
		return strconv.FormatFloat(f, 'g', 3, 64)
	}
	return strconv.FormatFloat(math.Ceil(f*10)/10, 'f', -1, 64)
}

func humanBytes(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%s GiB", trimFloat(n/(1<<30)))
	case n >= 1<<20:
		return fmt.Sprintf("%s MiB", trimFloat(n/(1<<20)))
	case n >= 1<<10:
		return fmt.Sprintf("%s KiB", trimFloat(n/(1<<10)))
	}
	return fmt.Sprintf("%s bytes", trimFloat(n))
}

// A call is one function call being sized.
type call struct {
	m     *memCheck
	fc    *pg.FuncCall
	name  string
	args  []*pg.Node // NamedArgExpr unwrapped
	b     []bound    // the arguments' bounds
	order []bound    // ORDER BY / WITHIN GROUP (ORDER BY ...) expressions
}

// A sizeRule bounds the result of a call from its arguments' bounds. It may
// refuse the call through c.m.deny (the result is then ignored).
type sizeRule func(c *call) bound

// A rowRule bounds the rows one call of a set-returning function returns.
type rowRule func(c *call) rowBound

func (c *call) arg(i int) bound {
	if i < len(c.b) {
		return c.b[i]
	}
	return bound{capped: true}
}

func (c *call) loc() int32 { return c.fc.Location }

// same: the result is no larger than argument i (substr, trim, min, ...).
func same(i int) sizeRule {
	return func(c *call) bound { r := c.arg(i); r.capped = r.capped && i < len(c.b); return r }
}

// scaleArg: the result is at most k times argument i plus n bytes.
func scaleArg(i int, k, n float64) sizeRule {
	return func(c *call) bound { return c.arg(i).times(k).add(n) }
}

// scaleLast: k times the last argument plus n (to_tsvector([config,] doc)).
func scaleLast(k, n float64) sizeRule {
	return func(c *call) bound { return c.arg(len(c.b) - 1).times(k).add(n) }
}

// scaleAll: k times all arguments together plus n bytes, and 4 bytes a
// separator per argument (concat, json_build_object, ...).
func scaleAll(k, n float64) sizeRule {
	return func(c *call) bound {
		r := sumOf(c.b).times(k).add(n + 4*float64(len(c.b)))
		r.capped = false
		return r
	}
}

// numeric: a number computed from the arguments: at most k times their digits
// plus a scale, and never more than capBytes.
func numeric(k float64) sizeRule {
	return func(c *call) bound { return sumOf(c.b).times(k).add(64).number() }
}

// numericMax: a number whose size the arguments do not bound usefully
// (exp, factorial of a column): the numeric maximum.
func numericMax(*call) bound { return bound{a: capBytes, capped: true} }

// product bounds a result whose size is the product of two others: the
// statement must fix at least one of them.
func (c *call) product(x, y bound, why string) bound {
	return c.m.product(x, y, c.loc(), c.name, why)
}

func (m *memCheck) product(x, y bound, loc int32, what, why string) bound {
	if x.fromDB() && y.fromDB() {
		m.deny(RuleValueTooLarge, loc, "%s: the size of its result is the product of two values read from the database, which nothing bounds; make %s a constant", what, why)
		return bound{}
	}
	return bound{a: x.a * y.a, b: x.b*y.a + y.b*x.a, h: x.h*y.a + y.h*x.a, rec: x.rec || y.rec}
}

// sizeArgument is the upper bound of a size argument (repeat's count, lpad's
// length, array_fill's dimensions): a constant, or LEAST(..., constant).
func (c *call) sizeArgument(i int, what string) (float64, bool) {
	if i >= len(c.args) {
		return 0, true
	}
	if v, ok := upperBound(c.args[i]); ok {
		return math.Max(v, 0), true
	}
	c.m.deny(RuleValueTooLarge, c.loc(), "%s: its %s must be a constant (or LEAST(expression, constant)), so that the size of its result is known before it runs", c.name, what)
	return 0, false
}

// repeat(s, n): n copies of s.
func repeatSize(c *call) bound {
	n, ok := c.sizeArgument(1, "count")
	if !ok {
		return bound{}
	}
	return c.arg(0).times(n)
}

// lpad(s, n [, fill]) and rpad: exactly n characters, up to 4 bytes each.
func padSize(c *call) bound {
	n, ok := c.sizeArgument(1, "length")
	if !ok {
		return bound{}
	}
	return bound{a: 4 * n}
}

// array_fill(value, dims [, lower bounds]): one copy of value (at least a
// NULL, written as NULL and a comma) per element.
func arrayFillSize(c *call) bound {
	if len(c.args) < 2 {
		return c.arg(0)
	}
	dims, ok := constNumbers(c.args[1])
	if !ok {
		c.m.deny(RuleValueTooLarge, c.loc(), "array_fill: its dimensions must be a constant array such as ARRAY[3, 4], so that the size of its result is known before it runs")
		return bound{}
	}
	n := 1.0
	for _, d := range dims {
		n *= math.Max(d, 0)
	}
	elem := c.arg(0)
	elem.a = math.Max(elem.a, 5) + 1
	r := elem.times(n).add(16 + 24*float64(len(dims)))
	r.capped = false
	return r
}

// replace(s, from, to): every match of from (at least one character) may
// become to.
func replaceSize(c *call) bound {
	return c.product(c.arg(0), c.arg(2).add(1), "the replacement")
}

// regexp_replace(s, pattern, replacement [, start [, N]] [, flags]): every
// match, including empty ones between characters, may become the
// replacement, whose \1..\9 and \& each copy up to the whole match again.
func regexpReplaceSize(c *call) bound {
	s := c.arg(0)
	repl := c.arg(2)
	refs := 0.0
	if len(c.args) > 2 {
		if lit, ok := constString(c.args[2]); ok {
			refs = float64(strings.Count(lit, `\`))
		} else {
			c.m.deny(RuleValueTooLarge, c.loc(), "regexp_replace: its replacement must be a constant, so that the size of its result is known before it runs")
			return bound{}
		}
	}
	r := c.product(s.add(1), repl.add(1), "the replacement")
	return r.plus(s.times(refs))
}

// regexp_match(s, pattern [, flags]) and each row of regexp_matches: one text
// per capturing group, each up to the whole string, quoted in the array.
func regexpMatchSize(c *call) bound {
	if len(c.args) < 2 {
		return c.arg(0)
	}
	pat, ok := constString(c.args[1])
	if !ok {
		c.m.deny(RuleValueTooLarge, c.loc(), "%s: its pattern must be a constant, so that the number of groups it returns is known before it runs", c.name)
		return bound{}
	}
	groups := float64(strings.Count(pat, "(") + 1)
	return c.arg(0).times(2 * groups).add(4 * groups)
}

// format(fmt, args...): the format string is parsed; widths must be written
// in it, and each %s, %I or %L copies its argument (quoted: twice).
func formatSize(c *call) bound {
	if len(c.args) == 0 {
		return bound{}
	}
	f, ok := constString(c.args[0])
	if !ok {
		c.m.deny(RuleValueTooLarge, c.loc(), "format: its format string must be a constant, so that the widths it asks for are known before it runs")
		return bound{}
	}
	if c.fc.FuncVariadic {
		c.m.deny(RuleValueTooLarge, c.loc(), "format: VARIADIC arguments are not allowed; pass the values one by one")
		return bound{}
	}
	specs, err := parseFormat(f)
	if err != nil {
		c.m.deny(RuleValueTooLarge, c.loc(), "format: %v", err)
		return bound{}
	}
	r := bound{a: float64(len(f))}
	next := 1
	for _, s := range specs {
		if s.widthArg {
			c.m.deny(RuleValueTooLarge, c.loc(), "format: a width taken from an argument (*) is not allowed; write the width in the format string")
			return bound{}
		}
		i := next
		if s.pos > 0 {
			i = s.pos
		}
		next = i + 1
		v := c.arg(i)
		if s.conv == 'I' || s.conv == 'L' {
			v = v.times(2).add(3)
		}
		v.a = math.Max(v.a, 0)
		r = r.plus(v).add(float64(4 * s.width))
	}
	r.capped = false
	return r
}

type formatSpec struct {
	pos      int // 1-based argument position, 0 for the next one
	width    int
	widthArg bool
	conv     byte
}

// parseFormat reads format()'s specifiers: %[position$][flags][width][type].
func parseFormat(f string) ([]formatSpec, error) {
	var out []formatSpec
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		var s formatSpec
		num := func() (int, bool) {
			j := i
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
			}
			if j == i {
				return 0, false
			}
			n, err := strconv.Atoi(f[j:i])
			if err != nil {
				n = math.MaxInt32
			}
			return n, true
		}
		if n, ok := num(); ok {
			if i < len(f) && f[i] == '$' {
				s.pos = n
				i++
			} else {
				s.width = n
			}
		}
		for i < len(f) && f[i] == '-' {
			i++
		}
		if s.width == 0 {
			if i < len(f) && f[i] == '*' {
				s.widthArg = true
				i++
				num()
				if i < len(f) && f[i] == '$' {
					i++
				}
			} else if n, ok := num(); ok {
				s.width = n
			}
		}
		if i >= len(f) {
			return nil, fmt.Errorf("the format string ends inside a %% specifier")
		}
		s.conv = f[i]
		if s.conv != 's' && s.conv != 'I' && s.conv != 'L' {
			return nil, fmt.Errorf("unknown format specifier %%%c", s.conv)
		}
		out = append(out, s)
	}
	return out, nil
}

// to_char(value, template): each template character becomes at most 8
// (J is a seven-digit day number, RN a 15-letter numeral for two letters).
func toCharSize(c *call) bound { return c.arg(1).times(8).add(64) }

// concat_ws(sep, args...): the separator once between each two arguments.
func concatWsSize(c *call) bound {
	if len(c.b) == 0 {
		return bound{}
	}
	n := float64(len(c.b) - 1)
	if c.fc.FuncVariadic {
		// concat_ws(sep, VARIADIC arr): one separator per element.
		return c.product(c.arg(0), c.arg(1), "the separator").plus(c.arg(1))
	}
	r := sumOf(c.b[1:]).plus(c.arg(0).times(n))
	r.capped = false
	return r
}

// array_to_string(arr, delim [, null_string]): each element (at least two
// characters in the array's text form) may add the delimiter and the null
// string.
func arrayToStringSize(c *call) bound {
	extra := c.arg(1).plus(c.arg(2)).add(2)
	return c.product(c.arg(0), extra.times(0.5), "the delimiter").plus(c.arg(0))
}

// array_replace(arr, from, to): every element may become to.
func arrayReplaceSize(c *call) bound {
	return c.product(c.arg(0), c.arg(2).add(2).times(0.5), "the replacement").plus(c.arg(0))
}

// jsonb_pretty indents every nesting level, so its result grows with the
// product of a value's size and its depth.
func jsonbPrettySize(c *call) bound {
	x := c.arg(0)
	return c.product(x, x, "the jsonb value (pretty-printing indents each level)").add(64)
}

// jsonb_path_query(target, path, ...): each item is part of target; ** visits
// every level (so nested items repeat), each subscript list entry and each
// .keyvalue() can repeat items again.
func jsonbPathSize(c *call) bound {
	path, ok := "", false
	if len(c.args) > 1 {
		path, ok = constString(c.args[1])
	}
	if !ok {
		c.m.deny(RuleValueTooLarge, c.loc(), "%s: its JSON path must be a constant, so that the size of its result is known before it runs", c.name)
		return bound{}
	}
	if strings.Contains(path, "**") {
		t := c.arg(0)
		return c.product(t, t, "the target (** repeats every nested item)")
	}
	if jsonPathComputes(path) {
		// Arithmetic and conversions make a number of each item: each up to
		// the numeric maximum (or the numbers written in the path).
		return c.product(c.arg(0).add(1), c.arg(1).add(capBytes), "the target (the path computes a number for each item)")
	}
	k := 1 + float64(strings.Count(path, ",")) + 3*float64(strings.Count(strings.ToLower(path), "keyvalue")) + float64(strings.Count(strings.ToLower(path), " to "))
	return c.arg(0).times(k).plus(c.arg(1)).add(16)
}

// jsonPathComputes reports a JSON path that computes numbers: arithmetic
// (+ - * / %, which can multiply by 1e131071) or a conversion of text to a
// number (.number(), .decimal()). Wildcards ([*], .*), other item methods and
// comparisons inside filters do not.
func jsonPathComputes(path string) bool {
	var b strings.Builder
	inString := false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '"' && (i == 0 || path[i-1] != '\\'):
			inString = !inString
		case !inString:
			b.WriteByte(c)
		}
	}
	p := strings.NewReplacer("[*]", "", ".*", "", " ", "").Replace(strings.ToLower(b.String()))
	if strings.ContainsAny(p, "+-*/%") {
		return true
	}
	for _, m := range []string{".number(", ".decimal("} {
		if strings.Contains(p, m) {
			return true
		}
	}
	return false
}

// ts_headline([config,] document, query [, options]): each word of the
// document may be wrapped in StartSel and StopSel (options) or <b></b>.
func tsHeadlineSize(c *call) bound {
	doc := c.arg(0)
	opts := bound{a: 8}
	switch len(c.b) {
	case 4:
		doc, opts = c.arg(1), c.arg(3).add(8)
	case 3:
		// (config, document, query) or (document, query, options): take the
		// larger reading of each.
		doc = maxBound(c.arg(0), c.arg(1))
		opts = c.arg(2).add(8)
	}
	return c.product(doc.add(1), opts, "the options")
}

// xpath(path, xml [, namespaces]): each node found is serialised whole, and a
// path can name a node many times (concat(/a, /a, ...)).
func xpathSize(c *call) bound {
	return c.product(c.arg(0).add(1), c.arg(1), "the XPath expression")
}

// percentile_disc(fractions) WITHIN GROUP (ORDER BY x): one x per fraction.
func percentileDiscSize(c *call) bound {
	x := maxOf(c.order)
	return c.product(c.arg(0).times(0.5).add(1), x, "the fractions")
}

// power(x, y) and x ^ y: with a constant small exponent, k times x; otherwise
// the numeric maximum.
func powerSize(c *call) bound {
	if len(c.args) == 2 {
		if k, ok := constValue(c.args[1]); ok && k >= 0 && k <= 64 {
			return c.arg(0).times(math.Max(k, 1)).add(1024).number()
		}
	}
	return bound{a: capBytes, capped: true}
}

// factorial(n): about n×log10(n) digits.
func factorialSize(c *call) bound {
	if len(c.args) == 1 {
		if n, ok := constValue(c.args[0]); ok && n < 40000 {
			lg, _ := math.Lgamma(math.Max(n, 1) + 1)
			return bound{a: lg/math.Ln10 + 8, capped: true}
		}
	}
	return bound{a: capBytes, capped: true}
}

// exp(x): with a constant argument its digits are known; otherwise the
// numeric maximum.
func expSize(c *call) bound {
	if len(c.args) == 1 {
		if x, ok := constValue(c.args[0]); ok && x < 300000 {
			return bound{a: math.Max(x, 0)/math.Ln10 + 1024, capped: true}
		}
	}
	return bound{a: capBytes, capped: true}
}

// bpcharSize: bpchar(x) is a cast; bpchar(x, typmod, explicit) is the length
// coercion of char(n), which pads to n characters (typmod n + 4).
func bpcharSize(c *call) bound {
	if len(c.args) < 2 {
		return c.arg(0)
	}
	n, ok := c.sizeArgument(1, "length")
	if !ok {
		return bound{}
	}
	return bound{a: 4 * math.Max(n-4, 0)}
}

// numericCast is numeric(x) written as a call: see castSize.
func numericCast(c *call) bound {
	if len(c.args) != 1 {
		return bound{a: capBytes, capped: true}
	}
	return c.m.castTo("numeric", nil, c.args[0], c.arg(0), c.loc())
}

// jsonArgs is the arguments written into JSON: text is escaped (a control
// character becomes \u0001, six bytes), a JSON value is copied as it is.
func (c *call) jsonArgs() bound { return c.jsonArgsSpaced(1) }

// jsonArgsSpaced is jsonArgs for functions that may also lay JSON out with
// spaces and newlines (to_json, row_to_json(x, pretty)): k times.
func (c *call) jsonArgsSpaced(k float64) bound {
	r := bound{}
	for i, b := range c.b {
		switch lit, ok := constString(c.args[i]); {
		case ok:
			r = r.add(k * jsonText(lit))
		case b.raw || jsonSource(c.args[i]):
			r = r.plus(b.times(k))
		default:
			r = r.plus(b.times(6 * k))
		}
	}
	return r
}

// toJSON: to_json, row_to_json and array_to_json write their argument as
// JSON, laid out with newlines when asked to (pretty).
func toJSON(c *call) bound {
	r := c.jsonArgsSpaced(2).add(8)
	r.capped = false
	return r
}

// jsonText is the length of a string written as a JSON string.
func jsonText(s string) float64 {
	n := 2.0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}

// jsonBuild: json_build_object and the like build JSON text: the escaped
// arguments, a quote or separator each.
func jsonBuild(c *call) bound {
	r := c.jsonArgs().add(8 + 4*float64(len(c.b)))
	r.capped = false
	return r
}

// jsonbBuild: jsonb_build_object and the like build a binary value: the
// arguments as they are, a header each. (Sending it escapes it like JSON
// text; that happens once, to the result.)
func jsonbBuild(c *call) bound {
	r := sumOf(c.b).add(8 + 8*float64(len(c.b)))
	r.capped = false
	return r
}

// accumulators: what one row adds to an accumulating aggregate's state in
// memory: the values, and a header and a pointer each.
func heldSame(c *call) bound { return sumOf(c.b).add(16 * float64(len(c.b))) }
func heldJSON(c *call) bound { return c.jsonArgs().add(16) } // json_agg builds escaped text
func heldJSONB(c *call) bound {
	return sumOf(c.b).add(64 * float64(len(c.b))) // a tree node per value
}

// Row rules.

// rowsFromValue: one row per element of argument i, at least one byte each;
// bounded only when the statement wrote every argument.
func rowsFromValue(i int) rowRule {
	return func(c *call) rowBound {
		for _, b := range c.b {
			if b.fromDB() {
				return rowBound{open: true}
			}
		}
		return rowBound{n: c.arg(i).a + 1}
	}
}

// seriesRows counts generate_series' rows when its bounds are constants.
func seriesRows(c *call) rowBound {
	if len(c.args) < 2 {
		return rowBound{open: true}
	}
	if start, ok := constValue(c.args[0]); ok {
		stop, ok := constValue(c.args[1])
		step := 1.0
		if ok && len(c.args) > 2 {
			step, ok = constValue(c.args[2])
		}
		if !ok || step == 0 {
			return rowBound{open: true}
		}
		n := math.Floor((stop-start)/step) + 1
		return rowBound{n: math.Max(n, 0)}
	}
	if len(c.args) != 3 {
		return rowBound{open: true}
	}
	start, ok1 := constTime(c.args[0])
	stop, ok2 := constTime(c.args[1])
	step, ok3 := constInterval(c.args[2])
	if !ok1 || !ok2 || !ok3 || step <= 0 {
		return rowBound{open: true}
	}
	// A day of a time zone change or a time zone in the text adds at most a
	// day either way.
	span := math.Abs(stop.Sub(start).Hours()) + 48
	return rowBound{n: math.Floor(span/step) + 1}
}

// Constant evaluation.

// constValue is the value of a constant numeric expression: a literal, a cast
// of one, unary minus, and + - * / of constants.
func constValue(n *pg.Node) (float64, bool) {
	if n == nil {
		return 0, false
	}
	switch x := n.Node.(type) {
	case *pg.Node_AConst:
		switch v := x.AConst.Val.(type) {
		case *pg.A_Const_Ival:
			return float64(v.Ival.Ival), true
		case *pg.A_Const_Fval:
			f, err := strconv.ParseFloat(v.Fval.Fval, 64)
			return f, err == nil
		case *pg.A_Const_Sval:
			f, err := strconv.ParseFloat(strings.TrimSpace(v.Sval.Sval), 64)
			return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
		}
	case *pg.Node_TypeCast:
		return constValue(x.TypeCast.Arg)
	case *pg.Node_AExpr:
		e := x.AExpr
		if e.Kind != pg.A_Expr_Kind_AEXPR_OP || len(e.Name) != 1 {
			return 0, false
		}
		op := e.Name[0].GetString_().GetSval()
		r, ok := constValue(e.Rexpr)
		if !ok {
			return 0, false
		}
		if e.Lexpr == nil {
			switch op {
			case "-":
				return -r, true
			case "+":
				return r, true
			}
			return 0, false
		}
		l, ok := constValue(e.Lexpr)
		if !ok {
			return 0, false
		}
		switch op {
		case "+":
			return l + r, true
		case "-":
			return l - r, true
		case "*":
			return l * r, true
		case "/":
			if r == 0 {
				return 0, false
			}
			return l / r, true
		}
	}
	return 0, false
}

// upperBound is an upper bound of a constant-bounded expression: constValue,
// or LEAST(...) with at least one bounded argument, or GREATEST(...) of
// bounded arguments.
func upperBound(n *pg.Node) (float64, bool) {
	if v, ok := constValue(n); ok {
		return v, true
	}
	switch x := n.GetNode().(type) {
	case *pg.Node_MinMaxExpr:
		least := x.MinMaxExpr.Op == pg.MinMaxOp_IS_LEAST
		best, any := math.Inf(1), false
		if !least {
			best = math.Inf(-1)
		}
		for _, a := range x.MinMaxExpr.Args {
			v, ok := upperBound(a)
			switch {
			case ok && least:
				best, any = math.Min(best, v), true
			case ok:
				best, any = math.Max(best, v), true
			case !least:
				return 0, false
			}
		}
		return best, any
	case *pg.Node_TypeCast:
		return upperBound(x.TypeCast.Arg)
	}
	return 0, false
}

// constNumbers reads a constant array of numbers: ARRAY[1, 2] or '{1,2}'.
func constNumbers(n *pg.Node) ([]float64, bool) {
	switch x := n.GetNode().(type) {
	case *pg.Node_AArrayExpr:
		var out []float64
		for _, e := range x.AArrayExpr.Elements {
			v, ok := upperBound(e)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case *pg.Node_TypeCast:
		if s, ok := constString(x.TypeCast.Arg); ok {
			s = strings.Trim(strings.TrimSpace(s), "{}")
			var out []float64
			for _, p := range strings.Split(s, ",") {
				v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
				if err != nil {
					return nil, false
				}
				out = append(out, v)
			}
			return out, true
		}
		return constNumbers(x.TypeCast.Arg)
	}
	return nil, false
}

// constString is a string literal, possibly cast.
func constString(n *pg.Node) (string, bool) {
	switch x := n.GetNode().(type) {
	case *pg.Node_AConst:
		if s := x.AConst.GetSval(); s != nil {
			return s.Sval, true
		}
	case *pg.Node_TypeCast:
		return constString(x.TypeCast.Arg)
	case *pg.Node_CollateClause:
		return constString(x.CollateClause.Arg)
	}
	return "", false
}

// constTime reads a date or timestamp literal: date '2024-06-01',
// '2024-06-01 10:00'::timestamptz, timestamptz '2024-06-01T10:00:00Z'.
func constTime(n *pg.Node) (time.Time, bool) {
	s, ok := constString(n)
	if !ok {
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	if len(s) < 10 {
		return time.Time{}, false
	}
	day, err := time.Parse("2006-01-02", s[:10])
	if err != nil {
		return time.Time{}, false
	}
	rest := strings.TrimLeft(s[10:], " T")
	if rest == "" {
		return day, true
	}
	// hh:mm[:ss[.fff]], then an optional zone, which seriesRows allows for.
	for _, layout := range []string{"15:04:05", "15:04"} {
		if len(rest) >= len(layout) {
			if t, err := time.Parse(layout, rest[:len(layout)]); err == nil {
				return day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second), true
			}
		}
	}
	return time.Time{}, false
}

// constInterval reads an interval literal ('1 day', interval '4 hours',
// '1 mon 2 days', '01:30:00') as a lower bound of its length in hours.
// PostgreSQL adds an interval's months, days and time separately; a month is
// 28 to 31 days and a day 23 to 25 hours (time zone changes), so each field
// counts at its shortest when positive and its longest when negative.
func constInterval(n *pg.Node) (float64, bool) {
	s, ok := constString(n)
	if !ok {
		return 0, false
	}
	f := strings.Fields(strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "@")))
	if len(f) == 0 {
		return 0, false
	}
	var months, days, hours float64
	for i := 0; i < len(f); i++ {
		if strings.Contains(f[i], ":") {
			parts := strings.Split(f[i], ":")
			if len(parts) < 2 || len(parts) > 3 {
				return 0, false
			}
			sign := 1.0
			if strings.HasPrefix(parts[0], "-") {
				sign, parts[0] = -1, parts[0][1:]
			}
			t := 0.0
			for j, p := range parts {
				v, err := strconv.ParseFloat(p, 64)
				if err != nil || v < 0 {
					return 0, false
				}
				t += v / math.Pow(60, float64(j))
			}
			hours += sign * t
			continue
		}
		num, unit := f[i], ""
		if j := strings.IndexFunc(num, unicode.IsLetter); j > 0 {
			num, unit = f[i][:j], f[i][j:]
		} else if i+1 < len(f) {
			i++
			unit = f[i]
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, false
		}
		u, ok := intervalUnits[strings.TrimSuffix(unit, "s")]
		if !ok {
			return 0, false
		}
		months += v * u.months
		days += v * u.days
		hours += v * u.hours
	}
	lo := func(v, short, long float64) float64 {
		if v >= 0 {
			return v * short
		}
		return v * long
	}
	return lo(months, 28*23, 31*25) + lo(days, 23, 25) + hours, true
}

// intervalUnits say which field of an interval each unit adds to, and how much.
var intervalUnits = map[string]struct{ months, days, hours float64 }{
	"microsecond": {hours: 1.0 / 3.6e9}, "millisecond": {hours: 1.0 / 3.6e6},
	"second": {hours: 1.0 / 3600}, "sec": {hours: 1.0 / 3600},
	"minute": {hours: 1.0 / 60}, "min": {hours: 1.0 / 60},
	"hour": {hours: 1}, "h": {hours: 1}, "hr": {hours: 1},
	"day": {days: 1}, "d": {days: 1}, "week": {days: 7}, "w": {days: 7},
	"month": {months: 1}, "mon": {months: 1},
	"year": {months: 12}, "y": {months: 12}, "yr": {months: 12},
	"decade": {months: 120}, "century": {months: 1200}, "centurie": {months: 1200},
	"millennium": {months: 12000}, "millennia": {months: 12000},
}

// numberText is the length of the text of a number written as s (digits, a
// point, an exponent): 1e131071 is 9 characters but 131,072 digits.
func numberText(s string) float64 {
	s = strings.TrimLeft(s, "+-")
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	digits := float64(len(strings.ReplaceAll(mant, ".", "")))
	e, err := strconv.ParseFloat(exp, 64)
	if !hasExp || err != nil {
		// .5 prints as 0.5.
		return float64(len(s)) + 1
	}
	return math.Min(digits+math.Abs(e)+2, capBytes)
}

// literalText bounds what a string literal can become: itself, or, read as
// numbers (numeric, numeric[], jsonb, numrange all accept exponents), longer.
func literalText(s string) float64 {
	if !strings.ContainsAny(s, "eE") {
		return float64(len(s))
	}
	total := 0.0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) && !(s[i] == '.' && i+1 < len(s) && isDigit(s[i+1])) {
			total++
			i++
			continue
		}
		j := i
		for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
			j++
		}
		if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
			k := j + 1
			if k < len(s) && (s[k] == '+' || s[k] == '-') {
				k++
			}
			if k < len(s) && isDigit(s[k]) {
				for k < len(s) && isDigit(s[k]) {
					k++
				}
				j = k
			}
		}
		total += numberText(s[i:j])
		i = j
	}
	return math.Max(total, float64(len(s)))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Casts.

// fixedTypes are types whose text is at most 128 bytes whatever they are made
// from.
var fixedTypes = map[string]bool{
	"int2": true, "int4": true, "int8": true, "smallint": true, "integer": true, "int": true, "bigint": true,
	"float4": true, "float8": true, "real": true, "double precision": true, "bool": true, "boolean": true,
	"date": true, "time": true, "timetz": true, "timestamp": true, "timestamptz": true, "interval": true,
	"uuid": true, "money": true, "oid": true, "inet": true, "cidr": true, "macaddr": true, "macaddr8": true,
	"point": true, "lseg": true, "box": true, "line": true, "circle": true, "pg_lsn": true, "xid8": true,
	"tid": true, "char": true, "name": true,
}

// textTypes are types whose text is the text they are made from.
var textTypes = map[string]bool{"text": true, "varchar": true, "bpchar": true, "character": true, "character varying": true, "xml": true, "json": true, "refcursor": true}

// numericTypes are the types that read numbers in exponent notation: their
// text can be far longer than the text they are made from.
var numericTypes = map[string]bool{
	"numeric": true, "decimal": true, "jsonb": true, "numrange": true, "nummultirange": true, "jsonpath": true,
}

// castTo bounds `arg::typ`, arg's bound being x. arg is nil for a value a
// function read from its input (a column definition list, XMLTABLE's
// columns), which counts like a column: its numbers are what was written.
func (m *memCheck) castTo(typ string, tn *pg.TypeName, arg *pg.Node, x bound, loc int32) bound {
	array := tn != nil && len(tn.ArrayBounds) > 0
	if strings.HasPrefix(typ, "_") {
		typ, array = typ[1:], true
	}
	var mods []float64
	if tn != nil {
		for _, t := range tn.Typmods {
			if v, ok := constValue(t); ok {
				mods = append(mods, v)
			}
		}
	}
	_, literal := constString(arg)
	switch {
	case typ == "numeric" || typ == "decimal":
		switch {
		case array:
		case len(mods) > 0:
			return bound{a: mods[0] + 3, capped: true}
		case literal:
			return x.add(2)
		case x.capped && !x.fromDB():
			return bound{a: math.Max(x.a, 330), capped: true}
		default:
			return bound{a: capBytes, capped: true}
		}
		fallthrough
	case array || numericTypes[typ]:
		factor := 3.0
		if array && !textTypes[typ] && !numericTypes[typ] {
			// Each element becomes at most 128 bytes and takes at least two
			// characters of the text it is read from.
			factor = 64
		}
		if arg == nil || literal || isColumnRef(arg) || jsonSource(arg) || !numericTypes[typ] {
			// A literal's bound already counts its numbers at full length;
			// a column holds what is stored.
			return x.times(factor).add(16)
		}
		m.deny(RuleValueTooLarge, loc, "casting a computed value to %s is not allowed: a number written in exponent notation (1e131071) becomes %s of digits; cast a column or a constant", typeLabel(typ, array), humanBytes(capBytes))
		return bound{}
	case typ == "bpchar" || typ == "char" && len(mods) > 0 || typ == "character" || typ == "nchar":
		if len(mods) > 0 {
			// char(n) pads to n characters.
			return bound{a: 4 * mods[0]}
		}
		return x
	case typ == "bit" || typ == "varbit" || typ == "bit varying":
		if typ == "bit" && len(mods) > 0 {
			return bound{a: mods[0]}
		}
		return x.times(8).add(8)
	case fixedTypes[typ]:
		return bound{a: 128, capped: true}
	case textTypes[typ]:
		return x
	case typ == "bytea":
		return x.times(2).add(2)
	case typ == "tsvector" || typ == "tsquery":
		return x.times(3).add(8)
	}
	// Other built-in types (geometry with many points, vectors, ranges):
	// numbers written short can print long.
	return x.times(24).add(128)
}

func isColumnRef(n *pg.Node) bool { return n.GetColumnRef() != nil }

// jsonSource reports a call of a JSON function: its result is already JSON
// (numbers in it are already written out), not text to be read as numbers.
func jsonSource(n *pg.Node) bool {
	fc := n.GetFuncCall()
	if fc == nil || len(fc.Funcname) == 0 {
		return false
	}
	name := strings.ToLower(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval())
	return (strings.HasPrefix(name, "json") || strings.HasPrefix(name, "to_json") || name == "row_to_json" || name == "array_to_json") &&
		!strings.HasSuffix(name, "_text")
}

func typeLabel(typ string, array bool) string {
	if array {
		return typ + "[]"
	}
	return typ
}
