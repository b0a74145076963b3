package sqlguard

import (
	"context"
	"strings"
	"testing"
)

func TestFunctionListsAreDisjoint(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range AllowedFunctions() {
		if f != strings.ToLower(f) || strings.Contains(f, ".") {
			t.Errorf("allowlisted name %q must be lower-case and unqualified", f)
		}
		if seen[f] {
			t.Errorf("%s is listed twice", f)
		}
		seen[f] = true
		if why, ok := deniedFunctions[f]; ok {
			t.Errorf("%s is both allowed and denied (%s)", f, why)
		}
	}
	// The functions the brief names as dangerous must all be refused.
	for _, f := range []string{
		"query_to_xml", "table_to_xml", "schema_to_xml", "database_to_xml", "cursor_to_xml",
		"ts_stat", "ts_rewrite", "dblink", "dblink_exec", "pg_read_file", "pg_read_binary_file",
		"pg_ls_dir", "pg_stat_file", "lo_import", "lo_export", "lo_from_bytea", "set_config",
		"current_setting", "nextval", "setval", "currval", "lastval", "pg_advisory_lock",
		"pg_try_advisory_lock", "pg_sleep", "pg_terminate_backend", "pg_cancel_backend",
		"pg_reload_conf", "pg_switch_wal", "pg_logical_emit_message",
		"pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
		"pg_drop_replication_slot", "pg_replication_origin_create", "pg_import_system_collations",
		"pg_stat_get_activity", "pg_stat_reset", "pg_log_backend_memory_contexts", "txid_current",
		"pg_current_xact_id", "pg_notify", "pg_get_viewdef", "pg_get_functiondef", "setseed",
	} {
		if _, ok := allowedFunctions[f]; ok {
			t.Errorf("%s must not be allowlisted", f)
		}
	}
}

// TestAllowlistVolatility checks the allowlist against a real server: every
// allowlisted function that exists must be immutable or stable, apart from
// the reviewed exceptions, and none may take a regclass or a cursor.
func TestAllowlistVolatility(t *testing.T) {
	dbMu.Lock()
	defer dbMu.Unlock()
	conn := testDB(t)
	if conn == nil {
		t.Skip("DATABASE_URL not set; skipping the pg_proc review")
	}
	volatileOK := map[string]bool{
		"random": true, "gen_random_uuid": true, // file comment: private PRNG state only
		"clock_timestamp": true, "timeofday": true, // read the clock
	}
	rows, err := conn.Query(context.Background(), `
		SELECT p.proname, p.provolatile::text, p.proargtypes::regtype[]::text
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'pg_catalog' AND p.proname = ANY($1)`, AllowedFunctions())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	found := map[string]bool{}
	for rows.Next() {
		var name, vol, args string
		if err := rows.Scan(&name, &vol, &args); err != nil {
			t.Fatal(err)
		}
		found[name] = true
		if vol == "v" && !volatileOK[name] {
			t.Errorf("%s(%s) is volatile; review it or add it to the exceptions", name, args)
		}
		if strings.Contains(args, "regclass") || strings.Contains(args, "refcursor") {
			t.Errorf("%s(%s) takes a relation or cursor by name", name, args)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, f := range AllowedFunctions() {
		if !found[f] {
			t.Logf("%s is not a pg_catalog function on this server (newer PostgreSQL, SQL syntax or a type name)", f)
		}
	}
}
