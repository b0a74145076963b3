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
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/authn/authntest"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/demo"
)

// An Env is a throwaway database with functions built on it.
type Env struct {
	T     testing.TB
	DB    *dbtest.DB
	Key   *ecdsa.PrivateKey
	Admin *pgxpool.Pool // the admin login (not a superuser): Airlock's schema
	Owner *pgxpool.Pool // the owner of the application's tables
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
	owner, err := pgxpool.New(context.Background(), d.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	return &Env{T: t, DB: d, Key: key, Admin: admin, Owner: owner, Dir: t.TempDir()}
}

// A DepsOption changes how Deps builds a function's dependencies.
type DepsOption func(*depsConfig)

type depsConfig struct {
	logs      *audittest.Server // nil: audit to AuditFile(entry)
	auditOpts []audit.Option
	google    *authntest.Google // nil: local tokens (Env.Token)
}

// WithGoogle gives the function the verifier it has when deployed (AUTH_MODE cloudrun,
// built by app.Verifier), checking signatures with the real idtoken client against g,
// a fake of Google's certificate endpoints. Requests then carry tokens made by g, in
// the form Cloud Run forwards them (authntest.Strip), not Env.Token's.
func WithGoogle(g *authntest.Google) DepsOption {
	return func(c *depsConfig) { c.google = g }
}

// WithCloudLogging makes the function audit through the real Cloud Logging client to
// srv, a fake Cloud Logging server that tests can make fail or hang, instead of to a
// file. opts are added to the recorder's options, e.g. audit.WithTimeout to bound a hang.
func WithCloudLogging(srv *audittest.Server, opts ...audit.Option) DepsOption {
	return func(c *depsConfig) { c.logs, c.auditOpts = srv, opts }
}

// Deps builds the dependencies of one function (entry point and group), auditing to a
// file of its own (AuditFile(entry)) unless an option says otherwise.
func (e *Env) Deps(entry, group string, opts ...DepsOption) *app.Deps {
	t := e.T
	t.Helper()
	var cfg depsConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	pool, err := db.Open(ctx, db.Config{URL: e.DB.URL(group), ResetOnRelease: group == "query"})
	if err != nil {
		t.Fatal(err)
	}
	var rec *audit.Recorder
	if cfg.logs != nil {
		ropts := append([]audit.Option{audit.WithFunction(entry), audit.WithSigner(cfg.logs.Signer(t)),
			audit.WithClientOptions(cfg.logs.ClientOptions()...), audit.WithLoggerOptions(cfg.logs.LoggerOptions()...)}, cfg.auditOpts...)
		rec, err = audit.NewRecorder(ctx, "audittest", ropts...)
	} else {
		rec, err = audit.NewFileRecorder(ctx, e.AuditFile(entry), audit.WithFunction(entry), audit.WithMirror(io.Discard),
			audit.WithSigner(audittest.NewLocalSigner(t)))
	}
	if err != nil {
		pool.Close()
		t.Fatal(err)
	}
	deps := &app.Deps{
		Config: app.Config{Function: entry, Group: group, Prefix: e.DB.Roles.Prefix, AuthMode: "local"},
		Policy: e.DB.Policy, Roles: e.DB.Roles,
		Pool: pool, Audit: rec, Auth: authn.Local{Key: &e.Key.PublicKey},
	}
	t.Cleanup(deps.Close)
	if cfg.google != nil {
		deps.Config.AuthMode, deps.Config.IDTokenOptions = "cloudrun", cfg.google.ClientOptions()
		if deps.Auth, err = app.Verifier(ctx, deps.Config); err != nil {
			t.Fatal(err)
		}
	}
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

// AuditEventsOf reads the entries of one event from an audit file, in order.
func (e *Env) AuditEventsOf(entry, event string) []audit.Entry {
	var out []audit.Entry
	for _, en := range e.AuditEvents(entry) {
		if en.Event == event {
			out = append(out, en)
		}
	}
	return out
}

// AuditAlerts decodes the audit.unavailable lines of a function's own log (what it wrote
// to app.Deps.Log). Any line that is not a JSON object fails the test: Cloud Logging
// would not parse it as a structured entry.
func AuditAlerts(t testing.TB, log []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(log, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("in the function's log, want JSON lines, got = %q (%v)", line, err)
			continue
		}
		if m["event"] == alerts.EventAuditUnavailable {
			out = append(out, m)
		}
	}
	return out
}

// CheckAuditAlert fails the test unless log holds exactly one audit.unavailable line, at
// severity ALERT, from function, for request rid (any request id when rid is ""), with a
// message naming the cause. when says what the test did, for the failure messages.
func CheckAuditAlert(t testing.TB, when string, log []byte, function, rid string) {
	t.Helper()
	alerts := AuditAlerts(t, log)
	if len(alerts) != 1 {
		t.Errorf("when %s, want = one audit.unavailable line in the function's log, got = %d: %s", when, len(alerts), log)
		return
	}
	a := alerts[0]
	id, _ := a["request_id"].(string)
	msg, _ := a["message"].(string)
	if a["severity"] != "ALERT" || a["function"] != function || (rid != "" && id != rid) || len(id) != 16 || !strings.Contains(msg, audit.ErrUnavailable.Error()) {
		t.Errorf("when %s, want = audit.unavailable at severity ALERT from %s for request %q with the cause in its message, got = %v", when, function, rid, a)
	}
}
