package migrate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// A ViewColumn is one column of a masked view (masked.<table>), which has the columns
// of its table, in the table's order.
type ViewColumn struct {
	ViewOID uint32 // the view's pg_class oid: result columns name it as their table
	AttNum  int16
	Table   string
	Column  string
}

// ViewColumns reads the masked views' columns, by table and then position. Any role may
// run it: it reads only the system catalogs.
func ViewColumns(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]ViewColumn, error) {
	rows, err := q.Query(ctx, `
		SELECT c.oid, a.attnum, c.relname, a.attname
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		 WHERE n.nspname = 'masked' AND c.relkind = 'v'
		 ORDER BY c.relname, a.attnum`)
	if err != nil {
		return nil, fmt.Errorf("migrate: reading the masked views' columns: %w", err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ViewColumn])
	if err != nil {
		return nil, fmt.Errorf("migrate: reading the masked views' columns: %w", err)
	}
	return cols, nil
}

// TableColumns groups view columns by table: each table's columns in order.
func TableColumns(cols []ViewColumn) map[string][]string {
	out := map[string][]string{}
	for _, c := range cols {
		out[c.Table] = append(out[c.Table], c.Column)
	}
	return out
}
