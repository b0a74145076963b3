package httpapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"airlock.dev/airlock/shared/httpapi"
)

func TestCSRF(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := &httpapi.CSRF{Key: []byte("0123456789abcdef0123456789abcdef")}
	tok := c.Token("Lead1@example.com", now)
	other := &httpapi.CSRF{Key: []byte("another key, another deployment")}
	tcs := []struct {
		desc  string
		c     *httpapi.CSRF
		token string
		email string
		at    time.Time
		ok    bool
	}{
		{"its own token, case-insensitively", c, tok, "lead1@example.com", now.Add(time.Minute), true},
		{"another person", c, tok, "dev1@example.com", now, false},
		{"after two hours", c, tok, "lead1@example.com", now.Add(2*time.Hour + time.Second), false},
		{"from the future", c, c.Token("lead1@example.com", now.Add(2*time.Minute)), "lead1@example.com", now, false},
		{"another key", other, tok, "lead1@example.com", now, false},
		{"no key", &httpapi.CSRF{}, tok, "lead1@example.com", now, false},
		{"empty", c, "", "lead1@example.com", now, false},
		{"no dot", c, "1800000000", "lead1@example.com", now, false},
		{"a changed time", c, "1800000001" + tok[len("1800000000"):], "lead1@example.com", now, false},
	}
	for _, tc := range tcs {
		err := tc.c.Check(tc.token, tc.email, tc.at)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, httpapi.ErrCSRF)) {
			t.Errorf("when %s, want ok = %v, got = %v", tc.desc, tc.ok, err)
		}
	}
}

type secrets map[string]string

func (s secrets) Secret(_ context.Context, name string) (string, error) {
	v, ok := s[name]
	if !ok {
		return "", errors.New("no such secret " + name)
	}
	return v, nil
}

func TestCSRFKey(t *testing.T) {
	k, err := httpapi.CSRFKey(t.Context(), "projects/p/secrets/csrf/versions/latest", secrets{"projects/p/secrets/csrf/versions/latest": "shared"})
	if err != nil || string(k) != "shared" {
		t.Errorf("when CSRF_SECRET_NAME names a secret, want = its value, got = %q, %v", k, err)
	}
	if _, err := httpapi.CSRFKey(t.Context(), "missing", secrets{}); err == nil {
		t.Errorf("when the secret cannot be read, want = an error, got = none")
	}
	a, _ := httpapi.CSRFKey(t.Context(), "", nil)
	b, _ := httpapi.CSRFKey(t.Context(), "", secrets{})
	if len(a) != 32 || string(a) != string(b) {
		t.Errorf("without a secret name, want = one random 32-byte key per process, got = %x and %x", a, b)
	}
}
