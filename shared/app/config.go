package app

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"google.golang.org/api/idtoken"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/notify"
)

// Config is everything a function needs to know about its environment. LoadConfig fills
// it from environment variables, each named in its field's comment; the fields without
// one are set in code (the entry point and the tests' seams). Nothing below this package
// reads the environment.
type Config struct {
	Function string // entry point, e.g. ExecuteQuery
	Group    string // database group role suffix, e.g. migrate.GroupQuery

	Policy []byte // AIRLOCK_POLICY (the YAML itself), or the file AIRLOCK_POLICY_FILE names
	Prefix string // AIRLOCK_ROLE_PREFIX; empty: migrate.DefaultPrefix

	// DB is the primary: DATABASE_URL (a local DSN), or CLOUDSQL_INSTANCE with DB_NAME
	// and DB_IAM_USER (the Cloud SQL connector, IAM authentication, private IP).
	DB db.Config
	// Replica takes reads when set: DATABASE_REPLICA_URL, or CLOUDSQL_REPLICA_INSTANCE
	// with the primary's DB_NAME and DB_IAM_USER.
	Replica db.Config

	AuthMode    string // AUTH_MODE: "cloudrun" (the default, also when empty) or "local"
	AuthKeyFile string // AUTH_LOCAL_KEY_FILE: AUTH_MODE local's PEM public key
	Audience    string // AUTH_AUDIENCE: the audience tokens must carry (required by ApprovalCallback)
	IAPAudience string // IAP_AUDIENCE: accept Identity-Aware Proxy's signed header for it
	// IDTokenOptions configure the client that fetches Google's signing keys; tests
	// point it at a fake of Google's certificate endpoints (authntest).
	IDTokenOptions []idtoken.ClientOption

	// Audit chooses the audit trail: AUDIT_SINK, AUDIT_PROJECT (else
	// GOOGLE_CLOUD_PROJECT), AUDIT_FILE, AUDIT_KMS_KEY, AUDIT_SIGNING_KEY_FILE.
	Audit        audit.Config
	AuditOptions []audit.Option // extra options, e.g. the fake Logging server in tests
	// Recorder, when set, is the recorder to use instead of one built from Audit
	// (AuditOptions are then ignored). The caller owns it: Deps.Close leaves it open. The
	// devserver shares one among its functions, because one process is one instance and
	// so one chain.
	Recorder *audit.Recorder

	// Notify says where notifications go: NOTIFY_FILE, SLACK_APPROVERS_WEBHOOK_NAME,
	// SLACK_SECURITY_WEBHOOK_NAME.
	Notify notify.Config

	// SchedulerEmail is the only identity SweepExpired accepts (SCHEDULER_EMAIL),
	// lower-cased.
	SchedulerEmail string
	// ApprovalURL is where RequestAccess's page posts approvers' decisions: the
	// ApprovalCallback URL (APPROVAL_URL), ending in "/". Default "../ApprovalCallback/",
	// beside RequestAccess under scripts/dev.sh.
	ApprovalURL string
	// RequestAccessURL is where ApprovalCallback's decision page links back to
	// (REQUEST_ACCESS_URL). Default "../../RequestAccess/", from
	// /ApprovalCallback/web/decide under scripts/dev.sh.
	RequestAccessURL string
	// CSRFSecretName is the Secret Manager secret version of the web forms' anti-forgery
	// key (CSRF_SECRET_NAME); empty: a random key per process (scripts/dev.sh).
	CSRFSecretName string
	// SlackSigningSecretName is the Secret Manager secret version of the Slack app's
	// signing secret (SLACK_SIGNING_SECRET_NAME); empty: Slack callbacks are refused.
	SlackSigningSecretName string
	// Project is the Google Cloud project (GOOGLE_CLOUD_PROJECT), the audit trail's
	// when AUDIT_PROJECT is not set.
	Project string

	// Log is the function's own log; nil: Cloud Logging's JSON on stderr (cloudlog).
	Log *slog.Logger
}

// Defaults of the web URLs, for scripts/dev.sh, where the devserver serves every function
// under /<EntryPoint>/.
const (
	DefaultApprovalURL      = "../ApprovalCallback/"
	DefaultRequestAccessURL = "../../RequestAccess/"
)

