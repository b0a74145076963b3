package terraform_test

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the Inputs and Outputs tables in README.md")

// TestReadmeTables checks that README.md's Inputs and Outputs tables are the ones generated
// from variables.tf and outputs.tf. Regenerate them with:
//
//	go test ./terraform -run TestReadmeTables -update
func TestReadmeTables(t *testing.T) {
	m := loadModule(t)
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatalf("reading README.md: %v", err)
	}
	readme := string(raw)
	want := readme
	for _, section := range []struct{ name, table string }{
		{"INPUTS", inputsTable(m)},
		{"OUTPUTS", outputsTable(m)},
	} {
		re := regexp.MustCompile(`(?s)(<!-- BEGIN ` + section.name + `[^>]*-->\n).*?(<!-- END ` + section.name + ` -->)`)
		loc := re.FindStringSubmatchIndex(want)
		if loc == nil {
			t.Fatalf("README.md: no <!-- BEGIN %s --> ... <!-- END %s --> markers", section.name, section.name)
		}
		want = want[:loc[3]] + section.table + want[loc[4]:] // between the two markers
	}
	if want == readme {
		return
	}
	if *update {
		if err := os.WriteFile("README.md", []byte(want), 0o644); err != nil {
			t.Fatalf("writing README.md: %v", err)
		}
		return
	}
	t.Error("README.md: the Inputs/Outputs tables are out of date; run: go test ./terraform -run TestReadmeTables -update")
}

func inputsTable(m *module) string {
	var sb strings.Builder
	sb.WriteString("| Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n")
	for _, v := range m.find("variable") {
		desc := literalString(v.Body.Attributes["description"])
		if literalBool(v.Body.Attributes["sensitive"]) {
			desc += " Sensitive."
		}
		typ := ""
		if a := v.Body.Attributes["type"]; a != nil {
			typ = "`" + oneLine(m.text(a.Expr)) + "`"
		}
		def, required := "n/a", "yes"
		if a := v.Body.Attributes["default"]; a != nil {
			def, required = "`"+oneLine(m.text(a.Expr))+"`", "no"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", v.Labels[0], cell(desc), cell(typ), cell(def), required)
	}
	return sb.String()
}

func outputsTable(m *module) string {
	var sb strings.Builder
	sb.WriteString("| Name | Description |\n|------|-------------|\n")
	for _, o := range m.find("output") {
		fmt.Fprintf(&sb, "| %s | %s |\n", o.Labels[0], cell(literalString(o.Body.Attributes["description"])))
	}
	return sb.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ").Replace(s)
}
