package approval

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"os"
	"strings"
	"time"

	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/requests"
)

// WebPath is where the approvers' Approve and Deny buttons on RequestAccess's page post.
const WebPath = "/web/decide"

type webConfig struct {
	backURL    string // RequestAccess's page
	csrfSecret string
	secrets    requests.SecretReader
}

func webFromEnv(env func(string) string) webConfig {
	if env == nil {
		env = os.Getenv
	}
	back := env("REQUEST_ACCESS_URL")
	if back == "" {
		back = "../../RequestAccess/" // from /ApprovalCallback/web/decide under scripts/dev.sh
	}
	return webConfig{backURL: back, csrfSecret: env("CSRF_SECRET_NAME"), secrets: &notify.SecretManager{}}
}

// serveWeb is a decision from the web page: an authenticated approver (bearer token or
// IAP), a valid anti-forgery token made for that approver by RequestAccess, then the same
// decision as the JSON API, answered with a small page.
func (h *Handler) serveWeb(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	id, err := h.deps.Identify(ctx, r)
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return h.refuse(ctx, rid, id.Email, "web", nil, httpapi.Errorf(http.StatusBadRequest, "malformed_form", "the form could not be read"))
	}
	body := &Request{RequestID: r.PostForm.Get("request_id"), Decision: r.PostForm.Get("decision"), Comment: r.PostForm.Get("comment")}
	key, err := requests.CSRFKey(ctx, h.web.csrfSecret, h.web.secrets)
	if err != nil {
		return h.refuse(ctx, rid, id.Email, "web", body, httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "the form cannot be checked right now"))
	}
	if (&requests.CSRF{Key: key}).Check(r.PostForm.Get("csrf"), id.Email, time.Now()) != nil {
		return h.webError(w, h.refuse(ctx, rid, id.Email, "web", body, httpapi.Errorf(http.StatusForbidden, "csrf", "%s", requests.ErrCSRF.Error())))
	}
	d := requests.Decision{RequestID: strings.TrimSpace(r.PostForm.Get("request_id")), Approver: id.Email,
		Decision: r.PostForm.Get("decision"), Comment: strings.TrimSpace(r.PostForm.Get("comment")), Via: "web"}
	if err := validate(d, 0); err != nil {
		return h.webError(w, h.refuse(ctx, rid, id.Email, "web", body, err))
	}
	out, err := h.Decide(ctx, rid, d)
	if err != nil {
		return h.webError(w, h.refuse(ctx, rid, id.Email, "web", body, err))
	}
	resp := response(out, d.Decision)
	msg := "You chose " + d.Decision + " on " + resp.RequestID + ": it is now " + resp.Status + "."
	if resp.GrantID != 0 {
		msg += " The grant is active."
	}
	return h.webAnswer(w, http.StatusOK, msg)
}

func (h *Handler) webError(w http.ResponseWriter, err error) error {
	e, ok := errors.AsType[*httpapi.Error](err)
	if !ok {
		return err
	}
	return h.webAnswer(w, e.Status, e.Message)
}

var answerTemplate = template.Must(template.New("answer").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Airlock — decision</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}</style></head>
<body><h1>Airlock</h1><p id="result">{{.Message}}</p><p><a id="back" href="{{.Back}}">Back to the requests</a></p></body></html>
`))

func (h *Handler) webAnswer(w http.ResponseWriter, status int, message string) error {
	var buf bytes.Buffer
	answerTemplate.Execute(&buf, map[string]string{"Message": message, "Back": h.web.backURL})
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return nil
}
