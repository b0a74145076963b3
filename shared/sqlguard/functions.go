package sqlguard

// This file is the reviewed function allowlist.
//
// Review principle: a function is allowed only if
//
//  1. it is immutable or stable in effect: calling it changes nothing outside
//     the value it returns (no writes, no locks, no sequences, no WAL, no
//     signals, no session or GUC state, no large objects, no notifications);
//  2. it reads only its arguments (plus the clock, the text-search
//     configuration or the collation it is given): no files, programs, network,
//     other sessions, catalogs, statistics or server settings;
//  3. it cannot execute SQL text, directly (query_to_xml, ts_stat, dblink) or
//     through a name it is given (table_to_xml('users', ...), a regclass
//     argument, a cursor name).
//
// Names are matched case-insensitively after an optional pg_catalog.
// qualifier is removed; any other schema is refused. Anything not listed here
// is refused, so a function added to PostgreSQL or by an extension is refused
// until someone reviews it and adds it to a group below. When adding one,
// check every overload (\df+ name) against the three points above.
//
// Two deliberate exceptions to point 1: random() and gen_random_uuid() are
// volatile, but their only effect is advancing the backend's private random
// state; sampling (ORDER BY random() LIMIT n) is an everyday query. setseed()
// is refused because it changes that state for later requests on the
// connection.

