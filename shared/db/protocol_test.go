package db_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// notScanned are the packages under functions/ and shared/ whose SQL never comes from a
// developer, and which run scripts of several statements on purpose.
var notScanned = map[string]string{
	"shared/migrate":     "runs the migrations, written by Airlock from the policy, as the administrator",
	"shared/demo":        "loads the demo schema script",
	"shared/dbtest":      "creates throwaway databases for tests",
	"shared/cloudsqlemu": "builds the local Cloud SQL emulation's roles, databases and flags, as the superuser and the admin",
}

// TestNoSimpleProtocolCalls reads every non-test Go file of the functions and shared
// libraries and refuses the call shapes that send SQL over the simple protocol, which
// runs every statement in a string: pgx's Exec with no arguments (or with arguments
// spread from a slice that may be empty) unless the SQL is a constant, pgconn's Exec, and
// QueryExecModeSimpleProtocol. A constant may be joined with pgx.Identifier's quoting.
// Statements whose text is built at run time go through db.Exec.
func TestNoSimpleProtocolCalls(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var scanned int
	for _, top := range []string{"functions", "shared"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if _, skip := notScanned[rel]; skip {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			scanned++
			consts := constNames(f)
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if n.Sel.Name == "QueryExecModeSimpleProtocol" {
						t.Errorf("%s: QueryExecModeSimpleProtocol runs several statements; use the pool's QueryExecModeExec", fset.Position(n.Pos()))
					}
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "Exec" || len(n.Args) < 2 {
						return true
					}
					if inner, ok := sel.X.(*ast.CallExpr); ok {
						if s, ok := inner.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "PgConn" {
							t.Errorf("%s: pgconn's Exec uses the simple protocol; use db.Exec", fset.Position(n.Pos()))
							return true
						}
					}
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "db" {
						return true // db.Exec itself
					}
					switch {
					case n.Ellipsis.IsValid():
						t.Errorf("%s: Exec with arguments spread from a slice uses the simple protocol when the slice is empty; use db.Exec", fset.Position(n.Pos()))
					case len(n.Args) == 2 && !constantSQL(n.Args[1], consts):
						t.Errorf("%s: Exec of SQL built at run time, with no arguments, uses the simple protocol; use db.Exec", fset.Position(n.Pos()))
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if scanned < 20 {
		t.Fatalf("want the functions' and libraries' Go files scanned, got only %d", scanned)
	}
}

// constantSQL reports whether e is SQL text fixed at compile time: string literals and
// constants of the file, joined by +, possibly with pgx.Identifier{…}.Sanitize().
func constantSQL(e ast.Expr, consts map[string]bool) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.Ident:
		return consts[e.Name]
	case *ast.ParenExpr:
		return constantSQL(e.X, consts)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && constantSQL(e.X, consts) && constantSQL(e.Y, consts)
	case *ast.CallExpr:
		sel, ok := e.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Sanitize" || len(e.Args) != 0 {
			return false
		}
		lit, ok := sel.X.(*ast.CompositeLit)
		if !ok {
			return false
		}
		typ, ok := lit.Type.(*ast.SelectorExpr)
		return ok && typ.Sel.Name == "Identifier"
	}
	return false
}

func constNames(f *ast.File) map[string]bool {
	out := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					out[n.Name] = true
				}
			}
		}
	}
	return out
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
