// Package demo holds Airlock's demo: a crypto-trading schema with generated rows and the
// demo policy. scripts/dev.sh loads it, and the tests run against it.
package demo

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jackc/pgx/v5"
)

//go:embed demo.sql
var demoSQL string

// Policy is the demo policy document (policy.yaml).
//
//go:embed policy.yaml
var Policy []byte

// Load creates the demo tables in schema public and fills them when they are empty.
func Load(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, demoSQL); err != nil {
		return fmt.Errorf("demo: loading schema and data: %w", err)
	}
	return nil
}
