package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CSRF makes and checks the anti-forgery tokens of Airlock's web forms: a token is the
// time it was made and HMAC-SHA256(key, identity|time), carried in a hidden field and
// verified on POST for the authenticated identity, so a token is useless to anyone else
// and expires.
type CSRF struct {
	Key    []byte
	MaxAge time.Duration // default 2 h
}

// ErrCSRF is returned for a missing, forged, foreign or expired token.
var ErrCSRF = errors.New("the form's anti-forgery token is missing, expired or not yours; reload the page and try again")

// Token returns a token for email made at now.
func (c *CSRF) Token(email string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return ts + "." + c.mac(email, ts)
}

// Check verifies token for email at now.
func (c *CSRF) Check(token, email string, now time.Time) error {
	ts, sig, ok := strings.Cut(token, ".")
	if !ok || len(c.Key) == 0 {
		return ErrCSRF
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrCSRF
	}
	maxAge := c.MaxAge
	if maxAge == 0 {
		maxAge = 2 * time.Hour
	}
	age := now.Sub(time.Unix(sec, 0))
	if age > maxAge || age < -time.Minute {
		return ErrCSRF
	}
	if !hmac.Equal([]byte(sig), []byte(c.mac(email, ts))) {
		return ErrCSRF
	}
	return nil
}

func (c *CSRF) mac(email, ts string) string {
	m := hmac.New(sha256.New, c.Key)
	fmt.Fprintf(m, "airlock-csrf|%s|%s", strings.ToLower(email), ts)
	return hex.EncodeToString(m.Sum(nil))
}

// SecretReader reads a secret by resource name (notify.SecretManager satisfies it).
type SecretReader interface {
	Secret(ctx context.Context, name string) (string, error)
}

var (
	localKeyOnce sync.Once
	localKey     []byte
)

// CSRFKey returns the forms' key: the secret named by CSRF_SECRET_NAME (shared by
// RequestAccess, which makes tokens, and ApprovalCallback, which checks approvers'), or,
// when that is unset, a random key for this process, which is right for scripts/dev.sh,
// where every function runs in one process.
func CSRFKey(ctx context.Context, secretName string, secrets SecretReader) ([]byte, error) {
	if secretName != "" && secrets != nil {
		v, err := secrets.Secret(ctx, secretName)
		if err != nil {
			return nil, err
		}
		return []byte(v), nil
	}
	localKeyOnce.Do(func() {
		localKey = make([]byte, 32)
		rand.Read(localKey)
	})
	return localKey, nil
}