var allowedFunctionGroups = [][]string{
	// Aggregates.
	{
		"count", "sum", "avg", "min", "max", "any_value",
		"stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
		"corr", "covar_pop", "covar_samp",
		"regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2",
		"regr_slope", "regr_sxx", "regr_sxy", "regr_syy",
		"percentile_cont", "percentile_disc", "mode",
		"bool_and", "bool_or", "every", "bit_and", "bit_or", "bit_xor",
		"string_agg", "array_agg", "json_agg", "jsonb_agg", "json_agg_strict", "jsonb_agg_strict",
		"json_object_agg", "jsonb_object_agg", "json_object_agg_strict", "jsonb_object_agg_strict",
		"json_object_agg_unique", "jsonb_object_agg_unique",
		"json_object_agg_unique_strict", "jsonb_object_agg_unique_strict",
		"range_agg", "range_intersect_agg",
	},
	// Window functions.
	{
		"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
		"lag", "lead", "first_value", "last_value", "nth_value",
	},
	// Numbers. (GREATEST, LEAST, COALESCE and NULLIF are parse-tree nodes, not calls.)
	{
		"abs", "round", "trunc", "ceil", "ceiling", "floor", "mod", "div",
		"power", "pow", "sqrt", "cbrt", "exp", "ln", "log", "log10", "sign",
		"gcd", "lcm", "factorial", "pi", "degrees", "radians",
		"sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sind", "cosd", "tand",
		"width_bucket", "scale", "min_scale", "trim_scale", "to_hex",
		"random", // volatile, see the file comment
		"num_nulls", "num_nonnulls",
	},
	// Strings. like_escape and similar_to_escape are what LIKE ... ESCAPE and
	// SIMILAR TO call; btrim/ltrim/rtrim/substring/position/overlay are what
	// the TRIM/SUBSTRING/POSITION/OVERLAY syntax calls.
	{
		"length", "char_length", "character_length", "octet_length", "bit_length",
		"lower", "upper", "initcap", "btrim", "ltrim", "rtrim",
		"substr", "substring", "left", "right", "position", "strpos", "overlay",
		"replace", "translate", "concat", "concat_ws", "split_part", "reverse",
		"repeat", "lpad", "rpad", "chr", "ascii", "starts_with",
		"format", "quote_ident", "quote_literal", "quote_nullable",
		"md5", "sha224", "sha256", "sha384", "sha512", "encode", "decode",
		"convert_from", "convert_to", "normalize", "is_normalized", "unistr",
		"string_to_array", "string_to_table", "array_to_string",
		"regexp_match", "regexp_matches", "regexp_replace", "regexp_split_to_array",
		"regexp_split_to_table", "regexp_count", "regexp_instr", "regexp_like", "regexp_substr",
		"like_escape", "similar_to_escape",
		"to_char", "to_number",
	},
	// Dates and times. timezone is AT TIME ZONE; overlaps is OVERLAPS;
	// extract and date_part are EXTRACT. The clock readers are volatile or
	// stable but read nothing but the clock.
	{
		"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
		"date_trunc", "date_part", "extract", "date_bin", "age",
		"make_date", "make_time", "make_timestamp", "make_timestamptz", "make_interval",
		"justify_days", "justify_hours", "justify_interval",
		"to_date", "to_timestamp", "isfinite", "timezone", "overlaps",
		"date_add", "date_subtract",
	},
	// Type-name casts written as calls, e.g. date(x), numeric(x), text(x).
	{
		"date", "text", "numeric", "int2", "int4", "int8", "float4", "float8",
		"bool", "varchar", "bpchar", "interval", "timestamptz",
	},
	// JSON and JSONB.
	{
		"to_json", "to_jsonb", "row_to_json", "array_to_json",
		"json_build_object", "jsonb_build_object", "json_build_array", "jsonb_build_array",
		"json_object", "jsonb_object",
		"json_each", "jsonb_each", "json_each_text", "jsonb_each_text",
		"json_array_elements", "jsonb_array_elements",
		"json_array_elements_text", "jsonb_array_elements_text",
		"json_array_length", "jsonb_array_length",
		"json_object_keys", "jsonb_object_keys",
		"json_extract_path", "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text",
		"json_typeof", "jsonb_typeof", "json_strip_nulls", "jsonb_strip_nulls",
		"jsonb_pretty", "jsonb_set", "jsonb_set_lax", "jsonb_insert",
		"json_to_record", "jsonb_to_record", "json_to_recordset", "jsonb_to_recordset",
		"json_populate_record", "jsonb_populate_record",
		"json_populate_recordset", "jsonb_populate_recordset",
		"jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
		"jsonb_path_exists", "jsonb_path_match",
		"jsonb_path_query_tz", "jsonb_path_query_array_tz", "jsonb_path_query_first_tz",
		"jsonb_path_exists_tz", "jsonb_path_match_tz",
	},
	// Arrays and set-returning helpers.
	{
		"unnest", "array_length", "cardinality", "array_position", "array_positions",
		"array_remove", "array_replace", "array_append", "array_prepend", "array_cat",
		"array_dims", "array_lower", "array_upper", "array_ndims", "array_fill", "trim_array",
		"generate_series", "generate_subscripts",
	},
	// Ranges.
	{
		"isempty", "lower_inc", "upper_inc", "lower_inf", "upper_inf", "range_merge",
		"int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange",
	},
	// Text search over values the query already holds. ts_stat and the
	// ts_rewrite(query, text) form execute SQL text and are NOT here.
	{
		"to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
		"ts_rank", "ts_rank_cd", "ts_headline", "setweight", "strip",
		"tsvector_to_array", "array_to_tsvector", "numnode", "querytree",
	},
	// XML over values the query already holds (XMLTABLE, xpath). The *_to_xml
	// family executes SQL or reads tables by name and is NOT here.
	{
		"xpath", "xpath_exists", "xml_is_well_formed", "xml_is_well_formed_document",
		"xml_is_well_formed_content",
	},
	// Miscellaneous value functions.
	{
		"gen_random_uuid", // volatile, see the file comment
		"pg_typeof",       // the type of its argument; reads nothing else
	},
}

