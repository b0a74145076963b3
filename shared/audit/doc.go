// Package audit records Airlock's audit trail: one JSON entry per event, linked into
// tamper-evident hash chains, written synchronously to Cloud Logging (production) or to a
// JSON-lines file (local development), and checked by [Verify] and scripts/audit-verify.
//
// # Recording
//
// Each function instance makes one [Recorder] (lazily, on its first request) and records
// before it acts; if Record fails, it must not act:
//
//	rec, err := audit.FromConfig(ctx, cfg, audit.WithFunction("ExecuteQuery"),
//		audit.WithHeadStore(audit.NewPGHeadStore(pool, "airlock_query")))
//	…
//	if err := rec.Record(ctx, audit.Entry{Event: audit.EventQueryAttempt, Actor: who, SQL: q}); err != nil {
//		return err // wraps audit.ErrUnavailable: fail closed
//	}
//
// [Config] chooses the sink (cloudlogging or file), the project and the file (default
// .dev/audit.jsonl); app.LoadConfig fills it from AUDIT_SINK, AUDIT_PROJECT (default
// GOOGLE_CLOUD_PROJECT) and AUDIT_FILE. Constructors do no I/O;
// the Cloud Logging client or the file is opened on the first Record and again on a later
// one if opening failed. Cloud Logging entries go to the log "airlock-audit" with
// Logger.LogSync, as jsonPayload, with the entry's severity and the labels chain, seq,
// event and function. [Recorder.Record] is bounded by a timeout ([WithTimeout], default
// 5s), so a hung sink fails closed.
//
// # Entry fields
//
// The JSON field names are a public contract: they do not change. Fields that are empty
// (or zero) are omitted, except the first seven, which every entry has.
//
//	field              type       meaning
//	-----------------  ---------  -------------------------------------------------------------
//	seq                integer    position in the chain: 1, 2, 3, … with no gaps
//	chain              string     chain id, one per Recorder (instance): "20260301T101500Z-9f86d081884c7d65"
//	prev_hash          string     hash of the entry at seq-1; 64 zeros for seq 1
//	hash               string     SHA-256 (lower-case hex) of this entry without "hash"; see below
//	time               string     when recorded, RFC 3339 UTC, to the microsecond: "2026-03-01T10:15:00.123456Z";
//	                              never earlier than the previous entry's time
//	event              string     what happened: query.attempt, query.result, request.created,
//	                              request.approved, request.denied, grant.created, grant.expired,
//	                              grant.revoked, breakglass.activated, session.terminated,
//	                              sweep.run, audit.checkpoint, security.* (alerts)
//	severity           string     INFO | NOTICE | WARNING | ALERT (default INFO; ALERT for security.*)
//	actor              string     email of the person (or service account) acting
//	function           string     the Cloud Function: ExecuteQuery, RequestAccess, ApprovalCallback, SweepExpired
//	request_id         string     id of the HTTP request / execution, to join with other logs
//	grant_ids          [integer]  ids of the grants (airlock.grants) the action relied on or changed
//	access_request_id  integer    id of the access request (airlock.access_requests)
//	sql                string     the statement as submitted (cut at 64 KiB; then details.sql_bytes and
//	                              details.sql_sha256 describe the whole statement)
//	fingerprint        string     normalized query fingerprint
//	mode               string     execution mode, for example read or write
//	decision           string     allowed | denied | error | pending
//	rule               string     the policy or guard rule that decided
//	message            string     human-readable summary
//	tables             [string]   tables the statement touches, schema-qualified
//	masked_columns     [string]   columns returned masked (table.column)
//	rows               integer    rows returned or affected
//	bytes              integer    bytes returned
//	duration_ms        integer    execution time in milliseconds
//	error_class        string     SQLSTATE class ("42") or an internal class ("timeout")
//	reason             string     why: the requester's justification, a denial reason, a checkpoint's trigger
//	details            object     event-specific fields (audit.checkpoint: head_seq, head_hash, entries)
//	supersedes         [string]   hashes of earlier attempts at this seq that the sink reported as failed
//	cert               object     the chain's certificate ([Certificate]); on seq 1 and checkpoints
//	sig                string     Ed25519 signature of chain, seq and hash by the chain's key; see below
//
// Integers are at most 2^53 (Cloud Logging stores JSON numbers as doubles).
//
// # Chains
//
// Every Recorder starts its own chain with a fresh random id, so instances never
// coordinate. Record holds the recorder's lock while it seals and writes an entry, so a
// chain's entries reach the sink in seq order (and in time order: the time is taken under
// the lock), and advances the chain only once the sink has confirmed the write. A
// JSON-lines file is meant to have one writer at a time (scripts/dev.sh's devserver
// shares one Recorder among its functions), so its lines are in time order across
// chains too, and [Verify] reports a line earlier than the one before it. A failed write returns an error wrapping [ErrUnavailable] and
// does not use up the seq: the next entry takes it, and lists the failed attempt's hash in
// supersedes, because a write that timed out may still have landed. The verifier accepts
// such an attempt as a side branch only when a later entry at the same seq supersedes it.
//
// Every 100 entries or 5 minutes ([WithCheckpoint]), and on Close, the recorder writes an
// audit.checkpoint entry whose details name the current head (head_seq, head_hash), and
// gives the head (after the chain's first entry too) to a [HeadStore] ([PGHeadStore] in production, upserting
// airlock.audit_heads; [FileHeadStore] locally, appending to AUDIT_FILE.heads.jsonl after
// every entry). A head kept outside the log is what reveals entries cut off the end.
//
// # Signatures
//
// Each chain's entries are signed with an Ed25519 key the recorder makes when the chain
// starts and keeps in memory; a [Signer] (Cloud KMS in production, [KMSSigner]; a local
// key for scripts/dev.sh, [LocalSigner]) signs the chain's [Certificate] once, binding that
// key to the chain. sig = Ed25519 signature of "airlock-audit-entry/v1\n" + chain + "\n" +
// seq + "\n" + hash. A [Keyring] holds the public keys a verifier trusts; nothing else is
// needed to verify. A chain whose certificate cannot be had, because KMS fails or hangs, has
// no entries: Record returns [ErrUnavailable].
//
// # Canonical encoding and hash
//
// hash = lower-case hex SHA-256 of the canonical encoding of the entry's JSON object with
// the "hash" and "sig" members removed (every other member is covered). The
// canonical encoding is RFC 8785, the JSON Canonicalization Scheme:
//
//   - no whitespace between tokens; UTF-8;
//   - object members sorted by key, comparing keys as sequences of UTF-16 code units;
//   - strings: " and \ escaped as \" and \\; U+0008, U+0009, U+000A, U+000C, U+000D as
//     \b \t \n \f \r; other characters below U+0020 as \u00xx (lower-case hex); all other
//     characters as themselves (no escaping of <, >, &, U+2028 or non-ASCII);
//   - numbers: parsed as IEEE-754 doubles and written as ECMAScript's
//     Number.prototype.toString writes them: integers without a fraction or exponent
//     (5, not 5.0), shortest round-trip digits, exponent form below 1e-6 and from 1e21
//     (1e-7, 1e+21), -0 as 0;
//   - true, false, null as themselves; arrays in their order.
//
// Because numbers are canonicalized by value, the hash survives Cloud Logging's conversion
// of jsonPayload to a protobuf Struct and back (5 may come back as 5.0). Any RFC 8785
// library (Python, JavaScript, Java and Go have them) re-computes it:
//
//	obj = json.loads(line); del obj["hash"]; obj.pop("sig", None); sha256(jcs.canonicalize(obj)).hexdigest()
//
// # Verifying
//
// [ReadTrail] reads a JSON-lines file or a gcloud export (detected), refusing any entry
// that is not exactly what a recorder writes; [Verify] checks it against the trusted keys
// and the heads and returns a [Report] of [Finding]s. See scripts/audit-verify and
// README.md for the commands.
package audit
