package approval_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/notify/notifytest"
)

const (
	// auditTimeout bounds each audit write. It is long enough that a working sink never
	// reaches it on a loaded machine: a hanging sink is told from a slow one by what it
	// does (hang until the deadline), not by how long a test machine takes.
	auditTimeout = 5 * time.Second
	// maxAttempts is how many audit writes a refusal may make while the sink fails or
	// hangs: a few, each bounded by auditTimeout, so the refusal comes promptly.
	maxAttempts = 6
)

// decideFlow is ApprovalCallback auditing through the real Cloud Logging client to a fake
// server the test can break, with its own log captured, beside a RequestAccess (auditing
// to a file) that makes the requests to decide and the web page's anti-forgery tokens.
type decideFlow struct {
	*apptest.Env
	logs             *audittest.Server
	log              *bytes.Buffer // ApprovalCallback's own log (app.Deps.Log)
	access, approval string        // approval has no trailing slash
}

func newDecideFlow(t *testing.T) *decideFlow {
	t.Helper()
	env := apptest.New(t)
	f := &decideFlow{Env: env, logs: audittest.NewServer(t), log: &bytes.Buffer{}}
	sm := notifytest.NewSecretManager(t, map[string]string{signingSecretName: signingSecret})
	secrets := &notify.SecretManager{Options: sm.Options}
	t.Cleanup(func() { secrets.Close() })

	f.access = env.Serve(access.New(env.Deps(access.EntryPoint, migrate.GroupRequests))).URL + "/"
	deps := env.Deps(approval.EntryPoint, migrate.GroupApprovals, apptest.WithCloudLogging(f.logs, audit.WithTimeout(auditTimeout)))
	deps.Log = cloudlog.New(f.log)
	f.approval = env.Serve(approval.New(deps).WithSlack(secrets, signingSecretName)).URL
	return f
}

// A decideTarget is what one case decides: a request of requester for role (whose
// capability is capRole), and the grant made for it, if any.
type decideTarget struct {
	request, requester, capRole string
	grant                       float64 // as JSON numbers decode
}

// request makes requester ask for role through RequestAccess, while the sink works.
func (f *decideFlow) request(t *testing.T, requester, role, capRole string) decideTarget {
	t.Helper()
	r := f.Do("POST", f.access, requester, map[string]any{"role": role, "reason": reason, "duration": "1h"})
	id, _ := r.JSON()["request_id"].(string)
	if r.Status != http.StatusCreated || id == "" {
		t.Fatalf("when %s requests %s, want = 201 with a request_id, got = %d %s", requester, role, r.Status, r.Body)
	}
	return decideTarget{request: id, requester: requester, capRole: capRole}
}

// api sends one decision to ApprovalCallback's JSON API.
func (f *decideFlow) api(email string, body map[string]any) apptest.Response {
	return f.Do("POST", f.approval+"/", email, body)
}

// A decideState is what a decision can change.
type decideState struct {
	Status      string // the request's
	Approvals   int    // approval rows of the request (approvals and denials)
	Grants      int    // grants made for the request
	GrantStatus string // of its grant; "" without one
	Member      bool   // the requester's database role holds the capability
}

func (f *decideFlow) state(t *testing.T, tg decideTarget) decideState {
	t.Helper()
	var s decideState
	err := f.Admin.QueryRow(context.Background(), `
		SELECT r.status,
		       (SELECT count(*) FROM airlock.approvals a WHERE a.request_id = r.id),
		       (SELECT count(*) FROM airlock.grants g WHERE g.request_id = r.id),
		       coalesce((SELECT g.status FROM airlock.grants g WHERE g.request_id = r.id), ''),
		       EXISTS (SELECT 1 FROM airlock.developers d WHERE d.email = r.requester AND pg_has_role(d.db_role, $2, 'MEMBER'))
		  FROM airlock.access_requests r WHERE r.id = $1`, tg.request, tg.capRole).
		Scan(&s.Status, &s.Approvals, &s.Grants, &s.GrantStatus, &s.Member)
	if err != nil {
		t.Fatalf("reading the state of %s: %v", tg.request, err)
	}
	return s
}

