// Package revert undoes a committed write exactly. Every row a developer's INSERT or
// UPDATE changes is kept in airlock.write_images, before and after, by a trigger
// (shared/migrate). From those images this package builds the compensating statements,
// one UPDATE per row that sets the changed columns back, and afterwards checks, from the
// images the compensating statements leave in turn, that every row went back byte for
// byte and that nobody had changed it in between.
//
// Values never pass through Go types: an image is read as the JSON text PostgreSQL
// wrote (to_jsonb), and each value goes back as a text parameter cast by the column's
// own input function ($1::text::numeric(36,8)), so 1.50000000 stays 1.50000000 and a
// timestamp keeps its microseconds.
package revert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/policy"
)

// Masked stands for a sensitive value in what is shown or logged (the write preview has
// always used it). It is not valid SQL, on purpose: a statement shown with it cannot be
// pasted and run by mistake.
const Masked = "[masked]"

// An Image is one row a write changed, as PostgreSQL's to_jsonb wrote it: column name to
// JSON text. Old is nil for an INSERT.
type Image struct {
	ID    int64
	Table string
	Op    string // "INSERT" or "UPDATE"
	Old   map[string]json.RawMessage
	New   map[string]json.RawMessage
}

// Querier runs a query; a pgx.Tx, *pgx.Conn or pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Load reads the images of the write made by request requestID, in the order the rows
// were changed. q must act as a role that may read airlock.write_images.
func Load(ctx context.Context, q Querier, requestID string) ([]Image, error) {
	rows, err := q.Query(ctx, `
		SELECT id, table_name, op, coalesce(old_row::text, ''), new_row::text
		  FROM airlock.write_images WHERE request_id = $1 ORDER BY id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("revert: loading the images of %s: %w", requestID, err)
	}
	var out []Image
	var old, new string
	var img Image
	_, err = pgx.ForEachRow(rows, []any{&img.ID, &img.Table, &img.Op, &old, &new}, func() error {
		im := img
		var err error
		if old != "" {
			if im.Old, err = decode(old); err != nil {
				return err
			}
		}
		if im.New, err = decode(new); err != nil {
			return err
		}
		out = append(out, im)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("revert: loading the images of %s: %w", requestID, err)
	}
	return out, nil
}

func decode(s string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("revert: an image is not a JSON object: %w", err)
	}
	return m, nil
}

// ColumnTypes returns the SQL type of each column of public.table, as format_type writes
// it (numeric(36,8), timestamp with time zone, …).
func ColumnTypes(ctx context.Context, q Querier, table string) (map[string]string, error) {
	rows, err := q.Query(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped`, table)
	if err != nil {
		return nil, fmt.Errorf("revert: reading the columns of %s: %w", table, err)
	}
	types := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error { types[name] = typ; return nil })
	if err != nil {
		return nil, fmt.Errorf("revert: reading the columns of %s: %w", table, err)
	}
	return types, nil
}

