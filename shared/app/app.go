// Package app wires a function's dependencies from its configuration: the policy, the
// connection pools, the audit recorder and the identity verifier. Nothing
// is built at start-up: a function builds its dependencies on its first request and, if
// that fails, tries again on the next one.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"google.golang.org/api/idtoken"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
)

// Config is everything a function needs to know about its environment.
type Config struct {
	Function string // entry point, e.g. ExecuteQuery
	Group    string // database group role suffix, e.g. migrate.GroupQuery
	Policy   []byte
	Prefix   string // role prefix, default migrate.DefaultPrefix
	DB       db.Config
	Replica  db.Config

	AuthMode    string // "cloudrun" or "local"
	AuthKeyFile string // local: PEM public key
	Audience    string // AUTH_AUDIENCE
	IAPAudience string // IAP_AUDIENCE: accept Identity-Aware Proxy's signed header for it
	// IDTokenOptions configure the client that fetches Google's signing keys; tests
	// point it at a fake of Google's certificate endpoints (authntest).
	IDTokenOptions []idtoken.ClientOption

	AuditOptions []audit.Option // extra options, e.g. the fake Logging server in tests
	Env          func(string) string

	// Audit, when set, is the recorder to use instead of one built from the environment
	// (AuditOptions are then ignored). The caller owns it: Deps.Close leaves it open. The
	// devserver shares one among its functions, because one process is one instance
	// and so one chain.
	Audit *audit.Recorder
}

// FromEnv reads a function's configuration from the environment (see README, "Configuration").
func FromEnv(function, group string) (Config, error) {
	c := Config{Function: function, Group: group, Env: os.Getenv}
	doc := os.Getenv("AIRLOCK_POLICY")
	if doc == "" {
		path := os.Getenv("AIRLOCK_POLICY_FILE")
		if path == "" {
			return c, errors.New("app: set AIRLOCK_POLICY (the policy YAML) or AIRLOCK_POLICY_FILE")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("app: reading policy: %w", err)
		}
		doc = string(b)
	}
	c.Policy = []byte(doc)
	c.Prefix = os.Getenv("AIRLOCK_ROLE_PREFIX")
	c.DB = db.Config{URL: os.Getenv("DATABASE_URL"), Instance: os.Getenv("CLOUDSQL_INSTANCE"), Database: os.Getenv("DB_NAME"), IAMUser: os.Getenv("DB_IAM_USER")}
	c.Replica = db.Config{URL: os.Getenv("DATABASE_REPLICA_URL"), Instance: os.Getenv("CLOUDSQL_REPLICA_INSTANCE"), Database: c.DB.Database, IAMUser: c.DB.IAMUser}
	c.AuthMode = os.Getenv("AUTH_MODE")
	c.AuthKeyFile = os.Getenv("AUTH_LOCAL_KEY_FILE")
	c.Audience = os.Getenv("AUTH_AUDIENCE")
	c.IAPAudience = os.Getenv("IAP_AUDIENCE")
	return c, nil
}

// Deps are a function's built dependencies.
type Deps struct {
	Config  Config
	Policy  *policy.Policy
	Roles   migrate.Roles
	Pool    *db.Pool // primary, as the function's login role
	Replica *db.Pool // reads; nil when no replica is configured
	Audit   *audit.Recorder
	Auth    authn.Verifier
	// Log is the function's own log, where Cloud Logging reads each JSON line as a
	// structured entry. Nil means os.Stderr; tests set it to capture what is logged.
	Log io.Writer
}

// Role is the function's database group role.
func (d *Deps) Role() string { return d.Roles.Group(d.Config.Group) }