// TestAuditFailsClosed: when the audit sink cannot confirm a write, whether it returns
// errors or hangs, no decision of ApprovalCallback takes effect, by any path (JSON API,
// web page, Slack): it answers 503 audit_unavailable promptly, changes nothing (no
// approval row, no grant, no role membership, a revoked grant stays active), and logs one
// audit.unavailable alert. Once the sink recovers, the same decision is made.
func TestAuditFailsClosed(t *testing.T) {
	tcs := []struct {
		desc   string
		failOn []string // events whose writes fail; none: every write
		landed string   // an entry that must still land: the failure hit the one after it
		setup  func(t *testing.T, f *decideFlow) decideTarget
		// send makes the decision; attempt is 0, then 1 once the sink has recovered.
		send func(t *testing.T, f *decideFlow, tg decideTarget, attempt int) apptest.Response
		page string      // what the web page says when refused; "" for JSON answers
		want decideState // once the sink has recovered
	}{
		{
			desc: "approve, the first of two",
			setup: func(t *testing.T, f *decideFlow) decideTarget {
				return f.request(t, "dev1@example.com", "write_accounts", f.DB.Roles.Write("accounts"))
			},
			send: func(t *testing.T, f *decideFlow, tg decideTarget, _ int) apptest.Response {
				return f.api("lead1@example.com", map[string]any{"request_id": tg.request, "decision": "approve"})
			},
			want: decideState{Status: "pending", Approvals: 1},
		},
		{
			desc:   "approve that grants, grant.created unconfirmed",
			failOn: []string{audit.EventGrantCreated},
			landed: audit.EventRequestApproved,
			setup: func(t *testing.T, f *decideFlow) decideTarget {
				return f.request(t, "dev1@example.com", "unmasked_users", f.DB.Roles.Unmasked("users"))
			},
			send: func(t *testing.T, f *decideFlow, tg decideTarget, _ int) apptest.Response {
				return f.api("lead1@example.com", map[string]any{"request_id": tg.request, "decision": "approve"})
			},
			want: decideState{Status: "approved", Approvals: 1, Grants: 1, GrantStatus: "active", Member: true},
		},
		{
			desc: "deny",
			setup: func(t *testing.T, f *decideFlow) decideTarget {
				return f.request(t, "dev2@example.com", "unmasked_users", f.DB.Roles.Unmasked("users"))
			},
			send: func(t *testing.T, f *decideFlow, tg decideTarget, _ int) apptest.Response {
				return f.api("lead1@example.com", map[string]any{"request_id": tg.request, "decision": "deny", "comment": "not for this ticket"})
			},
			want: decideState{Status: "denied", Approvals: 1},
		},
		{
			desc: "revoke",
			setup: func(t *testing.T, f *decideFlow) decideTarget {
				tg := f.request(t, "dev2@example.com", "unmasked_deposits", f.DB.Roles.Unmasked("deposits"))
				r := f.api("lead1@example.com", map[string]any{"request_id": tg.request, "decision": "approve"})
				tg.grant, _ = r.JSON()["grant_id"].(float64)
				if r.Status != http.StatusOK || tg.grant == 0 {
					t.Fatalf("when lead1 approves %s with the sink working, want = 200 with a grant_id, got = %d %s", tg.request, r.Status, r.Body)
				}
				return tg
			},
			send: func(t *testing.T, f *decideFlow, tg decideTarget, _ int) apptest.Response {
				return f.api("lead2@example.com", map[string]any{"grant_id": tg.grant, "decision": "revoke"})
			},
			want: decideState{Status: "approved", Approvals: 1, Grants: 1, GrantStatus: "revoked"},
		},
		{
			desc: "approve on the web page",
			setup: func(t *testing.T, f *decideFlow) decideTarget {
				return f.request(t, "dev1@example.com", "write_accounts", f.DB.Roles.Write("accounts"))
			},
			send: func(t *testing.T, f *decideFlow, tg decideTarget, _ int) apptest.Response {
				page := f.Do("GET", f.access, "lead1@example.com", nil, "Accept", "text/html")
				m := csrfRE.FindSubmatch(page.Body)
				if page.Status != http.StatusOK || m == nil {
					t.Fatalf("when lead1 opens the page, want = 200 with an anti-forgery token, got = %d %s", page.Status, page.Body)
				}
				return f.Do("POST", f.approval+approval.WebPath, "lead1@example.com",
					form("csrf", string(m[1]), "request_id", tg.request, "decision", "approve"), "Content-Type", "application/x-www-form-urlencoded")
			},
			page: "could not confirm the record of this decision, so it was not made",
			want: decideState{Status: "pending", Approvals: 1},
		},
		{
			desc: "approve from Slack",
			setup: func(t *testing.T, f *decideFlow) decideTarget {
				return f.request(t, "dev1@example.com", "write_accounts", f.DB.Roles.Write("accounts"))
			},
			send: func(t *testing.T, f *decideFlow, tg decideTarget, attempt int) apptest.Response {
				// Pressing the button again is a new callback, with its own timestamp and
				// signature; the same one would be refused as a replay.
				ts := time.Now().Unix() + int64(attempt)
				body := slackBody("U0LEAD1", notify.ActionApprove, tg.request)
				return (&slackFlow{Env: f.Env, approval: f.approval}).callback(t, body, ts, sign(signingSecret, ts, body))
			},
			want: decideState{Status: "pending", Approvals: 1},
		},
	}
	for _, mode := range audittest.Failures() {
		t.Run(mode.Desc, func(t *testing.T) {
			f := newDecideFlow(t)
			for _, tc := range tcs {
				t.Run(tc.desc, func(t *testing.T) {
					tg := tc.setup(t, f)
					before := f.state(t, tg)
					stored := len(f.logs.Payloads())
					f.log.Reset()

					mode.Fail(f.logs, tc.failOn...)
					calls, start := f.logs.Calls(), time.Now()
					r := tc.send(t, f, tg, 0)
					attempts, took := f.logs.Calls()-calls, time.Since(start)
					f.logs.Recover()

					when := mode.Desc + " during " + tc.desc
					if r.Status != http.StatusServiceUnavailable {
						t.Errorf("when %s, want status = 503, got = %d %s", when, r.Status, r.Body)
					}
					rid := ""
					if tc.page != "" {
						if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.Body), tc.page) {
							t.Errorf("when %s, want = a page saying %q, got = %s", when, tc.page, r.Body)
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
					if got := f.state(t, tg); got != before {
						t.Errorf("when %s, want the state unchanged = %+v, got = %+v", when, before, got)
					}
					if tc.landed != "" {
						var evs []string
						for _, p := range f.logs.Payloads()[stored:] {
							ev, _ := p["event"].(string)
							evs = append(evs, ev)
						}
						if !slices.Contains(evs, tc.landed) || slices.Contains(evs, tc.failOn[0]) {
							t.Errorf("when %s, want = %s stored and %s not, got events = %v", when, tc.landed, tc.failOn[0], evs)
						}
					}
					apptest.CheckAuditAlert(t, when, f.log.Bytes(), approval.EntryPoint, rid)

					// The same decision, with the sink back: the failure was the sink's.
					f.log.Reset()
					r = tc.send(t, f, tg, 1)
					if r.Status != http.StatusOK {
						t.Fatalf("when the sink has recovered after %s, want status = 200, got = %d %s", when, r.Status, r.Body)
					}
					if got := f.state(t, tg); got != tc.want {
						t.Errorf("when the sink has recovered after %s, want state = %+v, got = %+v", when, tc.want, got)
					}
					if a := apptest.AuditAlerts(t, f.log.Bytes()); len(a) != 0 {
						t.Errorf("when a decision succeeds, want = no audit.unavailable line, got = %v", a)
					}
				})
			}
		})
	}
}
