package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// A Severity says how urgent an [Entry] is. Its values are the Cloud Logging severity names,
// and the Cloud Logging sink writes the entry with that severity.
type Severity string

// The severities an [Entry] may have.
const (
	// SeverityInfo is for routine events: queries, requests, grants. The default.
	SeverityInfo Severity = "INFO"
	// SeverityNotice is for normal but significant events, such as a grant expiring.
	SeverityNotice Severity = "NOTICE"
	// SeverityWarning is for denied or failed actions that may need a look.
	SeverityWarning Severity = "WARNING"
	// SeverityAlert is for security events that need a person now: break-glass,
	// evasion attempts, forged signatures. The default for "security.*" events.
	SeverityAlert Severity = "ALERT"
)

// Events recorded by Airlock. Event names are dotted, lower case and stable; new events
// may be added, but an existing name never changes meaning. Security alerts use the
// "security." prefix (for example "security.signature_invalid") and default to [SeverityAlert].
const (
	EventQueryAttempt    = "query.attempt"
	EventQueryResult     = "query.result"
	EventRequestCreated  = "request.created"
	EventRequestApproved = "request.approved"
	EventRequestDenied   = "request.denied"
	// EventRequestRefused and EventDecisionRefused record an authenticated request that
	// RequestAccess or ApprovalCallback refused (Rule holds the answer's code): a request
	// without a verified identity is the only one left off the trail.
	EventRequestRefused      = "request.refused"
	EventDecisionRefused     = "decision.refused"
	EventGrantCreated        = "grant.created"
	EventGrantExpired        = "grant.expired"
	EventGrantRevoked        = "grant.revoked"
	EventBreakglassActivated = "breakglass.activated"
	EventSessionTerminated   = "session.terminated"
	EventSweepRun            = "sweep.run"
	// EventCheckpoint is written by the [Recorder] itself; see [Recorder.Close].
	EventCheckpoint = "audit.checkpoint"
	// SecurityEventPrefix starts the name of every security alert.
	SecurityEventPrefix = "security."
)

// Values of [Entry.Decision].
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
	DecisionError   = "error"
	DecisionPending = "pending"
)

// GenesisHash is the prev_hash of the first entry (seq 1) of every chain: 64 zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxSQLBytes is the longest sql an entry keeps (64 KiB). Longer statements are cut at a
// UTF-8 boundary, and details.sql_sha256 and details.sql_bytes then describe the whole
// statement, so the entry stays under Cloud Logging's 256 KB limit.
const MaxSQLBytes = 64 << 10

// An Entry is one audit record. Callers fill in what they know (Event at least); the
// [Recorder] sets Seq, Chain, PrevHash, Hash, Time, Supersedes, Cert and Sig, and fills Severity and
// Function when they are empty.
//
// The JSON names are a public contract documented in the package overview: they never
// change. Empty fields are omitted, so rows, bytes and duration_ms are absent when zero.
type Entry struct {
	Seq      int64     `json:"seq"`
	Chain    string    `json:"chain"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash,omitempty"`
	Time     time.Time `json:"time"`
	Event    string    `json:"event"`
	Severity Severity  `json:"severity"`

	Actor           string  `json:"actor,omitempty"`
	Function        string  `json:"function,omitempty"`
	RequestID       string  `json:"request_id,omitempty"`
	GrantIDs        []int64 `json:"grant_ids,omitempty"`
	AccessRequestID string  `json:"access_request_id,omitempty"`

	SQL           string   `json:"sql,omitempty"`
	Fingerprint   string   `json:"fingerprint,omitempty"`
	Mode          string   `json:"mode,omitempty"`
	Decision      string   `json:"decision,omitempty"`
	Rule          string   `json:"rule,omitempty"`
	Message       string   `json:"message,omitempty"`
	Tables        []string `json:"tables,omitempty"`
	MaskedColumns []string `json:"masked_columns,omitempty"`
	Rows          int64    `json:"rows,omitempty"`
	Bytes         int64    `json:"bytes,omitempty"`
	DurationMS    int64    `json:"duration_ms,omitempty"`
	ErrorClass    string   `json:"error_class,omitempty"`
	Reason        string   `json:"reason,omitempty"`

	// Details holds event-specific fields. Values must encode as JSON; keep integers
	// below 2^53 (Cloud Logging stores numbers as doubles), or use strings.
	Details map[string]any `json:"details,omitempty"`

	// Supersedes lists the hashes of earlier attempts at this same seq that the sink
	// reported as failed. Such an attempt may still have landed (a timeout after the
	// server stored it); the verifier accepts it as a side branch only if listed here.
	Supersedes []string `json:"supersedes,omitempty"`

	// Cert is the chain's certificate: the chain's Ed25519 entry key, signed by the
	// [Signer]. The recorder puts it into the chain's first entry and every checkpoint,
	// so that an export of a time window still holds it.
	Cert *Certificate `json:"cert,omitempty"`

	// Sig is the Ed25519 signature, by the chain's entry key, of the chain, the seq and
	// the hash (standard base64). Only the recorder that started the chain holds the
	// key, in memory, so no one else can make an entry that verifies.
	Sig string `json:"sig,omitempty"`
}

// prepare checks the caller's fields and fills defaults. It never changes the caller's
// Details map: when the SQL is cut, it works on a copy.
func (e *Entry) prepare(function string) error {
	if e.Event == "" {
		return fmt.Errorf("audit: entry has no event")
	}
	if e.Severity == "" {
		e.Severity = SeverityInfo
		if strings.HasPrefix(e.Event, SecurityEventPrefix) {
			e.Severity = SeverityAlert
		}
	}
	switch e.Severity {
	case SeverityInfo, SeverityNotice, SeverityWarning, SeverityAlert:
	default:
		return fmt.Errorf("audit: entry %s has unknown severity %q", e.Event, e.Severity)
	}
	if e.Function == "" {
		e.Function = function
	}
	if len(e.SQL) > MaxSQLBytes {
		sum := sha256.Sum256([]byte(e.SQL))
		d := make(map[string]any, len(e.Details)+2)
		for k, v := range e.Details {
			d[k] = v
		}
		d["sql_sha256"] = hex.EncodeToString(sum[:])
		d["sql_bytes"] = len(e.SQL)
		e.Details = d
		cut := MaxSQLBytes
		for cut > 0 && !utf8.RuneStart(e.SQL[cut]) {
			cut--
		}
		e.SQL = e.SQL[:cut]
	}
	return nil
}
