// Package app wires a function's dependencies from its configuration: the policy, the
// connection pools, the audit recorder, the identity verifier and the log. LoadConfig
// reads the configuration, every setting of every function, in one place. Nothing is
// built at start-up: a function's Entry builds its dependencies on its first request and,
// if that fails, tries again on the next one.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"google.golang.org/api/idtoken"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/policy"
)

// Deps are a function's built dependencies.
type Deps struct {
	Config  Config
	Policy  *policy.Policy
	Roles   migrate.Roles
	Pool    *db.Pool // primary, as the function's login role
	Replica *db.Pool // reads; nil when no replica is configured
	Audit   *audit.Recorder
	Auth    authn.Verifier
	// Log is the function's own log (Config.Log, or Cloud Logging's JSON on stderr),
	// where Cloud Logging reads each line as a structured entry. Tests replace it to
	// capture what is logged; handlers read it on each request.
	Log *slog.Logger
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
	log := c.Log
	if log == nil {
		log = cloudlog.New(os.Stderr)
	}
	d := &Deps{Config: c, Policy: pol, Roles: migrate.Roles{Prefix: c.Prefix}, Log: log}
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
	if c.Recorder != nil {
		d.Audit = c.Recorder
		return d, nil
	}
	// A failed checkpoint or head save is not the request's failure: it goes to the log.
	opts := []audit.Option{audit.WithFunction(c.Function), audit.WithErrorHandler(func(err error) {
		d.Log.Error("audit: "+err.Error(), "function", c.Function, "error", err.Error())
	})}
	if c.Audit.Sink == audit.SinkCloudLogging {
		// Chain heads go to the database too, so a cut at the log's tail shows. The
		// file sink keeps its own heads file beside the trail.
		opts = append(opts, audit.WithHeadStore(audit.NewPGHeadStore(d.Pool, d.Role())))
	}
	opts = append(opts, c.AuditOptions...)
	if d.Audit, err = audit.FromConfig(ctx, c.Audit, opts...); err != nil {
		d.Close()
		return nil, fmt.Errorf("app: audit: %w", err)
	}
	return d, nil
}

// Close releases the pools and flushes the audit trail's last checkpoint, unless the
// recorder was given in Config.Recorder: its owner closes it.
func (d *Deps) Close() {
	if d.Audit != nil && d.Audit != d.Config.Recorder {
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
//	{"time":"…","severity":"ALERT","message":"…","event":"audit.unavailable","function":"…","request_id":"…"}
//
// Call it once per refused request, where the refusal is decided: each call is one alert.
func (d *Deps) AuditUnavailable(rid string, cause error, message string) *httpapi.Error {
	d.logger().LogAttrs(context.Background(), cloudlog.LevelAlert,
		fmt.Sprintf("%s refused request %s because the audit trail could not confirm a record: %v", d.Config.Function, rid, cause),
		slog.String("event", alerts.EventAuditUnavailable), slog.String("function", d.Config.Function), slog.String("request_id", rid))
	return httpapi.Errorf(http.StatusServiceUnavailable, "audit_unavailable", "%s", message)
}

// logger is d.Log, or, for Deps made by hand, Cloud Logging's JSON on stderr.
func (d *Deps) logger() *slog.Logger {
	if d.Log == nil {
		return cloudlog.New(os.Stderr)
	}
	return d.Log
}

// Handle returns the http.Handler of one route: f with a fresh request id, its error
// answered by httpapi.Serve, which logs any error that is not an *httpapi.Error to d.Log,
// with the request id and the function's name, before answering 500.
func (d *Deps) Handle(f httpapi.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.Serve(w, r, d.logger().With("function", d.Config.Function), f)
	})
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
		v := authn.Verifier(authn.CloudRun{Audience: c.Audience, Validator: val, Cache: authn.NewCache(0)})
		if c.IAPAudience != "" {
			v = authn.AnyOf{authn.IAP{Audience: c.IAPAudience, Validator: val, Cache: authn.NewCache(0)}, v}
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
		return authn.Local{Key: k, Audience: c.Audience, Cache: authn.NewCache(0)}, nil
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
	vs := authn.AnyOf{authn.GoogleIDToken{Audience: c.Audience, Validator: val, Cache: authn.NewCache(0)}}
	if c.IAPAudience != "" {
		vs = append(authn.AnyOf{authn.IAP{Audience: c.IAPAudience, Validator: val, Cache: authn.NewCache(0)}}, vs...)
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

// An Entry is a function's Cloud Functions entry point. It builds the function on its
// first request: the configuration from the environment (LoadEnv), the dependencies
// (Build), then the handler. A failed start is logged, answered 503 unavailable, and
// tried again on the next request; sync.Once would keep the failure for the life of the
// instance.
type Entry struct {
	start func(context.Context) (http.Handler, error)
	log   *slog.Logger

	mu sync.Mutex // held while starting, so that one request starts the function
	h  http.Handler
}

// NewEntry returns the entry point of the function named function, whose database group
// is group; newHandler makes its handler from the built dependencies. If newHandler
// fails, the dependencies are closed.
func NewEntry(function, group string, newHandler func(*Deps) (http.Handler, error)) *Entry {
	return newEntry(LoadEnv, cloudlog.New(os.Stderr), function, group, newHandler)
}

func newEntry(load func() (Config, error), log *slog.Logger, function, group string, newHandler func(*Deps) (http.Handler, error)) *Entry {
	return &Entry{
		log: log.With("function", function),
		start: func(ctx context.Context) (http.Handler, error) {
			cfg, err := load()
			if err != nil {
				return nil, err
			}
			cfg.Function, cfg.Group = function, group
			deps, err := Build(ctx, cfg)
			if err != nil {
				return nil, err
			}
			h, err := newHandler(deps)
			if err != nil {
				deps.Close()
				return nil, err
			}
			return h, nil
		},
	}
}

func (e *Entry) handler(ctx context.Context) (http.Handler, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != nil {
		return e.h, nil
	}
	h, err := e.start(context.WithoutCancel(ctx)) // the pools keep this ctx for background work
	if err != nil {
		return nil, err // e.h stays nil; the next request retries
	}
	e.h = h
	return h, nil
}

func (e *Entry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, err := e.handler(r.Context())
	if err != nil {
		rid := httpapi.NewRequestID()
		e.log.Error("starting function: "+err.Error(), "request_id", rid, "error", err.Error())
		httpapi.WriteError(w, rid, httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "the function could not start; it will retry on the next request"))
		return
	}
	h.ServeHTTP(w, r)
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
