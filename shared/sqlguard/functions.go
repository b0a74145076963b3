package sqlguard

import "strings"

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

// A fnKind says how a function treats rows.
type fnKind uint8

const (
	scalarFn     fnKind = iota
	aggregateFn         // many rows in, one value out, in constant space or a spilling sort
	accumulateFn        // many rows in, one value out, every input kept in memory
	windowFn            // a window function (row_number, lag, ...)
	setFn               // one call returns rows
)

// A fn is one allowlisted function with its size class: how large its result
// can be given its arguments (sizes.go). The memory rules refuse a function
// without one, so a function added here without thinking about its size fails
// closed.
type fn struct {
	name string
	kind fnKind
	size sizeRule
	rows rowRule  // setFn: how many rows one call returns
	held sizeRule // accumulateFn: what one input row adds
	// byName: named arguments are allowed. Size rules read arguments by
	// position, so only functions whose size does not depend on them allow
	// them (fixedFn).
	byName bool
}

func scalar(name string, size sizeRule) fn { return fn{name: name, size: size} }

// sized is a scalar whose size rule reads particular arguments.
func sized(name string, size sizeRule) fn { return fn{name: name, size: size} }

// fixedFns are scalars whose result has a fixed size, whatever their
// arguments: they may be called with named arguments (make_interval(days => 1)).
func fixedFns(n float64, names ...string) []fn {
	out := scalars(fixed(n), names...)
	for i := range out {
		out[i].byName = true
	}
	return out
}

func agg(name string, size sizeRule) fn { return fn{name: name, kind: aggregateFn, size: size} }

func accum(name string, held sizeRule) fn {
	return fn{name: name, kind: accumulateFn, held: held, size: func(*call) bound { return bound{h: 1} }}
}

func win(name string, size sizeRule) fn { return fn{name: name, kind: windowFn, size: size} }

func srf(name string, size sizeRule, rows rowRule) fn {
	return fn{name: name, kind: setFn, size: size, rows: rows}
}

func scalars(size sizeRule, names ...string) []fn {
	out := make([]fn, len(names))
	for i, n := range names {
		out[i] = scalar(n, size)
	}
	return out
}

func aggs(size sizeRule, names ...string) []fn {
	out := make([]fn, len(names))
	for i, n := range names {
		out[i] = agg(n, size)
	}
	return out
}

