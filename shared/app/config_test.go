package app_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
)

// deployed is what Terraform sets for every function (terraform/main.tf, common_env),
// with a function's own variables.
func deployed(kv ...string) map[string]string {
	m := map[string]string{
		"AIRLOCK_POLICY": string(demo.Policy), "CLOUDSQL_INSTANCE": "p:europe-west1:primary", "DB_NAME": "app",
		"DB_IAM_USER": "airlock-query@p.iam", "AUDIT_SINK": "cloudlogging", "AUDIT_PROJECT": "p",
		"AUDIT_KMS_KEY": "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1", "AUTH_MODE": "cloudrun",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestLoadConfig(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, demo.Policy, 0o600); err != nil {
		t.Fatal(err)
	}
	tcs := []struct {
		desc    string
		env     map[string]string
		check   func(t *testing.T, c app.Config)
		wantErr string // the variable the error must name
	}{
		{desc: "deployed", env: deployed("CLOUDSQL_REPLICA_INSTANCE", "p:europe-west1:replica"), check: func(t *testing.T, c app.Config) {
			want := db.Config{Instance: "p:europe-west1:primary", Database: "app", IAMUser: "airlock-query@p.iam"}
			if c.DB != want || c.Replica != (db.Config{Instance: "p:europe-west1:replica", Database: "app", IAMUser: "airlock-query@p.iam"}) {
				t.Errorf("want = primary %+v and the replica beside it, got = %+v, %+v", want, c.DB, c.Replica)
			}
			if c.Audit != (audit.Config{Sink: "cloudlogging", Project: "p", KMSKey: "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"}) {
				t.Errorf("want = the Cloud Logging sink of project p, certified in KMS, got = %+v", c.Audit)
			}
			if string(c.Policy) != string(demo.Policy) || c.AuthMode != "cloudrun" || c.Function != "" || c.Group != "" {
				t.Errorf("want = the policy from AIRLOCK_POLICY, AUTH_MODE cloudrun and no entry point, got = %d bytes, %q, %q, %q", len(c.Policy), c.AuthMode, c.Function, c.Group)
			}
			if c.ApprovalURL != app.DefaultApprovalURL || c.RequestAccessURL != app.DefaultRequestAccessURL || c.Notify != (notify.Config{}) {
				t.Errorf("want = the dev.sh web URLs by default and no notification target, got = %q, %q, %+v", c.ApprovalURL, c.RequestAccessURL, c.Notify)
			}
		}},
		{desc: "every function's own variables", env: deployed(
			"APPROVAL_URL", "https://x/ApprovalCallback", "REQUEST_ACCESS_URL", "https://x/RequestAccess", "IAP_AUDIENCE", "/projects/1/global/backendServices/2",
			"AUTH_AUDIENCE", "https://x/ApprovalCallback", "SCHEDULER_EMAIL", " Sweeper@P.iam.gserviceaccount.com ", "CSRF_SECRET_NAME", "projects/p/secrets/csrf/versions/latest",
			"SLACK_SIGNING_SECRET_NAME", "s1", "SLACK_APPROVERS_WEBHOOK_NAME", "s2", "SLACK_SECURITY_WEBHOOK_NAME", "s3", "AIRLOCK_ROLE_PREFIX", "al_",
		), check: func(t *testing.T, c app.Config) {
			got := []string{c.ApprovalURL, c.RequestAccessURL, c.IAPAudience, c.Audience, c.SchedulerEmail, c.CSRFSecretName, c.SlackSigningSecretName, c.Notify.ApproversWebhook, c.Notify.SecurityWebhook, c.Prefix}
			want := []string{"https://x/ApprovalCallback/", "https://x/RequestAccess", "/projects/1/global/backendServices/2", "https://x/ApprovalCallback",
				"sweeper@p.iam.gserviceaccount.com", "projects/p/secrets/csrf/versions/latest", "s1", "s2", "s3", "al_"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("want = %q, got = %q", want, got)
			}
		}},
		{desc: "local, as scripts/dev.sh", env: map[string]string{
			"AIRLOCK_POLICY_FILE": policyFile, "DATABASE_URL": "postgres://q@127.0.0.1/airlock", "DATABASE_REPLICA_URL": "postgres://r@127.0.0.1/airlock",
			"AUTH_MODE": "local", "AUTH_LOCAL_KEY_FILE": "/k.pem", "AUDIT_SINK": "file", "AUDIT_FILE": "/a.jsonl", "AUDIT_SIGNING_KEY_FILE": "/s.pem", "NOTIFY_FILE": "/n.jsonl",
		}, check: func(t *testing.T, c app.Config) {
			if string(c.Policy) != string(demo.Policy) || c.DB.URL != "postgres://q@127.0.0.1/airlock" || c.Replica.URL != "postgres://r@127.0.0.1/airlock" {
				t.Errorf("want = the policy file's content and both DSNs, got = %d bytes, %+v, %+v", len(c.Policy), c.DB, c.Replica)
			}
			if c.Audit != (audit.Config{Sink: "file", File: "/a.jsonl", SigningKeyFile: "/s.pem"}) || c.Notify != (notify.Config{File: "/n.jsonl"}) || c.AuthKeyFile != "/k.pem" {
				t.Errorf("want = the file sink, the notifications file and the local key, got = %+v, %+v, %q", c.Audit, c.Notify, c.AuthKeyFile)
			}
		}},
		{desc: "GOOGLE_CLOUD_PROJECT when AUDIT_PROJECT is unset", env: deployed("AUDIT_PROJECT", "<unset>", "GOOGLE_CLOUD_PROJECT", "p2"), check: func(t *testing.T, c app.Config) {
			if c.Audit.Project != "p2" || c.Project != "p2" {
				t.Errorf("want = the audit trail in p2, got = %q (project %q)", c.Audit.Project, c.Project)
			}
		}},
		{desc: "AUDIT_PROJECT before GOOGLE_CLOUD_PROJECT", env: deployed("GOOGLE_CLOUD_PROJECT", "p2"), check: func(t *testing.T, c app.Config) {
			if c.Audit.Project != "p" {
				t.Errorf("want = the audit trail in p, got = %q", c.Audit.Project)
			}
		}},
		{desc: "no policy", env: deployed("AIRLOCK_POLICY", "<unset>"), wantErr: "AIRLOCK_POLICY_FILE"},
		{desc: "an unreadable policy file", env: deployed("AIRLOCK_POLICY", "<unset>", "AIRLOCK_POLICY_FILE", "/nonexistent/policy.yaml"), wantErr: "AIRLOCK_POLICY_FILE"},
		{desc: "no database", env: deployed("CLOUDSQL_INSTANCE", "<unset>"), wantErr: "CLOUDSQL_INSTANCE"},
		{desc: "two databases", env: deployed("DATABASE_URL", "postgres://x"), wantErr: "DATABASE_URL"},
		{desc: "Cloud SQL without its user", env: deployed("DB_IAM_USER", "<unset>"), wantErr: "DB_IAM_USER"},
		{desc: "two replicas", env: deployed("DATABASE_REPLICA_URL", "postgres://x", "CLOUDSQL_REPLICA_INSTANCE", "p:r:i"), wantErr: "CLOUDSQL_REPLICA_INSTANCE"},
		{desc: "an unknown AUTH_MODE", env: deployed("AUTH_MODE", "none"), wantErr: "AUTH_MODE"},
		{desc: "local auth without its key", env: deployed("AUTH_MODE", "local"), wantErr: "AUTH_LOCAL_KEY_FILE"},
		{desc: "no audit sink", env: deployed("AUDIT_SINK", "<unset>"), wantErr: "AUDIT_SINK"},
		{desc: "an unknown audit sink", env: deployed("AUDIT_SINK", "stdout"), wantErr: "AUDIT_SINK"},
		{desc: "two signing keys", env: deployed("AUDIT_SIGNING_KEY_FILE", "/s.pem"), wantErr: "AUDIT_SIGNING_KEY_FILE"},
		{desc: "a scheduler that is not an address", env: deployed("SCHEDULER_EMAIL", "sweeper"), wantErr: "SCHEDULER_EMAIL"},
		{desc: "an approval URL of another scheme", env: deployed("APPROVAL_URL", "javascript:alert(1)"), wantErr: "APPROVAL_URL"},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := app.LoadConfig(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("when %s, want = an error naming %s, got = %v", tc.desc, tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("when %s, want = no error, got = %v", tc.desc, err)
			}
			tc.check(t, c)
		})
	}
}

