package alerts_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/alerts"
)

var update = flag.Bool("update", false, "rewrite the alerts table in README.md")

const (
	tableBegin = "<!-- alerts table: generated from shared/alerts by `go test ./shared/alerts -run TestREADME -update` -->"
	tableEnd   = "<!-- end of alerts table -->"
)

// table renders Kinds as the README's table.
func table() string {
	var b strings.Builder
	b.WriteString("| event | severity | raised by | when | fields |\n|---|---|---|---|---|\n")
	for _, k := range alerts.Kinds() {
		fields := "`" + strings.Join(k.Fields, "`, `") + "`"
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Event, k.Severity, k.RaisedBy, k.When, fields)
	}
	return b.String()
}

// TestREADME keeps the README's alerts table what shared/alerts says.
func TestREADME(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no alerts table between %q and %q", tableBegin, tableEnd)
	}
	want := doc[:i+len(tableBegin)] + "\n" + table() + doc[j:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's alerts table differs from shared/alerts; run go test ./shared/alerts -run TestREADME -update. Want:\n%s", table())
}
