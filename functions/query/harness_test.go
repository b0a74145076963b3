package query_test

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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/authn/authntest"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// harness is one ExecuteQuery function over HTTP, on a throwaway database.
type harness struct {
	t         *testing.T
	d         *dbtest.DB
	deps      *app.Deps
	srv       *httptest.Server
	key       *ecdsa.PrivateKey
	admin     *pgxpool.Pool     // the admin login: Airlock's schema and the catalogs
	owner     *pgxpool.Pool     // the owner of the application's tables
	login     *pgxpool.Pool     // the query function's own login, which sees its backends
	auditFile string            // file sink
	fake      *audittest.Server // cloudlogging sink
}

type harnessOptions struct {
	policy    []byte         // defaults to demo.Policy
	cloud     bool           // audit to the fake Cloud Logging server instead of a file
	auditOpts []audit.Option // extra recorder options
	// google, when set, makes the function verify identities as deployed (AUTH_MODE
	// cloudrun), with the real idtoken client reading keys from this fake.
	google *authntest.Google
}

// auditTimeout bounds each audit write in the tests with a Cloud Logging fake: long
// enough that a working sink never reaches it on a loaded machine. A failing or hanging
// sink is recognised by what it does, and maxAuditAttempts bounds how many writes a
// refusal may cost, each bounded by auditTimeout.
const (
	auditTimeout     = 5 * time.Second
	maxAuditAttempts = 6
)

// honestTimeout is the statement timeout of the tests' policies: far beyond what any
// honest test statement needs on a loaded machine.
const honestTimeout = "5m"

// newHarness builds the function the way production does (app.LoadConfig, app.Build,
// query.New) with local token verification and a test audit sink.
func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	doc := o.policy
	if doc == nil {
		doc = policyVariant(t)
	}
	d := dbtest.NewWithPolicy(t, doc)
	h := &harness{t: t, d: d}
	ctx := context.Background()

	var err error
	h.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&h.key.PublicKey)
	if err != nil {
		t.Fatalf("encoding public key: %v", err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "auth.pub.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatalf("writing public key: %v", err)
	}

	// Built as deployed: the configuration from environment variables (a map, not the
	// process's), then the test's seams, then app.Build.
	env := map[string]string{
		"AIRLOCK_POLICY": string(doc), "AIRLOCK_ROLE_PREFIX": d.Roles.Prefix, "DATABASE_URL": d.URL(migrate.GroupQuery),
		"AUTH_MODE": "local", "AUTH_LOCAL_KEY_FILE": keyFile,
	}
	opts := append([]audit.Option{audit.WithMirror(io.Discard)}, o.auditOpts...)
	if o.cloud {
		h.fake = audittest.NewServer(t)
		// The chain's certificate is signed through the real Cloud KMS client, by the fake.
		env["AUDIT_SINK"], env["AUDIT_PROJECT"], env["AUDIT_KMS_KEY"] = "cloudlogging", "audittest", audittest.KMSKeyVersion
		opts = append(opts, audit.WithClientOptions(h.fake.ClientOptions()...), audit.WithLoggerOptions(h.fake.LoggerOptions()...))
	} else {
		h.auditFile = filepath.Join(dir, "audit.jsonl")
		env["AUDIT_SINK"], env["AUDIT_FILE"] = "file", h.auditFile
		opts = append(opts, audit.WithSigner(audittest.NewLocalSigner(t)))
	}
	if o.google != nil {
		env["AUTH_MODE"], env["AUTH_LOCAL_KEY_FILE"] = "cloudrun", ""
	}
	cfg, err := app.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("app.LoadConfig: %v", err)
	}
	cfg.Function, cfg.Group, cfg.AuditOptions = query.EntryPoint, migrate.GroupQuery, opts
	if o.google != nil {
		cfg.IDTokenOptions = o.google.ClientOptions()
	}
	h.deps, err = app.Build(ctx, cfg)
	if err != nil {
		t.Fatalf("app.Build: %v", err)
	}
	t.Cleanup(h.deps.Close)
	h.srv = httptest.NewServer(query.New(h.deps))
	t.Cleanup(h.srv.Close)

	// No superuser: Airlock's schema is read as the admin, the application's tables as
	// their owner, the function's backends as its own login.
	h.admin, err = pgxpool.New(ctx, d.AdminURL)
	if err != nil {
		t.Fatalf("admin pool: %v", err)
	}
	t.Cleanup(h.admin.Close)
	h.owner, err = pgxpool.New(ctx, d.OwnerURL)
	if err != nil {
		t.Fatalf("owner pool: %v", err)
	}
	t.Cleanup(h.owner.Close)
	h.login, err = pgxpool.New(ctx, d.URL(migrate.GroupQuery))
	if err != nil {
		t.Fatalf("login pool: %v", err)
	}
	t.Cleanup(h.login.Close)
	return h
}

// response is one answer of the function.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the error shape of httpapi.
type apiError struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Rule     string `json:"rule"`
	Position int    `json:"position"`
}

func (r response) err() apiError {
	var v struct {
		Error apiError `json:"error"`
	}
	json.Unmarshal(r.body, &v)
	return v.Error
}

func (r response) String() string {
	b := string(r.body)
	if len(b) > 400 {
		b = b[:400] + "…"
	}
	return http.StatusText(r.status) + " " + strings.TrimSpace(b)
}

