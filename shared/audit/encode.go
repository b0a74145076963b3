package audit

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// appendEntryHashed appends the bytes an entry's hash covers: the RFC 8785 form of e's
// JSON object without its "hash" and "sig" members. It writes them straight from the
// struct, in one pass; the result is byte for byte what encoding e with encoding/json,
// decoding the text and canonicalizing it gives (the verifier's way, [HashPayload]), as
// TestEntryCanonicalMatchesDecoded checks over a table of entries. Details values of
// types other than the common ones below take that long way, value by value.
//
// The members are written in the order RFC 8785 sorts them. Entry's names are ASCII, so
// that is byte order; omitempty members are left out exactly when encoding/json leaves
// them out.
func appendEntryHashed(b []byte, e *Entry) ([]byte, error) {
	var err error
	m := members{b: b}
	m.str("access_request_id", e.AccessRequestID, true)
	m.str("actor", e.Actor, true)
	m.int("bytes", e.Bytes, true)
	if e.Cert != nil {
		m.name("cert")
		if m.b, err = appendCertificate(m.b, e.Cert); err != nil {
			return nil, err
		}
	}
	m.str("chain", e.Chain, false)
	m.str("decision", e.Decision, true)
	if len(e.Details) > 0 {
		m.name("details")
		if m.b, err = appendValue(m.b, e.Details); err != nil {
			return nil, fmt.Errorf("audit: details: %w", err)
		}
	}
	m.int("duration_ms", e.DurationMS, true)
	m.str("error_class", e.ErrorClass, true)
	m.str("event", e.Event, false)
	m.str("fingerprint", e.Fingerprint, true)
	m.str("function", e.Function, true)
	if len(e.GrantIDs) > 0 {
		m.name("grant_ids")
		m.b = append(m.b, '[')
		for i, id := range e.GrantIDs {
			if i > 0 {
				m.b = append(m.b, ',')
			}
			m.b, _ = appendFloat(m.b, float64(id)) // finite
		}
		m.b = append(m.b, ']')
	}
	m.strs("masked_columns", e.MaskedColumns)
	m.str("message", e.Message, true)
	m.str("mode", e.Mode, true)
	m.str("prev_hash", e.PrevHash, false)
	m.str("reason", e.Reason, true)
	m.str("request_id", e.RequestID, true)
	m.int("rows", e.Rows, true)
	m.str("rule", e.Rule, true)
	m.int("seq", e.Seq, false)
	m.str("severity", string(e.Severity), false)
	m.str("sql", e.SQL, true)
	m.strs("supersedes", e.Supersedes)
	m.strs("tables", e.Tables)
	m.name("time")
	if m.b, err = appendTime(m.b, e.Time); err != nil {
		return nil, err
	}
	return append(m.b, '}'), nil
}

// appendCertificate appends the RFC 8785 form of c, all its members included.
func appendCertificate(b []byte, c *Certificate) ([]byte, error) {
	m := members{b: b}
	m.str("alg", c.Algorithm, false)
	m.str("chain", c.Chain, false)
	m.str("entry_key", c.EntryKey, false)
	m.str("function", c.Function, true)
	m.str("signature", c.Signature, false)
	m.str("signer", c.Signer, false)
	m.name("started")
	var err error
	if m.b, err = appendTime(m.b, c.Started); err != nil {
		return nil, err
	}
	return append(m.b, '}'), nil
}

// members writes the members of one object, in the order they are given.
type members struct {
	b []byte
	n int // members written so far
}

func (m *members) name(k string) {
	if m.n == 0 {
		m.b = append(m.b, '{')
	} else {
		m.b = append(m.b, ',')
	}
	m.n++
	m.b = appendString(m.b, k)
	m.b = append(m.b, ':')
}

func (m *members) str(k, v string, omitEmpty bool) {
	if omitEmpty && v == "" {
		return
	}
	m.name(k)
	m.b = appendString(m.b, v)
}

func (m *members) int(k string, v int64, omitEmpty bool) {
	if omitEmpty && v == 0 {
		return
	}
	m.name(k)
	m.b, _ = appendFloat(m.b, float64(v)) // finite
}

// strs writes an omitempty []string member.
func (m *members) strs(k string, v []string) {
	if len(v) == 0 {
		return
	}
	m.name(k)
	m.b = appendStrings(m.b, v)
}

func appendStrings(b []byte, v []string) []byte {
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime writes t as encoding/json does (RFC 3339 with nanoseconds, refusing years
// that format cannot hold), as a canonical string.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("audit: time %v: year outside of range [0,9999]", t)
	}
	var buf [len(time.RFC3339Nano) + 8]byte
	return appendString(b, string(t.AppendFormat(buf[:0], time.RFC3339Nano))), nil
}

// appendValue appends the RFC 8785 form of a Details value. The common types are written
// directly; anything else (json.Number too, which encoding/json validates) is encoded
// with encoding/json, decoded and canonicalized, as the whole entry used to be.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return appendCanonical(b, x)
	case int:
		return appendFloat(b, float64(x))
	case int32:
		return appendFloat(b, float64(x))
	case int64:
		return appendFloat(b, float64(x))
	case uint32:
		return appendFloat(b, float64(x))
	case uint64:
		return appendFloat(b, float64(x))
	case float64:
		return appendFloat(b, x)
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendStrings(b, x), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		if out, ok, err := appendMap(b, x, appendValue); ok {
			return out, err
		}
	case map[string]string:
		if x == nil {
			return append(b, "null"...), nil
		}
		if out, ok, err := appendMap(b, x, func(b []byte, s string) ([]byte, error) { return appendString(b, s), nil }); ok {
			return out, err
		}
	}
	// The long way, for every other type (and maps whose keys are not valid UTF-8, which
	// encoding/json rewrites and may so make equal).
	text, err := marshal(v)
	if err != nil {
		return nil, err
	}
	d, err := decodeJSON(text)
	if err != nil {
		return nil, err
	}
	return appendCanonical(b, d)
}

// appendMap appends m as an object, its keys in RFC 8785 order and each value written
// by value. ok is false, and nothing is written, when a key is not valid UTF-8.
func appendMap[V any](b []byte, m map[string]V, value func([]byte, V) ([]byte, error)) (out []byte, ok bool, err error) {
	keys, ok := sortedKeys(m)
	if !ok {
		return b, false, nil
	}
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = value(b, m[k]); err != nil {
			return nil, true, err
		}
	}
	return append(b, '}'), true, nil
}

// sortedKeys returns m's keys in RFC 8785 order (UTF-16 code units); ok is false when a
// key is not valid UTF-8.
func sortedKeys[V any](m map[string]V) (keys []string, ok bool) {
	keys = make([]string, 0, len(m))
	ascii := true
	for k := range m {
		if !utf8.ValidString(k) {
			return nil, false
		}
		for i := 0; i < len(k) && ascii; i++ {
			ascii = k[i] < utf8.RuneSelf
		}
		keys = append(keys, k)
	}
	if ascii {
		slices.Sort(keys) // byte order is UTF-16 order for ASCII
		return keys, true
	}
	slices.SortFunc(keys, func(a, b string) int {
		return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
	})
	return keys, true
}
