package cloudsqlemu

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/jackc/pgx/v5"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// A Flag is one database_flags block of the primary instance in terraform/sql.tf: a
// server setting Cloud SQL applies to the whole instance.
type Flag struct {
	Name, Value string
}

// Skip says why a flag is not applied to a plain PostgreSQL server, or "" when it is.
// Cloud SQL's own switches (cloudsql.*) have no PostgreSQL equivalent, and pgAudit's
// (pgaudit.*) need the pgaudit extension, which these server binaries do not ship.
// Every other flag is a PostgreSQL setting and is applied as it is.
func (f Flag) Skip() string {
	switch {
	case strings.HasPrefix(f.Name, "cloudsql."):
		return "a Cloud SQL switch with no PostgreSQL equivalent"
	case strings.HasPrefix(f.Name, "pgaudit."):
		return "needs the pgaudit extension, which the local server binaries lack"
	}
	return ""
}

// ReadFlags reads the database flags of google_sql_database_instance.primary from dir's
// sql.tf, so that the emulation and the deployment have one source of truth. A value may
// be a literal, or any expression over variables with defaults in dir's variables.tf
// (var.x, tostring(var.x), "${var.x}").
func ReadFlags(dir string) ([]Flag, error) {
	p := hclparse.NewParser()
	vars, err := variableDefaults(p, filepath.Join(dir, "variables.tf"))
	if err != nil {
		return nil, err
	}
	f, diags := p.ParseHCLFile(filepath.Join(dir, "sql.tf"))
	if diags.HasErrors() {
		return nil, fmt.Errorf("cloudsqlemu: %s", diags.Error())
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: map[string]function.Function{"tostring": stdlib.MakeToFunc(cty.String)},
	}
	var flags []Flag
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "resource" || len(b.Labels) != 2 || b.Labels[0] != "google_sql_database_instance" || b.Labels[1] != "primary" {
			continue
		}
		for _, s := range b.Body.Blocks {
			if s.Type != "settings" {
				continue
			}
			for _, fb := range s.Body.Blocks {
				if fb.Type != "database_flags" {
					continue
				}
				name, err := evalString(fb.Body.Attributes["name"], ctx)
				if err != nil {
					return nil, fmt.Errorf("cloudsqlemu: sql.tf line %d: database_flags name: %w", fb.DefRange().Start.Line, err)
				}
				value, err := evalString(fb.Body.Attributes["value"], ctx)
				if err != nil {
					return nil, fmt.Errorf("cloudsqlemu: sql.tf line %d: database_flags %s: %w", fb.DefRange().Start.Line, name, err)
				}
				flags = append(flags, Flag{Name: name, Value: value})
			}
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("cloudsqlemu: no database_flags in %s", filepath.Join(dir, "sql.tf"))
	}
	return flags, nil
}

func variableDefaults(p *hclparse.Parser, path string) (map[string]cty.Value, error) {
	f, diags := p.ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, fmt.Errorf("cloudsqlemu: %s", diags.Error())
	}
	vars := map[string]cty.Value{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "variable" || len(b.Labels) != 1 {
			continue
		}
		if a, ok := b.Body.Attributes["default"]; ok {
			v, diags := a.Expr.Value(nil)
			if !diags.HasErrors() {
				vars[b.Labels[0]] = v
			}
		}
	}
	return vars, nil
}

func evalString(a *hclsyntax.Attribute, ctx *hcl.EvalContext) (string, error) {
	if a == nil {
		return "", fmt.Errorf("missing")
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		return "", fmt.Errorf("cannot evaluate it here (use a literal or a variable with a default): %s", diags.Error())
	}
	if v.IsNull() || !v.IsKnown() {
		return "", fmt.Errorf("no value")
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Number:
		return v.AsBigFloat().Text('f', -1), nil
	case cty.Bool:
		if v.True() {
			return "on", nil
		}
		return "off", nil
	}
	return "", fmt.Errorf("value of type %s, want a string", v.Type().FriendlyName())
}

// applyFlags sets each applicable flag at cluster level (ALTER SYSTEM, then a reload),
// waits until new sessions see it, and returns the skipped flags with their reasons.
func applyFlags(ctx context.Context, su *pgx.Conn, superuserURL string, flags []Flag) ([]string, error) {
	var skipped []string
	var applied []Flag
	for _, f := range flags {
		if why := f.Skip(); why != "" {
			skipped = append(skipped, f.Name+": "+why)
			continue
		}
		if _, err := su.Exec(ctx, fmt.Sprintf(`ALTER SYSTEM SET %s = %s`, ident(f.Name), literal(f.Value))); err != nil {
			return nil, fmt.Errorf("cloudsqlemu: applying database flag %s = %q from terraform/sql.tf: %w", f.Name, f.Value, err)
		}
		applied = append(applied, f)
	}
	if len(applied) == 0 {
		return skipped, nil
	}
	if _, err := su.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		return nil, fmt.Errorf("cloudsqlemu: reloading the configuration: %w", err)
	}
	// The reload is a signal to the postmaster: wait until a new session sees every flag.
	deadline := time.Now().Add(settleTimeout)
	for {
		wrong, err := CheckFlags(ctx, superuserURL, applied)
		if err != nil {
			return nil, err
		}
		if len(wrong) == 0 {
			return skipped, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("cloudsqlemu: after a reload, new sessions still see %s (a flag that needs a restart?)", strings.Join(wrong, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CheckFlags connects to u in a new session and returns the flags whose setting differs
// from the flag's value, as "name = got (want value)".
func CheckFlags(ctx context.Context, u string, flags []Flag) ([]string, error) {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("cloudsqlemu: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var wrong []string
	for _, f := range flags {
		if f.Skip() != "" {
			continue
		}
		var setting, vartype string
		var pending bool
		err := conn.QueryRow(ctx, `SELECT setting, vartype, pending_restart FROM pg_settings WHERE name = $1`, f.Name).Scan(&setting, &vartype, &pending)
		if err != nil {
			return nil, fmt.Errorf("cloudsqlemu: reading setting %s: %w", f.Name, err)
		}
		if pending {
			return nil, fmt.Errorf("cloudsqlemu: database flag %s needs a server restart", f.Name)
		}
		if !sameSetting(vartype, setting, f.Value) {
			wrong = append(wrong, fmt.Sprintf("%s = %s (want %s)", f.Name, setting, f.Value))
		}
	}
	return wrong, nil
}

// sameSetting compares pg_settings.setting with a flag's value, as PostgreSQL would
// read the value: booleans in any spelling; numbers in the setting's own unit, which is
// how Cloud SQL takes them.
func sameSetting(vartype, setting, value string) bool {
	if vartype == "bool" {
		on := []string{"on", "true", "yes", "1", "t", "y"}
		return slices.Contains(on, strings.ToLower(setting)) == slices.Contains(on, strings.ToLower(value))
	}
	return setting == value
}
