package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The functions, by entry point.
const (
	fnQuery    = "ExecuteQuery"
	fnAccess   = "RequestAccess"
	fnApproval = "ApprovalCallback"
)

// maxAnswer bounds what the client reads of one answer. The server holds a read's
// values to the policy's max_bytes (at most 64 MiB) and JSON escaping can multiply
// that by six at most, so nothing Airlock sends honestly comes near it.
const maxAnswer = 512 << 20

// Where the functions are. AIRLOCK_URL is either one base URL under which each function
// is served at /<EntryPoint>/ (scripts/dev.sh's devserver, or the deployed functions'
// classic URLs, https://REGION-PROJECT.cloudfunctions.net), or a JSON object of each
// function's own URL by entry point, as `terraform output -json function_uris` prints
// it (the run.app URLs, each the audience of its ID tokens).
type endpoints struct {
	base string
	each map[string]string
}

func parseEndpoints(s string) (endpoints, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		var each map[string]string
		if err := json.Unmarshal([]byte(s), &each); err != nil {
			return endpoints{}, usageErrorf("AIRLOCK_URL looks like JSON but is not an object of URLs by entry point: %v", err)
		}
		for _, fn := range []string{fnQuery, fnAccess, fnApproval} {
			u, ok := each[fn]
			if !ok {
				return endpoints{}, usageErrorf("AIRLOCK_URL names no URL for %s (use `terraform output -json function_uris`)", fn)
			}
			if err := checkURL(u); err != nil {
				return endpoints{}, err
			}
			each[fn] = strings.TrimRight(u, "/")
		}
		return endpoints{each: each}, nil
	}
	if err := checkURL(s); err != nil {
		return endpoints{}, err
	}
	return endpoints{base: strings.TrimRight(s, "/")}, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return usageErrorf("%q is not an http(s) URL without query or fragment", s)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return usageErrorf("%q: only the local devserver may be reached over plain http; use https", s)
	}
	return nil
}

// url is where fn serves path ("/", "/schema/users", ...).
func (e endpoints) url(fn, path string) string {
	if e.each != nil {
		return e.each[fn] + path
	}
	return e.base + "/" + fn + path
}

// audience is what an ID token for fn must be issued for: the function's own URL.
func (e endpoints) audience(fn string) string {
	if e.each != nil {
		return e.each[fn]
	}
	return e.base + "/" + fn
}

// local reports whether the functions are the devserver on this machine.
func (e endpoints) local() bool {
	for _, u := range append([]string{e.base}, mapValues(e.each)...) {
		if p, err := url.Parse(u); err == nil && u != "" && !loopback(p.Hostname()) {
			return false
		}
	}
	return true
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// A client speaks the functions' HTTP APIs as one person.
type client struct {
	at   endpoints
	who  identity
	http *http.Client
}

func newClient(at endpoints, who identity) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 15 * time.Second
	tr.Proxy = http.ProxyFromEnvironment
	return &client{at: at, who: who, http: &http.Client{Transport: tr}}
}

// An apiError is Airlock's refusal: its HTTP status, stable code, rule and message,
// and the role that would lift it when a grant would.
type apiError struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Rule      string `json:"rule"`
	Position  int    `json:"position"`
	GrantRole string `json:"grant_role"`
	RequestID string `json:"-"`
	Function  string `json:"-"`
}

func (e *apiError) Error() string { return e.Message }

// unreachableError is no answer from Airlock at all.
type unreachableError struct {
	url string
	err error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("could not reach %s: %v", e.url, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// authError is no identity to send, or one that was not accepted before Airlock saw it.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

// errInterrupted is Ctrl-C.
var errInterrupted = errors.New("interrupted")

// call sends a request to fn and decodes a 2xx answer into out (nil: ignore it). It
// returns the answer's bytes too. A refusal is an *apiError; no answer an
// *unreachableError; a missing or refused identity an *authError.
func (c *client) call(ctx context.Context, fn, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.at.url(fn, path)
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, usageErrorf("%s: %v", u, err)
	}
	tok, err := c.who.token(ctx, c.at.audience(fn))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "airlock-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		return nil, &unreachableError{url: u, err: errors.Unwrap(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, errInterrupted
	case err != nil:
		return nil, &unreachableError{url: u, err: fmt.Errorf("the answer broke off: %w", err)}
	case len(raw) > maxAnswer:
		return nil, &unreachableError{url: u, err: fmt.Errorf("the answer is larger than %d MiB, more than Airlock sends", maxAnswer>>20)}
	}
	if resp.StatusCode/100 != 2 {
		return raw, answerError(fn, u, resp, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, &unreachableError{url: u, err: fmt.Errorf("the answer (%s) is not Airlock's: %v", resp.Status, err)}
		}
	}
	return raw, nil
}

// answerError reads a refusal: Airlock's error shape, or, when something in front of
// the function answered (Cloud Run's IAM check, a load balancer), what that means.
func answerError(fn, u string, resp *http.Response, raw []byte) error {
	var v struct {
		Error     *apiError `json:"error"`
		RequestID string    `json:"request_id"`
	}
	if json.Unmarshal(raw, &v) == nil && v.Error != nil && v.Error.Code != "" {
		v.Error.Status, v.Error.RequestID, v.Error.Function = resp.StatusCode, v.RequestID, fn
		if resp.StatusCode == http.StatusUnauthorized {
			return &authError{msg: fmt.Sprintf("%s did not accept your identity (401 %s): %s", fn, v.Error.Code, visible(v.Error.Message))}
		}
		return v.Error
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &authError{msg: fmt.Sprintf("%s answered %s before Airlock saw the request: the caller may not invoke it "+
			"(deployed, ask for roles/run.invoker on the function; check `gcloud auth list`)", u, resp.Status)}
	}
	return &unreachableError{url: u, err: fmt.Errorf("the answer was %s, not Airlock's", resp.Status)}
}