// Build creates the dependencies. It connects to nothing: pools dial on first use.
func Build(ctx context.Context, c Config) (*Deps, error) {
	pol, err := policy.Load(c.Policy)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if c.Prefix == "" {
		c.Prefix = migrate.DefaultPrefix
	}
	d := &Deps{Config: c, Policy: pol, Roles: migrate.Roles{Prefix: c.Prefix}}
	if d.Auth, err = Verifier(ctx, c); err != nil {
		return nil, err
	}
	// Developers' SQL runs on the query function's pools, which must be reset on release.
	reset := c.Group == migrate.GroupQuery
	c.DB.ResetOnRelease, c.Replica.ResetOnRelease = reset, reset
	if c.Group == migrate.GroupQuery {
		// No message of the server may be larger than an answer may be: a data row holds
		// at most max_bytes of values (the query function refuses a larger one) and a
		// 4-byte length per column; 1 MiB more covers the widest row description and any
		// error. A larger message closes its connection before its body is read.
		limit := int(pol.Limits.MaxBytes) + 1<<20
		c.DB.MaxMessageBytes, c.Replica.MaxMessageBytes = limit, limit
	}
	if d.Pool, err = db.Open(ctx, c.DB); err != nil {
		return nil, err
	}
	if c.Replica.URL != "" || c.Replica.Instance != "" {
		if d.Replica, err = db.Open(ctx, c.Replica); err != nil {
			d.Pool.Close()
			return nil, err
		}
	}
	if c.Audit != nil {
		d.Audit = c.Audit
		return d, nil
	}
	opts := []audit.Option{audit.WithFunction(c.Function)}
	if env(c, "AUDIT_SINK") == "cloudlogging" {
		// Chain heads go to the database too, so a cut at the log's tail shows. The
		// file sink keeps its own heads file beside the trail.
		opts = append(opts, audit.WithHeadStore(audit.NewPGHeadStore(d.Pool, d.Role())))
	}
	opts = append(opts, c.AuditOptions...)
	if d.Audit, err = audit.FromEnv(ctx, opts...); err != nil {
		d.Close()
		return nil, fmt.Errorf("app: audit: %w", err)
	}
	return d, nil
}

// Close releases the pools and flushes the audit trail's last checkpoint, unless the
// recorder was given in Config.Audit: its owner closes it.
func (d *Deps) Close() {
	if d.Audit != nil && d.Audit != d.Config.Audit {
		d.Audit.Close(context.Background())
	}
	if d.Replica != nil {
		d.Replica.Close()
	}
	if d.Pool != nil {
		d.Pool.Close()
	}
}

// AuditUnavailable is the answer of a function that refuses to act because the audit trail
// could not confirm a record: 503 audit_unavailable, with message saying what did not
// happen. cause is the error from the trail (wrapping audit.ErrUnavailable).
//
// It also writes the alerts.EventAuditUnavailable alert, one line at severity ALERT, to the
// function's log (d.Log), because the audit log, where every other alert goes, is the
// thing that failed (terraform/monitoring.tf counts these lines):
//
//	{"severity":"ALERT","event":"audit.unavailable","function":"…","request_id":"…","message":"…"}
//
// Call it once per refused request, where the refusal is decided: each call is one alert.
func (d *Deps) AuditUnavailable(rid string, cause error, message string) *httpapi.Error {
	line, _ := json.Marshal(struct {
		Severity  string `json:"severity"`
		Event     string `json:"event"`
		Function  string `json:"function"`
		RequestID string `json:"request_id"`
		Message   string `json:"message"`
	}{
		Severity: string(audit.SeverityAlert), Event: alerts.EventAuditUnavailable, Function: d.Config.Function, RequestID: rid,
		Message: fmt.Sprintf("%s refused request %s because the audit trail could not confirm a record: %v", d.Config.Function, rid, cause),
	})
	w := d.Log
	if w == nil {
		w = os.Stderr
	}
	w.Write(append(line, '\n')) // one write, so concurrent requests' lines do not interleave
	return httpapi.Errorf(http.StatusServiceUnavailable, "audit_unavailable", "%s", message)
}

func env(c Config, key string) string {
	if c.Env != nil {
		return c.Env(key)
	}
	return os.Getenv(key)
}

// Verifier builds the identity verifier c describes, for a function that Cloud Run's IAM
// invocation check guards:
//
//   - AUTH_MODE cloudrun (or unset): authn.CloudRun, which takes the identity from the
//     token Cloud Run verified and verifies in full any token that still carries a
//     signature, for Audience when set;
//   - AUTH_MODE local: authn.Local, with the ES256 key in AuthKeyFile.
//
// Outside local mode, with IAPAudience set, Identity-Aware Proxy's signed header is
// accepted too (authn.AnyOf): the person is then the one IAP asserts, and the token Cloud
// Run verified must be IAP's service agent's or that same person's.
func Verifier(ctx context.Context, c Config) (authn.Verifier, error) {
	switch c.AuthMode {
	case "cloudrun", "":
		val, err := c.validator(ctx)
		if err != nil {
			return nil, err
		}
		v := authn.Verifier(authn.CloudRun{Audience: c.Audience, Validator: val})
		if c.IAPAudience != "" {
			v = authn.AnyOf{authn.IAP{Audience: c.IAPAudience, Validator: val}, v}
		}
		return v, nil
	case "local":
		b, err := os.ReadFile(c.AuthKeyFile)
		if err != nil {
			return nil, fmt.Errorf("app: AUTH_MODE=local needs AUTH_LOCAL_KEY_FILE: %w", err)
		}
		k, err := authn.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		return authn.Local{Key: k, Audience: c.Audience}, nil
	default:
		return nil, fmt.Errorf("app: AUTH_MODE %q is not cloudrun or local", c.AuthMode)
	}
}