// An Entry that cannot start answers 503 unavailable and logs why, and starts on a later
// request once it can: the failure is not kept.
func TestEntryRetries(t *testing.T) {
	var loads int
	env := map[string]string{}
	load := func() (app.Config, error) {
		loads++
		return app.LoadConfig(func(k string) string { return env[k] })
	}
	var logs bytes.Buffer
	e := app.NewEntryWith(load, cloudlog.New(&logs), "ExecuteQuery", migrate.GroupQuery, func(d *app.Deps) (http.Handler, error) {
		if d.Config.Function != "ExecuteQuery" || d.Config.Group != migrate.GroupQuery {
			t.Errorf("want = deps for ExecuteQuery in group %s, got = %q, %q", migrate.GroupQuery, d.Config.Function, d.Config.Group)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }), nil
	})
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusServiceUnavailable || body.Error.Code != "unavailable" {
		t.Fatalf("when the configuration is missing, want = 503 unavailable, got = %d %s", w.Code, w.Body)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line["severity"] != "ERROR" || !strings.Contains(line["error"].(string), "AIRLOCK_POLICY") {
		t.Errorf("when the configuration is missing, want = one ERROR line naming AIRLOCK_POLICY, got = %q", logs.String())
	}
	dir := t.TempDir()
	env = map[string]string{"AIRLOCK_POLICY": string(demo.Policy), "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
		"AUDIT_SINK": "file", "AUDIT_FILE": filepath.Join(dir, "a.jsonl"), "AUDIT_SIGNING_KEY_FILE": writeSigningKey(t, dir)}
	for i := range 2 {
		w = httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
		if w.Code != http.StatusTeapot {
			t.Fatalf("request %d after the configuration is fixed, want = the function's answer, got = %d %s", i+2, w.Code, w.Body)
		}
	}
	if loads != 2 {
		t.Errorf("want = the configuration loaded once per start attempt (2), got = %d", loads)
	}
}