func group(parts ...[]fn) []fn {
	var out []fn
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var allowedFunctionGroups = [][]fn{
	// Aggregates. Those that keep every input (string_agg, array_agg, the
	// json ones, range_agg) are accumulators: see memory.go.
	group(
		[]fn{agg("count", fixed(20))},
		aggs(numeric(1), "sum", "avg"),
		aggs(same(0), "min", "max", "any_value", "bit_and", "bit_or", "bit_xor", "range_intersect_agg"),
		aggs(numeric(2), "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp"),
		aggs(fixed(32), "corr", "covar_pop", "covar_samp",
			"regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2",
			"regr_slope", "regr_sxx", "regr_sxy", "regr_syy", "bool_and", "bool_or", "every"),
		[]fn{
			// WITHIN GROUP (ORDER BY x): they sort, in a work area that spills.
			agg("percentile_cont", scaleArg(0, 64, 128)),
			agg("percentile_disc", percentileDiscSize),
			agg("mode", func(c *call) bound { return maxOf(c.order) }),
			accum("string_agg", heldSame), accum("array_agg", heldSame),
			accum("json_agg", heldJSON), accum("jsonb_agg", heldJSONB),
			accum("json_agg_strict", heldJSON), accum("jsonb_agg_strict", heldJSONB),
			accum("json_object_agg", heldJSON), accum("jsonb_object_agg", heldJSONB),
			accum("json_object_agg_strict", heldJSON), accum("jsonb_object_agg_strict", heldJSONB),
			accum("json_object_agg_unique", heldJSON), accum("jsonb_object_agg_unique", heldJSONB),
			accum("json_object_agg_unique_strict", heldJSON), accum("jsonb_object_agg_unique_strict", heldJSONB),
			accum("range_agg", heldSame),
		},
	),
	// Window functions.
	{
		win("row_number", fixed(20)), win("rank", fixed(20)), win("dense_rank", fixed(20)),
		win("percent_rank", fixed(32)), win("cume_dist", fixed(32)), win("ntile", fixed(20)),
		win("lag", func(c *call) bound { return maxBound(c.arg(0), c.arg(2)) }),
		win("lead", func(c *call) bound { return maxBound(c.arg(0), c.arg(2)) }),
		win("first_value", same(0)), win("last_value", same(0)), win("nth_value", same(0)),
	},
	// Numbers. (GREATEST, LEAST, COALESCE and NULLIF are parse-tree nodes, not calls.)
	group(
		scalars(numeric(1), "abs", "round", "trunc", "ceil", "ceiling", "floor", "mod", "div",
			"sqrt", "cbrt", "ln", "log", "log10", "sign", "gcd", "lcm", "trim_scale"),
		[]fn{sized("power", powerSize), sized("pow", powerSize), sized("exp", expSize), sized("factorial", factorialSize)},
		scalars(fixed(32), "pi", "degrees", "radians",
			"sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sind", "cosd", "tand",
			"width_bucket", "scale", "min_scale", "to_hex",
			"random", // volatile, see the file comment
			"num_nulls", "num_nonnulls"),
	),
	// Strings. like_escape and similar_to_escape are what LIKE ... ESCAPE and
	// SIMILAR TO call; btrim/ltrim/rtrim/substring/position/overlay are what
	// the TRIM/SUBSTRING/POSITION/OVERLAY syntax calls.
	group(
		scalars(fixed(20), "length", "char_length", "character_length", "octet_length", "bit_length",
			"position", "strpos", "ascii", "starts_with", "is_normalized",
			"regexp_count", "regexp_instr", "regexp_like"),
		// Case mapping can turn a 2-byte letter into a 3-byte one.
		scalars(scaleArg(0, 2, 0), "lower", "upper", "initcap"),
		scalars(same(0), "btrim", "ltrim", "rtrim", "substr", "substring", "left", "right",
			"split_part", "reverse", "unistr", "regexp_substr"),
		[]fn{
			scalar("overlay", scaleAll(1, 0)),
			sized("replace", replaceSize),
			scalar("translate", scaleArg(0, 4, 0)), // a one-byte character may become four
			scalar("concat", scaleAll(1, 0)),
			sized("concat_ws", concatWsSize),
			sized("repeat", repeatSize), sized("lpad", padSize), sized("rpad", padSize),
			scalar("chr", fixed(4)),
			sized("format", formatSize),
			scalar("quote_ident", scaleArg(0, 2, 4)), scalar("quote_literal", scaleArg(0, 2, 4)),
			scalar("quote_nullable", scaleArg(0, 2, 4)),
			scalar("md5", fixed(32)), scalar("sha224", fixed(130)), scalar("sha256", fixed(130)),
			scalar("sha384", fixed(130)), scalar("sha512", fixed(130)),
			scalar("encode", scaleArg(0, 4, 4)), // escape format: \ooo per byte
			scalar("decode", scaleArg(0, 2, 2)),
			scalar("convert_from", scaleArg(0, 4, 0)), scalar("convert_to", scaleArg(0, 8, 2)),
			scalar("normalize", scaleArg(0, 18, 0)), // NFKD of U+FDFA is 18 characters
			scalar("string_to_array", scaleArg(0, 9, 8)),
			srf("string_to_table", same(0), rowsFromValue(0)),
			sized("array_to_string", arrayToStringSize),
			sized("regexp_match", regexpMatchSize),
			srf("regexp_matches", regexpMatchSize, rowsFromValue(0)),
			sized("regexp_replace", regexpReplaceSize),
			scalar("regexp_split_to_array", scaleArg(0, 9, 8)),
			srf("regexp_split_to_table", same(0), rowsFromValue(0)),
			scalar("like_escape", scaleArg(0, 2, 8)),
			scalar("similar_to_escape", scaleArg(0, 3, 16)),
			sized("to_char", toCharSize),
			scalar("to_number", numeric(1)),
		},
	),
	// Dates and times. timezone is AT TIME ZONE; overlaps is OVERLAPS;
	// extract and date_part are EXTRACT. The clock readers are volatile or
	// stable but read nothing but the clock.
	fixedFns(64,
		"now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
		"date_trunc", "date_part", "extract", "date_bin", "age",
		"make_date", "make_time", "make_timestamp", "make_timestamptz", "make_interval",
		"justify_days", "justify_hours", "justify_interval",
		"to_date", "to_timestamp", "isfinite", "timezone", "overlaps",
		"date_add", "date_subtract",
	),
	// Type-name casts written as calls, e.g. date(x), numeric(x), text(x).
	group(
		scalars(fixed(128), "date", "int2", "int4", "int8", "float4", "float8", "bool", "interval", "timestamptz"),
		scalars(same(0), "text", "varchar"),
		[]fn{sized("bpchar", bpcharSize), sized("numeric", numericCast)},
	),
	// JSON and JSONB. Text in JSON is escaped: a control character becomes
	// six (\u0001).
	group(
		scalars(toJSON, "to_json", "row_to_json", "array_to_json"),
		scalars(scaleAll(2, 8), "to_jsonb"),
		scalars(jsonBuild, "json_build_object", "json_build_array", "json_object"),
		scalars(jsonbBuild, "jsonb_build_object", "jsonb_build_array", "jsonb_object"),
		[]fn{
			srf("json_each", same(0), rowsFromValue(0)), srf("jsonb_each", same(0), rowsFromValue(0)),
			srf("json_each_text", same(0), rowsFromValue(0)), srf("jsonb_each_text", same(0), rowsFromValue(0)),
			srf("json_array_elements", same(0), rowsFromValue(0)), srf("jsonb_array_elements", same(0), rowsFromValue(0)),
			srf("json_array_elements_text", same(0), rowsFromValue(0)), srf("jsonb_array_elements_text", same(0), rowsFromValue(0)),
			srf("json_object_keys", same(0), rowsFromValue(0)), srf("jsonb_object_keys", same(0), rowsFromValue(0)),
			srf("json_to_recordset", same(0), rowsFromValue(0)), srf("jsonb_to_recordset", same(0), rowsFromValue(0)),
			srf("json_populate_recordset", same(1), rowsFromValue(1)), srf("jsonb_populate_recordset", same(1), rowsFromValue(1)),
			sized("jsonb_pretty", jsonbPrettySize),
			srf("jsonb_path_query", jsonbPathSize, rowsFromValue(0)), srf("jsonb_path_query_tz", jsonbPathSize, rowsFromValue(0)),
			sized("jsonb_path_query_array", jsonbPathSize), sized("jsonb_path_query_array_tz", jsonbPathSize),
			sized("jsonb_path_query_first", jsonbPathSize), sized("jsonb_path_query_first_tz", jsonbPathSize),
		},
		fixedFns(20, "json_array_length", "jsonb_array_length", "json_typeof", "jsonb_typeof",
			"jsonb_path_exists", "jsonb_path_match", "jsonb_path_exists_tz", "jsonb_path_match_tz"),
		scalars(same(0), "json_extract_path", "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text",
			"json_strip_nulls", "jsonb_strip_nulls", "json_to_record", "jsonb_to_record"),
		scalars(same(1), "json_populate_record", "jsonb_populate_record"),
		[]fn{
			sized("jsonb_set", func(c *call) bound { return c.arg(0).plus(c.arg(2)).add(16) }),
			sized("jsonb_set_lax", func(c *call) bound { return c.arg(0).plus(c.arg(2)).add(16) }),
			sized("jsonb_insert", func(c *call) bound { return c.arg(0).plus(c.arg(2)).add(16) }),
		},
	),
	// Arrays and set-returning helpers.
	group(
		[]fn{
			srf("unnest", same(0), rowsFromValue(0)),
			scalar("array_positions", scaleArg(0, 8, 8)),
			sized("array_replace", arrayReplaceSize),
			sized("array_fill", arrayFillSize),
			srf("generate_series", fixed(64), seriesRows),
			srf("generate_subscripts", fixed(20), rowsFromValue(0)),
			scalar("array_dims", fixed(160)),
		},
		scalars(fixed(20), "array_length", "cardinality", "array_position", "array_lower", "array_upper", "array_ndims"),
		scalars(same(0), "array_remove", "trim_array"),
		scalars(scaleAll(1, 8), "array_append", "array_prepend", "array_cat"),
	),
	// Ranges.
	group(
		scalars(fixed(8), "isempty", "lower_inc", "upper_inc", "lower_inf", "upper_inf"),
		scalars(scaleAll(1, 8), "range_merge", "int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange"),
	),
	// Text search over values the query already holds. ts_stat and the
	// ts_rewrite(query, text) form execute SQL text and are NOT here.
	group(
		scalars(scaleLast(3, 8), "to_tsvector"),
		scalars(scaleLast(4, 8), "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery"),
		scalars(fixed(32), "ts_rank", "ts_rank_cd", "numnode"),
		[]fn{
			sized("ts_headline", tsHeadlineSize),
			scalar("setweight", scaleArg(0, 2, 0)), scalar("strip", same(0)),
			scalar("tsvector_to_array", scaleArg(0, 3, 8)), scalar("array_to_tsvector", scaleArg(0, 2, 8)),
			scalar("querytree", scaleArg(0, 2, 8)),
		},
	),
	// XML over values the query already holds (XMLTABLE, xpath). The *_to_xml
	// family executes SQL or reads tables by name and is NOT here.
	group(
		[]fn{sized("xpath", xpathSize)},
		scalars(fixed(8), "xpath_exists", "xml_is_well_formed", "xml_is_well_formed_document", "xml_is_well_formed_content"),
	),
	// Miscellaneous value functions.
	{
		scalar("gen_random_uuid", fixed(36)), // volatile, see the file comment
		scalar("pg_typeof", fixed(64)),       // the type of its argument; see walker.funcCall
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
var allowedFunctions = func() map[string]fn {
	m := make(map[string]fn)
	for _, g := range allowedFunctionGroups {
		for _, f := range g {
			m[f.name] = f
		}
	}
	return m
}()

// AllowedFunctions returns the function allowlist (lower-case names), for
// documentation and for the web form's help text.
func AllowedFunctions() []string {
	out := make([]string, 0, len(allowedFunctions))
	for _, g := range allowedFunctionGroups {
		for _, f := range g {
			out = append(out, f.name)
		}
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

// refusedTypes are the types that may not be named anywhere (casts, typed
// literals, column definition lists, arrays of them), with the reason.
//
// The reg* types and aclitem are every type whose input function consults the
// system catalogs: 'pg_authid'::regclass says whether a relation exists,
// 'name=r/postgres'::aclitem whether a role does (query pg_type for typinput
// LIKE 'reg%in' OR typinput = 'aclitemin'). They also turn names into
// arguments of functions that read by oid. xid and cid (and aclitem) can only
// be compared by hashing, never sorted, so a join or set operation on them is
// hashed even with enable_hashjoin off, without a memory limit.
var refusedTypes = func() map[string]string {
	m := map[string]string{
		"aclitem": "its input looks role names up in the system catalogs",
		"xid":     "its values can only be compared by hashing, which a statement can make use unbounded memory",
		"cid":     "its values can only be compared by hashing, which a statement can make use unbounded memory",
	}
	for _, t := range []string{"regclass", "regproc", "regprocedure", "regoper", "regoperator", "regtype",
		"regrole", "regnamespace", "regconfig", "regdictionary", "regcollation"} {
		m[t] = "it looks names up in the system catalogs"
	}
	return m
}()

// builtinTSConfigs are PostgreSQL's own text search configurations. A string
// literal given as a configuration (to_tsvector('english', x)) is looked up
// in the catalogs like a regconfig cast; only these names are allowed.
var builtinTSConfigs = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(`arabic armenian basque catalan danish dutch english finnish french
		german greek hindi hungarian indonesian irish italian lithuanian nepali norwegian portuguese
		romanian russian serbian simple spanish swedish tamil turkish yiddish`) {
		m[c] = true
	}
	return m
}()
