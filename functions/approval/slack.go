package approval

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/requests"
)

// SlackPath is where Slack posts interaction callbacks (the Approve and Deny buttons).
const SlackPath = "/slack/interactions"

// slackMaxSkew is how old (or how far in the future) a signed callback may be.
const slackMaxSkew = 5 * time.Minute

// slackConfig says where the Slack signing secret lives.
type slackConfig struct {
	secrets notify.Secrets
	name    string // Secret Manager resource name; empty: Slack callbacks are refused
}

// WithSlack sets where the Slack signing secret is read from (tests, or another store).
func (h *Handler) WithSlack(secrets notify.Secrets, secretName string) *Handler {
	h.slack = slackConfig{secrets: secrets, name: secretName}
	return h
}

// slackPayload is the part of a block_actions interaction Airlock reads.
type slackPayload struct {
	Type string `json:"type"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

// serveSlack is the story of one Slack button press: verify Slack's signature, refuse
// replays, map the Slack user to an approver, then the same decision as the JSON API.
func (h *Handler) serveSlack(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return httpapi.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", maxBody)
	}
	key, err := h.verifySlack(ctx, rid, r.Header, body)
	if err != nil {
		h.securityEvent(ctx, rid, "security.slack_signature_invalid", err.Error())
		return httpapi.Errorf(http.StatusUnauthorized, "unauthenticated", "%s", err.Error())
	}
	if err := h.refuseReplay(ctx, key); err != nil {
		if errors.Is(err, errReplay) {
			h.replayed(ctx, rid, body)
			return httpapi.Errorf(http.StatusUnauthorized, "replayed", "this Slack callback was already received")
		}
		h.log(ctx, slog.LevelError, rid, "approval: checking for a replayed Slack callback", err)
		return httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "the callback could not be checked; nothing changed")
	}
	// From here the callback is Slack's, signed: its refusals are on the trail, as the
	// approver the policy maps its user to, or "slack:" and the user id.
	actor := "slack:unknown"
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return h.refuse(ctx, rid, actor, "slack", nil, httpapi.Errorf(http.StatusBadRequest, "malformed_payload", "the body is not a Slack interaction form"))
	}
	var p slackPayload
	if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil || p.Type != "block_actions" || len(p.Actions) != 1 {
		if p.User.ID != "" {
			actor = "slack:" + p.User.ID
		}
		return h.refuse(ctx, rid, actor, "slack", nil, httpapi.Errorf(http.StatusBadRequest, "malformed_payload", "expected a block_actions payload with one action"))
	}
	actor = "slack:" + p.User.ID
	email, ok := h.deps.Policy.SlackUser(p.User.ID)
	if !ok {
		return h.refuse(ctx, rid, actor, "slack", &Request{RequestID: p.Actions[0].Value},
			httpapi.Errorf(http.StatusUnauthorized, "unknown_slack_user", "Slack user %s is not mapped to an approver in the policy (slack_users)", p.User.ID))
	}
	d := requests.Decision{RequestID: p.Actions[0].Value, Approver: strings.ToLower(email), Via: "slack"}
	asked := &Request{RequestID: d.RequestID, Decision: p.Actions[0].ActionID}
	switch p.Actions[0].ActionID {
	case notify.ActionApprove:
		d.Decision = requests.Approve
	case notify.ActionDeny:
		d.Decision = requests.Deny
	default:
		return h.refuse(ctx, rid, d.Approver, "slack", asked, httpapi.Errorf(http.StatusBadRequest, "unknown_action", "unknown action %q", p.Actions[0].ActionID))
	}
	asked.Decision = d.Decision
	if err := validate(d, 0); err != nil {
		return h.refuse(ctx, rid, d.Approver, "slack", asked, err)
	}
	out, err := h.Decide(ctx, rid, d)
	if err != nil {
		err = h.refuse(ctx, rid, d.Approver, "slack", asked, err)
		// Slack gets the same status as the API, 503 audit_unavailable included, not a
		// 200: Slack takes any 200 as "handled" and shows no error, so the approver would
		// believe the press worked when nothing was decided. On a non-200 Slack marks the
		// press as failed. It does not retry interactions, and pressing the button again
		// sends a newly signed callback, which the replay check lets through.
		return err
	}
	resp := response(out, d.Decision)
	text := fmt.Sprintf("%s: %s by %s (%d of %d approvals)", resp.RequestID, resp.Status, d.Approver, resp.Approvals, resp.ApprovalsRequired)
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"response_type": "ephemeral", "replace_original": false, "text": text, "result": resp})
	return nil
}

// verifySlack checks X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:"+timestamp+":"+body)
// with a timestamp within five minutes. It returns the callback's replay key: the MAC it
// computed, in lower-case hex. The key is what was signed, not how the header spells the
// signature, so a callback sent again with its hex in upper case, or "V0=", is the same
// key. A timestamp is accepted only in its one decimal form (no sign, no leading zero),
// and each header only once.
func (h *Handler) verifySlack(ctx context.Context, rid string, hdr http.Header, body []byte) (string, error) {
	if h.slack.name == "" || h.slack.secrets == nil {
		return "", errors.New("Slack callbacks are not configured (SLACK_SIGNING_SECRET_NAME)")
	}
	tss, sigs := hdr.Values("X-Slack-Request-Timestamp"), hdr.Values("X-Slack-Signature")
	if len(tss) == 0 || len(sigs) == 0 || tss[0] == "" || sigs[0] == "" {
		return "", errors.New("not a signed Slack callback")
	}
	if len(tss) > 1 || len(sigs) > 1 {
		return "", errors.New("the Slack timestamp or signature header is sent more than once")
	}
	ts, sig := tss[0], sigs[0]
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 || strconv.FormatInt(sec, 10) != ts {
		return "", errors.New("the Slack timestamp is malformed")
	}
	if skew := time.Since(time.Unix(sec, 0)); skew > slackMaxSkew || skew < -slackMaxSkew {
		return "", errors.New("the Slack timestamp is more than five minutes away")
	}
	version, hexSig, ok := strings.Cut(sig, "=")
	got, err := hex.DecodeString(hexSig)
	if !ok || !strings.EqualFold(version, "v0") || err != nil || len(got) != sha256.Size {
		return "", errors.New("the Slack signature is malformed")
	}
	secret, err := h.slack.secrets.Secret(ctx, h.slack.name)
	if err != nil || secret == "" {
		if err == nil {
			err = errors.New("the secret is empty")
		}
		h.log(ctx, slog.LevelError, rid, "approval: reading the Slack signing secret", err)
		return "", errors.New("the Slack signature cannot be checked right now")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	want := mac.Sum(nil)
	if !hmac.Equal(want, got) {
		return "", errors.New("the Slack signature does not verify")
	}
	return hex.EncodeToString(want), nil
}

var errReplay = errors.New("replayed Slack callback")

// refuseReplay records the callback's key (verifySlack); a key seen before is a replay.
// Rows older than the timestamp window can never match a valid callback again and are
// removed.
func (h *Handler) refuseReplay(ctx context.Context, key string) error {
	return db.InRole(ctx, h.deps.Pool, h.deps.Role(), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO airlock.slack_replays (signature) VALUES ($1) ON CONFLICT DO NOTHING`, key)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errReplay
		}
		_, err = tx.Exec(ctx, `DELETE FROM airlock.slack_replays WHERE seen_at < now() - interval '15 minutes'`)
		return err
	})
}

