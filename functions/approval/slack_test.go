package approval_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/notify/notifytest"
)

const (
	signingSecret     = "8f742231b10e8888abcd99yyyzzz85a5"
	signingSecretName = "projects/p/secrets/slack-signing/versions/latest"
	approversName     = "projects/p/secrets/slack-approvers/versions/latest"
	securityName      = "projects/p/secrets/slack-security/versions/latest"
)

type slackFlow struct {
	*apptest.Env
	access, approval    string
	approvers, security *notifytest.Slack
}

// newSlackFlow wires both functions to a fake Secret Manager holding the signing secret
// and two webhook URLs, each pointing at a fake Slack.
func newSlackFlow(t *testing.T) *slackFlow {
	env := apptest.New(t)
	f := &slackFlow{Env: env, approvers: notifytest.NewSlack(t), security: notifytest.NewSlack(t)}
	sm := notifytest.NewSecretManager(t, map[string]string{
		signingSecretName: signingSecret, approversName: f.approvers.URL, securityName: f.security.URL,
	})
	secrets := &notify.SecretManager{Options: sm.Options}
	t.Cleanup(func() { secrets.Close() })
	vars := apptest.WithEnv("SLACK_APPROVERS_WEBHOOK_NAME", approversName, "SLACK_SECURITY_WEBHOOK_NAME", securityName)

	accDeps := env.Deps(access.EntryPoint, migrate.GroupRequests, vars)
	apDeps := env.Deps(approval.EntryPoint, migrate.GroupApprovals, vars)
	f.access = env.Serve(access.New(accDeps).WithNotifier(notify.New(accDeps.Pool, accDeps.Role(), accDeps.Config.Notify, secrets, accDeps.Log))).URL + "/"
	f.approval = env.Serve(approval.New(apDeps).
		WithNotifier(notify.New(apDeps.Pool, apDeps.Role(), apDeps.Config.Notify, secrets, apDeps.Log)).
		WithSlack(secrets, signingSecretName).
		WithClock(workingHours)).URL
	return f
}

func slackBody(user, action, requestID string) string {
	p := map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user, "username": "x"},
		"actions":      []any{map[string]any{"action_id": action, "value": requestID, "type": "button"}},
		"response_url": "https://hooks.slack.com/actions/T/1/x",
	}
	b, _ := json.Marshal(p)
	return url.Values{"payload": {string(b)}}.Encode()
}

