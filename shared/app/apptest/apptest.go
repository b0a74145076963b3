// Package apptest builds Airlock's functions for tests, the way they are built deployed:
// app.LoadConfig from a map of environment variables, app.Build, then the function's New,
// on a throwaway database, served over HTTP together for tests of the access flow.
package apptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
	"airlock.dev/airlock/shared/cloudlog"
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
	// AuthKeyFile holds Key's public half: AUTH_MODE local's AUTH_LOCAL_KEY_FILE.
	AuthKeyFile string
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
	dir := t.TempDir()
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "auth-key.pub.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Env{T: t, DB: d, Key: key, Admin: admin, Owner: owner, Dir: dir, AuthKeyFile: keyFile}
}

// A DepsOption changes how Deps builds a function's dependencies.
type DepsOption func(*depsConfig)

type depsConfig struct {
	logs      *audittest.Server // nil: audit to AuditFile(entry)
	auditOpts []audit.Option
	google    *authntest.Google // nil: local tokens (Env.Token)
	env       map[string]string
}

// WithEnv sets environment variables for app.LoadConfig, in pairs: name, value. They are
// added to, or replace, the ones Deps sets (the database, the policy, the audit sink, the
// local key).
func WithEnv(kv ...string) DepsOption {
	return func(c *depsConfig) {
		for i := 0; i+1 < len(kv); i += 2 {
			c.env[kv[i]] = kv[i+1]
		}
	}
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

// Deps builds the dependencies of one function (entry point and group) as a deployed
// function builds them: app.LoadConfig, from the environment getenv describes, then
// app.Build. It audits to a file of its own (AuditFile(entry)) unless an option says
// otherwise, and verifies Env.Token's tokens (AUTH_MODE local) unless WithGoogle.
func (e *Env) Deps(entry, group string, opts ...DepsOption) *app.Deps {
	t := e.T
	t.Helper()
	cfg := depsConfig{env: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := app.LoadConfig(e.getenv(entry, group, cfg))
	if err != nil {
		t.Fatal(err)
	}
	c.Function, c.Group = entry, group
	if cfg.logs != nil {
		c.AuditOptions = append([]audit.Option{audit.WithSigner(cfg.logs.Signer(t)),
			audit.WithClientOptions(cfg.logs.ClientOptions()...), audit.WithLoggerOptions(cfg.logs.LoggerOptions()...)}, cfg.auditOpts...)
	} else {
		c.AuditOptions = []audit.Option{audit.WithMirror(io.Discard), audit.WithSigner(audittest.NewLocalSigner(t))}
	}
	if cfg.google != nil {
		c.IDTokenOptions = cfg.google.ClientOptions()
	}
	deps, err := app.Build(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deps.Close)
	return deps
}

// getenv is the environment of one function: the demo policy, the function's own login,
// the role prefix, AUTH_MODE local with AuthKeyFile (cloudrun with WithGoogle), the file
// sink at AuditFile(entry) (cloudlogging with WithCloudLogging), then what WithEnv sets.
func (e *Env) getenv(entry, group string, cfg depsConfig) func(string) string {
	env := map[string]string{
		"AIRLOCK_POLICY": string(demo.Policy), "AIRLOCK_ROLE_PREFIX": e.DB.Roles.Prefix, "DATABASE_URL": e.DB.URL(group),
		"AUTH_MODE": "local", "AUTH_LOCAL_KEY_FILE": e.AuthKeyFile,
		"AUDIT_SINK": audit.SinkFile, "AUDIT_FILE": e.AuditFile(entry),
	}
	if cfg.logs != nil {
		env["AUDIT_SINK"], env["AUDIT_PROJECT"], env["AUDIT_FILE"] = audit.SinkCloudLogging, "audittest", ""
	}
	if cfg.google != nil {
		env["AUTH_MODE"], env["AUTH_LOCAL_KEY_FILE"] = "cloudrun", ""
	}
	for k, v := range cfg.env {
		env[k] = v
	}
	return func(k string) string { return env[k] }
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
	b, _ := os.ReadFile(e.AuditFile(entry))
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

// CheckErrorLine fails the test unless log (a function's own log, app.Deps.Log) holds
// exactly one line for request rid, at severity ERROR or above, whose "error" holds cause,
// and unless every line is a JSON object Cloud Logging reads as a structured entry. when
// says what the test did, for the failure messages.
func CheckErrorLine(t testing.TB, when string, log []byte, rid, cause string) {
	t.Helper()
	var mine []map[string]any
	for _, line := range bytes.Split(log, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("when %s, in the function's log, want = JSON lines, got = %q (%v)", when, line, err)
			continue
		}
		if _, ok := m["severity"].(string); !ok {
			t.Errorf("when %s, in the function's log, want = a severity on every line, got = %v", when, m)
		}
		if m["request_id"] == rid {
			mine = append(mine, m)
		}
	}
	if len(mine) != 1 {
		t.Errorf("when %s, want = one log line for request %q, got = %d in %s", when, rid, len(mine), log)
		return
	}
	m := mine[0]
	msg, _ := m["message"].(string)
	errText, _ := m["error"].(string)
	if (m["severity"] != "ERROR" && m["severity"] != "CRITICAL") || !strings.Contains(errText, cause) || msg == "" {
		t.Errorf("when %s, want = an ERROR line for request %s with %q in its error and a message, got = %v", when, rid, cause, m)
	}
}

// ClosedDB serves the function entry (of group), made by newHandler, with its database
// pool closed and its own log captured in the returned buffer: every call that needs the
// database then fails, as when Cloud SQL goes away.
func (e *Env) ClosedDB(entry, group string, newHandler func(*app.Deps) http.Handler) (url string, log *bytes.Buffer) {
	e.T.Helper()
	deps := e.Deps(entry, group)
	log = &bytes.Buffer{}
	deps.Log = cloudlog.New(log)
	url = e.Serve(newHandler(deps)).URL + "/"
	deps.Pool.Close()
	return url, log
}

// CheckFailureLogged fails the test unless r is a 503 with code, without the cause, and
// log holds its one line (CheckErrorLine) with the cause. It empties log for the next call.
func CheckFailureLogged(t testing.TB, when string, r Response, log *bytes.Buffer, code, cause string) {
	t.Helper()
	rid, _ := r.JSON()["request_id"].(string)
	if r.Status != http.StatusServiceUnavailable || r.Code() != code || bytes.Contains(r.Body, []byte(cause)) {
		t.Errorf("when %s, want = 503 %s without the cause, got = %d %s", when, code, r.Status, r.Body)
	}
	CheckErrorLine(t, when, log.Bytes(), rid, cause)
	log.Reset()
}
