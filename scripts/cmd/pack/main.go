// Command pack assembles one Cloud Function's source zip for Google's Go buildpack, which
// builds only the package at the source root. The zip holds go.mod, go.sum, exactly the
// module's own packages the function imports (their non-test Go, C and embedded files;
// never tests or testdata), and a generated root package that registers the entry point
// with the Functions Framework. It is reproducible: entries are sorted and carry a fixed
// time and mode, so the zip's hash changes only when its content does (Terraform names
// the uploaded object by the zip's MD5). scripts/package.sh runs it.
//
//	pack -function ExecuteQuery -package functions/query -entry query.ExecuteQuery -out .build/ExecuteQuery.zip
package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// rootFile is the generated root package's file name, and rootPackage its package name.
const (
	rootFile    = "function.go"
	rootPackage = "airlock"
)

// zipTime is the modification time every entry carries: the earliest a zip can record.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	function := flag.String("function", "", "entry point, e.g. ExecuteQuery")
	pkg := flag.String("package", "", "the function's package directory relative to the module root, e.g. functions/query")
	entry := flag.String("entry", "", "the entry point as package.Func, e.g. query.ExecuteQuery")
	out := flag.String("out", "", "zip to write")
	flag.Parse()
	if *function == "" || *pkg == "" || *entry == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	sum, err := run(*function, *pkg, *entry, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
	fmt.Printf("%s\nsha256 %s\n", *out, sum)
}

// listed is what `go list -json` says about a package.
type listed struct {
	ImportPath     string
	Dir            string
	Name           string
	Module         *struct{ Path, Dir string }
	GoFiles        []string
	CgoFiles       []string
	CFiles         []string
	CXXFiles       []string
	HFiles         []string
	SFiles         []string
	SysoFiles      []string
	IgnoredGoFiles []string
	EmbedFiles     []string
	DepOnly        bool
}

func run(function, pkgDir, entry, out string) (string, error) {
	modPath, modDir, err := module()
	if err != nil {
		return "", err
	}
	alias, fn, ok := strings.Cut(entry, ".")
	if !ok || alias == "" || fn == "" {
		return "", fmt.Errorf("-entry %q is not package.Func", entry)
	}
	target := modPath + "/" + path.Clean(filepath.ToSlash(pkgDir))

	cmd := exec.Command("go", "list", "-deps", "-json", "./"+filepath.ToSlash(pkgDir))
	cmd.Dir = modDir
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -deps ./%s: %w", pkgDir, err)
	}
	files := map[string][]byte{} // zip path -> content
	dec := json.NewDecoder(bytes.NewReader(raw))
	var sawTarget bool
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("reading go list output: %w", err)
		}
		if p.Module == nil || p.Module.Path != modPath {
			continue // the standard library or another module: the buildpack fetches it
		}
		if p.ImportPath == target {
			sawTarget = true
			if p.Name != alias {
				return "", fmt.Errorf("-entry %s: package %s is named %s", entry, target, p.Name)
			}
		}
		rel, err := filepath.Rel(modDir, p.Dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			return "", fmt.Errorf("package %s is outside the module at %s", p.ImportPath, modDir)
		}
		var names []string
		for _, l := range [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.HFiles, p.SFiles, p.SysoFiles, p.IgnoredGoFiles, p.EmbedFiles} {
			names = append(names, l...)
		}
		for _, name := range names {
			zp := path.Join(filepath.ToSlash(rel), filepath.ToSlash(name))
			if strings.HasSuffix(name, "_test.go") || hasElem(zp, "testdata") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(p.Dir, name))
			if err != nil {
				return "", err
			}
			files[zp] = b
		}
	}
	if !sawTarget {
		return "", fmt.Errorf("go list did not report %s", target)
	}
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(modDir, name))
		if err != nil {
			return "", err
		}
		files[name] = b
	}
	if _, clash := files[rootFile]; clash {
		return "", fmt.Errorf("the module root already has %s", rootFile)
	}
	files[rootFile] = rootSource(function, target, alias, fn)

	var buf bytes.Buffer
	if err := writeZip(&buf, files); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	s := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(s[:]), nil
}

// module returns the main module's path and directory.
func module() (string, string, error) {
	raw, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}\t{{.Dir}}").Output()
	if err != nil {
		return "", "", fmt.Errorf("go list -m: %w", err)
	}
	p, d, ok := strings.Cut(strings.TrimSpace(string(raw)), "\t")
	if !ok || strings.Contains(p, "\n") {
		return "", "", fmt.Errorf("go list -m: unexpected output %q", raw)
	}
	return p, d, nil
}

func hasElem(p, elem string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == elem {
			return true
		}
	}
	return false
}

// rootSource is the root package the buildpack builds: it only registers the entry point.
// The function's dependencies are built on its first request, so init does no I/O.
func rootSource(function, importPath, alias, fn string) []byte {
	return fmt.Appendf(nil, `// Code generated by scripts/package.sh. DO NOT EDIT.

// Package %[1]s is the source root Google's Go buildpack builds for the %[2]s function.
package %[1]s

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	%[4]s %[3]q
)

func init() { functions.HTTP(%[2]q, %[4]s.%[5]s) }
`, rootPackage, function, importPath, alias, fn)
}

// writeZip writes files sorted by name, each with the same time and mode.
func writeZip(w io.Writer, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	zw := zip.NewWriter(w)
	for _, n := range names {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: zipTime}
		h.SetMode(0o644)
		f, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := f.Write(files[n]); err != nil {
			return err
		}
	}
	return zw.Close()
}
