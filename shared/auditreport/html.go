package auditreport

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed templates/*.html
var templates embed.FS

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"ids":   ids,
	"short": func(h string) string { return clip(h, 12) },
	"or":    cmpOr,
}

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html"))

// A timeline is one person's row of the access review, drawn as plain SVG: a bar per
// grant held (break-glass in red), and a mark per refusal, alert and decision given.
type timeline struct {
	Width, Height int
	Bars          []bar
	Marks         []mark
	From, To      string
}

type bar struct {
	X, Y, W int
	Class   string
	Label   string
}

type mark struct {
	X, Y  int
	Class string
	Label string
}

const (
	tlWidth  = 640
	tlPad    = 8
	tlRow    = 16
	tlMarksY = 10
)

func (r *Report) timeline(p *Person) timeline {
	span := r.To.Sub(r.From)
	if span < time.Minute {
		span = time.Minute
	}
	x := func(t time.Time) int {
		if t.Before(r.From) {
			t = r.From
		}
		if t.After(r.From.Add(span)) {
			t = r.From.Add(span)
		}
		return tlPad + int(float64(tlWidth-2*tlPad)*float64(t.Sub(r.From))/float64(span))
	}
	tl := timeline{Width: tlWidth, From: funcs["time"].(func(time.Time) string)(r.From), To: funcs["time"].(func(time.Time) string)(r.To)}
	y := tlMarksY + 12
	for _, g := range p.Grants {
		x0, x1 := x(g.Start), x(g.Until())
		class := "grant"
		if g.Breakglass {
			class = "breakglass"
		}
		tl.Bars = append(tl.Bars, bar{X: x0, Y: y, W: max(x1-x0, 3), Class: class,
			Label: fmt.Sprintf("grant %d %s, %s to %s", g.ID, g.Role, g.Start.UTC().Format(time.RFC3339), g.Until().UTC().Format(time.RFC3339))})
		y += tlRow
	}
	for _, e := range p.Events {
		switch e.Kind {
		case "refusal", "alert", "approval", "denial", "revocation":
			tl.Marks = append(tl.Marks, mark{X: x(e.Time), Y: tlMarksY, Class: e.Kind, Label: e.Time.UTC().Format(time.RFC3339) + " " + e.Event + ": " + e.Detail})
		}
	}
	tl.Height = y + 14
	return tl
}

type personView struct {
	*Person
	Timeline timeline
}

type entryView struct {
	Ref  Ref
	JSON string
	Time time.Time
}

func (r *Report) entryViews() []entryView {
	var out []entryView
	for _, se := range r.Entries() {
		var buf bytes.Buffer
		b, _ := json.Marshal(se.Entry)
		json.Indent(&buf, b, "", "  ")
		out = append(out, entryView{Ref: ref(se), JSON: buf.String(), Time: se.Entry.Time})
	}
	return out
}

// WriteRequestsHTML writes the per-request page: for each access request, who asked,
// why, the ticket, each decision, the grant's window and every statement run under it,
// each linking to its audit entry, which the page lists at the end. The page is one
// file: no script, no stylesheet or image to fetch.
func (r *Report) WriteRequestsHTML(w io.Writer) error {
	return pages.ExecuteTemplate(w, "requests.html", map[string]any{"R": r, "Entries": r.entryViews()})
}

// WriteReviewHTML writes the period's access review: per person, the access held (with
// a timeline), requests, decisions given, statements, refusals and alerts; then every
// event of the period, each linking to its audit entry.
func (r *Report) WriteReviewHTML(w io.Writer) error {
	var people []personView
	for _, p := range r.People {
		people = append(people, personView{Person: p, Timeline: r.timeline(p)})
	}
	return pages.ExecuteTemplate(w, "review.html", map[string]any{"R": r, "People": people, "Entries": r.entryViews()})
}