// LoadConfig resolves every setting of every function from getenv (os.Getenv when
// deployed, a map in tests), so that each is read in one place. An error names the
// variable that is wrong. It reads the policy file AIRLOCK_POLICY_FILE names, and nothing
// else: keys and secrets are read when the dependencies are built or first used.
// Function and Group are left for the caller.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var c Config
	var errs []error
	if doc := getenv("AIRLOCK_POLICY"); doc != "" {
		c.Policy = []byte(doc)
	} else if path := get("AIRLOCK_POLICY_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("app: reading AIRLOCK_POLICY_FILE: %w", err))
		}
		c.Policy = b
	} else {
		errs = append(errs, errors.New("app: set AIRLOCK_POLICY (the policy YAML) or AIRLOCK_POLICY_FILE"))
	}
	c.Prefix = get("AIRLOCK_ROLE_PREFIX")

	c.DB = db.Config{URL: get("DATABASE_URL"), Instance: get("CLOUDSQL_INSTANCE"), Database: get("DB_NAME"), IAMUser: get("DB_IAM_USER")}
	c.Replica = db.Config{URL: get("DATABASE_REPLICA_URL"), Instance: get("CLOUDSQL_REPLICA_INSTANCE"), Database: c.DB.Database, IAMUser: c.DB.IAMUser}
	switch {
	case c.DB.URL != "" && c.DB.Instance != "":
		errs = append(errs, errors.New("app: set DATABASE_URL or CLOUDSQL_INSTANCE, not both"))
	case c.DB.URL == "" && c.DB.Instance == "":
		errs = append(errs, errors.New("app: set DATABASE_URL (a DSN) or CLOUDSQL_INSTANCE (project:region:instance)"))
	case c.DB.Instance != "" && (c.DB.Database == "" || c.DB.IAMUser == ""):
		errs = append(errs, errors.New("app: CLOUDSQL_INSTANCE needs DB_NAME and DB_IAM_USER"))
	}
	if c.Replica.URL != "" && c.Replica.Instance != "" {
		errs = append(errs, errors.New("app: set DATABASE_REPLICA_URL or CLOUDSQL_REPLICA_INSTANCE, not both"))
	}
	if c.Replica.Instance != "" && (c.DB.Database == "" || c.DB.IAMUser == "") {
		errs = append(errs, errors.New("app: CLOUDSQL_REPLICA_INSTANCE needs DB_NAME and DB_IAM_USER"))
	}

	c.AuthMode = get("AUTH_MODE")
	c.AuthKeyFile = get("AUTH_LOCAL_KEY_FILE")
	switch c.AuthMode {
	case "", "cloudrun":
	case "local":
		if c.AuthKeyFile == "" {
			errs = append(errs, errors.New("app: AUTH_MODE=local needs AUTH_LOCAL_KEY_FILE"))
		}
	default:
		errs = append(errs, fmt.Errorf("app: AUTH_MODE %q is not cloudrun or local", c.AuthMode))
	}
	c.Audience = get("AUTH_AUDIENCE")
	c.IAPAudience = get("IAP_AUDIENCE")

	c.Project = get("GOOGLE_CLOUD_PROJECT")
	c.Audit = audit.Config{
		Sink: get("AUDIT_SINK"), Project: cmp.Or(get("AUDIT_PROJECT"), c.Project), File: get("AUDIT_FILE"),
		KMSKey: get("AUDIT_KMS_KEY"), SigningKeyFile: get("AUDIT_SIGNING_KEY_FILE"),
	}
	if err := c.Audit.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("app: %w", err))
	}

	c.Notify = notify.Config{File: get("NOTIFY_FILE"), ApproversWebhook: get("SLACK_APPROVERS_WEBHOOK_NAME"), SecurityWebhook: get("SLACK_SECURITY_WEBHOOK_NAME")}
	c.SchedulerEmail = strings.ToLower(get("SCHEDULER_EMAIL"))
	if c.SchedulerEmail != "" && !strings.Contains(c.SchedulerEmail, "@") {
		errs = append(errs, fmt.Errorf("app: SCHEDULER_EMAIL %q is not an e-mail address", c.SchedulerEmail))
	}

	c.ApprovalURL = cmp.Or(get("APPROVAL_URL"), DefaultApprovalURL)
	if !strings.HasSuffix(c.ApprovalURL, "/") {
		c.ApprovalURL += "/"
	}
	c.RequestAccessURL = cmp.Or(get("REQUEST_ACCESS_URL"), DefaultRequestAccessURL)
	for _, v := range []struct{ name, value string }{{"APPROVAL_URL", c.ApprovalURL}, {"REQUEST_ACCESS_URL", c.RequestAccessURL}} {
		if u, err := url.Parse(v.value); err != nil || (u.Scheme != "" && u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("app: %s %q is not an http(s) URL or a relative path", v.name, v.value))
		}
	}
	c.CSRFSecretName = get("CSRF_SECRET_NAME")
	c.SlackSigningSecretName = get("SLACK_SIGNING_SECRET_NAME")
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadEnv is LoadConfig of the process environment: a deployed function's configuration.
func LoadEnv() (Config, error) { return LoadConfig(os.Getenv) }