// Changed lists, in name order, the columns whose value an UPDATE image changed.
func (im Image) Changed() []string {
	var out []string
	for c, v := range im.New {
		if !bytes.Equal(v, im.Old[c]) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// Key returns the row's primary key values after the write, column to JSON text.
func (im Image) Key(pk []string) map[string]json.RawMessage {
	k := make(map[string]json.RawMessage, len(pk))
	for _, c := range pk {
		k[c] = im.New[c]
	}
	return k
}

// A Statement is one compensating statement.
type Statement struct {
	SQL  string // parameterised, what runs
	Args []any  // one text value (or nil for NULL) per parameter
	// Shown is the statement with its values written out as SQL literals, values of
	// sensitive columns Masked: for the log, and for people who may not see them.
	Shown string
	// Revealed is Shown with the sensitive values too, for people who may see them.
	Revealed string
}

// Errors a plan can fail with; wrapped in a *PlanError.
var (
	// ErrNeedsDelete: the write inserted rows, and only a DELETE would undo it, which
	// Airlock never runs.
	ErrNeedsDelete = errors.New("revert: undoing an INSERT needs a DELETE")
	// ErrUnsupported: a value the compensating statement could not restore exactly.
	ErrUnsupported = errors.New("revert: cannot be restored exactly")
)

// A PlanError says why no compensating statements can be made.
type PlanError struct {
	Err    error
	Detail string // a sentence for the person who asked
	// Shown holds, for ErrNeedsDelete, the DELETE a database administrator would run.
	Shown []string
}

func (e *PlanError) Error() string { return e.Detail }
func (e *PlanError) Unwrap() error { return e.Err }

// Plan builds the statements that undo the write whose images are imgs, all of table t
// (whose columns have types), restoring rows in the order they were changed. Only the
// columns the write changed are set back, and they must be among t's writable columns:
// the compensating statement runs under the same write grant a developer's would.
func Plan(imgs []Image, t *policy.Table, types map[string]string) ([]Statement, error) {
	if len(imgs) == 0 {
		return nil, errors.New("revert: no images")
	}
	var out []Statement
	var deletes []string
	for _, im := range imgs {
		if im.Table != t.Name {
			return nil, fmt.Errorf("revert: image %d is of table %s, not %s", im.ID, im.Table, t.Name)
		}
		switch im.Op {
		case "INSERT":
			_, whereShown, _, _ := keyClause(im, t, types, 0)
			deletes = append(deletes, fmt.Sprintf("DELETE FROM %s WHERE %s;", ident(t.Name), whereShown))
			continue
		case "UPDATE":
		default:
			return nil, fmt.Errorf("revert: image %d has operation %q", im.ID, im.Op)
		}
		changed := im.Changed()
		if len(changed) == 0 {
			continue // the write set the row to what it was: nothing to undo
		}
		var set, setShown, setRevealed []string
		var args []any
		for _, c := range changed {
			if t.Write == nil || !slices.Contains(t.Write.Columns, c) {
				return nil, &PlanError{Err: ErrUnsupported, Detail: fmt.Sprintf("the write changed %s.%s, which the policy does not let a write set, so no write grant can put it back", t.Name, c)}
			}
			typ, ok := types[c]
			if !ok {
				return nil, &PlanError{Err: ErrUnsupported, Detail: fmt.Sprintf("column %s.%s no longer exists, so row %s cannot be restored", t.Name, c, shownKey(im, t))}
			}
			text, isNull, err := sqlText(im.Old[c], typ)
			if err != nil {
				return nil, &PlanError{Err: ErrUnsupported, Detail: fmt.Sprintf("column %s.%s of row %s: %v", t.Name, c, shownKey(im, t), err)}
			}
			args = append(args, nullable(text, isNull))
			set = append(set, fmt.Sprintf("%s = $%d::text::%s", ident(c), len(args), typ))
			setShown = append(setShown, fmt.Sprintf("%s = %s", ident(c), shownValue(text, isNull, t.IsMasked(c))))
			setRevealed = append(setRevealed, fmt.Sprintf("%s = %s", ident(c), shownValue(text, isNull, false)))
		}
		where, whereShown, whereRevealed, keyArgs := keyClause(im, t, types, len(args))
		out = append(out, Statement{
			SQL:      fmt.Sprintf("UPDATE %s SET %s WHERE %s", ident(t.Name), strings.Join(set, ", "), where),
			Args:     append(args, keyArgs...),
			Shown:    fmt.Sprintf("UPDATE %s SET %s WHERE %s;", ident(t.Name), strings.Join(setShown, ", "), whereShown),
			Revealed: fmt.Sprintf("UPDATE %s SET %s WHERE %s;", ident(t.Name), strings.Join(setRevealed, ", "), whereRevealed),
		})
	}
	if len(deletes) > 0 {
		return nil, &PlanError{Err: ErrNeedsDelete, Shown: deletes,
			Detail: fmt.Sprintf("the write inserted %d row(s) into %s; undoing it needs a DELETE, which Airlock never runs. A database administrator can run the statements shown", len(deletes), t.Name)}
	}
	return out, nil
}

// keyClause is the WHERE clause naming the row by its primary key after the write, as
// run (parameters numbered from after+1), as shown and as revealed.
func keyClause(im Image, t *policy.Table, types map[string]string, after int) (where, shown, revealed string, args []any) {
	var w, s, r []string
	for _, c := range t.PrimaryKey {
		text, isNull, _ := sqlText(im.New[c], types[c])
		args = append(args, nullable(text, isNull))
		w = append(w, fmt.Sprintf("%s = $%d::text::%s", ident(c), after+len(args), types[c]))
		s = append(s, fmt.Sprintf("%s = %s", ident(c), shownValue(text, isNull, t.IsMasked(c))))
		r = append(r, fmt.Sprintf("%s = %s", ident(c), shownValue(text, isNull, false)))
	}
	return strings.Join(w, " AND "), strings.Join(s, " AND "), strings.Join(r, " AND "), args
}

func shownKey(im Image, t *policy.Table) string {
	var s []string
	for _, c := range t.PrimaryKey {
		s = append(s, c+"="+string(im.New[c]))
	}
	return strings.Join(s, ", ")
}

// sqlText turns one to_jsonb value back into the text the column's input function reads.
// Strings are the text itself; numbers and booleans their JSON spelling, which is
// PostgreSQL's own; objects and arrays only for json and jsonb columns (to_jsonb turns
// an int[] into [1,2], which the array input function does not read).
func sqlText(v json.RawMessage, typ string) (text string, isNull bool, err error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || string(v) == "null":
		return "", true, nil
	case v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false, err
		}
		return s, false, nil
	case v[0] == '{' || v[0] == '[':
		if typ != "json" && typ != "jsonb" {
			return "", false, fmt.Errorf("a %s value cannot be restored from its JSON image", typ)
		}
		return string(v), false, nil
	}
	return string(v), false, nil // number, true, false
}

