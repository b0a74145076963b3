package sqlguard

import (
	"slices"
	"strconv"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v5"
)

//go:generate go run ./internal/fpgen fingerprint_nodes.go

// pg_query's fingerprint (pg_query_fingerprint.c, version 3) feeds the names
// and values of a tree's fields, in a fixed order, into one streaming XXH3
// hash seeded with the version. Each child node's field name is taken back out
// when the child adds nothing, which pg_query does by copying the whole hash
// state before every child and comparing digests after it; a list under
// fromClause, targetList, cols, rexpr, valuesLists or args goes in sorted by
// each item's own hash, without repeats. That bookkeeping, in C, was a fifth
// of a parse.
//
// Here the same stream is built as bytes: a child that adds nothing is undone
// by truncating the buffer, a sorted list by hashing each item's bytes and
// moving them, and the whole stream is hashed once at the end. XXH3 of a
// stream is XXH3 of its bytes, so the result is pg_query's. The per-node code
// is generated from pg_query's own C (internal/fpgen, checked current by
// TestFingerprintNodesGenerated); TestFingerprintMatchesPgQuery and
// TestParseMatchesPgQuery hold the result to pg_query.Fingerprint.
//
// One difference is inherent to reading the protobuf tree: it cannot tell a
// NULL string field from an empty one, which pg_query writes as the field's
// name alone. Only an empty string literal makes an empty field, so parse
// asks pg_query's C for the fingerprint when the text may hold one
// (emptyLiteral).

const fingerprintVersion = 3 // PG_QUERY_FINGERPRINT_VERSION, the hash's seed

// fpWriter builds a fingerprint stream. Its buffers are reused from one
// statement to the next through fpPool: growing them was most of what the Go
// fingerprint cost.
type fpWriter struct {
	buf  []byte
	tmp  []byte
	segs []fpSeg
}

type fpSeg struct {
	hash       uint64
	start, end int
}

// fingerprint returns pg_query's fingerprint of the statements of a parse
// tree, as pg_query_fingerprint_node computes it over the raw parser's list of
// RawStmt.
func fingerprint(stmts []*pg.RawStmt) uint64 {
	w := fpPool.Get().(*fpWriter)
	defer func() {
		if cap(w.buf) > 1<<20 || cap(w.tmp) > 1<<20 {
			return // a huge statement's buffers are not kept
		}
		w.buf, w.tmp, w.segs = w.buf[:0], w.tmp[:0], w.segs[:0]
		fpPool.Put(w)
	}()
	// The list of RawStmt is unsorted and at depth 0; each RawStmt is a node
	// at depth 1.
	for _, raw := range stmts {
		w.s("RawStmt")
		w.fpRawStmt(raw, nil, "", 1)
	}
	return xxh3(w.buf, fingerprintVersion)
}

var fpPool = sync.Pool{New: func() any { return &fpWriter{buf: make([]byte, 0, 4096)} }}

func (w *fpWriter) s(v string) { w.buf = append(w.buf, v...) }

// node is _fingerprintNode.
func (w *fpWriter) node(n *pg.Node, parent any, field string, depth int) {
	if depth >= 100 || n == nil || n.Node == nil {
		return
	}
	w.fpNodeType(n, parent, field, depth)
}

// nodeValue handles the node types _fingerprintNode writes itself: List and
// the value nodes.
func (w *fpWriter) nodeValue(n *pg.Node, parent any, field string, depth int) {
	switch x := n.Node.(type) {
	case *pg.Node_List:
		w.list(x.List.Items, parent, field, depth)
	case *pg.Node_Integer:
		if x.Integer.Ival != 0 {
			w.s("Integer")
			w.s("ival")
			w.buf = strconv.AppendInt(w.buf, int64(x.Integer.Ival), 10)
		}
	case *pg.Node_Float:
		// "str", as pg_query writes it for fingerprints stable across versions.
		w.s("Float")
		w.s("str")
		w.s(x.Float.Fval)
	case *pg.Node_Boolean:
		w.s("Boolean")
		w.s("boolval")
		if x.Boolean.Boolval {
			w.s("true")
		} else {
			w.s("false")
		}
	case *pg.Node_String_:
		w.s("String")
		w.s("str")
		w.s(x.String_.Sval)
	case *pg.Node_BitString:
		w.s("BitString")
		w.s("str")
		w.s(x.BitString.Bsval)
	default:
		// A node type pg_query does not fingerprint: it logs a warning and
		// adds nothing.
	}
}

// list is _fingerprintList; depth is the list's own (its items are one deeper).
func (w *fpWriter) list(items []*pg.Node, parent any, field string, depth int) {
	if depth >= 100 {
		return // _fingerprintNode's cut-off, which a List field passes through
	}
	switch field {
	case "fromClause", "targetList", "cols", "rexpr", "valuesLists", "args":
	default:
		for _, it := range items {
			w.node(it, parent, field, depth+1)
		}
		return
	}
	base := len(w.buf)
	first := len(w.segs)
	for _, it := range items {
		start := len(w.buf)
		w.node(it, parent, field, depth+1)
		w.segs = append(w.segs, fpSeg{hash: xxh3(w.buf[start:], fingerprintVersion), start: start - base, end: len(w.buf) - base})
	}
	segs := w.segs[first:]
	slices.SortFunc(segs, func(a, b fpSeg) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	w.tmp = append(w.tmp[:0], w.buf[base:]...)
	w.buf = w.buf[:base]
	for i, sg := range segs {
		if i > 0 && segs[i-1].hash == sg.hash {
			continue // pg_query keeps one of equal items
		}
		w.buf = append(w.buf, w.tmp[sg.start:sg.end]...)
	}
	w.segs = w.segs[:first]
}

// relname is RangeVar's relname as pg_query fingerprints it: runs of two or
// more digits are dropped, so that numbered (e.g. partition) tables
// fingerprint alike.
func (w *fpWriter) relname(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' && ((i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9') || (i > 0 && s[i-1] >= '0' && s[i-1] <= '9')) {
			continue
		}
		w.buf = append(w.buf, c)
	}
}