// deniedFunctions names functions that are refused with a specific reason in
// the message. It is not the security boundary (anything not allowed is
// refused); it makes messages clearer and lets the tests prove that none of
// these ever slips into the allowlist.
var deniedFunctions = map[string]string{
	// Dynamic SQL: they execute SQL text or read a relation named by a string.
	"query_to_xml": "executes SQL text", "query_to_xml_and_xmlschema": "executes SQL text",
	"query_to_xmlschema": "executes SQL text", "table_to_xml": "reads a table named by its argument",
	"table_to_xml_and_xmlschema": "reads a table named by its argument",
	"table_to_xmlschema":         "reads a table named by its argument",
	"schema_to_xml":              "reads every table of a schema", "schema_to_xml_and_xmlschema": "reads every table of a schema",
	"schema_to_xmlschema": "reads every table of a schema",
	"database_to_xml":     "reads every table of the database", "database_to_xml_and_xmlschema": "reads every table of the database",
	"database_to_xmlschema": "reads every table of the database",
	"cursor_to_xml":         "reads an open cursor", "cursor_to_xmlschema": "reads an open cursor",
	"ts_stat": "executes SQL text", "ts_rewrite": "can execute SQL text",
	"dblink": "opens a connection and executes SQL", "dblink_exec": "opens a connection and executes SQL",
	"dblink_connect": "opens a persistent connection", "dblink_connect_u": "opens a persistent connection",
	"dblink_open": "opens a remote cursor", "dblink_fetch": "reads a remote cursor",
	"dblink_send_query": "executes SQL remotely", "dblink_get_result": "reads a remote result",
	"dblink_disconnect": "changes session state",
	// Files, programs, large objects.
	"pg_read_file": "reads a server file", "pg_read_binary_file": "reads a server file",
	"pg_stat_file": "reads server file metadata", "pg_ls_dir": "lists a server directory",
	"pg_ls_waldir": "lists server files", "pg_ls_logdir": "lists server files",
	"pg_ls_tmpdir": "lists server files", "pg_ls_archive_statusdir": "lists server files",
	"pg_ls_logicalmapdir": "lists server files", "pg_ls_logicalsnapdir": "lists server files",
	"pg_ls_replslotdir": "lists server files",
	"lo_import":         "reads a server file into a large object", "lo_export": "writes a server file",
	"lo_from_bytea": "creates a large object", "lo_creat": "creates a large object",
	"lo_create": "creates a large object", "lo_unlink": "deletes a large object",
	"lo_put": "writes a large object", "lo_get": "reads a large object",
	"lo_open": "opens a large object", "loread": "reads a large object", "lowrite": "writes a large object",
	"lo_truncate": "writes a large object",
	// Session, settings, transactions.
	"set_config": "changes a setting", "current_setting": "reads session settings",
	"setseed": "changes session state", "pg_reload_conf": "reloads the server configuration",
	"txid_current": "assigns a transaction id", "pg_current_xact_id": "assigns a transaction id",
	"txid_current_if_assigned": "reads transaction state", "pg_current_xact_id_if_assigned": "reads transaction state",
	"pg_backend_pid": "reads session state", "version": "reads server state",
	"current_database": "reads session state", "current_schema": "reads session state",
	"current_schemas": "reads session state", "inet_client_addr": "reads session state",
	"inet_server_addr": "reads session state",
	// Sequences.
	"nextval": "advances a sequence", "setval": "changes a sequence",
	"currval": "reads session sequence state", "lastval": "reads session sequence state",
	// Locks and sleeping.
	"pg_advisory_lock": "takes a session lock", "pg_advisory_lock_shared": "takes a session lock",
	"pg_advisory_xact_lock": "takes a lock", "pg_advisory_xact_lock_shared": "takes a lock",
	"pg_try_advisory_lock": "takes a session lock", "pg_try_advisory_lock_shared": "takes a session lock",
	"pg_try_advisory_xact_lock": "takes a lock", "pg_try_advisory_xact_lock_shared": "takes a lock",
	"pg_advisory_unlock": "releases a session lock", "pg_advisory_unlock_all": "releases session locks",
	"pg_advisory_unlock_shared": "releases a session lock",
	"pg_sleep":                  "sleeps", "pg_sleep_for": "sleeps", "pg_sleep_until": "sleeps",
	// Other sessions, server, replication.
	"pg_terminate_backend": "kills a session", "pg_cancel_backend": "cancels a session",
	"pg_switch_wal": "writes WAL", "pg_logical_emit_message": "writes a WAL message",
	"pg_create_physical_replication_slot": "creates a replication slot",
	"pg_create_logical_replication_slot":  "creates a replication slot",
	"pg_drop_replication_slot":            "drops a replication slot",
	"pg_copy_physical_replication_slot":   "creates a replication slot",
	"pg_copy_logical_replication_slot":    "creates a replication slot",
	"pg_replication_origin_create":        "writes the catalog", "pg_replication_origin_drop": "writes the catalog",
	"pg_replication_origin_session_setup":    "changes session state",
	"pg_replication_origin_advance":          "writes replication state",
	"pg_import_system_collations":            "writes the catalog",
	"pg_stat_get_activity":                   "reads other sessions",
	"pg_stat_reset":                          "resets statistics",
	"pg_stat_reset_shared":                   "resets statistics",
	"pg_stat_reset_single_table_counters":    "resets statistics",
	"pg_stat_reset_single_function_counters": "resets statistics",
	"pg_stat_reset_slru":                     "resets statistics",
	"pg_stat_reset_replication_slot":         "resets statistics",
	"pg_stat_reset_subscription_stats":       "resets statistics",
	"pg_log_backend_memory_contexts":         "writes the server log",
	"pg_notify":                              "sends a notification",
	"pg_create_restore_point":                "writes WAL",
	"pg_promote":                             "promotes a standby",
	"pg_rotate_logfile":                      "rotates the server log",
	"pg_backup_start":                        "starts a backup", "pg_backup_stop": "stops a backup",
	"pg_wal_replay_pause": "pauses recovery", "pg_wal_replay_resume": "resumes recovery",
	// Catalog readers: they reveal code, privileges or other objects.
	"pg_get_viewdef": "reveals a view's code", "pg_get_functiondef": "reveals a function's code",
	"pg_get_ruledef": "reveals catalog definitions", "pg_get_triggerdef": "reveals catalog definitions",
	"pg_get_indexdef": "reveals catalog definitions", "pg_get_constraintdef": "reveals catalog definitions",
	"has_table_privilege": "reads the catalog", "has_column_privilege": "reads the catalog",
	"has_schema_privilege": "reads the catalog", "has_function_privilege": "reads the catalog",
	"has_database_privilege": "reads the catalog", "pg_has_role": "reads the catalog",
	"obj_description": "reads the catalog", "col_description": "reads the catalog",
	"pg_relation_size": "reads a relation named by its argument", "pg_total_relation_size": "reads a relation named by its argument",
	"pg_table_size":  "reads a relation named by its argument",
	"pg_size_pretty": "is not needed",
	"to_regclass":    "resolves catalog names", "to_regproc": "resolves catalog names",
	"to_regtype": "resolves catalog names", "to_regrole": "resolves catalog names",
	"to_regnamespace":     "resolves catalog names",
	"row_security_active": "reads the catalog",
}

