package access_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

const (
	dev1 = "dev1@example.com"
	// auditTimeout bounds each audit write. It is long enough that a working sink never
	// reaches it on a loaded machine: a hanging sink is told from a slow one by what it
	// does (hang until the deadline), not by how long a test machine takes.
	auditTimeout = 5 * time.Second
	// maxAttempts is how many audit writes a refusal may make while the sink fails or
	// hangs: a few, each bounded by auditTimeout, so the refusal comes promptly.
	maxAttempts = 6
)

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// failClosed is RequestAccess auditing through the real Cloud Logging client to a fake
// server the test can break, with the function's own log captured.
type failClosed struct {
	*apptest.Env
	logs *audittest.Server
	log  *bytes.Buffer // the function's own log (app.Deps.Log)
	url  string
}

func newFailClosed(t *testing.T) *failClosed {
	t.Helper()
	env := apptest.New(t)
	f := &failClosed{Env: env, logs: audittest.NewServer(t), log: &bytes.Buffer{}}
	deps := env.Deps(access.EntryPoint, migrate.GroupRequests, apptest.WithCloudLogging(f.logs, audit.WithTimeout(auditTimeout)))
	deps.Log = cloudlog.New(f.log)
	f.url = env.Serve(access.New(deps)).URL + "/"
	return f
}

