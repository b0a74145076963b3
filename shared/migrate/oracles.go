package migrate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/policy"
)

// oracles refuses what in a table's own definition would let a write, or a read,
// confirm values a developer may not see. The policy loader refuses a writable column
// that is hash-masked; these are the same leak through the database's catalog, which
// only the migrations can read:
//
//   - a unique index or exclusion constraint over a writable column and a sensitive one
//     (its predicate and expressions included): a write that fails as a duplicate says
//     another row holds the value;
//   - a foreign key between a writable column and a sensitive one, in either direction:
//     a write that fails says whether the value exists, and one that cascades writes it;
//   - a check constraint relating a writable column to another, sensitive, column of the
//     row: whether a chosen value passes tells where the sensitive one lies;
//   - a generated column computed from a sensitive column and left unmasked, which shows
//     it to every reader; or computed from a writable column and hashed (the writer
//     chooses what is hashed); or computed from both and masked so as to show anything
//     (the writer probes the sensitive value through it).
//
// The application's own triggers and rules can do anything with a written value and
// are not checked: the README says to review them.
func (m *migration) oracles(t *policy.Table) error {
	var problems []string
	qt := "public." + t.Name
	writable := func(c string) bool { return t.Write != nil && slices.Contains(t.Write.Columns, c) }
	sensitive := func(table, c string) bool {
		pt, ok := m.pol.Tables[table]
		return ok && pt.IsMasked(c)
	}

	type derived struct {
		Name string
		From []string
	}
	// Generated columns first: one computed from a writable column is itself written.
	generated, err := collect[derived](m, "generated columns", `
		SELECT a.attname::text, array_agg(DISTINCT r.attname::text ORDER BY r.attname::text)
		  FROM pg_attribute a
		  JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		  JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
		                  AND d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid
		                  AND d.refobjsubid > 0 AND d.refobjsubid <> a.attnum
		  JOIN pg_attribute r ON r.attrelid = a.attrelid AND r.attnum = d.refobjsubid
		 WHERE a.attrelid = to_regclass($1) AND a.attgenerated <> '' AND NOT a.attisdropped
		 GROUP BY a.attname ORDER BY 1`, qt)
	if err != nil {
		return err
	}
	chosen := map[string]bool{} // columns a write sets, directly or through a generated column
	if t.Write != nil {
		for _, c := range t.Write.Columns {
			chosen[c] = true
		}
	}
	for _, g := range generated {
		mask, masked := t.Masked[g.Name]
		fromWritable := slices.ContainsFunc(g.From, writable)
		fromSensitive := slices.ContainsFunc(g.From, func(c string) bool { return t.IsMasked(c) })
		shows := !masked || (mask.Kind != policy.MaskRedact && mask.Kind != policy.MaskNull)
		switch {
		case fromSensitive && !masked:
			problems = append(problems, fmt.Sprintf("generated column %s is computed from sensitive columns (%s) but is not masked: mask it too", g.Name, strings.Join(g.From, ", ")))
		case fromWritable && masked && mask.Kind == policy.MaskHash:
			problems = append(problems, fmt.Sprintf("generated column %s is computed from writable columns (%s) and hashed: a write chooses what it hashes; mask it with partial, round, truncate, redact or null", g.Name, strings.Join(g.From, ", ")))
		case fromWritable && fromSensitive && shows:
			problems = append(problems, fmt.Sprintf("generated column %s is computed from writable and sensitive columns (%s) and its mask (%s) shows part of it: a write can probe the sensitive value; mask it with redact or null", g.Name, strings.Join(g.From, ", "), mask))
		}
		if fromWritable {
			chosen[g.Name] = true
		}
	}
	if len(chosen) > 0 {
		// Unique indexes and exclusion constraints: key columns, and the columns their
		// expressions and predicates read.
		indexes, err := collect[derived](m, "unique indexes", `
			SELECT c.relname::text, array_agg(DISTINCT a.attname::text ORDER BY a.attname::text)
			  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0 AND (
			       a.attnum = ANY (i.indkey::int2[])
			       OR EXISTS (SELECT 1 FROM pg_depend d
			                   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
			                     AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum))
			 WHERE i.indrelid = to_regclass($1) AND (i.indisunique OR i.indisexclusion)
			 GROUP BY c.relname ORDER BY 1`, qt)
		if err != nil {
			return err
		}
		for _, ix := range indexes {
			w := slices.IndexFunc(ix.From, func(c string) bool { return chosen[c] })
			s := slices.IndexFunc(ix.From, func(c string) bool { return t.IsMasked(c) })
			if w >= 0 && s >= 0 {
				problems = append(problems, fmt.Sprintf("unique or exclusion index %s covers writable column %s and sensitive column %s: a write that fails as a duplicate tells that another row holds the value", ix.Name, ix.From[w], ix.From[s]))
			}
		}

		// Check constraints relating a chosen column to another, sensitive, one.
		checks, err := collect[derived](m, "check constraints", `
			SELECT con.conname::text, array_agg(a.attname::text ORDER BY a.attname::text)
			  FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
			 WHERE con.conrelid = to_regclass($1) AND con.contype = 'c'
			 GROUP BY con.conname ORDER BY 1`, qt)
		if err != nil {
			return err
		}
		for _, ck := range checks {
		pairs:
			for _, w := range ck.From {
				for _, s := range ck.From {
					if w != s && chosen[w] && t.IsMasked(s) {
						problems = append(problems, fmt.Sprintf("check constraint %s relates writable column %s to sensitive column %s: whether a written value passes tells where the sensitive one lies", ck.Name, w, s))
						break pairs
					}
				}
			}
		}
	}

	// Foreign keys from this table or to it: a writable column on one side, a
	// sensitive column of a policy table on the other.
	type foreignKey struct {
		Name    string
		Src     string
		SrcCols []string
		Dst     string
		DstCols []string
	}
	fks, err := collect[foreignKey](m, "foreign keys", `
		SELECT con.conname::text, src.relname::text,
		       array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey) ORDER BY 1),
		       dst.relname::text,
		       array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = con.confrelid AND a.attnum = ANY (con.confkey) ORDER BY 1)
		  FROM pg_constraint con
		  JOIN pg_class src ON src.oid = con.conrelid
		  JOIN pg_class dst ON dst.oid = con.confrelid
		 WHERE con.contype = 'f' AND to_regclass($1) IN (con.conrelid, con.confrelid)
		   AND src.relnamespace = 'public'::regnamespace AND dst.relnamespace = 'public'::regnamespace
		 ORDER BY 1`, qt)
	if err != nil {
		return err
	}
	for _, fk := range fks {
		for _, side := range []struct {
			table, other    string
			cols, otherCols []string
		}{{fk.Src, fk.Dst, fk.SrcCols, fk.DstCols}, {fk.Dst, fk.Src, fk.DstCols, fk.SrcCols}} {
			if side.table != t.Name {
				continue
			}
			w := slices.IndexFunc(side.cols, func(c string) bool { return chosen[c] })
			s := slices.IndexFunc(side.otherCols, func(c string) bool { return sensitive(side.other, c) })
			if w >= 0 && s >= 0 {
				problems = append(problems, fmt.Sprintf("foreign key %s ties writable column %s to sensitive column %s.%s: a write that fails or cascades tells whether the value is there, or writes it", fk.Name, side.cols[w], side.other, side.otherCols[s]))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("a write or a read could confirm values developers may not see: %s", strings.Join(problems, "; "))
	}
	return nil
}

// collect runs a catalog query in the migration's transaction and returns its rows as
// Ts, by position; what names the rows in errors.
func collect[T any](m *migration, what, sql string, args ...any) ([]T, error) {
	rows, err := m.tx.Query(m.ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return out, nil
}