func sign(secret string, ts int64, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func (f *slackFlow) callback(t *testing.T, body string, ts int64, sig string) apptest.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", f.approval+approval.SlackPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", fmt.Sprint(ts))
	req.Header.Set("X-Slack-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func TestSlackBreakGlassFlow(t *testing.T) {
	f := newSlackFlow(t)
	r := f.Do("POST", f.access, "dev1@example.com", map[string]any{"breakglass": true, "reason": "Withdrawals stuck in production, incident INC-9 open", "duration": "30m", "ticket": "INC-9"})
	if r.Status != 201 {
		t.Fatalf("break-glass: %d %s", r.Status, r.Body)
	}
	id := r.JSON()["request_id"].(string)

	// The security channel was paged at once, the approvers got buttons.
	if sec := f.security.Messages(); len(sec) != 1 || !strings.Contains(fmt.Sprint(sec[0]["text"]), "BREAK-GLASS") || !strings.Contains(fmt.Sprint(sec[0]), "INC-9") {
		t.Fatalf("security channel: %v", sec)
	}
	ap := f.approvers.Messages()
	if len(ap) != 1 {
		t.Fatalf("approvers channel: %v", ap)
	}
	raw, _ := json.Marshal(ap[0])
	if !strings.Contains(string(raw), `"action_id":"airlock_approve"`) || !strings.Contains(string(raw), `"value":"`+id+`"`) {
		t.Fatalf("approvers' message has no buttons for %s: %s", id, raw)
	}

	now := time.Now().Unix()
	body := slackBody("U0LEAD1", notify.ActionApprove, id)
	// Forged: wrong secret, tampered body, stale timestamp, no signature.
	for name, c := range map[string]struct {
		body string
		ts   int64
		sig  string
	}{
		"wrong secret": {body, now, sign("not-the-secret", now, body)},
		"tampered":     {slackBody("U0SEC1", notify.ActionApprove, id), now, sign(signingSecret, now, body)},
		"stale":        {body, now - 600, sign(signingSecret, now-600, body)},
		"future":       {body, now + 600, sign(signingSecret, now+600, body)},
		"unsigned":     {body, now, ""},
		"garbage":      {body, now, "v0=zz"},
	} {
		if r := f.callback(t, c.body, c.ts, c.sig); r.Status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// A JSON decision without a token is refused too.
	if r := f.Do("POST", f.approval+"/", "", map[string]any{"request_id": id, "decision": "approve"}); r.Status != 401 {
		t.Errorf("unauthenticated API call: %d", r.Status)
	}
	// Genuine: lead1 approves from Slack.
	sig := sign(signingSecret, now, body)
	r = f.callback(t, body, now, sig)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"pending"`) {
		t.Fatalf("lead1 from Slack: %d %s", r.Status, r.Body)
	}
	// Replayed: the very same signed callback.
	if r := f.callback(t, body, now, sig); r.Status != http.StatusUnauthorized || r.Code() != "replayed" {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	// An unmapped Slack user is not an approver.
	b := slackBody("U0NOBODY", notify.ActionApprove, id)
	if r := f.callback(t, b, now, sign(signingSecret, now, b)); r.Status != http.StatusUnauthorized {
		t.Fatalf("unknown Slack user: %d %s", r.Status, r.Body)
	}
	// sec1 approves from Slack: the second approval grants break-glass.
	b = slackBody("U0SEC1", notify.ActionApprove, id)
	r = f.callback(t, b, now, sign(signingSecret, now, b))
	if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"approved"`) {
		t.Fatalf("sec1 from Slack: %d %s", r.Status, r.Body)
	}
	var via string
	var grants int
	f.Admin.QueryRow(context.Background(), `SELECT string_agg(via, ','), (SELECT count(*) FROM airlock.grants WHERE request_id = $1) FROM airlock.approvals WHERE request_id = $1`, id).Scan(&via, &grants)
	if via != "slack,slack" || grants != 1 {
		t.Fatalf("approvals via %q, %d grants", via, grants)
	}
	// The replay above raised an alert to the security channel too (security.slack_replay).
	if sec := f.security.Messages(); len(sec) != 3 || !strings.Contains(fmt.Sprint(sec[1]), "replay") || !strings.Contains(fmt.Sprint(sec[2]["text"]), "granted") {
		t.Fatalf("security channel after the grant: %v", sec)
	}
	var alerts int
	for _, e := range f.AuditEvents(approval.EntryPoint) {
		if strings.HasPrefix(e.Event, "security.slack_") {
			alerts++
		}
	}
	if alerts != 7 {
		t.Errorf("%d security alerts for refused callbacks, want 7", alerts)
	}
}

