package scripts_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// cloudBuild is the part of a Cloud Build config these tests read.
type cloudBuild struct {
	Steps         []step            `yaml:"steps"`
	Substitutions map[string]string `yaml:"substitutions"`
	Options       struct {
		Logging string `yaml:"logging"`
	} `yaml:"options"`
	Timeout string `yaml:"timeout"`
}

const repoRoot = ".."

func loadCloudBuild(t *testing.T) (cloudBuild, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "cloudbuild.yaml"))
	if err != nil {
		t.Fatalf("reading cloudbuild.yaml: %v", err)
	}
	var cb cloudBuild
	if err := yaml.Unmarshal(raw, &cb); err != nil {
		t.Fatalf("parsing cloudbuild.yaml: %v", err)
	}
	if len(cb.Steps) == 0 {
		t.Fatal("cloudbuild.yaml: want steps, got none")
	}
	return cb, string(raw)
}

// A step is one build step.
type step struct {
	ID         string   `yaml:"id"`
	Name       string   `yaml:"name"`
	Entrypoint string   `yaml:"entrypoint"`
	Dir        string   `yaml:"dir"`
	Args       []string `yaml:"args"`
	Env        []string `yaml:"env"`
}

// stepText is everything a step runs: entrypoint and arguments.
func stepText(s step) string {
	return s.Entrypoint + "\n" + strings.Join(s.Args, "\n")
}

func TestCloudBuildSubstitutions(t *testing.T) {
	cb, raw := loadCloudBuild(t)
	for _, s := range []string{"_REGION", "_ENV", "_TF_STATE_BUCKET"} {
		if _, ok := cb.Substitutions[s]; !ok {
			t.Errorf("substitutions: want %s declared", s)
		}
	}
	var all strings.Builder
	for _, s := range cb.Steps {
		all.WriteString(stepText(s) + "\n")
	}
	steps := all.String()
	for _, use := range []string{"${_REGION}", "${_ENV}", "$PROJECT_ID"} {
		if !strings.Contains(steps, use) {
			t.Errorf("steps: want %s used, so the project, region and environment come from the trigger", use)
		}
	}

	// Cloud Build rejects a $NAME that is neither built in nor declared; shell variables must
	// be written $$NAME.
	builtin := []string{
		"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "TRIGGER_NAME", "COMMIT_SHA",
		"REVISION_ID", "SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME",
		"REF_NAME", "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT",
	}
	ref := regexp.MustCompile(`\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)
	for _, line := range strings.Split(raw, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range ref.FindAllStringSubmatch(line, -1) {
			if m[1] == "$" {
				continue
			}
			name := m[2] + m[3]
			if _, ok := cb.Substitutions[name]; !ok && !slices.Contains(builtin, name) {
				t.Errorf("cloudbuild.yaml: $%s is neither a built-in nor a declared substitution (write $$%s for a shell variable): %s", name, name, strings.TrimSpace(line))
			}
		}
	}
}

func TestCloudBuildOptions(t *testing.T) {
	cb, _ := loadCloudBuild(t)
	if cb.Options.Logging != "CLOUD_LOGGING_ONLY" {
		t.Errorf("options.logging want = CLOUD_LOGGING_ONLY, got = %q", cb.Options.Logging)
	}
	if cb.Timeout == "" {
		t.Error("timeout: want a build timeout")
	}
}

func TestCloudBuildSteps(t *testing.T) {
	cb, _ := loadCloudBuild(t)
	terraformImage := regexp.MustCompile(`^hashicorp/terraform:1\.\d+\.\d+$`)
	var sawTest, sawPackage, sawInit, sawPlan, sawApply bool
	for _, s := range cb.Steps {
		text := stepText(s)
		switch {
		case strings.HasPrefix(s.Name, "hashicorp/terraform"):
			if !terraformImage.MatchString(s.Name) {
				t.Errorf("step %s: terraform image want = pinned hashicorp/terraform:1.x.y, got = %s", s.ID, s.Name)
			}
		case strings.Contains(text, "gcloud "):
			if s.Name != "gcr.io/google.com/cloudsdktool/cloud-sdk:slim" {
				t.Errorf("step %s runs gcloud: image want = gcr.io/google.com/cloudsdktool/cloud-sdk:slim, got = %s", s.ID, s.Name)
			}
		}
		if strings.Contains(text, "scripts/test.sh") {
			sawTest = true
			if s.Name != "docker.io/library/golang:1.26" {
				t.Errorf("step %s runs scripts/test.sh: image want = docker.io/library/golang:1.26, got = %s", s.ID, s.Name)
			}
		}
		if strings.Contains(text, "scripts/package.sh") {
			sawPackage = true
			for _, fn := range []string{"ExecuteQuery", "RequestAccess", "ApprovalCallback", "SweepExpired"} {
				if !strings.Contains(text, "scripts/package.sh "+fn) {
					t.Errorf("step %s: want scripts/package.sh %s", s.ID, fn)
				}
			}
		}
		if strings.Contains(text, "init") && strings.Contains(text, "-backend-config=bucket=${_TF_STATE_BUCKET}") {
			sawInit = true
		}
		if strings.Contains(text, "plan") && strings.Contains(text, "-out=tfplan") {
			sawPlan = true
		}
		if strings.Contains(text, "apply") {
			if !strings.Contains(text, "apply -input=false tfplan") {
				t.Errorf("step %s: want the saved plan applied (terraform apply -input=false tfplan), got:\n%s", s.ID, text)
			}
			if !strings.Contains(text, `"$BRANCH_NAME" = "main"`) {
				t.Errorf("step %s: apply must only run when $BRANCH_NAME is main", s.ID)
			}
			sawApply = true
		}
	}
	for what, saw := range map[string]bool{
		"scripts/test.sh":                          sawTest,
		"scripts/package.sh":                       sawPackage,
		"terraform init with a GCS backend-config": sawInit,
		"terraform plan -out=tfplan":               sawPlan,
		"terraform apply tfplan on main":           sawApply,
	} {
		if !saw {
			t.Errorf("want a step running %s", what)
		}
	}
}

// TestCloudBuildScriptsExist checks that every scripts/... path a step runs is in the
// repository and executable.
func TestCloudBuildScriptsExist(t *testing.T) {
	cb, _ := loadCloudBuild(t)
	path := regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])(scripts/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)`)
	seen := map[string]bool{}
	for _, s := range cb.Steps {
		for _, m := range path.FindAllStringSubmatch(stepText(s), -1) {
			seen[m[1]] = true
		}
	}
	if len(seen) == 0 {
		t.Fatal("no step calls a scripts/ path")
	}
	paths := make([]string, 0, len(seen))
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(repoRoot, p))
			if err != nil {
				t.Fatalf("cloudbuild.yaml runs %s: %v", p, err)
			}
			if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
				t.Errorf("cloudbuild.yaml runs %s: want an executable file, got mode %v", p, fi.Mode())
			}
		})
	}
}
