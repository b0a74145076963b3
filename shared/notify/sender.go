package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/outbox"
)

// A Target delivers one message somewhere.
type Target interface {
	Deliver(ctx context.Context, m outbox.Message) error
}

// A Sender delivers the outbox's unsent notifications.
type Sender struct {
	Pool    *db.Pool
	Role    string            // the function's group role
	Targets map[string]Target // by channel; a channel without a target stays in the outbox
	// Attempts is how many times one delivery is tried before it is left for later
	// (default 3), waiting Backoff, 2×Backoff, … between tries (default 250ms).
	Attempts int
	Backoff  time.Duration
	// MaxTries bounds how many deliveries of one row are ever attempted (default 20):
	// after that it stays in the outbox, unsent, for a person to look at.
	MaxTries int
	Log      *slog.Logger // failed deliveries; nil: not logged
}

// Config says where notifications go. The zero Config sends nothing: every message stays
// in the outbox.
type Config struct {
	// File, when set, receives every channel as JSON lines (local runs; NOTIFY_FILE).
	File string
	// ApproversWebhook and SecurityWebhook name Secret Manager secret versions holding
	// Slack incoming-webhook URLs (SLACK_APPROVERS_WEBHOOK_NAME,
	// SLACK_SECURITY_WEBHOOK_NAME). Requester notifications go to the approvers' webhook,
	// addressed to the requester.
	ApproversWebhook string
	SecurityWebhook  string
}

// New returns a Sender delivering to the targets c names, reading webhook URLs through
// secrets (a SecretManager when nil) and logging failed deliveries to log (discarded when
// nil). It does no I/O.
func New(pool *db.Pool, role string, c Config, secrets Secrets, log *slog.Logger) *Sender {
	s := &Sender{Pool: pool, Role: role, Targets: map[string]Target{}, Log: log}
	if c.File != "" {
		f := &File{Path: c.File}
		for _, ch := range []string{outbox.ChannelApprovers, outbox.ChannelRequester, outbox.ChannelSecurity} {
			s.Targets[ch] = f
		}
		return s
	}
	if secrets == nil {
		secrets = &SecretManager{}
	}
	if c.ApproversWebhook != "" {
		w := &Webhook{Secrets: secrets, SecretName: c.ApproversWebhook}
		s.Targets[outbox.ChannelApprovers], s.Targets[outbox.ChannelRequester] = w, w
	}
	if c.SecurityWebhook != "" {
		s.Targets[outbox.ChannelSecurity] = &Webhook{Secrets: secrets, SecretName: c.SecurityWebhook}
	}
	return s
}

// Flush delivers unsent notifications, oldest first, at most limit of them. Each row is
// locked while it is delivered (FOR UPDATE SKIP LOCKED), so concurrent senders never
// deliver one twice. A failed delivery is retried with backoff, then recorded (attempts,
// last_error), logged and left in the outbox. It returns how many were sent.
func (s *Sender) Flush(ctx context.Context, limit int) (int, error) {
	if s == nil || s.Pool == nil || len(s.Targets) == 0 {
		return 0, nil
	}
	maxTries := s.MaxTries
	if maxTries == 0 {
		maxTries = 20
	}
	var ids []int64
	err := db.InRole(ctx, s.Pool, s.Role, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM airlock.notifications WHERE sent_at IS NULL AND attempts < $1 ORDER BY id LIMIT $2`, maxTries, limit)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("notify: listing the outbox: %w", err)
	}
	sent := 0
	var errs []error
	for _, id := range ids {
		ok, err := s.deliverOne(ctx, id)
		if ok {
			sent++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sent, errors.Join(errs...)
}

// FlushWithin is Flush bounded by d and detached from ctx's cancellation: functions call
// it after a commit and before answering, since an instance gets no CPU after it answers,
// and a request ending must not cut a delivery short. What is not sent in time stays in
// the outbox for the next flush (the sweeper's, within a minute, at the latest).
func (s *Sender) FlushWithin(ctx context.Context, d time.Duration, limit int) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	return s.Flush(ctx, limit)
}

func (s *Sender) deliverOne(ctx context.Context, id int64) (bool, error) {
	delivered := false
	var deliveryErr error
	err := db.InRole(ctx, s.Pool, s.Role, func(tx pgx.Tx) error {
		var payload []byte
		var channel string
		err := tx.QueryRow(ctx, `SELECT channel, payload::text FROM airlock.notifications WHERE id = $1 AND sent_at IS NULL FOR UPDATE SKIP LOCKED`, id).Scan(&channel, &payload)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // sent or being sent by someone else
		}
		if err != nil {
			return err
		}
		var m outbox.Message
		if err := json.Unmarshal(payload, &m); err != nil {
			return err
		}
		t, ok := s.Targets[channel]
		if !ok {
			return nil
		}
		deliveryErr = s.retry(ctx, t, m)
		if deliveryErr != nil {
			if s.Log != nil {
				s.Log.ErrorContext(ctx, fmt.Sprintf("notify: delivering notification %d (%s, %s) failed; it stays in the outbox: %v", id, channel, m.Event, deliveryErr),
					"notification", id, "channel", channel, "event", m.Event, "error", deliveryErr.Error())
			}
			_, err = tx.Exec(ctx, `UPDATE airlock.notifications SET attempts = attempts + 1, last_error = left($2, 1000) WHERE id = $1`, id, deliveryErr.Error())
			return err
		}
		delivered = true
		_, err = tx.Exec(ctx, `UPDATE airlock.notifications SET attempts = attempts + 1, sent_at = now(), last_error = NULL WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("notify: notification %d: %w", id, err)
	}
	return delivered, deliveryErr
}

func (s *Sender) retry(ctx context.Context, t Target, m outbox.Message) error {
	attempts, backoff := s.Attempts, s.Backoff
	if attempts == 0 {
		attempts = 3
	}
	if backoff == 0 {
		backoff = 250 * time.Millisecond
	}
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(backoff << (i - 1)):
			}
		}
		if err = t.Deliver(ctx, m); err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return err
		}
	}
	return err
}

// permanent marks an error retrying cannot fix (e.g. Slack answering 4xx).
type permanent struct{ error }

// File appends each message as one JSON line to Path (local runs).
type File struct {
	Path string
	mu   sync.Mutex
}

// Deliver implements Target.
func (f *File) Deliver(_ context.Context, m outbox.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	fh, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(append(b, '\n')); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// Webhook posts messages to a Slack incoming webhook whose URL is a secret.
type Webhook struct {
	Secrets    Secrets
	SecretName string
	Client     *http.Client // default: 10 s timeout
}

// Deliver implements Target.
func (w *Webhook) Deliver(ctx context.Context, m outbox.Message) error {
	url, err := w.Secrets.Secret(ctx, w.SecretName)
	if err != nil {
		return err
	}
	body, err := json.Marshal(SlackMessage(m))
	if err != nil {
		return permanent{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return permanent{fmt.Errorf("notify: webhook URL from %s: %w", w.SecretName, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("notify: posting to Slack: %s", redact(err.Error(), url))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("notify: Slack answered %d: %s", resp.StatusCode, msg)
	default:
		return permanent{fmt.Errorf("notify: Slack answered %d: %s", resp.StatusCode, msg)}
	}
}

// redact keeps the webhook URL, itself a credential, out of error messages.
func redact(s, secret string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(secret), []byte("[webhook]")))
}
