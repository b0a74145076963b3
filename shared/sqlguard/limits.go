package sqlguard

import (
	pg "github.com/pganalyze/pg_query_go/v5"
)

// Parser-safety limits. pg_query_go v5 parses in C and packs the tree with
// protobuf-c, recursively: a long `1+1+...` chain SIGSEGVs the whole process
// (≈25,000 terms on an 8 MB thread stack, ≈1,000 on 256 KB), which recover()
// cannot catch; 10,000 nested parentheses exhaust bison's stack. These limits
// are enforced before the parser runs, by a scan that never recurses.
const (
	// DefaultMaxBytes is the default size limit of one request's SQL text.
	DefaultMaxBytes = 16 << 10
	// DefaultMaxDepth is the default limit on nested ( and [.
	DefaultMaxDepth = 64
	// DefaultMaxOperators is the default limit on tokens that can nest an
	// expression without parentheses (operators, ::, NOT, AND, OR, IS, CASE,
	// UNION, JOIN, ...). Analytics queries use tens; the crash needs about a
	// thousand on a small stack.
	DefaultMaxOperators = 500
)

// prescan is the cheap first pass over the raw bytes. It does not lex:
// characters inside strings and comments are counted too, so it can only
// over-count. When a limit looks exceeded, the caller recounts on
// pg_query.Scan tokens (the parser's own lexer), so a parenthesis inside a
// string literal does not refuse a legitimate query.
type prescan struct {
	depth, ops int // maximum bracket depth, operator-like tokens (over-counted)
	backslash  bool
	nonASCII   bool
	comment    bool // "--" or "/*" somewhere (maybe inside a literal)
}

// nestingKeywords are the keywords that build a deeper tree without
// parentheses: NOT NOT NOT x, x IS NULL IS NULL, CASE WHEN CASE ...,
// a UNION b UNION c (left-deep), a JOIN b JOIN c (left-deep), x COLLATE "C"
// COLLATE "C", x AT TIME ZONE ... AT TIME ZONE ...
//
// The weight is roughly the number of protobuf message levels one more
// nesting adds to the tree (that depth is what overflows the C stack): a
// nested CASE costs CaseExpr, CaseWhen and two Node wrappers, twice a binary
// operator.
var nestingKeywords = map[string]int{
	"and": 1, "or": 1, "not": 1, "is": 1, "isnull": 1, "notnull": 1,
	"case": 2, "collate": 1, "at": 1, "union": 1, "intersect": 1,
	"except": 1, "join": 1, "between": 1, "like": 1, "ilike": 1,
	"similar": 1, "in": 1, "overlaps": 1,
}

// nestingTokens are the same keywords as scanner tokens, with the same
// weights, plus operator tokens.
var nestingTokens = map[pg.Token]int{
	pg.Token_AND: 1, pg.Token_OR: 1, pg.Token_NOT: 1, pg.Token_IS: 1,
	pg.Token_ISNULL: 1, pg.Token_NOTNULL: 1, pg.Token_CASE: 2,
	pg.Token_COLLATE: 1, pg.Token_AT: 1, pg.Token_UNION: 1,
	pg.Token_INTERSECT: 1, pg.Token_EXCEPT: 1, pg.Token_JOIN: 1,
	pg.Token_BETWEEN: 1, pg.Token_LIKE: 1, pg.Token_ILIKE: 1,
	pg.Token_SIMILAR: 1, pg.Token_IN_P: 1, pg.Token_OVERLAPS: 1,
	pg.Token_Op: 1, pg.Token_TYPECAST: 1, pg.Token_LESS_EQUALS: 1,
	pg.Token_GREATER_EQUALS: 1, pg.Token_NOT_EQUALS: 1,
	pg.Token_ASCII_37: 1, pg.Token_ASCII_42: 1, pg.Token_ASCII_43: 1,
	pg.Token_ASCII_45: 1, pg.Token_ASCII_47: 1, pg.Token_ASCII_60: 1,
	pg.Token_ASCII_61: 1, pg.Token_ASCII_62: 1, pg.Token_ASCII_94: 1,
	pg.Token_ASCII_58: 1,
}

func isOpChar(c byte) bool {
	switch c {
	case '+', '-', '*', '/', '<', '>', '=', '~', '!', '@', '#', '%', '^', '&', '|', '`', '?', ':':
		return true
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '$'
}

// rawScan fills a prescan from the raw text in one pass.
func rawScan(s string) prescan {
	var p prescan
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(' || c == '[':
			depth++
			p.depth = max(p.depth, depth)
		case c == ')' || c == ']':
			if depth > 0 {
				depth--
			}
		case c == '\\':
			p.backslash = true
		case isOpChar(c):
			p.ops++
			if (c == '-' || c == '*') && i > 0 && (s[i-1] == '-' || s[i-1] == '/') {
				p.comment = true
			}
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				if s[j] >= 0x80 {
					p.nonASCII = true
				}
				j++
			}
			p.ops += nestingWeight(s[i:j])
			i = j - 1
		}
	}
	return p
}

// tokenCounts recounts depth and operators on the parser's own tokens. It
// returns the byte offset of the token that crossed a limit, or -1.
func tokenCounts(toks []*pg.ScanToken, maxDepth, maxOps int) (depth, ops int, at int32) {
	d := 0
	at = -1
	for _, t := range toks {
		switch t.Token {
		case pg.Token_ASCII_40, pg.Token_ASCII_91:
			d++
			depth = max(depth, d)
			if depth > maxDepth && at < 0 {
				at = t.Start
			}
		case pg.Token_ASCII_41, pg.Token_ASCII_93:
			if d > 0 {
				d--
			}
		default:
			if w := nestingTokens[t.Token]; w > 0 {
				ops += w
				if ops > maxOps && at < 0 {
					at = t.Start
				}
			}
		}
	}
	return depth, ops, at
}

// ambiguousLiteral finds a string constant that PostgreSQL could read
// differently from the parser. libpg_query always lexes with
// standard_conforming_strings=on and UTF-8; a server session with
// standard_conforming_strings=off treats a backslash in '...' as an escape,
// and with a client_encoding such as SJIS, BIG5 or GBK a non-ASCII byte can
// swallow the backslash that follows it in E'...'. Either way the string can
// end somewhere else and hide SQL from the validator (sql-defense.md finding
// 5). It returns the token offset and a description, or -1.
func ambiguousLiteral(src string, toks []*pg.ScanToken) (int32, string) {
	for _, t := range toks {
		if t.Token != pg.Token_SCONST || t.Start < 0 || int(t.End) > len(src) || t.End <= t.Start {
			continue
		}
		text := src[t.Start:t.End]
		switch text[0] {
		case '\'': // standard string, including the '...' after N
			for i := 0; i < len(text); i++ {
				if text[i] == '\\' {
					return t.Start, "a string constant contains a backslash; the server reads it differently when standard_conforming_strings is off. Write E'...' with the backslash doubled, or avoid the backslash"
				}
			}
		case 'e', 'E':
			for i := 0; i < len(text); i++ {
				if text[i] >= 0x80 {
					return t.Start, "an E'...' string contains non-ASCII characters; in some client encodings they swallow the next backslash. Use a standard '...' string or \\u escapes in U&'...'"
				}
			}
		}
	}
	return -1, ""
}

// nestingWeight is the weight of word if it is one of nestingKeywords (in
// any ASCII case), else 0. It does not allocate.
func nestingWeight(word string) int {
	var buf [9]byte
	if len(word) > len(buf) {
		return 0
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return nestingKeywords[string(buf[:len(word)])]
}
