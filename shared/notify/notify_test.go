package notify_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/cloudlog"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/migrate"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/notify/notifytest"
	"airlock.dev/airlock/shared/outbox"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

func TestWebhookDeliveryThroughSecretManager(t *testing.T) {
	d := dbtest.New(t)
	ctx := context.Background()
	pool, err := db.Open(ctx, db.Config{URL: d.URL(migrate.GroupRequests)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	role := d.Roles.Group(migrate.GroupRequests)

	approvers, security := notifytest.NewSlack(t), notifytest.NewSlack(t)
	const an, sn = "projects/p/secrets/slack-approvers/versions/latest", "projects/p/secrets/slack-security/versions/latest"
	fake := notifytest.NewSecretManager(t, map[string]string{an: approvers.URL + "\n", sn: security.URL})
	sm := &notify.SecretManager{Options: fake.Options}
	t.Cleanup(func() { sm.Close() })
	sender := notify.New(pool, role, notify.Config{ApproversWebhook: an, SecurityWebhook: sn}, sm, nil)
	sender.Backoff = time.Millisecond

	enqueue := func(ms ...outbox.Message) {
		t.Helper()
		err := db.InRole(ctx, pool, role, func(tx pgx.Tx) error {
			for _, m := range ms {
				if err := outbox.Enqueue(ctx, tx, m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	enqueue(
		outbox.Message{Channel: outbox.ChannelApprovers, Event: "request.created", Text: "dev1 asks <@U123> & more", RequestID: "ar_0123456789ab", Requester: "dev1@example.com", Role: "unmasked_users", Reason: "<script>x</script>", Actions: true},
		outbox.Message{Channel: outbox.ChannelSecurity, Event: "breakglass.activated", Text: "BREAK-GLASS", RequestID: "ar_0123456789ab", BreakGlass: true},
	)
	n, err := sender.Flush(ctx, 10)
	if err != nil || n != 2 {
		t.Fatalf("flush: %d, %v", n, err)
	}
	if len(approvers.Messages()) != 1 || len(security.Messages()) != 1 {
		t.Fatalf("approvers got %d, security %d", len(approvers.Messages()), len(security.Messages()))
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(approvers.Messages()[0])
	raw := buf.String()
	for _, want := range []string{`"action_id":"airlock_approve"`, `"action_id":"airlock_deny"`, `"value":"ar_0123456789ab"`, `&lt;@U123&gt; &amp; more`, `&lt;script&gt;`} {
		if !strings.Contains(raw, want) {
			t.Errorf("approvers' message lacks %s: %s", want, raw)
		}
	}
	if strings.Contains(raw, "<script>") {
		t.Errorf("unescaped markup reached Slack: %s", raw)
	}
	if !strings.Contains(security.Messages()[0]["text"].(string), "BREAK-GLASS") {
		t.Errorf("security message: %v", security.Messages()[0])
	}
	if fake.Reads() != 2 {
		t.Errorf("%d secret reads, want 2 (one per secret, then cached)", fake.Reads())
	}
	// Nothing is sent twice.
	if n, _ := sender.Flush(ctx, 10); n != 0 {
		t.Fatalf("second flush sent %d", n)
	}

	// Slack failing: retried with backoff, logged, left in the outbox; delivered later.
	approvers.SetFail(true)
	var log strings.Builder
	sender.Log = cloudlog.New(&log)
	enqueue(outbox.Message{Channel: outbox.ChannelApprovers, Event: "request.created", Text: "later", RequestID: "ar_bbbbbbbbbbbb", Actions: true})
	if n, err := sender.Flush(ctx, 10); n != 0 || err == nil {
		t.Fatalf("flush against a failing Slack: %d, %v", n, err)
	}
	if approvers.Failures() != 3 || !strings.Contains(log.String(), "stays in the outbox") || !strings.Contains(log.String(), `"severity":"ERROR"`) {
		t.Fatalf("%d tries; log %q", approvers.Failures(), log.String())
	}
	admin, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var attempts int
	var lastErr string
	if err := admin.QueryRow(ctx, `SELECT attempts, last_error FROM airlock.notifications WHERE sent_at IS NULL`).Scan(&attempts, &lastErr); err != nil || attempts != 1 || !strings.Contains(lastErr, "500") {
		t.Fatalf("outbox row: %d %q %v", attempts, lastErr, err)
	}
	approvers.SetFail(false)
	if n, err := sender.Flush(ctx, 10); n != 1 || err != nil {
		t.Fatalf("retry flush: %d %v", n, err)
	}
	if strings.Contains(log.String(), approvers.URL) {
		t.Fatalf("the webhook URL leaked into the log: %s", log.String())
	}
}

func TestFileTarget(t *testing.T) {
	path := t.TempDir() + "/n.jsonl"
	f := &notify.File{Path: path}
	if err := f.Deliver(context.Background(), outbox.Message{Channel: "security", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"channel":"security"`) {
		t.Fatalf("%s", b)
	}
}

func TestSlackMessageOfAnAlert(t *testing.T) {
	tcs := []struct {
		severity, wantPrefix string
	}{
		{"ALERT", ":rotating_light: "}, {"WARNING", ":warning: "}, {"", "dev1"},
	}
	for _, tc := range tcs {
		m := notify.SlackMessage(outbox.Message{Channel: outbox.ChannelSecurity, Severity: tc.severity, Event: "security.bulk_write",
			Text: "dev1 changed 15 rows", Actor: "dev1@example.com", Rows: 15, AuditRequestID: "0123456789abcdef",
			SQL: "UPDATE accounts SET currency = '```<@channel>' WHERE id < 16"})
		text := m["text"].(string)
		if !strings.HasPrefix(text, tc.wantPrefix) {
			t.Errorf("when severity = %q, want text to start with %q, got = %q", tc.severity, tc.wantPrefix, text)
		}
		b, _ := json.Marshal(m["blocks"])
		blocks := string(b)
		for _, want := range []string{"*Who*\\ndev1@example.com", "*Rows*\\n15", "*Audit request id*\\n0123456789abcdef", "` ` `\\u0026lt;@channel\\u0026gt;"} {
			if !strings.Contains(blocks, want) {
				t.Errorf("when severity = %q, want the blocks to contain %q, got = %s", tc.severity, want, blocks)
			}
		}
		if strings.Count(blocks, "```") != 2 {
			t.Errorf("want the statement in exactly one code block that it cannot close early, got = %s", blocks)
		}
	}
}
