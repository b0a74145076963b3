package access

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/httpapi"
	"airlock.dev/airlock/shared/notify"
	"airlock.dev/airlock/shared/requests"
)

// webConfig is what the web form needs beyond the dependencies.
type webConfig struct {
	approvalURL string // ApprovalCallback's URL, ending in "/"
	csrfSecret  string // CSRF_SECRET_NAME
	secrets     requests.SecretReader
}

func webFromEnv(env func(string) string) webConfig {
	if env == nil {
		env = os.Getenv
	}
	u := env("APPROVAL_URL")
	if u == "" {
		u = "../ApprovalCallback/" // scripts/dev.sh serves the functions side by side
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return webConfig{approvalURL: u, csrfSecret: env("CSRF_SECRET_NAME"), secrets: &notify.SecretManager{}}
}

func (h *Handler) csrf(ctx context.Context) (*requests.CSRF, error) {
	key, err := requests.CSRFKey(ctx, h.web.csrfSecret, h.web.secrets)
	if err != nil {
		return nil, err
	}
	return &requests.CSRF{Key: key}, nil
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
func (h *Handler) page(w http.ResponseWriter, r *http.Request, id authn.Identity, status int, extra func(*pageData)) error {
	ctx := r.Context()
	ov, err := h.store.Overview(ctx, id.Email)
	if err != nil {
		logError("loading the page", err)
		return httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "your requests could not be loaded; try again")
	}
	csrf, err := h.csrf(ctx)
	if err != nil {
		logError("reading the CSRF key", err)
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
		logError("rendering the page", err)
		return err
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
		return h.formError(w, r, id, h.refuse(ctx, rid, id.Email, &Request{}, httpapi.Errorf(http.StatusBadRequest, "malformed_form", "the form could not be read")))
	}
	body := &Request{Role: r.PostForm.Get("role"), Reason: r.PostForm.Get("reason"), Duration: r.PostForm.Get("duration"), Ticket: r.PostForm.Get("ticket")}
	csrf, err := h.csrf(ctx)
	if err != nil || csrf.Check(r.PostForm.Get("csrf"), id.Email, time.Now()) != nil {
		return h.formError(w, r, id, h.refuse(ctx, rid, id.Email, body, httpapi.Errorf(http.StatusForbidden, "csrf", "%s", requests.ErrCSRF.Error())))
	}
	req, _, err := h.validate(id.Email, body)
	if err != nil {
		return h.formError(w, r, id, h.refuse(ctx, rid, id.Email, body, err))
	}
	err = h.store.Create(ctx, req, func(ctx context.Context, req *requests.Request) error { return h.record(ctx, rid, req) })
	if err != nil {
		if errors.Is(err, audit.ErrUnavailable) {
			return h.formError(w, r, id, h.auditUnavailable(rid, err))
		}
		logError("storing request", err)
		return h.formError(w, r, id, h.refuse(ctx, rid, id.Email, body, httpapi.Errorf(http.StatusServiceUnavailable, "database_unavailable", "the request could not be stored; nothing was created, try again")))
	}
	h.deliver(ctx)
	return h.page(w, r, id, http.StatusCreated, func(d *pageData) { d.Created = req })
}

func (h *Handler) formError(w http.ResponseWriter, r *http.Request, id authn.Identity, err error) error {
	e, ok := errors.AsType[*httpapi.Error](err)
	if !ok {
		return err
	}
	return h.page(w, r, id, e.Status, func(d *pageData) { d.Error, d.Status = e.Message, e.Status })
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"hours": func(d time.Duration) string {
		return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Airlock — request access</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e6ee;vertical-align:top}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}input,select,textarea{font:inherit;padding:.3rem;width:100%;box-sizing:border-box}
button{font:inherit;padding:.35rem 1rem;margin-right:.4rem;cursor:pointer}
.error{background:#fde8e8;border:1px solid #e0a0a0;padding:.6rem}.ok{background:#e6f6ea;border:1px solid #9ccfa8;padding:.6rem}
.bg{color:#a11}.muted{color:#667}
</style>
</head>
<body>
<h1>Airlock</h1>
<p class="muted">Signed in as <strong id="viewer">{{.Email}}</strong></p>
{{if .Error}}<p class="error" role="alert" id="error">{{.Error}}</p>{{end}}
{{with .Created}}<div class="ok" id="confirmation"><strong>Request {{.ID}} created.</strong>
 {{.Role}} for {{.DurationText}}, waiting for {{.ApprovalsRequired}} approval(s). It expires at {{utc .ExpiresAt}} if nobody decides.
 <div>Reason: <q>{{.Reason}}</q></div></div>{{end}}

<h2>Request access</h2>
{{if .Roles}}
<form method="post" action="" id="request-form">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="role">Role</label>
<select id="role" name="role" required>
{{range .Roles}}<option value="{{.Name}}">{{.Name}}{{if .BreakGlass}} (emergency){{end}} — up to {{hours .MaxDuration}}</option>
{{end}}</select>
<label for="duration">Duration (e.g. 30m, 2h; at least {{.MinDuration}})</label>
<input id="duration" name="duration" required placeholder="30m">
<label for="reason">Reason (a sentence: why, and which ticket)</label>
<textarea id="reason" name="reason" rows="3" required minlength="20" maxlength="2000"></textarea>
<label for="ticket">Ticket or incident (required for break-glass)</label>
<input id="ticket" name="ticket" maxlength="200" placeholder="INC-1234">
<p><button type="submit">Request access</button></p>
</form>
<table id="roles">
<thead><tr><th>Role</th><th>Opens</th><th>Max</th><th>Approved by</th></tr></thead>
<tbody>
{{range .Roles}}<tr><td>{{.Name}}{{if .BreakGlass}} <span class="bg">break-glass</span>{{end}}</td>
<td>{{range .Tables}}<div><strong>{{.Name}}</strong>{{if .Unmasked}}: real values of {{join .Unmasked}}{{end}}{{if .Write}}; may insert/update {{join .Write}}{{end}}</div>{{end}}</td>
<td>{{hours .MaxDuration}}</td><td>{{.Approvals}} of {{join .Approvers}}</td></tr>
{{end}}</tbody></table>
{{else}}<p>The policy lets you request no roles.</p>{{end}}

<h2>Your active grants</h2>
{{if .Grants}}<table id="grants"><thead><tr><th>Grant</th><th>Role</th><th>Until</th><th>Time left</th></tr></thead><tbody>
{{range .Grants}}<tr><td>{{.ID}}</td><td>{{.Role}}</td><td>{{utc .ExpiresAt}}</td><td>{{.Left}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="muted" id="no-grants">No active grants.</p>{{end}}

<h2>Your pending requests</h2>
{{if .Pending}}<table id="pending"><thead><tr><th>Request</th><th>Role</th><th>Duration</th><th>Approvals</th><th>Reason</th></tr></thead><tbody>
{{range .Pending}}<tr><td>{{.ID}}</td><td>{{.Role}}</td><td>{{.DurationText}}</td><td>{{.Approved}} of {{.ApprovalsRequired}}</td><td>{{.Reason}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="muted">No pending requests.</p>{{end}}
{{if .Recent}}<h2>Your recent requests</h2><table id="recent"><tbody>
{{range .Recent}}<tr><td>{{.ID}}</td><td>{{.Role}}</td><td>{{.Status}}</td><td>{{utc .CreatedAt}}</td></tr>
{{end}}</tbody></table>{{end}}

{{if .IsApprover}}
<h2>Waiting for your decision</h2>
{{if .Waiting}}<table id="waiting"><thead><tr><th>Request</th><th>Details</th><th>Decision</th></tr></thead><tbody>
{{range .Waiting}}<tr><td>{{.ID}}{{if .BreakGlass}} <span class="bg">BREAK-GLASS</span>{{end}}</td>
<td><strong>{{.Requester}}</strong> asks for <strong>{{.Role}}</strong> ({{join .Tables}}) for {{.DurationText}}{{if .Ticket}}, ticket {{.Ticket}}{{end}}.
<div>Reason: <q>{{.Reason}}</q></div>
<div class="muted">Their grants in the last 30 days: {{if .RequesterHistory}}{{join .RequesterHistory}}{{else}}none{{end}}</div>
<div class="muted">{{.Approved}} of {{.ApprovalsRequired}} approvals; expires {{utc .ExpiresAt}}</div></td>
<td><form method="post" action="{{$.ApprovalURL}}web/decide">
<input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="request_id" value="{{.ID}}">
<input name="comment" placeholder="comment" maxlength="2000" aria-label="comment">
<button type="submit" name="decision" value="approve">Approve</button><button type="submit" name="decision" value="deny">Deny</button>
</form></td></tr>
{{end}}</tbody></table>{{else}}<p class="muted" id="nothing-waiting">Nothing is waiting for you.</p>{{end}}
{{end}}
</body>
</html>
`))
