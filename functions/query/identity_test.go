package query_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/shared/authn/authntest"
)

// queryURL is the function's URL, the audience of callers' ID tokens.
const queryURL = "https://europe-west1-airlock.cloudfunctions.net/ExecuteQuery"

// send posts req with exactly the given headers (name, value, name, value, …); a name
// may repeat.
func (h *harness) send(req any, headers ...string) response {
	h.t.Helper()
	b, _ := json.Marshal(req)
	r, err := http.NewRequest(http.MethodPost, h.srv.URL+"/", bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.srv.Client().Do(r)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestIdentityHeaders is finding 1 of issue 11 against ExecuteQuery as deployed (AUTH_MODE
// cloudrun, the default): dev1 may invoke the function and holds no grant; dev2 holds an
// unmasked and a write grant. dev1 sends their own ID token in X-Serverless-Authorization,
// the header Cloud Run verifies first (it reaches the function stripped), and dev2's
// identity in Authorization, which Cloud Run passes on untouched. Every such request is
// refused before anything runs, and nothing is recorded in dev2's name.
func TestIdentityHeaders(t *testing.T) {
	g := authntest.New(t)
	h := newHarness(t, harnessOptions{google: g})
	const dev1, dev2 = "dev1@example.com", "dev2@example.com"
	h.grant(dev2, "unmasked_users", time.Hour, true)
	h.grant(dev2, "write_accounts", time.Hour, true)
	full := g.IDToken(t, dev1, queryURL)
	mine := authntest.Strip(full)
	read := query.Request{SQL: "SELECT email FROM users ORDER BY id LIMIT 1"}
	write := map[string]any{"mode": "write", "reason": "INC-1: impersonation attempt", "sql": "UPDATE accounts SET balance = 0 WHERE id = 1"}
	before := h.checksum("accounts")

	theirs := map[string]string{
		"an unsigned token":                 authntest.Forge(authntest.Claims(dev2, queryURL), ""),
		"a token claiming Cloud Run's mark": authntest.Forge(authntest.Claims(dev2, queryURL), authntest.StrippedSignature),
		"dev2's genuine token":              g.IDToken(t, dev2, queryURL),
		"dev2's token for another function": g.IDToken(t, dev2, "https://europe-west1-airlock.cloudfunctions.net/RequestAccess"),
	}
	for what, tok := range theirs {
		for name, req := range map[string]any{"read": read, "write": write} {
			r := h.send(req, "X-Serverless-Authorization", "Bearer "+mine, "Authorization", "Bearer "+tok)
			if r.status != http.StatusUnauthorized || r.err().Code != "ambiguous_identity" || r.err().Message == "" {
				t.Errorf("when dev1's token is in X-Serverless-Authorization and %s for dev2 in Authorization (%s), want = 401 ambiguous_identity, got = %s", what, name, r)
			}
		}
	}
	for _, c := range []struct {
		desc    string
		headers []string
	}{
		{"Authorization twice", []string{"Authorization", "Bearer " + mine, "Authorization", "Bearer " + authntest.Forge(authntest.Claims(dev2, queryURL), "")}},
		{"X-Serverless-Authorization twice", []string{"X-Serverless-Authorization", "Bearer " + mine, "X-Serverless-Authorization", "Bearer " + authntest.Forge(authntest.Claims(dev2, queryURL), "")}},
		{"two tokens in one Authorization", []string{"Authorization", "Bearer " + mine + ",Bearer " + authntest.Forge(authntest.Claims(dev2, queryURL), "")}},
		{"dev1's claims under a broken signature", []string{"X-Serverless-Authorization", "Bearer " + mine, "Authorization", "Bearer " + full[:strings.LastIndexByte(full, '.')+1] + "AAAA"}},
	} {
		if r := h.send(read, c.headers...); r.status != http.StatusUnauthorized {
			t.Errorf("when %s, want = 401, got = %s", c.desc, r)
		}
	}
	if after := h.checksum("accounts"); after != before {
		t.Errorf("after the refused writes, want = accounts unchanged, got = changed")
	}

	// The identity Cloud Run verified is the one used: dev1 reads masked values, whichever
	// header carries their token; dev2, with their own token, reads real ones.
	email := func(r response) string {
		t.Helper()
		res := r.read(t)
		if len(res.Rows) != 1 {
			t.Fatalf("want = one row, got = %s", r)
		}
		return res.Rows[0][0].(string)
	}
	for _, hs := range [][]string{
		{"X-Serverless-Authorization", "Bearer " + mine},
		{"Authorization", "Bearer " + mine},
		{"X-Serverless-Authorization", "Bearer " + mine, "Authorization", "Bearer " + full},
	} {
		if got := email(h.send(read, hs...)); strings.Contains(got, "@") {
			t.Errorf("dev1 with headers %q, want = a masked e-mail, got = %q", hs, got)
		}
	}
	// The trail (it exists now that dev1 has read) holds nothing in dev2's name.
	for _, e := range h.auditEntries() {
		if e["actor"] == dev2 {
			t.Errorf("after the refused requests, want = nothing in the trail in dev2's name, got = %v", e)
		}
	}
	dev2Token := authntest.Strip(g.IDToken(t, dev2, queryURL))
	if got := email(h.send(read, "X-Serverless-Authorization", "Bearer "+dev2Token)); !strings.Contains(got, "@") {
		t.Errorf("dev2 with their own token, want = the real e-mail, got = %q", got)
	}
}