// PublicVerifier builds the identity verifier of a function that allUsers may invoke, so
// that nothing upstream has checked any token: outside AUTH_MODE local, Google ID tokens
// verified in full for Audience (required), never the claims-only authn.CloudRun, and
// Identity-Aware Proxy's signed header when IAPAudience is set. In local mode it is
// Verifier's.
func PublicVerifier(ctx context.Context, c Config) (authn.Verifier, error) {
	if c.AuthMode == "local" {
		return Verifier(ctx, c)
	}
	if c.Audience == "" {
		return nil, errors.New("app: AUTH_AUDIENCE (this function's URL) is required: the function is public and must check every token's audience")
	}
	val, err := c.validator(ctx)
	if err != nil {
		return nil, err
	}
	vs := authn.AnyOf{authn.GoogleIDToken{Audience: c.Audience, Validator: val}}
	if c.IAPAudience != "" {
		vs = append(authn.AnyOf{authn.IAP{Audience: c.IAPAudience, Validator: val}}, vs...)
	}
	return vs, nil
}

// validator is the idtoken.Validator built from IDTokenOptions, or nil (authn then
// shares one per instance) when there are none.
func (c Config) validator(ctx context.Context) (*idtoken.Validator, error) {
	if len(c.IDTokenOptions) == 0 {
		return nil, nil
	}
	v, err := idtoken.NewValidator(context.WithoutCancel(ctx), c.IDTokenOptions...)
	if err != nil {
		return nil, fmt.Errorf("app: building the ID-token validator: %w", err)
	}
	return v, nil
}

// A Lazy handler builds the real handler on its first request. A failed build is
// answered with 503 and retried on the next request, unlike sync.Once, which would keep
// the failure for the life of the instance.
type Lazy struct {
	build func(context.Context) (http.Handler, error)
	mu    sync.Mutex
	h     http.Handler
}

// NewLazy returns a handler that calls build on first use.
func NewLazy(build func(context.Context) (http.Handler, error)) *Lazy { return &Lazy{build: build} }

func (l *Lazy) handler(ctx context.Context) (http.Handler, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h != nil {
		return l.h, nil
	}
	h, err := l.build(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	l.h = h
	return h, nil
}

func (l *Lazy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, err := l.handler(r.Context())
	if err != nil {
		fmt.Fprintf(os.Stderr, `{"severity":"ERROR","message":"starting function: %s"}`+"\n", jsonEscape(err.Error()))
		httpapi.WriteError(w, httpapi.NewRequestID(), httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "the function could not start; it will retry on the next request"))
		return
	}
	h.ServeHTTP(w, r)
}

func jsonEscape(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, ' ')
		default:
			b = append(b, string(r)...)
		}
	}
	return string(b)
}

// Identify verifies the caller's token. A failure is a 401 that says what was wrong with
// the token, never why the rest of the request might have failed: code
// "ambiguous_identity" when the headers name more than one identity (authn.ErrAmbiguous),
// "unauthenticated" otherwise.
func (d *Deps) Identify(ctx context.Context, r *http.Request) (authn.Identity, error) {
	id, err := d.Auth.Verify(ctx, r)
	if err != nil {
		code := "unauthenticated"
		if errors.Is(err, authn.ErrAmbiguous) {
			code = "ambiguous_identity"
		}
		msg := strings.TrimPrefix(err.Error(), "authn: unauthenticated: ")
		return authn.Identity{}, httpapi.Errorf(http.StatusUnauthorized, code, "%s", msg)
	}
	return id, nil
}

// Authenticate verifies the caller and requires the policy to name them (403 otherwise).
func (d *Deps) Authenticate(ctx context.Context, r *http.Request) (authn.Identity, error) {
	id, err := d.Identify(ctx, r)
	if err != nil {
		return id, err
	}
	if !d.Policy.IsMember(id.Email) {
		return id, httpapi.Errorf(http.StatusForbidden, "not_a_member", "%s may not use Airlock; ask for a place in the policy", id.Email)
	}
	return id, nil
}
