package terraform_test

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// A module is every top-level block of the *.tf files in this directory, plus their source
// text, so that expressions that cannot be evaluated without a provider can still be read.
type module struct {
	src    map[string][]byte // file name -> contents
	blocks []*hclsyntax.Block
}

var (
	loadOnce sync.Once
	loaded   *module
	loadErr  error
)

// loadModule parses the configuration once per test binary.
func loadModule(t *testing.T) *module {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = parseDir(".") })
	if loadErr != nil {
		t.Fatalf("parsing the Terraform files: %v", loadErr)
	}
	return loaded
}

func parseDir(dir string) (*module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .tf files in %s", dir)
	}
	p := hclparse.NewParser()
	m := &module{src: map[string][]byte{}}
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			return nil, diags
		}
		m.src[path] = f.Bytes
		m.blocks = append(m.blocks, f.Body.(*hclsyntax.Body).Blocks...)
	}
	return m, nil
}

// find returns the top-level blocks of type typ whose first labels are labels.
func (m *module) find(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type != typ || len(b.Labels) < len(labels) {
			continue
		}
		match := true
		for i, l := range labels {
			if b.Labels[i] != l {
				match = false
				break
			}
		}
		if match {
			out = append(out, b)
		}
	}
	return out
}

// resources returns every resource block of the given resource type.
func (m *module) resources(typ string) []*hclsyntax.Block { return m.find("resource", typ) }

// resource returns the one resource typ.name, failing the test if it is not declared.
func (m *module) resource(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	bs := m.find("resource", typ, name)
	if len(bs) != 1 {
		t.Fatalf("resource %s.%s: want 1 declaration, got %d", typ, name, len(bs))
	}
	return bs[0]
}

// variable returns the variable block name, failing the test if it is not declared.
func (m *module) variable(t *testing.T, name string) *hclsyntax.Block {
	t.Helper()
	bs := m.find("variable", name)
	if len(bs) != 1 {
		t.Fatalf("variable %q: want 1 declaration, got %d", name, len(bs))
	}
	return bs[0]
}

// locals returns every local value's attribute, by name.
func (m *module) locals() map[string]*hclsyntax.Attribute {
	out := map[string]*hclsyntax.Attribute{}
	for _, b := range m.find("locals") {
		for name, a := range b.Body.Attributes {
			out[name] = a
		}
	}
	return out
}

// text returns the source text of a node.
func (m *module) text(n hclsyntax.Node) string {
	r := n.Range()
	return string(m.src[r.Filename][r.Start.Byte:r.End.Byte])
}

// expand returns the source text of expr with every local.NAME it uses replaced by that
// local's own (expanded) text, so that a filter or role kept in a local can still be read.
func (m *module) expand(expr hclsyntax.Expression) string {
	return m.expandDepth(expr, 0)
}

func (m *module) expandDepth(expr hclsyntax.Expression, depth int) string {
	s := m.text(expr)
	if depth > 10 {
		return s
	}
	locals := m.locals()
	for _, tr := range expr.Variables() {
		if tr.RootName() != "local" || len(tr) < 2 {
			continue
		}
		name := tr[1].(hcl.TraverseAttr).Name
		if a, ok := locals[name]; ok {
			s = strings.ReplaceAll(s, "local."+name, m.expandDepth(a.Expr, depth+1))
		}
	}
	return s
}

// blockText returns the expanded text of every attribute of b, nested blocks included.
func (m *module) blockText(b *hclsyntax.Block) string {
	var sb strings.Builder
	walkAttrs(b.Body, nil, func(a *hclsyntax.Attribute, _ []*hclsyntax.Block) {
		sb.WriteString(a.Name + " = " + m.expand(a.Expr) + "\n")
	})
	return sb.String()
}

