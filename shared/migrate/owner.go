package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/policy"
)

// OwnerStatements returns what Airlock needs from the owner of the application's tables,
// as the SQL statements the owner runs, in order, after Apply. For each table of pol:
//
//   - every privilege Airlock's roles hold on it is revoked first, so that a column or
//     table dropped from the policy loses what it had;
//   - the masker role, which owns the masked views, may SELECT it, and so may its
//     unmasked capability role;
//   - its write capability role may SELECT the columns that are not sensitive (for WHERE
//     clauses), INSERT and UPDATE the writable columns, and use the sequences of its
//     serial columns; never DELETE, TRUNCATE or TRIGGER;
//   - a writable table gets the before-image trigger and the row-limit triggers, which
//     fire only for developers' roles; a table that is no longer writable loses them.
//
// The statements depend on the policy and on the tables' columns (read through q, any
// role may read the catalogs): run them again after a policy change that touches a
// table, and Pending says when that is needed.
func OwnerStatements(ctx context.Context, q querier, pol *policy.Policy, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	r := Roles{Prefix: prefix}
	var stmts []string
	for _, name := range pol.TableNames() {
		t := pol.Tables[name]
		cols, err := readColumns(ctx, q, name)
		if err != nil {
			return nil, fmt.Errorf("migrate: table %s: %w", name, err)
		}
		if err := checkColumns(t, cols); err != nil {
			return nil, fmt.Errorf("migrate: table %s: %w", name, err)
		}
		qt := ident("public", name)
		roles := []string{ident(r.Developer()), ident(r.masker())}
		for _, c := range capabilityRoles(r, t) {
			roles = append(roles, ident(c))
		}
		stmts = append(stmts,
			fmt.Sprintf(`REVOKE ALL ON %s FROM %s`, qt, strings.Join(roles, ", ")),
			fmt.Sprintf(`GRANT SELECT ON %s TO %s`, qt, ident(r.masker())))
		if len(t.Masked) > 0 {
			stmts = append(stmts, fmt.Sprintf(`GRANT SELECT ON %s TO %s`, qt, ident(r.Unmasked(name))))
		}
		if t.Write != nil {
			ws, err := writeStatements(ctx, q, r, t, cols)
			if err != nil {
				return nil, fmt.Errorf("migrate: table %s: %w", name, err)
			}
			stmts = append(stmts, ws...)
		}
		stmts = append(stmts, triggerStatements(r, t)...)
	}
	return stmts, nil
}

func writeStatements(ctx context.Context, q querier, r Roles, t *policy.Table, cols []column) ([]string, error) {
	role := ident(r.Write(t.Name))
	qt := ident("public", t.Name)
	var readable, writable []string
	for _, c := range cols {
		if _, sensitive := t.Masked[c.name]; !sensitive {
			readable = append(readable, ident(c.name))
		}
	}
	for _, c := range t.Write.Columns {
		writable = append(writable, ident(c))
	}
	list := strings.Join(writable, ", ")
	// Reading the non-sensitive columns lets a WHERE clause find rows; reading sensitive
	// ones needs the unmasked capability as well.
	stmts := []string{fmt.Sprintf(`GRANT SELECT (%s) ON %s TO %s`, strings.Join(readable, ", "), qt, role)}
	if t.Write.Insert {
		stmts = append(stmts, fmt.Sprintf(`GRANT INSERT (%s) ON %s TO %s`, list, qt, role))
	}
	if t.Write.Update {
		stmts = append(stmts, fmt.Sprintf(`GRANT UPDATE (%s) ON %s TO %s`, list, qt, role))
	}
	if t.Write.Insert {
		// Defaults such as a serial id call nextval on the table's own sequences.
		rows, err := q.Query(ctx, `
			SELECT pg_get_serial_sequence($1, a.attname)
			  FROM pg_attribute a
			 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
			   AND pg_get_serial_sequence($1, a.attname) IS NOT NULL
			 ORDER BY a.attnum`, "public."+t.Name)
		if err != nil {
			return nil, fmt.Errorf("finding sequences: %w", err)
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("finding sequences: %w", err)
		}
		for _, s := range seqs {
			stmts = append(stmts, fmt.Sprintf(`GRANT USAGE ON SEQUENCE %s TO %s`, s, role))
		}
	}
	return stmts, nil
}

// Airlock's triggers on a writable table.
const (
	triggerCapture     = "airlock_capture"
	triggerLimitUpdate = "airlock_limit_update"
	triggerLimitInsert = "airlock_limit_insert"
)

