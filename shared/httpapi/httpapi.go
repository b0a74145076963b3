// Package httpapi holds what every Airlock function does the same way over HTTP: request
// ids, routing with one JSON answer for what matches no route, strict JSON decoding with a
// size limit, one error shape with a stable code, errors logged before a 500, and the
// web forms' anti-forgery tokens.
package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// An Error is an answer that is not a success. Code is stable and meant for programs;
// Message is meant for the person.
type Error struct {
	Status   int    `json:"-"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Rule     string `json:"rule,omitempty"`
	Position int    `json:"position,omitempty"`
	// GrantRole names a role the caller may request that would lift the refusal.
	GrantRole string `json:"grant_role,omitempty"`
	// Err is the cause the answer leaves out, if any (a failed connection, say). It is
	// never sent; Serve logs it with the request id.
	Err error `json:"-"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Unwrap returns the cause the answer leaves out, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// NewRequestID returns a fresh request id: 16 hex digits, short enough to fit with grant
// ids in PostgreSQL's 63-byte application_name.
func NewRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// WriteError answers with err in Airlock's error shape. Anything that is not an *Error
// becomes a 500 whose details stay in the logs.
func WriteError(w http.ResponseWriter, requestID string, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; quote the request_id when asking for help"}
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="airlock"`)
	}
	WriteJSON(w, e.Status, map[string]any{"error": e, "request_id": requestID})
}

// DecodeJSON reads one JSON object of at most maxBytes into v, refusing unknown fields,
// trailing data and other content types.
func DecodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// curl -d labels JSON as a form; bearer-token APIs carry no cookies, so accepting
		// it opens no cross-site request forgery.
		if err != nil || (mt != "application/json" && mt != "application/x-www-form-urlencoded" && mt != "text/plain") {
			return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json, not %q", ct)
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, maxBytes)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "malformed_json", "the body must hold exactly one JSON object")
	}
	return nil
}

func decodeError(err error, maxBytes int64) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", maxBytes)
	}
	if errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "malformed_json", "the body is empty; send a JSON object")
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return Errorf(http.StatusBadRequest, "malformed_json", "the body is not valid JSON (at byte %d): %v", se.Offset, se)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return Errorf(http.StatusBadRequest, "invalid_field", "field %q must be a %s", te.Field, te.Type)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return Errorf(http.StatusBadRequest, "unknown_field", "unknown field %s", f)
	}
	return Errorf(http.StatusBadRequest, "malformed_json", "the body could not be read: %v", err)
}