// children returns b's nested blocks of type typ.
func children(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// attr follows path through the first nested block of each name and returns the attribute
// named by the last element, or nil.
func attr(b *hclsyntax.Block, path ...string) *hclsyntax.Attribute {
	for _, name := range path[:len(path)-1] {
		cs := children(b, name)
		if len(cs) == 0 {
			return nil
		}
		b = cs[0]
	}
	return b.Body.Attributes[path[len(path)-1]]
}

// literal evaluates an expression that needs no variables or functions.
func literal(expr hclsyntax.Expression) (cty.Value, bool) {
	v, diags := expr.Value(nil)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// literalString returns an attribute's value if it is a literal string, else "".
func literalString(a *hclsyntax.Attribute) string {
	if a == nil {
		return ""
	}
	v, ok := literal(a.Expr)
	if !ok || v.IsNull() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// literalBool reports whether an attribute is the literal true.
func literalBool(a *hclsyntax.Attribute) bool {
	if a == nil {
		return false
	}
	v, ok := literal(a.Expr)
	return ok && !v.IsNull() && v.Type() == cty.Bool && v.True()
}

// refersTo reports whether expr references root.name (a resource, or var/local/data).
func refersTo(expr hclsyntax.Expression, root, name string) bool {
	for _, tr := range expr.Variables() {
		if tr.RootName() == root && len(tr) >= 2 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok && a.Name == name {
				return true
			}
		}
	}
	return false
}

// objectItems returns the items of an object constructor by (literal) key.
func objectItems(expr hclsyntax.Expression) map[string]hclsyntax.Expression {
	obj, ok := expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil
	}
	out := map[string]hclsyntax.Expression{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() || k.Type() != cty.String {
			continue
		}
		out[k.AsString()] = item.ValueExpr
	}
	return out
}

// walkAttrs calls fn for every attribute in body and its nested blocks; stack holds the
// enclosing blocks, innermost last.
func walkAttrs(body *hclsyntax.Body, stack []*hclsyntax.Block, fn func(*hclsyntax.Attribute, []*hclsyntax.Block)) {
	names := make([]string, 0, len(body.Attributes))
	for n := range body.Attributes {
		names = append(names, n)
	}
	sort.Strings(names) // stable failure messages
	for _, n := range names {
		fn(body.Attributes[n], stack)
	}
	for _, b := range body.Blocks {
		walkAttrs(b.Body, append(stack[:len(stack):len(stack)], b), fn)
	}
}

// validationFunctions are the Terraform functions the tested validation conditions use.
var validationFunctions = map[string]function.Function{
	"can":         tryfunc.CanFunc,
	"contains":    stdlib.ContainsFunc,
	"floor":       stdlib.FloorFunc,
	"keys":        stdlib.KeysFunc,
	"length":      stdlib.LengthFunc,
	"lower":       stdlib.LowerFunc,
	"regex":       stdlib.RegexFunc,
	"setsubtract": stdlib.SetSubtractFunc,
	"split":       stdlib.SplitFunc,
	"trimprefix":  stdlib.TrimPrefixFunc,
	"trimspace":   stdlib.TrimSpaceFunc,
}

// validates reports whether value passes every validation block of variable name, the way
// `terraform plan` would check it.
func (m *module) validates(t *testing.T, name string, value cty.Value) bool {
	t.Helper()
	v := m.variable(t, name)
	vals := children(v, "validation")
	if len(vals) == 0 {
		t.Fatalf("variable %q has no validation block", name)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: value})},
		Functions: validationFunctions,
	}
	for _, vb := range vals {
		cond := vb.Body.Attributes["condition"]
		got, diags := cond.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("variable %q: evaluating validation %s: %v", name, m.text(cond.Expr), diags)
		}
		if got.IsNull() || got.False() {
			return false
		}
	}
	return true
}

// blockName is "type.name" for resources and data sources, "type name" otherwise.
func blockName(b *hclsyntax.Block) string {
	if len(b.Labels) == 0 {
		return b.Type
	}
	if b.Type == "resource" {
		return strings.Join(b.Labels, ".")
	}
	return b.Type + "." + strings.Join(b.Labels, ".")
}

func pos(b hclsyntax.Node) string {
	r := b.Range()
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}
