// Package requeststest runs Airlock's RequestAccess, ApprovalCallback and ExecuteQuery
// functions together over HTTP on a throwaway database, for tests of the access flow.
package requeststest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/demo"
)

// An Env is a throwaway database with functions built on it.
type Env struct {
	T     testing.TB
	DB    *dbtest.DB
	Key   *ecdsa.PrivateKey
	Admin *pgxpool.Pool
	Dir   string
}

// New creates an Env with the demo policy.
func New(t testing.TB) *Env {
	t.Helper()
	d := dbtest.NewWithPolicy(t, demo.Policy)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgxpool.New(context.Background(), d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return &Env{T: t, DB: d, Key: key, Admin: admin, Dir: t.TempDir()}
}

// Deps builds the dependencies of one function (entry point and group), auditing to a
// file of its own (AuditFile(entry)).
func (e *Env) Deps(entry, group string) *app.Deps {
	t := e.T
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, db.Config{URL: e.DB.URL(group), ResetOnRelease: group == "query"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := audit.NewFileRecorder(ctx, e.AuditFile(entry), audit.WithFunction(entry), audit.WithMirror(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	deps := &app.Deps{
		Config: app.Config{Function: entry, Group: group, Prefix: e.DB.Roles.Prefix, AuthMode: "local"},
		Policy: e.DB.Policy, Roles: e.DB.Roles,
		Pool: pool, Audit: rec, Auth: authn.Local{Key: &e.Key.PublicKey},
	}
	t.Cleanup(deps.Close)
	return deps
}

// AuditFile is where the function entry's audit trail is written.
func (e *Env) AuditFile(entry string) string { return filepath.Join(e.Dir, entry+".audit.jsonl") }

// Serve starts an HTTP server for h.
func (e *Env) Serve(h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	e.T.Cleanup(srv.Close)
	return srv
}

// Token mints a token for email.
func (e *Env) Token(email string) string {
	tok, err := authn.Mint(e.Key, email, "", time.Hour)
	if err != nil {
		e.T.Fatal(err)
	}
	return tok
}

// A Response is one answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r Response) JSON() map[string]any {
	var m map[string]any
	json.Unmarshal(r.Body, &m)
	return m
}

// Code is the error code of an error answer.
func (r Response) Code() string {
	var m struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.Body, &m)
	return m.Error.Code
}

// Do sends a request as email (no token when email is ""); body is marshalled unless it
// is a string or []byte.
func (e *Env) Do(method, url, email string, body any, header ...string) Response {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if email != "" {
		req.Header.Set("Authorization", "Bearer "+e.Token(email))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// AuditEvents reads the events of an audit file, in order.
func (e *Env) AuditEvents(entry string) []audit.Entry {
	b, _ := readFile(e.AuditFile(entry))
	var out []audit.Entry
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var en audit.Entry
		if json.Unmarshal(line, &en) == nil && en.Event != audit.EventCheckpoint {
			out = append(out, en)
		}
	}
	return out
}