// allowedFunctions is the flattened allowlist, built once.
var allowedFunctions = func() map[string]bool {
	m := make(map[string]bool)
	for _, g := range allowedFunctionGroups {
		for _, f := range g {
			m[f] = true
		}
	}
	return m
}()

// AllowedFunctions returns the function allowlist (lower-case names), for
// documentation and for the web form's help text.
func AllowedFunctions() []string {
	out := make([]string, 0, len(allowedFunctions))
	for _, g := range allowedFunctionGroups {
		out = append(out, g...)
	}
	return out
}

// allowedSQLValueFunctions are the SQLValueFunction keywords (CURRENT_DATE,
// ...) that read only the clock. CURRENT_USER, SESSION_USER, CURRENT_ROLE,
// USER, CURRENT_CATALOG and CURRENT_SCHEMA read session state and are refused.
var allowedSQLValueFunctions = map[string]bool{
	"SVFOP_CURRENT_DATE": true, "SVFOP_CURRENT_TIME": true, "SVFOP_CURRENT_TIME_N": true,
	"SVFOP_CURRENT_TIMESTAMP": true, "SVFOP_CURRENT_TIMESTAMP_N": true,
	"SVFOP_LOCALTIME": true, "SVFOP_LOCALTIME_N": true,
	"SVFOP_LOCALTIMESTAMP": true, "SVFOP_LOCALTIMESTAMP_N": true,
}

// allowedSampleMethods are the built-in TABLESAMPLE methods.
var allowedSampleMethods = map[string]bool{"system": true, "bernoulli": true}

// regTypes are the object-identifier types whose input functions look names
// up in the system catalogs ('users'::regclass, 'pg_authid'::regclass, ...).
// Casting to them probes the catalog and turns table names into arguments of
// functions that read by oid, so they are refused everywhere a type is named.
var regTypes = map[string]bool{
	"regclass": true, "regproc": true, "regprocedure": true, "regoper": true,
	"regoperator": true, "regtype": true, "regrole": true, "regnamespace": true,
	"regconfig": true, "regdictionary": true, "regcollation": true,
}