// replayed raises the alert for a Slack callback received again (alerts.SlackReplay),
// naming the approver the policy maps its Slack user to. The body's signature verified,
// so the user is the one Slack sent the first time. The refusal stands whatever happens
// to the alert.
func (h *Handler) replayed(ctx context.Context, rid string, body []byte) {
	user := "unknown"
	if form, err := url.ParseQuery(string(body)); err == nil {
		var p slackPayload
		if json.Unmarshal([]byte(form.Get("payload")), &p) == nil && p.User.ID != "" {
			user = p.User.ID
		}
	}
	actor := "slack:" + user
	if email, ok := h.deps.Policy.SlackUser(user); ok {
		actor = strings.ToLower(email)
	}
	base := audit.Entry{Actor: actor, Function: EntryPoint, RequestID: rid, Decision: audit.DecisionDenied}
	queued, err := h.alerts.Raise(ctx, nil, alerts.SlackReplay(base, user))
	if err != nil {
		h.log(ctx, slog.LevelError, rid, "approval: raising "+alerts.EventSlackReplay, err)
	}
	if queued > 0 {
		h.deliver(ctx)
	}
}

// securityEvent records a refused Slack callback as an alert. The refusal stands even
// when the audit trail is down.
func (h *Handler) securityEvent(ctx context.Context, rid, event, msg string) {
	err := h.deps.Audit.Record(ctx, audit.Entry{Event: event, Function: EntryPoint, RequestID: rid, Decision: audit.DecisionDenied, Message: msg, Severity: audit.SeverityAlert})
	if err != nil {
		h.log(ctx, slog.LevelError, rid, "approval: recording "+event, err)
	}
}

// log keeps in the function's log what an answer leaves out: what was being done, and why
// it failed.
func (h *Handler) log(ctx context.Context, level slog.Level, rid, what string, err error) {
	h.deps.Log.Log(ctx, level, what+": "+err.Error(), "function", EntryPoint, "request_id", rid, "error", err.Error())
}