// readResult is the JSON answer to a read.
type readResult struct {
	Columns []struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Masked bool   `json:"masked"`
	} `json:"columns"`
	Rows      [][]any `json:"rows"`
	RowCount  int     `json:"row_count"`
	Truncated bool    `json:"truncated"`
}

func (r response) read(t *testing.T) readResult {
	t.Helper()
	var v readResult
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding read result %s: %v", r, err)
	}
	return v
}

// writeResult is the JSON answer to a write.
type writeResult struct {
	RowsAffected int64            `json:"rows_affected"`
	Committed    bool             `json:"committed"`
	DryRun       bool             `json:"dry_run"`
	Preview      []map[string]any `json:"preview"`
}

func (r response) write(t *testing.T) writeResult {
	t.Helper()
	var v writeResult
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding write result %s: %v", r, err)
	}
	return v
}

func (h *harness) token(email string) string {
	h.t.Helper()
	tok, err := authn.Mint(h.key, email, "", time.Hour)
	if err != nil {
		h.t.Fatalf("minting token: %v", err)
	}
	return tok
}

// do sends a raw request; token may be "" for none.
func (h *harness) do(method, token string, body []byte) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+"/", bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s /: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading response: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends req (a query.Request or any JSON value) as email.
func (h *harness) post(email string, req any) response {
	h.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		h.t.Fatalf("encoding request: %v", err)
	}
	return h.do(http.MethodPost, h.token(email), b)
}

func (h *harness) query(email, sql string) response {
	h.t.Helper()
	return h.post(email, query.Request{SQL: sql})
}

// grant inserts an active grant of role (a policy role) to email, expiring after ttl
// (negative: already expired), and syncs the developer's database role unless sync is false.
func (h *harness) grant(email, role string, ttl time.Duration, sync bool) int64 {
	h.t.Helper()
	ctx := context.Background()
	var id int64
	starts := "now() - interval '2 hours'"
	err := h.admin.QueryRow(ctx, `
		INSERT INTO airlock.grants (grantee, role, capabilities, starts_at, expires_at)
		VALUES ($1, $2, $3, `+starts+`, now() + make_interval(secs => $4))
		RETURNING id`, email, role, []string{role}, ttl.Seconds()).Scan(&id)
	if err != nil {
		h.t.Fatalf("inserting grant %s for %s: %v", role, email, err)
	}
	if sync {
		h.sync(email)
	}
	return id
}

func (h *harness) sync(email string) string {
	h.t.Helper()
	role, err := h.d.SyncDeveloper(context.Background(), email)
	if err != nil {
		h.t.Fatal(err)
	}
	return role
}

// observer is the pool that may read what sql reads: the application's tables (public.)
// as their owner, the function's own backends (pg_stat_activity) as its login, anything
// else as the admin. None of them is a superuser.
func (h *harness) observer(sql string) *pgxpool.Pool {
	switch {
	case strings.Contains(sql, "public."):
		return h.owner
	case strings.Contains(sql, "pg_stat_activity"):
		return h.login
	}
	return h.admin
}

// scalar runs sql as its observer and returns its single text value.
func (h *harness) scalar(sql string, args ...any) string {
	h.t.Helper()
	var s *string
	if err := h.observer(sql).QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		h.t.Fatalf("admin query %q: %v", sql, err)
	}
	if s == nil {
		return "<null>"
	}
	return *s
}

// tableChecksums returns an md5 of every row of each public table.
func (h *harness) tableChecksums() map[string]string {
	h.t.Helper()
	out := map[string]string{}
	for _, tbl := range []string{"users", "accounts", "deposits", "withdrawals", "trades"} {
		out[tbl] = h.scalar(`SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') FROM public.` + tbl + ` t`)
	}
	return out
}

func (h *harness) checksum(table string) string {
	return h.tableChecksums()[table]
}

// collectStrings returns the text results of sql run as its observer.
func (h *harness) collectStrings(sql string) []string {
	h.t.Helper()
	rows, err := h.observer(sql).Query(context.Background(), sql)
	if err != nil {
		h.t.Fatalf("admin query %q: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		h.t.Fatalf("admin query %q: %v", sql, err)
	}
	return out
}

// auditEntries reads the file sink's trail.
func (h *harness) auditEntries() []map[string]any {
	h.t.Helper()
	if h.fake != nil {
		return h.fake.Payloads()
	}
	b, err := os.ReadFile(h.auditFile)
	if err != nil {
		h.t.Fatalf("reading audit file: %v", err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			h.t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// entriesFor returns the audit entries of one request id.
func (h *harness) entriesFor(event string) []map[string]any {
	var out []map[string]any
	for _, e := range h.auditEntries() {
		if e["event"] == event {
			out = append(out, e)
		}
	}
	return out
}

// policyVariant edits the demo policy: each pair replaces old with new, and must match.
//
// Unless pairs replace it, the statement timeout becomes honestTimeout: no test may
// depend on how fast the machine is, so honest statements get a timeout that no load can
// reach, and a test about timeouts makes its statement wait on a lock the test holds.
func policyVariant(t *testing.T, pairs ...string) []byte {
	t.Helper()
	const demoTimeout = "statement_timeout: 30s"
	if !slices.Contains(pairs, demoTimeout) {
		pairs = append(pairs, demoTimeout, "statement_timeout: "+honestTimeout)
	}
	doc := string(demo.Policy)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(doc, pairs[i]) {
			t.Fatalf("demo policy has no %q to replace", pairs[i])
		}
		doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
	}
	return []byte(doc)
}
