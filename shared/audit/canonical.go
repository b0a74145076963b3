package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonicalize returns the canonical encoding of a JSON text: RFC 8785, the JSON
// Canonicalization Scheme (JCS). In short: no whitespace; object members sorted by key,
// comparing keys as UTF-16 code units; strings escaped only where JSON requires it
// (\" \\ \b \f \n \r \t, other controls as \u00xx in lower-case hex, everything else as
// UTF-8); numbers converted to IEEE-754 doubles and written as ECMAScript's
// Number.prototype.toString writes them (1, 4.5, 1e+21, 1e-7; -0 as 0). See the package
// overview for why the hash uses it.
//
// Text that has no single canonical meaning is refused: a member name twice in one
// object, invalid UTF-8, an escaped lone surrogate (\ud800), or an integer beyond 2^53
// (which a double cannot hold exactly, so readers would disagree on its value).
func Canonicalize(doc []byte) ([]byte, error) {
	v, err := decodeStrict(doc)
	if err != nil {
		return nil, err
	}
	return appendCanonical(nil, v)
}

// HashPayload returns the hash an entry must carry: the lower-case hex SHA-256 of the
// canonical encoding of the entry's JSON object with its "hash" member removed.
// Like [Canonicalize], it refuses text without a single canonical meaning.
func HashPayload(doc []byte) (string, error) {
	v, err := decodeStrict(doc)
	if err != nil {
		return "", err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("audit: entry is not a JSON object")
	}
	return hashObject(obj)
}

// hashObject hashes obj without its "hash" and "sig" members; obj itself is not changed.
func hashObject(obj map[string]any) (string, error) {
	c, err := appendCanonicalObject(nil, obj, "hash", "sig")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// decodeJSON decodes one JSON value, keeping numbers as json.Number so that the
// canonical form is computed from the text, not from a Go type.
func decodeJSON(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("audit: decoding JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("audit: decoding JSON: extra data after the value")
	}
	return v, nil
}

func appendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case json.Number:
		return appendNumber(b, string(x))
	case float64:
		return appendFloat(b, x)
	case string:
		return appendString(b, x), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		return appendCanonicalObject(b, x)
	default:
		return nil, fmt.Errorf("audit: cannot canonicalize a %T", v)
	}
}

// appendCanonicalObject writes obj, leaving out the members named in skip.
func appendCanonicalObject(b []byte, obj map[string]any, skip ...string) ([]byte, error) {
	type key struct {
		s     string
		units []uint16
	}
	keys := make([]key, 0, len(obj))
	for k := range obj {
		if slices.Contains(skip, k) {
			continue
		}
		keys = append(keys, key{k, utf16.Encode([]rune(k))})
	}
	// RFC 8785 sorts by UTF-16 code units, which differs from UTF-8 byte order only for
	// characters above U+FFFF against U+E000..U+FFFF.
	slices.SortFunc(keys, func(a, b key) int { return slices.Compare(a.units, b.units) })
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k.s)
		b = append(b, ':')
		var err error
		if b, err = appendCanonical(b, obj[k.s]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendNumber(b []byte, s string) ([]byte, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("audit: number %s is not a finite double: %w", s, err)
	}
	return appendFloat(b, f)
}

// appendFloat writes f as ECMAScript's Number.prototype.toString does (RFC 8785 §3.2.2.3).
// This is the same algorithm encoding/json uses for float64, except that -0 is "0".
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("audit: number %v is not allowed in JSON", f)
	}
	if f == 0 {
		return append(b, '0'), nil
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 where ECMAScript writes e-7.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s { // a decoded JSON string is valid UTF-8
		switch r {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if r < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
			} else {
				b = utf8.AppendRune(b, r)
			}
		}
	}
	return append(b, '"')
}

// maxExactInt is 2^53: integers up to it are exact as IEEE-754 doubles.
const maxExactInt = 1 << 53

// decodeStrict decodes one JSON value as [decodeJSON] does, but refuses text that
// readers could understand differently: a member name twice in one object (Go keeps the
// last, other parsers the first), invalid UTF-8 and escaped lone surrogates (Go reads
// both as U+FFFD, so different bytes would hash alike), and integers beyond 2^53 (a
// double cannot hold them, so the canonical form would change their value).
func decodeStrict(doc []byte) (any, error) {
	if !utf8.Valid(doc) {
		return nil, fmt.Errorf("audit: decoding JSON: not valid UTF-8")
	}
	if err := checkSurrogates(doc); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := strictValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("audit: decoding JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("audit: decoding JSON: extra data after the value")
	}
	return v, nil
}

// maxDepth bounds nesting, so a hostile line cannot exhaust the stack.
const maxDepth = 64

func strictValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return nil, fmt.Errorf("nested deeper than %d", maxDepth)
		}
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("member %q appears twice in one object", k)
				}
				if obj[k], err = strictValue(dec, depth+1); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := strictValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		s := string(t)
		if !strings.ContainsAny(s, ".eE") {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n > maxExactInt || n < -maxExactInt {
				return nil, fmt.Errorf("integer %s is beyond 2^53, where doubles lose precision", s)
			}
		}
		return t, nil
	default:
		return t, nil // string, bool, nil
	}
}

// checkSurrogates refuses \uD800–\uDFFF escapes that do not form a valid pair. In
// valid JSON a backslash appears only inside strings, so no string tracking is needed.
func checkSurrogates(doc []byte) error {
	for i := 0; i < len(doc); i++ {
		if doc[i] != '\\' || i+1 >= len(doc) {
			continue
		}
		if doc[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(doc, i+2)
		if !ok {
			continue // not valid JSON; the decoder says so
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+12 > len(doc) || doc[i+6] != '\\' || doc[i+7] != 'u' {
				return fmt.Errorf("audit: decoding JSON: lone surrogate \\u%04x", r)
			}
			if lo, ok := hex4(doc, i+8); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return fmt.Errorf("audit: decoding JSON: lone surrogate \\u%04x", r)
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return fmt.Errorf("audit: decoding JSON: lone surrogate \\u%04x", r)
		default:
			i += 5
		}
	}
	return nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}