// A route's plain error becomes a 500 and one ERROR line in the function's log naming
// the request id the answer carries, the function and the cause.
func TestHandleLogsInternalErrors(t *testing.T) {
	var logs bytes.Buffer
	d := &app.Deps{Config: app.Config{Function: "SweepExpired"}, Log: cloudlog.New(&logs)}
	h := d.Handle(func(w http.ResponseWriter, r *http.Request, rid string) error {
		return errors.New("closed pool")
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	var body struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || strings.Count(logs.String(), "\n") != 1 {
		t.Fatalf("want = one JSON log line, got = %q", logs.String())
	}
	if w.Code != 500 || line["severity"] != "ERROR" || line["request_id"] != body.RequestID || line["function"] != "SweepExpired" || line["error"] != "closed pool" {
		t.Errorf("want = 500 and an ERROR line with request_id %s, function and cause, got = %d, %v", body.RequestID, w.Code, line)
	}
}

// writeSigningKey writes a fresh P-256 key where AUDIT_SIGNING_KEY_FILE can name it.
func writeSigningKey(t *testing.T, dir string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every variable Terraform and scripts/dev.sh set for the functions is one LoadConfig
// reads, so a renamed variable cannot leave a deployment silently unconfigured, and no
// secret is handed to a function that never reads it.
func TestEveryVariableSetIsRead(t *testing.T) {
	read := map[string]bool{}
	app.LoadConfig(func(k string) string { read[k] = true; return "" })
	set := map[string]string{}
	for _, src := range []struct {
		path string
		re   *regexp.Regexp
	}{
		{"../../terraform/main.tf", regexp.MustCompile(`(?m)(?:^\s*|\{\s*)([A-Z][A-Z0-9_]{3,})\s*=|env\s*=\s*"([A-Z][A-Z0-9_]+)"`)},
		{"../../terraform/functions.tf", regexp.MustCompile(`(?m)^\s*([A-Z][A-Z0-9_]{3,})\s*=()`)},
		{"../../scripts/dev.sh", regexp.MustCompile(`(?m)(?:^export | )([A-Z][A-Z0-9_]{3,})=()`)},
	} {
		b, err := os.ReadFile(src.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range src.re.FindAllStringSubmatch(string(b), -1) {
			set[m[1]+m[2]] = src.path
		}
	}
	for _, want := range []string{"AIRLOCK_POLICY", "CLOUDSQL_INSTANCE", "DB_IAM_USER", "SCHEDULER_EMAIL", "CSRF_SECRET_NAME", "IAP_AUDIENCE", "AUDIT_SIGNING_KEY_FILE"} {
		if set[want] == "" {
			t.Fatalf("want = %s among the variables found in Terraform and scripts/dev.sh (the patterns are stale), got = %v", want, set)
		}
	}
	for k, where := range set {
		if !read[k] && !devOnly[k] {
			t.Errorf("%s sets %s, which LoadConfig never reads", where, k)
		}
	}
}

// devOnly are names scripts/dev.sh assigns that are not the functions': TOKEN is the
// shell variable of the walk-through it prints.
var devOnly = map[string]bool{"TOKEN": true}
