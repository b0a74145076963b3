package approval

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/requests"
)

// WebPath is where the approvers' Approve and Deny buttons on RequestAccess's page post.
const WebPath = "/web/decide"

type webConfig struct {
	backURL    string // RequestAccess's page
	csrfSecret string
	secrets    httpapi.SecretReader
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
	key, err := httpapi.CSRFKey(ctx, h.web.csrfSecret, h.web.secrets)
	if err != nil {
		h.log(ctx, slog.LevelError, rid, "approval: reading the CSRF key", err)
		return h.refuse(ctx, rid, id.Email, "web", body, httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "the form cannot be checked right now"))
	}
	if (&httpapi.CSRF{Key: key}).Check(r.PostForm.Get("csrf"), id.Email, time.Now()) != nil {
		return h.webError(w, h.refuse(ctx, rid, id.Email, "web", body, httpapi.Errorf(http.StatusForbidden, "csrf", "%s", httpapi.ErrCSRF.Error())))
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

// answer.html is the small page that answers a decision made on RequestAccess's page.
//
//go:embed answer.html
var answerHTML string

var answerTemplate = template.Must(template.New("answer").Parse(answerHTML))

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