func nullable(text string, isNull bool) any {
	if isNull {
		return nil
	}
	return text
}

func shownValue(text string, isNull, masked bool) string {
	switch {
	case masked:
		return Masked
	case isNull:
		return "NULL"
	}
	return literal(text)
}

// literal is text as an SQL string literal. Text holding a control or format character
// (the characters functions/query escapes in answers: C0, DEL, C1, Unicode categories
// Cf, Zl and Zp) is written as an escape string, E'…' with \n, \r, \t and \uXXXX or
// \UXXXXXXXX, so that a statement shown in a terminal or a log spells those characters
// instead of performing them, and still means the same value.
func literal(text string) string {
	if !strings.ContainsFunc(text, unsafe) {
		return "'" + strings.ReplaceAll(text, "'", "''") + "'"
	}
	var b strings.Builder
	b.WriteString("E'")
	for _, r := range text {
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafe(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func unsafe(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) }

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// A MismatchError says which rows a compensating statement did not find as the write
// left them, or did not put back exactly.
type MismatchError struct {
	Conflict bool     // the rows had changed since the write
	Keys     []string // the rows, as "id=42"
}

func (e *MismatchError) Error() string { return "revert: " + e.Detail() }

// Detail says what went wrong in a sentence for the person who asked, without the
// package's prefix.
func (e *MismatchError) Detail() string {
	if e.Conflict {
		return fmt.Sprintf("%d row(s) changed since the write (%s); reverting would overwrite those changes, so nothing was changed",
			len(e.Keys), strings.Join(e.Keys, "; "))
	}
	return fmt.Sprintf("%d row(s) would not be exactly as before the write (%s), for example because a trigger changed them; nothing was changed",
		len(e.Keys), strings.Join(e.Keys, "; "))
}

// Check compares the images of the original write (orig) with those the compensating
// statements left (undo): each row must have been found exactly as the write left it, and
// left exactly as it was before. Rows the write did not really change were not touched.
func Check(orig, undo []Image, t *policy.Table) error {
	var touched []Image
	for _, im := range orig {
		if len(im.Changed()) > 0 {
			touched = append(touched, im)
		}
	}
	var conflict, inexact []string
	for i, o := range touched {
		if i >= len(undo) {
			conflict = append(conflict, shownKey(o, t)+" (gone)")
			continue
		}
		u := undo[i]
		if !sameRow(u.Old, o.New) {
			conflict = append(conflict, shownKey(o, t))
		} else if !sameRow(u.New, o.Old) {
			inexact = append(inexact, shownKey(o, t))
		}
	}
	if len(undo) > len(touched) {
		conflict = append(conflict, fmt.Sprintf("%d more row(s) than the write changed", len(undo)-len(touched)))
	}
	switch {
	case len(conflict) > 0:
		return &MismatchError{Conflict: true, Keys: conflict}
	case len(inexact) > 0:
		return &MismatchError{Keys: inexact}
	}
	return nil
}

func sameRow(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for c, v := range a {
		w, ok := b[c]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// Summary is the log's view of the images: each row's key and its values before the
// write (for an UPDATE, only the columns it changed), sensitive columns Masked. At most
// max rows; the second result says whether some were left out.
func Summary(imgs []Image, t *policy.Table, max int) ([]map[string]any, bool) {
	var out []map[string]any
	for i, im := range imgs {
		if i == max {
			return out, true
		}
		row := map[string]any{"op": im.Op, "key": show(im.Key(t.PrimaryKey), t)}
		if im.Op == "UPDATE" {
			old := map[string]json.RawMessage{}
			for _, c := range im.Changed() {
				old[c] = im.Old[c]
			}
			row["before"] = show(old, t)
		}
		out = append(out, row)
	}
	return out, false
}

// Shown returns row with the values of t's sensitive columns Masked, unless reveal.
func Shown(row map[string]json.RawMessage, t *policy.Table, reveal bool) map[string]json.RawMessage {
	if reveal {
		return row
	}
	return show(row, t)
}

func show(row map[string]json.RawMessage, t *policy.Table) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(row))
	masked, _ := json.Marshal(Masked)
	for c, v := range row {
		if t.IsMasked(c) {
			v = masked
		}
		out[c] = v
	}
	return out
}