// triggerStatements installs the before-image and row-limit triggers on a writable
// table, and removes them from one that is not. They fire only for developers' roles,
// whose names start with the prefix and "u_", so the application's own writes pay
// nothing.
func triggerStatements(r Roles, t *policy.Table) []string {
	qt := ident("public", t.Name)
	if t.Write == nil {
		return []string{
			fmt.Sprintf(`DROP TRIGGER IF EXISTS %s ON %s`, triggerCapture, qt),
			fmt.Sprintf(`DROP TRIGGER IF EXISTS %s ON %s`, triggerLimitUpdate, qt),
			fmt.Sprintf(`DROP TRIGGER IF EXISTS %s ON %s`, triggerLimitInsert, qt),
		}
	}
	when := fmt.Sprintf("WHEN (starts_with(current_user::text, %s))", literal(r.Prefix+"u_"))
	limit := literal(fmt.Sprint(t.Write.MaxRows))
	return []string{
		fmt.Sprintf(`CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE ON %s FOR EACH ROW %s EXECUTE FUNCTION airlock.capture_write()`, triggerCapture, qt, when),
		fmt.Sprintf(`CREATE OR REPLACE TRIGGER %s AFTER UPDATE ON %s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT %s EXECUTE FUNCTION airlock.enforce_write_limit(%s)`, triggerLimitUpdate, qt, when, limit),
		fmt.Sprintf(`CREATE OR REPLACE TRIGGER %s AFTER INSERT ON %s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT %s EXECUTE FUNCTION airlock.enforce_write_limit(%s)`, triggerLimitInsert, qt, when, limit),
	}
}

// OwnerScript is OwnerStatements as one script for psql: a transaction, one statement a
// line.
func OwnerScript(stmts []string) string {
	var b strings.Builder
	b.WriteString("BEGIN;\n")
	for _, s := range stmts {
		b.WriteString(s)
		b.WriteString(";\n")
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}

// ApplyOwnerStatements runs OwnerStatements in one transaction on conn, which must be
// logged in as the tables' owner (or a role with its privileges), and checks the result
// with Pending.
func ApplyOwnerStatements(ctx context.Context, conn *pgx.Conn, pol *policy.Policy, prefix string) error {
	super, err := isSuperuser(ctx, conn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if super {
		return errors.New("migrate: connected as a superuser; run the owner's statements as the owner of the application's tables")
	}
	stmts, err := OwnerStatements(ctx, conn, pol, prefix)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("migrate: %s: %w", firstLine(s), err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	missing, err := Pending(ctx, conn, pol, prefix)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("migrate: after the owner's statements, still missing: %s", strings.Join(missing, "; "))
	}
	return nil
}

// Pending reports what of OwnerStatements the database does not have yet, one line per
// missing privilege or trigger; none when Airlock's roles have exactly what they need.
func Pending(ctx context.Context, q querier, pol *policy.Policy, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	r := Roles{Prefix: prefix}
	var missing []string
	check := func(what, sql string, args ...any) error {
		var ok bool
		if err := q.QueryRow(ctx, sql, args...).Scan(&ok); err != nil {
			return fmt.Errorf("migrate: checking %s: %w", what, err)
		}
		if !ok {
			missing = append(missing, what)
		}
		return nil
	}
	for _, name := range pol.TableNames() {
		t := pol.Tables[name]
		qt := "public." + name
		if err := check(fmt.Sprintf("SELECT on %s for %s", name, r.masker()), `SELECT has_table_privilege($1, $2, 'SELECT')`, r.masker(), qt); err != nil {
			return nil, err
		}
		if len(t.Masked) > 0 {
			if err := check(fmt.Sprintf("SELECT on %s for %s", name, r.Unmasked(name)), `SELECT has_table_privilege($1, $2, 'SELECT')`, r.Unmasked(name), qt); err != nil {
				return nil, err
			}
		}
		var triggers []string
		rows, err := q.Query(ctx, `
			SELECT tgname::text || '(' || encode(tgargs, 'escape') || ')'
			  FROM pg_trigger WHERE tgrelid = to_regclass($1) AND starts_with(tgname, 'airlock_') ORDER BY 1`, qt)
		if err != nil {
			return nil, fmt.Errorf("migrate: listing triggers of %s: %w", name, err)
		}
		if triggers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, fmt.Errorf("migrate: listing triggers of %s: %w", name, err)
		}
		if t.Write == nil {
			if len(triggers) > 0 {
				missing = append(missing, fmt.Sprintf("dropping the triggers %s of %s, which is no longer writable", strings.Join(triggers, ", "), name))
			}
			continue
		}
		role := r.Write(name)
		for _, c := range t.Write.Columns {
			for _, priv := range []string{"INSERT", "UPDATE"} {
				if (priv == "INSERT" && !t.Write.Insert) || (priv == "UPDATE" && !t.Write.Update) {
					continue
				}
				if err := check(fmt.Sprintf("%s (%s) on %s for %s", priv, c, name, role), `SELECT has_column_privilege($1, $2, $3, $4)`, role, qt, c, priv); err != nil {
					return nil, err
				}
			}
		}
		limit := fmt.Sprint(t.Write.MaxRows) + `\000`
		for _, want := range []string{triggerCapture + "()", triggerLimitUpdate + "(" + limit + ")", triggerLimitInsert + "(" + limit + ")"} {
			if !slices.Contains(triggers, want) {
				missing = append(missing, fmt.Sprintf("trigger %s on %s", strings.TrimSuffix(strings.ReplaceAll(want, `\000`, ""), "()"), name))
			}
		}
	}
	return missing, nil
}
