package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"airlock.dev/airlock/shared/authn"
)

// An identity gives the bearer token the client sends to a function.
type identity interface {
	token(ctx context.Context, audience string) (string, error)
}

// localIdentity mints tokens for an e-mail address with the devserver's local key, as
// scripts/dev-token.sh does: only a system run by scripts/dev.sh accepts them.
type localIdentity struct {
	email string
	key   *ecdsa.PrivateKey
}

func newLocalIdentity(email, state string) (*localIdentity, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(email, "@") {
		return nil, usageErrorf("--as wants an e-mail address, not %q", email)
	}
	path := filepath.Join(state, "auth-key.pem")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &authError{msg: fmt.Sprintf("--as mints a token with the local key %s, which scripts/dev.sh makes: %v", path, err)}
	}
	k, err := authn.ParsePrivateKey(b)
	if err != nil {
		return nil, &authError{msg: fmt.Sprintf("reading the local key %s: %v", path, err)}
	}
	return &localIdentity{email: email, key: k}, nil
}

func (l *localIdentity) token(context.Context, string) (string, error) {
	return authn.Mint(l.key, l.email, "", time.Hour)
}

// staticIdentity is a token given in AIRLOCK_TOKEN, sent as it is.
type staticIdentity string

func (s staticIdentity) token(context.Context, string) (string, error) { return string(s), nil }

// gcloudIdentity is the caller's own Google identity: an ID token from their gcloud
// credentials (`gcloud auth print-identity-token`). Only when asked does it act as a
// service account (--impersonate-service-account), whose tokens are minted for the
// function's URL as audience; a user's token carries gcloud's own audience, which Cloud
// Run accepts from users. Tokens are kept until five minutes before they expire.
type gcloudIdentity struct {
	impersonate string
	gcloud      string // the command; "gcloud" on PATH

	mu    sync.Mutex
	cache map[string]cachedToken
}

type cachedToken struct {
	tok string
	exp time.Time
}

func (g *gcloudIdentity) token(ctx context.Context, audience string) (string, error) {
	key := ""
	if g.impersonate != "" {
		key = audience
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.cache[key]; ok && time.Now().Before(c.exp.Add(-5*time.Minute)) {
		return c.tok, nil
	}
	args := []string{"auth", "print-identity-token"}
	if g.impersonate != "" {
		args = append(args, "--impersonate-service-account="+g.impersonate, "--audiences="+audience, "--include-email")
	}
	cmd := exec.CommandContext(ctx, g.gcloud, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return "", &authError{msg: "deployed, airlock sends your own Google identity, from the Google Cloud CLI: install it and run `gcloud auth login` " +
				"(locally, say who you are with --as EMAIL)"}
		}
		return "", &authError{msg: fmt.Sprintf("`gcloud %s` failed (%v): %s", strings.Join(args, " "), err, visible(strings.TrimSpace(stderr.String())))}
	}
	tok := strings.TrimSpace(stdout.String())
	exp, err := expiry(tok)
	if err != nil {
		return "", &authError{msg: fmt.Sprintf("`gcloud %s` printed no ID token: %v", strings.Join(args, " "), err)}
	}
	if g.cache == nil {
		g.cache = map[string]cachedToken{}
	}
	g.cache[key] = cachedToken{tok, exp}
	return tok, nil
}

// expiry reads a JWT's exp claim, without verifying anything: the client only needs to
// know when to ask for a new one.
func expiry(tok string) (time.Time, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("not a JWT: %v", err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Exp == 0 {
		return time.Time{}, errors.New("the JWT has no exp")
	}
	return time.Unix(c.Exp, 0), nil
}
