package scripts_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/shared/authn"
	"airlock.dev/airlock/shared/dbtest"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dbtest.DropTemplates()
	os.Exit(code)
}

// packaged is one row of scripts/package.sh's FUNCTIONS table.
type packaged struct{ Function, Dir, Entry string }

// packageTable reads the FUNCTIONS table from scripts/package.sh, so the test and the
// script never disagree about which functions exist.
func packageTable(t *testing.T) []packaged {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "package.sh"))
	if err != nil {
		t.Fatalf("reading scripts/package.sh: %v", err)
	}
	m := regexp.MustCompile(`(?s)\nFUNCTIONS='\n(.*?)'\n`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("scripts/package.sh: no FUNCTIONS='…' table")
	}
	var out []packaged
	for _, line := range strings.Split(string(m[1]), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			t.Fatalf("scripts/package.sh: table row %q: want FUNCTION DIR ENTRY", line)
		}
		out = append(out, packaged{f[0], f[1], f[2]})
	}
	return out
}

// TestPackageTable checks the table covers exactly the four functions of the contract.
func TestPackageTable(t *testing.T) {
	var got []string
	for _, p := range packageTable(t) {
		got = append(got, p.Function+"="+p.Dir+"="+p.Entry)
	}
	want := []string{
		"ExecuteQuery=functions/query=query.ExecuteQuery",
		"RequestAccess=functions/access=access.RequestAccess",
		"ApprovalCallback=functions/approval=approval.ApprovalCallback",
		"SweepExpired=functions/sweep=sweep.SweepExpired",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("scripts/package.sh FUNCTIONS:\nwant %v\ngot  %v", want, got)
	}
}

func TestPackageUnknownFunction(t *testing.T) {
	cmd := exec.Command("bash", "scripts/package.sh", "NoSuchFunction")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown function") {
		t.Errorf("scripts/package.sh NoSuchFunction: want a failure naming the unknown function, got err=%v:\n%s", err, out)
	}
}

// packageExists says whether dir holds a non-test Go file.
func packageExists(dir string) bool {
	ents, err := os.ReadDir(filepath.Join(repoRoot, dir))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return true
		}
	}
	return false
}

// TestPackage packages every function whose package exists, builds the zip the way
// Google's Go buildpack does, starts it and calls it.
func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function; skipped with -short")
	}
	table := packageTable(t)
	for _, p := range table {
		t.Run(p.Function, func(t *testing.T) {
			if !packageExists(p.Dir) {
				cmd := exec.Command("bash", "scripts/package.sh", p.Function)
				cmd.Dir = repoRoot
				out, err := cmd.CombinedOutput()
				if err == nil || !strings.Contains(string(out), "does not exist yet") {
					t.Errorf("packaging %s before %s exists: want a clear failure, got err=%v:\n%s", p.Function, p.Dir, err, out)
				}
				t.Skipf("%s does not exist yet", p.Dir)
			}
			t.Parallel()
			zipPath := packageFunction(t, p.Function)
			src := filepath.Join(t.TempDir(), "serverless_function_source_code")
			checkZip(t, zipPath, p, table, src)
			bin := buildLikeBuildpack(t, src)
			runPackaged(t, bin, p.Function)
		})
	}
}

// packageFunction runs scripts/package.sh twice and checks it names the zip, prints its
// sha256 and is reproducible.
func packageFunction(t *testing.T, fn string) string {
	t.Helper()
	var sums []string
	for range 2 {
		cmd := exec.Command("bash", "scripts/package.sh", fn)
		cmd.Dir = repoRoot
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("scripts/package.sh %s: %v\n%s", fn, err, stderr.String())
		}
		want := ".build/" + fn + ".zip"
		if !strings.Contains(string(out), want) {
			t.Errorf("scripts/package.sh %s: want the zip path %s printed, got:\n%s", fn, want, out)
		}
		m := regexp.MustCompile(`sha256 ([0-9a-f]{64})`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("scripts/package.sh %s: want its sha256 printed, got:\n%s", fn, out)
		}
		sums = append(sums, m[1])
	}
	if sums[0] != sums[1] {
		t.Errorf("scripts/package.sh %s is not reproducible: sha256 %s then %s", fn, sums[0], sums[1])
	}
	return filepath.Join(repoRoot, ".build", fn+".zip")
}

// checkZip checks what the zip holds and unpacks it into dst.
func checkZip(t *testing.T, zipPath string, p packaged, table []packaged, dst string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatalf("opening %s: %v", zipPath, err)
	}
	defer zr.Close()
	seen := map[string]bool{}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		seen[f.Name] = true
		switch {
		case strings.HasSuffix(f.Name, "_test.go"):
			t.Errorf("zip holds a test file: %s", f.Name)
		case strings.Contains("/"+f.Name+"/", "/testdata/"):
			t.Errorf("zip holds testdata: %s", f.Name)
		case strings.Contains(f.Name, ".."), strings.HasPrefix(f.Name, "/"):
			t.Fatalf("zip entry escapes the source root: %s", f.Name)
		}
		for _, other := range table {
			if other.Dir != p.Dir && strings.HasPrefix(f.Name, other.Dir+"/") {
				t.Errorf("zip of %s holds another function's package: %s", p.Function, f.Name)
			}
		}
		if !f.Modified.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("zip entry %s: want the fixed time 1980-01-01, got %v", f.Name, f.Modified)
		}
		out := filepath.Join(dst, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("zip entries not sorted: %s before %s", names[i-1], names[i])
		}
	}
	for _, want := range []string{"go.mod", "go.sum", "function.go"} {
		if !seen[want] {
			t.Errorf("zip lacks %s", want)
		}
	}
	if !hasPrefix(names, p.Dir+"/") {
		t.Errorf("zip lacks the function's package %s", p.Dir)
	}
	root, _ := os.ReadFile(filepath.Join(dst, "function.go"))
	for _, want := range []string{"package airlock", `functions.HTTP("` + p.Function + `", ` + p.Entry + ")"} {
		if !strings.Contains(string(root), want) {
			t.Errorf("function.go: want %q, got:\n%s", want, root)
		}
	}
}

func hasPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// buildpackMain is the main package Google's Go buildpack (go/functions_framework,
// declarative functions) generates at serverless_function_source_code/functions.local/app
// to serve the root package's registered function.
const buildpackMain = `// Binary main file implements an HTTP server that loads and runs user's code
// on incoming HTTP requests.
package main

import (
	"log"
	"net/http"
	"os"

	_ "airlock.dev/airlock"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	http.HandleFunc("/robots.txt", http.NotFound)
	http.HandleFunc("/favicon.ico", http.NotFound)

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("Function failed to start: %v\n", err)
	}
}
`

// buildLikeBuildpack writes the buildpack's main package into the unpacked source and
// builds it. Only the zip's own go.mod and go.sum say which modules to use; -mod=mod
// stands in for the buildpack's go mod tidy, with the module cache and GOPROXY of the
// environment.
func buildLikeBuildpack(t *testing.T, src string) string {
	t.Helper()
	app := filepath.Join(src, "functions.local", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "main.go"), []byte(buildpackMain), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "main")
	cmd := exec.Command("go", "build", "-o", bin, "./functions.local/app")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the packaged function as the buildpack does: %v\n%s", err, out)
	}
	return bin
}

// runPackaged starts the built function with a minimal local configuration and calls it.
func runPackaged(t *testing.T, bin, fn string) {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	keyFile := filepath.Join(dir, "auth-key.pub.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		t.Fatal(err)
	}
	// The audit trail's chains are certified with a local key, as scripts/dev.sh does.
	priv, _ := x509.MarshalPKCS8PrivateKey(key)
	auditKey := filepath.Join(dir, "audit-key.pem")
	if err := os.WriteFile(auditKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		t.Fatal(err)
	}
	withDB := os.Getenv("DATABASE_URL") != ""
	env := cleanEnv()
	if withDB {
		d := dbtest.New(t)
		group := map[string]string{
			"ExecuteQuery": migrate.GroupQuery, "RequestAccess": migrate.GroupRequests,
			"ApprovalCallback": migrate.GroupApprovals, "SweepExpired": migrate.GroupSweeper,
		}[fn]
		env = append(env, "DATABASE_URL="+d.URL(group), "AIRLOCK_ROLE_PREFIX="+d.Roles.Prefix)
	}
	port := freePort(t)
	env = append(env,
		"FUNCTION_TARGET="+fn,
		"PORT="+strconv.Itoa(port),
		"AIRLOCK_POLICY="+string(demo.Policy),
		"AUTH_MODE=local",
		"AUTH_LOCAL_KEY_FILE="+keyFile,
		"AUDIT_SINK=file",
		"AUDIT_FILE="+filepath.Join(dir, "audit.jsonl"),
		"AUDIT_SIGNING_KEY_FILE="+auditKey,
		"NOTIFY_FILE="+filepath.Join(dir, "notify.jsonl"),
	)
	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("function output:\n%s", logs.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitListening(t, port)

	if fn != "ExecuteQuery" {
		// The other functions answer their own protocols; that they build, start and
		// serve at all is what packaging must guarantee.
		resp, err := http.Get(base)
		if err != nil {
			t.Fatalf("GET %s: %v", base, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s: status %d", base, resp.StatusCode)
		}
		return
	}

	status, body := post(t, base, "", `{"sql":"SELECT 1 AS one"}`)
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("no token: want a JSON error, got %d %s", status, body)
	}
	if withDB && status != http.StatusUnauthorized {
		t.Errorf("no token: want 401, got %d %s", status, body)
	}
	if !withDB && status != http.StatusUnauthorized && status != http.StatusServiceUnavailable {
		t.Errorf("no token, no database: want 401 or 503, got %d %s", status, body)
	}
	if !withDB {
		return
	}
	tok, err := authn.Mint(key, "dev1@example.com", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	status, body = post(t, base, tok, `{"sql":"SELECT 1 AS one"}`)
	if status != http.StatusOK {
		t.Fatalf("SELECT 1 as dev1: want 200, got %d %s", status, body)
	}
	var res struct {
		Rows [][]json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("SELECT 1: %v: %s", err, body)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 || string(res.Rows[0][0]) != "1" {
		t.Errorf("SELECT 1 AS one: want rows [[1]], got %s", body)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "audit.jsonl")); err != nil || !bytes.Contains(b, []byte("SELECT 1 AS one")) {
		t.Errorf("audit file: want the query recorded, got %v %s", err, b)
	}
}

// cleanEnv is the test's environment without any of the functions' configuration, so
// nothing (above all the superuser DATABASE_URL) leaks into the function.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "AIRLOCK_"), strings.HasPrefix(k, "DATABASE_"), strings.HasPrefix(k, "AUTH_"),
			strings.HasPrefix(k, "AUDIT_"), strings.HasPrefix(k, "CLOUDSQL_"), strings.HasPrefix(k, "DB_"),
			strings.HasPrefix(k, "SLACK_"), strings.HasPrefix(k, "FUNCTION_"), k == "PORT", k == "NOTIFY_FILE":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	// Listening is an event that must come; the bound only stops a test that would hang.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the function did not listen on port %d within 2 minutes", port)
}

func post(t *testing.T, url, token, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