// callbackWith posts body to the Slack path with exactly the given headers (name, value,
// …; a name may repeat), as Slack's servers would send them.
func (f *slackFlow) callbackWith(t *testing.T, body string, headers ...string) apptest.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", f.approval+approval.SlackPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestSlackReplayEncodings is finding 9 of issue 11: a Slack callback sent again with its
// signature spelled another way (upper-case hex) was taken as new. Every spelling of the
// same signed callback is the same callback: each replay is refused as one, and raises
// security.slack_replay; spellings of the timestamp or signature that are not Slack's
// are refused outright.
func TestSlackReplayEncodings(t *testing.T) {
	f := newSlackFlow(t)
	id := f.Do("POST", f.access, "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "30m"}).JSON()["request_id"].(string)
	now := time.Now().Unix()
	ts := fmt.Sprint(now)
	body := slackBody("U0LEAD1", notify.ActionApprove, id)
	sig := sign(signingSecret, now, body)
	hexSig := strings.TrimPrefix(sig, "v0=")
	if r := f.callbackWith(t, body, "X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sig); r.Status != http.StatusOK {
		t.Fatalf("the genuine callback: %d %s", r.Status, r.Body)
	}
	mixed := []byte(hexSig)
	for i := 0; i < len(mixed); i += 2 {
		mixed[i] = strings.ToUpper(string(mixed[i]))[0]
	}
	replays := []struct{ desc, ts, sig string }{
		{"the same headers", ts, sig},
		{"upper-case hex", ts, "v0=" + strings.ToUpper(hexSig)},
		{"mixed-case hex", ts, "v0=" + string(mixed)},
		{"V0= prefix", ts, "V0=" + hexSig},
		{"V0= and upper-case hex", ts, "V0=" + strings.ToUpper(hexSig)},
		{"spaces around the signature", ts, "  " + sig + "  "},
		{"spaces around the timestamp", " " + ts + " ", sig},
	}
	for _, c := range replays {
		if r := f.callbackWith(t, body, "X-Slack-Request-Timestamp", c.ts, "X-Slack-Signature", c.sig); r.Status != http.StatusUnauthorized || r.Code() != "replayed" {
			t.Errorf("when the callback is sent again with %s, want = 401 replayed, got = %d %s", c.desc, r.Status, r.Body)
		}
	}
	refused := []struct {
		desc    string
		headers []string
	}{
		{"a leading zero in the timestamp", []string{"X-Slack-Request-Timestamp", "0" + ts, "X-Slack-Signature", sig}},
		{"a plus sign in the timestamp", []string{"X-Slack-Request-Timestamp", "+" + ts, "X-Slack-Signature", sig}},
		{"a leading zero signed as such", []string{"X-Slack-Request-Timestamp", "0" + ts, "X-Slack-Signature", signRaw(signingSecret, "0"+ts, body)}},
		{"a space inside the signature", []string{"X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0= " + hexSig}},
		{"leading zero bytes on the signature", []string{"X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0=00" + hexSig}},
		{"v1= instead of v0=", []string{"X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v1=" + hexSig}},
		{"the signature twice", []string{"X-Slack-Request-Timestamp", ts, "X-Slack-Signature", "v0=" + strings.Repeat("0", 64), "X-Slack-Signature", sig}},
		{"the timestamp twice", []string{"X-Slack-Request-Timestamp", ts, "X-Slack-Request-Timestamp", ts, "X-Slack-Signature", sig}},
	}
	for _, c := range refused {
		if r := f.callbackWith(t, body, c.headers...); r.Status != http.StatusUnauthorized || r.Code() != "unauthenticated" {
			t.Errorf("when the callback comes with %s, want = 401 unauthenticated, got = %d %s", c.desc, r.Status, r.Body)
		}
	}

	var keys, approvals int
	f.Admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM airlock.slack_replays), (SELECT count(*) FROM airlock.approvals WHERE request_id = $1)`, id).Scan(&keys, &approvals)
	if keys != 1 || approvals != 1 {
		t.Errorf("after one callback and its replays, want = one replay key and one approval, got = %d keys, %d approvals", keys, approvals)
	}
	var alerted int
	for _, e := range f.AuditEvents(approval.EntryPoint) {
		if e.Event != alerts.EventSlackReplay {
			continue
		}
		alerted++
		if e.Actor != "lead1@example.com" || e.Severity != audit.SeverityAlert || e.Details["slack_user"] != "U0LEAD1" || e.Decision != audit.DecisionDenied || e.RequestID == "" || e.Message == "" {
			t.Errorf("in the replay alert, want = lead1, ALERT, slack_user U0LEAD1, denied, a request id and a message, got = %+v", e)
		}
	}
	if alerted != len(replays) {
		t.Errorf("want = one %s entry per replay (%d), got = %d", alerts.EventSlackReplay, len(replays), alerted)
	}
	// The security channel hears of lead1's replays once within the hour; the trail has each.
	var messages int
	for _, m := range f.security.Messages() {
		if strings.Contains(fmt.Sprint(m), "replay") {
			messages++
		}
	}
	if messages != 1 {
		t.Errorf("want = one replay message to the security channel, got = %d: %v", messages, f.security.Messages())
	}
}

func signRaw(secret, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}
