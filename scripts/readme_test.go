package scripts_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeContents: the README's contents list names every section and subsection, in
// order, and every link inside the README (its contents list and its cross-references)
// reaches a heading, so a renamed or moved section cannot leave a newcomer at a dead link.
func TestReadmeContents(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	// Headings outside fenced code blocks (the README's shell snippets have # comments).
	var headings []string
	anchors := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level == 0 || level > 4 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		title := strings.TrimSpace(line[level:])
		anchors[anchor(title)] = true
		if (level == 2 || level == 3) && title != "Contents" {
			headings = append(headings, strings.Repeat("  ", level-2)+"- ["+title+"](#"+anchor(title)+")")
		}
	}
	start := strings.Index(text, "## Contents\n\n")
	if start < 0 {
		t.Fatal("want = a ## Contents section, got = none")
	}
	list := text[start+len("## Contents\n\n"):]
	list = list[:strings.Index(list, "\n\n")]
	if got := strings.Split(list, "\n"); !slices.Equal(got, headings) {
		t.Errorf("want = the contents list to be the headings:\n%s\ngot =\n%s", strings.Join(headings, "\n"), list)
	}
	for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(text, -1) {
		if !anchors[m[1]] {
			t.Errorf("want = a heading for the link #%s, got = none", m[1])
		}
	}
}

// anchor is GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes.
func anchor(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}
