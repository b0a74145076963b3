package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strings"
)

// A HandlerFunc serves one route of a function. rid is the request's id, sent with any
// error answer and named in every audit entry and log line of the request. It returns
// an error only before it has answered; Serve answers it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, rid string) error

// Serve runs f with a fresh request id and answers the error f returns with WriteError.
// An error that is not an *Error becomes a 500 whose cause stays out of the answer, so it
// is logged to log first, at level ERROR, with the request id; so is the cause an *Error
// carries in Err.
func Serve(w http.ResponseWriter, r *http.Request, log *slog.Logger, f HandlerFunc) {
	rid := NewRequestID()
	err := f(w, r, rid)
	if err == nil {
		return
	}
	if log != nil {
		switch e, ok := errors.AsType[*Error](err); {
		case !ok:
			log.ErrorContext(r.Context(), "internal error: "+err.Error(), "request_id", rid, "method", r.Method, "path", r.URL.Path, "error", err.Error())
		case e.Err != nil:
			log.ErrorContext(r.Context(), e.Code+": "+e.Err.Error(), "request_id", rid, "method", r.Method, "path", r.URL.Path, "code", e.Code, "error", e.Err.Error())
		}
	}
	WriteError(w, rid, err)
}

// A Mux routes a function's requests by http.ServeMux patterns ("POST /{$}",
// "GET /schema/{table}") and answers what matches no pattern in Airlock's error shape:
// 404 not_found for a path no pattern has, 405 method_not_allowed with an Allow header
// for a path some pattern has under other methods. A path that is not in its clean form
// ("//", "/a/../b") is not found rather than redirected, as before patterns: a POST must
// not be turned into a GET by a client following the redirect.
type Mux struct {
	mux http.ServeMux
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers h for pattern; see http.ServeMux for the syntax. It panics, as
// http.ServeMux does, on a pattern that is malformed or conflicts with another.
func (m *Mux) Handle(pattern string, h http.Handler) { m.mux.Handle(pattern, h) }

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if r.Method == http.MethodConnect || p != cleanPath(p) {
		WriteError(w, NewRequestID(), Errorf(http.StatusNotFound, "not_found", "no such path %q", r.URL.Path))
		return
	}
	h, pattern := m.mux.Handler(r)
	if pattern != "" {
		m.mux.ServeHTTP(w, r) // again, so that the pattern's wildcards reach r.PathValue
		return
	}
	// No pattern matched: ask http.ServeMux's own answer whether another method would
	// have, and in its words which (its Allow header), then answer in ours.
	probe := &probe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if allow := probe.header.Get("Allow"); probe.status == http.StatusMethodNotAllowed && allow != "" {
		w.Header().Set("Allow", allow)
		WriteError(w, NewRequestID(), Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
		return
	}
	WriteError(w, NewRequestID(), Errorf(http.StatusNotFound, "not_found", "no such path %q", r.URL.Path))
}

// cleanPath is http.ServeMux's canonical form of a path: path.Clean, keeping a trailing
// slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// probe records what http.ServeMux's fallback handler answers, and sends nothing.
type probe struct {
	header http.Header
	status int
}

func (p *probe) Header() http.Header         { return p.header }
func (p *probe) Write(b []byte) (int, error) { return len(b), nil }
func (p *probe) WriteHeader(status int)      { p.status = status }
