package access

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/requests"
)

// webConfig is what the web form needs beyond the dependencies.
type webConfig struct {
	approvalURL string // ApprovalCallback's URL, ending in "/"
	csrfSecret  string // CSRF_SECRET_NAME
	secrets     httpapi.SecretReader
}

func (h *Handler) csrf(ctx context.Context) (*httpapi.CSRF, error) {
	key, err := httpapi.CSRFKey(ctx, h.web.csrfSecret, h.web.secrets)
	if err != nil {
		return nil, err
	}
	return &httpapi.CSRF{Key: key}, nil
}

// wantsJSON reports whether a GET asks for JSON rather than the page.
func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		if mt == "application/json" {
			return true
		}
		if mt == "text/html" {
			return false
		}
	}
	return false
}

// isForm reports whether a POST is the web form rather than JSON (curl -d labels JSON
// as a form too, so the body decides), and puts the body back for the JSON decoder.
func isForm(w http.ResponseWriter, r *http.Request) (bool, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return false, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return false, httpapi.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", maxBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")), nil
}

type tableView struct {
	Name            string
	Unmasked, Write []string
}

type roleView struct {
	Name        string
	BreakGlass  bool
	MaxDuration time.Duration
	Approvals   int
	Approvers   []string
	Tables      []tableView
}

type grantView struct {
	ID        int64
	Role      string
	ExpiresAt time.Time
	Left      time.Duration
}

type pageData struct {
	Email       string
	CSRF        string
	ApprovalURL string
	MinDuration time.Duration
	Roles       []roleView
	Pending     []*requests.Request
	Recent      []*requests.Request
	Grants      []grantView
	Waiting     []*requests.Request
	IsApprover  bool
	// confirmation page
	Created *requests.Request
	// error page
	Error  string
	Status int
}

func (h *Handler) roleViews(email string) []roleView {
	pol := h.deps.Policy
	var out []roleView
	for _, r := range pol.RequestableRoles(email) {
		v := roleView{Name: r.Name, BreakGlass: r.BreakGlass(), MaxDuration: r.MaxDuration, Approvals: r.Approvals, Approvers: h.approvers(r, email)}
		tables := map[string]*tableView{}
		get := func(n string) *tableView {
			if t, ok := tables[n]; ok {
				return t
			}
			tables[n] = &tableView{Name: n}
			return tables[n]
		}
		for _, t := range r.Unmask {
			if pt, ok := pol.Table(t); ok {
				get(t).Unmasked = pt.SensitiveColumns()
			}
		}
		for _, t := range r.Write {
			if pt, ok := pol.Table(t); ok && pt.Write != nil {
				get(t).Write = pt.Write.Columns
			}
		}
		for _, n := range pol.TableNames() {
			if t, ok := tables[n]; ok {
				v.Tables = append(v.Tables, *t)
			}
		}
		out = append(out, v)
	}
	return out
}

// page answers a browser's GET: the form, the viewer's requests and grants, and the
// requests waiting for them.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, rid string, id authn.Identity, status int, extra func(*pageData)) error {
	ctx := r.Context()
	ov, err := h.store.Overview(ctx, id.Email)
	if err != nil {
		h.logError(ctx, rid, "loading the page", err)
		return httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "your requests could not be loaded; try again")
	}
	csrf, err := h.csrf(ctx)
	if err != nil {
		h.logError(ctx, rid, "reading the CSRF key", err)
		return httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "the form cannot be protected right now; try again")
	}
	d := &pageData{
		Email: id.Email, CSRF: csrf.Token(id.Email, time.Now()), ApprovalURL: h.web.approvalURL,
		MinDuration: h.deps.Policy.Limits.MinDuration, Roles: h.roleViews(id.Email),
		Waiting: ov.Waiting, IsApprover: h.deps.Policy.IsApprover(id.Email),
	}
	for _, rq := range ov.Requests {
		if rq.Status == requests.StatusPending {
			d.Pending = append(d.Pending, rq)
		} else if len(d.Recent) < 10 {
			d.Recent = append(d.Recent, rq)
		}
	}
	for _, g := range ov.Grants {
		if g.Status == "active" && g.ExpiresAt.After(ov.Now) {
			d.Grants = append(d.Grants, grantView{ID: g.ID, Role: g.Role, ExpiresAt: g.ExpiresAt, Left: g.ExpiresAt.Sub(ov.Now).Round(time.Second)})
		}
	}
	if extra != nil {
		extra(d)
	}
	return h.render(w, status, d)
}

func (h *Handler) render(w http.ResponseWriter, status int, d *pageData) error {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		return fmt.Errorf("access: rendering the page: %w", err) // logged with the 500
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	formAction := "'self'"
	if u, err := url.Parse(h.web.approvalURL); err == nil && u.Scheme != "" && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return nil
}

// createForm is the web form's POST: the same checks and transaction as the JSON API,
// behind an anti-forgery token, answered with a confirmation page.
func (h *Handler) createForm(w http.ResponseWriter, r *http.Request, rid string) error {
	ctx := r.Context()
	id, err := h.deps.Authenticate(ctx, r)
	if err != nil {
		return h.refuseVerified(ctx, rid, id.Email, err)
	}
	if err := r.ParseForm(); err != nil {
		return h.formError(w, r, rid, id, h.refuse(ctx, rid, id.Email, &Request{}, httpapi.Errorf(http.StatusBadRequest, "malformed_form", "the form could not be read")))
	}
	body := &Request{Role: r.PostForm.Get("role"), Reason: r.PostForm.Get("reason"), Duration: r.PostForm.Get("duration"), Ticket: r.PostForm.Get("ticket")}
	csrf, err := h.csrf(ctx)
	if err != nil || csrf.Check(r.PostForm.Get("csrf"), id.Email, time.Now()) != nil {
		return h.formError(w, r, rid, id, h.refuse(ctx, rid, id.Email, body, httpapi.Errorf(http.StatusForbidden, "csrf", "%s", httpapi.ErrCSRF.Error())))
	}
	req, _, err := h.validate(id.Email, body)
	if err != nil {
		return h.formError(w, r, rid, id, h.refuse(ctx, rid, id.Email, body, err))
	}
	err = h.store.Create(ctx, req, func(ctx context.Context, req *requests.Request) error { return h.record(ctx, rid, req) })
	if err != nil {
		if errors.Is(err, audit.ErrUnavailable) {
			return h.formError(w, r, rid, id, h.auditUnavailable(rid, err))
		}
		h.logError(ctx, rid, "storing request", err)
		return h.formError(w, r, rid, id, h.refuse(ctx, rid, id.Email, body, httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "the request could not be stored; nothing was created, try again")))
	}
	h.deliver(ctx)
	return h.page(w, r, rid, id, http.StatusCreated, func(d *pageData) { d.Created = req })
}

func (h *Handler) formError(w http.ResponseWriter, r *http.Request, rid string, id authn.Identity, err error) error {
	e, ok := errors.AsType[*httpapi.Error](err)
	if !ok {
		return err
	}
	return h.page(w, r, rid, id, e.Status, func(d *pageData) { d.Error, d.Status = e.Message, e.Status })
}

// page.html is the request page: the form, the viewer's grants and requests, and the
// requests waiting for their decision.
//
//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"hours": func(d time.Duration) string {
		return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
	},
}).Parse(pageHTML))