// counts is how many access requests and notifications the database holds.
func (f *failClosed) counts(t *testing.T) (requests, notifications int) {
	t.Helper()
	err := f.Admin.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM airlock.access_requests), (SELECT count(*) FROM airlock.notifications)`).Scan(&requests, &notifications)
	if err != nil {
		t.Fatalf("counting requests and notifications: %v", err)
	}
	return requests, notifications
}

// events lists the events of the audit entries the fake server stored after the first n.
func (f *failClosed) events(n int) []string {
	var out []string
	for _, p := range f.logs.Payloads()[n:] {
		ev, _ := p["event"].(string)
		out = append(out, ev)
	}
	return out
}

// submitForm posts the web form as dev1, with the anti-forgery token from dev1's page.
func (f *failClosed) submitForm(t *testing.T, fields ...string) apptest.Response {
	t.Helper()
	page := f.Do("GET", f.url, dev1, nil, "Accept", "text/html")
	m := csrfRE.FindSubmatch(page.Body)
	if page.Status != http.StatusOK || m == nil {
		t.Fatalf("when dev1 opens the form, want = 200 with an anti-forgery token, got = %d %s", page.Status, page.Body)
	}
	v := url.Values{"csrf": {string(m[1])}}
	for i := 0; i+1 < len(fields); i += 2 {
		v.Set(fields[i], fields[i+1])
	}
	return f.Do("POST", f.url, dev1, v.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// TestAuditFailsClosed: when the audit sink cannot confirm a write, whether it returns
// errors or hangs, RequestAccess creates nothing (no request, no notification), answers
// 503 audit_unavailable (the form says so on the page) promptly, and logs one
// audit.unavailable alert; once the sink recovers, the same request is created.
func TestAuditFailsClosed(t *testing.T) {
	const (
		reason   = "Investigating support ticket SUP-881 about a wrong e-mail address"
		bgReason = "Withdrawals stuck in production, incident INC-4242 open"
	)
	tcs := []struct {
		desc   string
		failOn []string // events whose writes fail; none: every write
		landed string   // an entry that must still land: the failure hit the one after it
		form   bool     // the web form, answered with a page
		send   func(t *testing.T, f *failClosed) apptest.Response
		notes  int // notifications a created request queues
	}{
		{
			desc: "JSON request",
			send: func(t *testing.T, f *failClosed) apptest.Response {
				return f.Do("POST", f.url, dev1, map[string]any{"role": "unmasked_users", "reason": reason, "duration": "10m"})
			},
			notes: 1,
		},
		{
			desc:   "JSON break-glass, breakglass.activated unconfirmed",
			failOn: []string{audit.EventBreakglassActivated},
			landed: audit.EventRequestCreated,
			send: func(t *testing.T, f *failClosed) apptest.Response {
				return f.Do("POST", f.url, dev1, map[string]any{"breakglass": true, "reason": bgReason, "duration": "30m", "ticket": "INC-4242"})
			},
			notes: 2, // approvers and security
		},
		{
			desc: "web form",
			form: true,
			send: func(t *testing.T, f *failClosed) apptest.Response {
				return f.submitForm(t, "role", "unmasked_users", "duration", "10m", "reason", reason)
			},
			notes: 1,
		},
		{
			desc:   "web form break-glass, breakglass.activated unconfirmed",
			failOn: []string{audit.EventBreakglassActivated},
			landed: audit.EventRequestCreated,
			form:   true,
			send: func(t *testing.T, f *failClosed) apptest.Response {
				return f.submitForm(t, "role", "breakglass", "duration", "30m", "reason", bgReason, "ticket", "INC-4242")
			},
			notes: 2,
		},
	}
	for _, mode := range audittest.Failures() {
		t.Run(mode.Desc, func(t *testing.T) {
			f := newFailClosed(t)
			for _, tc := range tcs {
				t.Run(tc.desc, func(t *testing.T) {
					reqs, notes := f.counts(t)
					stored := len(f.logs.Payloads())
					f.log.Reset()

					mode.Fail(f.logs, tc.failOn...)
					calls, start := f.logs.Calls(), time.Now()
					r := tc.send(t, f)
					attempts, took := f.logs.Calls()-calls, time.Since(start)
					f.logs.Recover()

					when := mode.Desc + " during a " + tc.desc
					if r.Status != http.StatusServiceUnavailable {
						t.Errorf("when %s, want status = 503, got = %d %s", when, r.Status, r.Body)
					}
					rid := ""
					if tc.form {
						if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !bytes.Contains(r.Body, []byte(`id="error"`)) ||
							!bytes.Contains(r.Body, []byte("could not confirm the record of this request, so nothing was created")) {
							t.Errorf("when %s, want = the form page saying nothing was created, got = %s", when, r.Body)
						}
					} else {
						if r.Code() != "audit_unavailable" {
							t.Errorf("when %s, want code = audit_unavailable, got = %q (%s)", when, r.Code(), r.Body)
						}
						rid, _ = r.JSON()["request_id"].(string)
					}
					// A hanging sink answers each write at its deadline: count the writes.
					// A failing one is retried until the deadline: only a hang of the
					// function itself could take it past a few deadlines.
					if mode.Desc == "sink hangs" && attempts > maxAttempts {
						t.Errorf("when %s, want the refusal after at most %d audit writes (each bounded by the %v audit timeout), got = %d", when, maxAttempts, auditTimeout, attempts)
					}
					if took > maxAttempts*auditTimeout {
						t.Errorf("when %s, want the refusal within %d audit timeouts of %v, got one after %v", when, maxAttempts, auditTimeout, took)
					}
					if gr, gn := f.counts(t); gr != reqs || gn != notes {
						t.Errorf("when %s, want requests = %d and notifications = %d (nothing created), got = %d and %d", when, reqs, notes, gr, gn)
					}
					if evs := f.events(stored); tc.landed != "" && (!slices.Contains(evs, tc.landed) || slices.Contains(evs, audit.EventBreakglassActivated)) {
						t.Errorf("when %s, want = %s stored and %s not, got events = %v", when, tc.landed, audit.EventBreakglassActivated, evs)
					}
					apptest.CheckAuditAlert(t, when, f.log.Bytes(), access.EntryPoint, rid)

					// The same request, with the sink back: the failure was the sink's.
					f.log.Reset()
					r = tc.send(t, f)
					if r.Status != http.StatusCreated {
						t.Fatalf("when the sink has recovered after %s, want status = 201, got = %d %s", when, r.Status, r.Body)
					}
					if gr, gn := f.counts(t); gr != reqs+1 || gn != notes+tc.notes {
						t.Errorf("when the sink has recovered after %s, want requests = %d and notifications = %d, got = %d and %d", when, reqs+1, notes+tc.notes, gr, gn)
					}
					if a := apptest.AuditAlerts(t, f.log.Bytes()); len(a) != 0 {
						t.Errorf("when a request succeeds, want = no audit.unavailable line, got = %v", a)
					}
				})
			}
		})
	}
}
