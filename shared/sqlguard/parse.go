package sqlguard

/*
#include <stdint.h>
#include <stdlib.h>

// These are pg_query's own functions, compiled into the binary by
// github.com/pganalyze/pg_query_go/v5/parser (v5.1.0, pinned by go.sum). They
// are declared here, with pointers to PostgreSQL's types as void *, because
// that package's headers are not on this package's include path. The layouts
// are pg_query.h's and pg_query_internal.h's; TestParseMatchesPgQuery
// checks the result against pg_query_go's exported functions.
typedef struct {
	char *message;
	char *funcname;
	char *filename;
	int lineno;
	int cursorpos;
	char *context;
} PgQueryError;

typedef struct {
	size_t len;
	char *data;
} PgQueryProtobuf;

typedef struct {
	void *tree;
	char *stderr_buffer;
	PgQueryError *error;
} PgQueryInternalParsetreeAndError;

extern void *pg_query_enter_memory_context(void);
extern void pg_query_exit_memory_context(void *ctx);
extern PgQueryInternalParsetreeAndError pg_query_raw_parse(const char *input, int parser_options);
extern PgQueryProtobuf pg_query_nodes_to_protobuf(const void *obj);
extern uint64_t pg_query_fingerprint_node(const void *node);
extern void pg_query_free_error(PgQueryError *error);

typedef struct {
	PgQueryProtobuf tree;
	uint64_t fingerprint;
	PgQueryError *error;
} sqlguard_parse_result;

// sqlguard_parse is pg_query_parse_protobuf and, when asked, pg_query's
// fingerprint of the same tree. Go computes the fingerprint itself
// (fingerprint.go) except when the text may hold an empty string literal:
// see emptyLiteral.
static sqlguard_parse_result sqlguard_parse(const char *input, int fingerprint) {
	sqlguard_parse_result r = {0};
	void *ctx = pg_query_enter_memory_context();
	PgQueryInternalParsetreeAndError p = pg_query_raw_parse(input, 0);
	free(p.stderr_buffer);
	r.error = p.error;
	if (p.error == NULL) {
		r.tree = pg_query_nodes_to_protobuf(p.tree);
		if (fingerprint)
			r.fingerprint = pg_query_fingerprint_node(p.tree);
	}
	pg_query_exit_memory_context(ctx);
	return r;
}
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"

	pg "github.com/pganalyze/pg_query_go/v5"
	pgparser "github.com/pganalyze/pg_query_go/v5/parser"
	"google.golang.org/protobuf/proto"
)

// parse is pg_query.Parse that also returns pg_query's fingerprint of the whole
// input, in pg_query.Fingerprint's hex form, computed from the same tree.
// For an input of one statement it equals the fingerprint of that statement
// alone: the fingerprint ignores locations, whitespace, comments and ';'.
func parse(sql string) (*pg.ParseResult, string, error) {
	in := C.CString(sql)
	defer C.free(unsafe.Pointer(in))
	inC := emptyLiteral(sql)
	var fpInC C.int
	if inC {
		fpInC = 1
	}
	r := C.sqlguard_parse(in, fpInC)
	if r.error != nil {
		defer C.pg_query_free_error(r.error)
		return nil, "", parseErr(r.error)
	}
	defer C.free(unsafe.Pointer(r.tree.data))
	tree := &pg.ParseResult{}
	// Unmarshalled straight from pg_query's buffer, without copying it into
	// Go memory first: protobuf copies every string it decodes, and the tree
	// has no bytes fields, so nothing refers to the buffer once it is freed.
	buf := unsafe.Slice((*byte)(unsafe.Pointer(r.tree.data)), int(r.tree.len))
	if err := proto.Unmarshal(buf, tree); err != nil {
		return nil, "", err
	}
	fp := uint64(r.fingerprint)
	if !inC {
		fp = fingerprint(tree.Stmts)
	}
	return tree, fmt.Sprintf("%016x", fp), nil
}

// emptyLiteral reports whether sql may hold an empty string literal: two
// quotes with nothing between them (also after E, U& or N) or an empty
// dollar quote. It is the one thing the Go fingerprint cannot see: a string
// field the parser fills from a literal (the comment of COMMENT ON, NOTIFY's
// payload, COPY's and LOAD's file name) is then empty where other fields are
// NULL, the protobuf tree holds both as "", and pg_query writes the field's
// name for the one and nothing for the other. Identifiers are never empty. A
// false alarm (a quote doubled inside a literal) only costs pg_query's slower
// C fingerprint.
func emptyLiteral(sql string) bool {
	return strings.Contains(sql, "''") || strings.Contains(sql, "$$")
}

// parseErr copies a pg_query error as pg_query_go reports it.
func parseErr(e *C.PgQueryError) error {
	err := &pgparser.Error{
		Message:   C.GoString(e.message),
		Lineno:    int(e.lineno),
		Cursorpos: int(e.cursorpos),
	}
	if e.funcname != nil {
		err.Funcname = C.GoString(e.funcname)
	}
	if e.filename != nil {
		err.Filename = C.GoString(e.filename)
	}
	if e.context != nil {
		err.Context = C.GoString(e.context)
	}
	return err
}
