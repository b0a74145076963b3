// Package terraform_test checks Airlock's Terraform configuration against its security
// policy without a provider or credentials: it parses the .tf files and reads the settings
// that matter, literally where they are literals and as source text where they depend on
// variables.
package terraform_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"airlock.dev/airlock/shared/alerts"
)

func TestCloudSQL(t *testing.T) {
	m := loadModule(t)
	instances := m.resources("google_sql_database_instance")
	if len(instances) < 2 {
		t.Fatalf("want a primary and a read replica (google_sql_database_instance), got %d instances", len(instances))
	}
	replicas := 0
	var tempLimits []string
	for _, inst := range instances {
		name := blockName(inst)
		isReplica := attr(inst, "master_instance_name") != nil
		if isReplica {
			replicas++
		}
		t.Run(name, func(t *testing.T) {
			if got := literalString(attr(inst, "database_version")); got != "POSTGRES_16" {
				t.Errorf("%s: database_version want = POSTGRES_16, got = %q", name, got)
			}
			ipv4 := attr(inst, "settings", "ip_configuration", "ipv4_enabled")
			if ipv4 == nil {
				t.Errorf("%s: settings.ip_configuration.ipv4_enabled is not set; the API default gives the instance a public IP", name)
			} else if v, ok := literal(ipv4.Expr); !ok || v.True() {
				t.Errorf("%s: ipv4_enabled want = false (no public IP), got = %s", name, m.text(ipv4.Expr))
			}
			if ipc := children(children(inst, "settings")[0], "ip_configuration"); len(ipc) > 0 && len(children(ipc[0], "authorized_networks")) > 0 {
				t.Errorf("%s: ip_configuration has authorized_networks; the instance must be reachable only privately", name)
			}
			if got := literalString(attr(inst, "settings", "ip_configuration", "ssl_mode")); got != "ENCRYPTED_ONLY" {
				t.Errorf("%s: ssl_mode want = ENCRYPTED_ONLY, got = %q", name, got)
			}
			if got := literalString(attr(inst, "settings", "connector_enforcement")); got != "REQUIRED" {
				t.Errorf("%s: settings.connector_enforcement want = REQUIRED, got = %q", name, got)
			}
			flags := map[string]string{}
			for _, f := range children(children(inst, "settings")[0], "database_flags") {
				flags[literalString(f.Body.Attributes["name"])] = m.text(f.Body.Attributes["value"].Expr)
			}
			for _, flag := range []string{"cloudsql.iam_authentication", "cloudsql.enable_pgaudit"} {
				if flags[flag] != `"on"` {
					t.Errorf("%s: database flag %s want = \"on\", got = %s", name, flag, flags[flag])
				}
			}
			if _, ok := flags["pgaudit.log"]; !ok {
				t.Errorf("%s: database flag pgaudit.log is not set; pgAudit would log nothing", name)
			}
			// temp_file_limit bounds the temporary disk one statement can use (SQLSTATE
			// 53400 past it). Cloud SQL accepts it only as an instance flag, in kB.
			if kb, err := strconv.Atoi(strings.Trim(flags["temp_file_limit"], `"`)); err != nil || kb < 1<<20 || kb > 4<<20 {
				t.Errorf("%s: database flag temp_file_limit want = a literal between 1048576 and 4194304 kB (1-4 GiB), got = %s", name, flags["temp_file_limit"])
			}
			tempLimits = append(tempLimits, flags["temp_file_limit"])
			if !literalBool(attr(inst, "deletion_protection")) {
				t.Errorf("%s: deletion_protection want = true (Terraform-side protection)", name)
			}
			if !literalBool(attr(inst, "settings", "deletion_protection_enabled")) {
				t.Errorf("%s: settings.deletion_protection_enabled want = true (API-side protection)", name)
			}
			if isReplica {
				if !refersTo(attr(inst, "master_instance_name").Expr, "google_sql_database_instance", "primary") {
					t.Errorf("%s: master_instance_name want = a reference to the primary, got = %s", name, m.text(attr(inst, "master_instance_name").Expr))
				}
				return
			}
			if !literalBool(attr(inst, "settings", "backup_configuration", "enabled")) {
				t.Errorf("%s: settings.backup_configuration.enabled want = true", name)
			}
			if !literalBool(attr(inst, "settings", "backup_configuration", "point_in_time_recovery_enabled")) {
				t.Errorf("%s: point_in_time_recovery_enabled want = true", name)
			}
		})
	}
	if replicas != 1 {
		t.Errorf("want exactly 1 read replica (an instance with master_instance_name), got %d", replicas)
	}
	if slices.Sort(tempLimits); len(slices.Compact(tempLimits)) != 1 {
		t.Errorf("want the same temp_file_limit on the primary and the replica (reads run on either), got = %v", tempLimits)
	}
}

func TestAuditLog(t *testing.T) {
	m := loadModule(t)

	var locked *hclsyntax.Block
	for _, b := range m.resources("google_logging_project_bucket_config") {
		if literalBool(attr(b, "locked")) {
			locked = b
		}
	}
	t.Run("bucket is locked with at least a year of retention", func(t *testing.T) {
		if locked == nil {
			t.Fatal("no google_logging_project_bucket_config has locked = true")
		}
		ret := attr(locked, "retention_days")
		if ret == nil {
			t.Fatalf("%s: retention_days is not set", blockName(locked))
		}
		if v, ok := literal(ret.Expr); ok {
			if n, _ := v.AsBigFloat().Int64(); n < 365 {
				t.Errorf("%s: retention_days want >= 365, got = %d", blockName(locked), n)
			}
			return
		}
		if !refersTo(ret.Expr, "var", "audit_log_retention_days") {
			t.Fatalf("%s: retention_days want = var.audit_log_retention_days or a literal, got = %s", blockName(locked), m.text(ret.Expr))
		}
		v := m.variable(t, "audit_log_retention_days")
		def, ok := literal(v.Body.Attributes["default"].Expr)
		if !ok {
			t.Fatal("variable audit_log_retention_days: the default must be a literal number")
		}
		if n, _ := def.AsBigFloat().Int64(); n < 365 {
			t.Errorf("variable audit_log_retention_days: default want >= 365, got = %d", n)
		}
		if m.validates(t, "audit_log_retention_days", cty.NumberIntVal(364)) {
			t.Error("variable audit_log_retention_days: when 364, want = rejected by validation, got = accepted")
		}
		if !m.validates(t, "audit_log_retention_days", cty.NumberIntVal(365)) {
			t.Error("variable audit_log_retention_days: when 365, want = accepted, got = rejected")
		}
		if !m.validates(t, "audit_log_retention_days", def) {
			t.Error("variable audit_log_retention_days: its own default fails its validation")
		}
	})

	t.Run("sink routes airlock-audit to the locked bucket", func(t *testing.T) {
		if locked == nil {
			t.Skip("no locked bucket")
		}
		found := false
		for _, s := range m.resources("google_logging_project_sink") {
			f, d := attr(s, "filter"), attr(s, "destination")
			if f == nil || d == nil || !strings.Contains(m.expand(f.Expr), "/logs/airlock-audit") {
				continue
			}
			found = true
			if !refersTo(d.Expr, "google_logging_project_bucket_config", locked.Labels[1]) {
				t.Errorf("%s: destination want = the locked bucket %s, got = %s", blockName(s), blockName(locked), m.text(d.Expr))
			}
			if !strings.Contains(m.text(d.Expr), "logging.googleapis.com/") {
				t.Errorf("%s: destination want = \"logging.googleapis.com/projects/P/locations/L/buckets/B\", got = %s", blockName(s), m.text(d.Expr))
			}
		}
		if !found {
			t.Error(`no google_logging_project_sink filters logName "projects/PROJECT/logs/airlock-audit"`)
		}
	})

	t.Run("audit log is excluded from _Default", func(t *testing.T) {
		for _, e := range m.resources("google_logging_project_exclusion") {
			if f := attr(e, "filter"); f != nil && strings.Contains(m.expand(f.Expr), "/logs/airlock-audit") && !literalBool(attr(e, "disabled")) {
				return
			}
		}
		for _, s := range m.resources("google_logging_project_sink") {
			if literalString(attr(s, "name")) != "_Default" {
				continue
			}
			for _, ex := range children(s, "exclusions") {
				if f := ex.Body.Attributes["filter"]; f != nil && strings.Contains(m.expand(f.Expr), "/logs/airlock-audit") {
					return
				}
			}
		}
		t.Error("airlock-audit is not excluded from _Default: want a google_logging_project_exclusion (or _Default sink exclusion) whose filter names it")
	})
}

func TestFunctions(t *testing.T) {
	m := loadModule(t)
	fns := m.resources("google_cloudfunctions2_function")
	if len(fns) == 0 {
		t.Fatal("no google_cloudfunctions2_function")
	}
	functions := objectItems(m.locals()["functions"].Expr)
	for _, ep := range []string{"ExecuteQuery", "RequestAccess", "ApprovalCallback", "SweepExpired"} {
		if _, ok := functions[ep]; !ok {
			t.Errorf("local.functions: want an entry for %s", ep)
		}
	}
	for _, fn := range fns {
		name := blockName(fn)
		t.Run(name, func(t *testing.T) {
			if got := literalString(attr(fn, "build_config", "runtime")); got != "go126" {
				t.Errorf("%s: build_config.runtime want = go126, got = %q", name, got)
			}
			if a := attr(fn, "build_config", "entry_point"); a == nil {
				t.Errorf("%s: build_config.entry_point is not set", name)
			}
			conn := attr(fn, "service_config", "vpc_connector")
			if conn == nil || !refersTo(conn.Expr, "google_vpc_access_connector", "connector") {
				t.Errorf("%s: service_config.vpc_connector want = google_vpc_access_connector.connector, got = %v", name, textOrNil(m, conn))
			}
			if got := literalString(attr(fn, "service_config", "vpc_connector_egress_settings")); got != "PRIVATE_RANGES_ONLY" {
				t.Errorf("%s: vpc_connector_egress_settings want = PRIVATE_RANGES_ONLY, got = %q", name, got)
			}
			if !literalBool(attr(fn, "service_config", "all_traffic_on_latest_revision")) {
				t.Errorf("%s: all_traffic_on_latest_revision want = true", name)
			}
			// Its own service account: one google_service_account per function, from the same map.
			sa := attr(fn, "service_config", "service_account_email")
			if sa == nil {
				t.Fatalf("%s: service_config.service_account_email is not set (it would run as the default compute account)", name)
			}
			if got := m.text(sa.Expr); got != "google_service_account.function[each.key].email" {
				t.Errorf("%s: service_account_email want = google_service_account.function[each.key].email, got = %s", name, got)
			}
			saBlock := m.resource(t, "google_service_account", "function")
			fe1, fe2 := fn.Body.Attributes["for_each"], saBlock.Body.Attributes["for_each"]
			if fe1 == nil || fe2 == nil || m.text(fe1.Expr) != m.text(fe2.Expr) {
				t.Errorf("%s and google_service_account.function must iterate over the same map, got for_each = %s and %s", name, textOrNil(m, fe1), textOrNil(m, fe2))
			}
			if got := m.text(saBlock.Body.Attributes["account_id"].Expr); !strings.Contains(got, "each.") {
				t.Errorf("google_service_account.function: account_id must differ per function, got = %s", got)
			}
		})
	}

	t.Run("ingress", func(t *testing.T) {
		want := map[string]string{
			"ExecuteQuery":     `"ALLOW_ALL"`, // developers' laptops
			"ApprovalCallback": `"ALLOW_ALL"`, // Slack
			"SweepExpired":     `"ALLOW_INTERNAL_ONLY"`,
		}
		for ep, w := range want {
			cfg := objectItems(functions[ep])
			if got := textOrNil(m, cfg["ingress_settings"]); got != w {
				t.Errorf("local.functions.%s.ingress_settings want = %s, got = %s", ep, w, got)
			}
		}
		if got := textOrNil(m, objectItems(functions["RequestAccess"])["ingress_settings"]); !strings.Contains(got, "ALLOW_INTERNAL_AND_GCLB") || !strings.Contains(got, "var.enable_iap") {
			t.Errorf("local.functions.RequestAccess.ingress_settings want = ALLOW_INTERNAL_AND_GCLB when var.enable_iap, got = %s", got)
		}
	})
}

func TestNoPublicAccessExceptApprovalCallback(t *testing.T) {
	m := loadModule(t)
	type hit struct {
		block *hclsyntax.Block
		attr  *hclsyntax.Attribute
	}
	var hits []hit
	for _, b := range m.find("resource") {
		walkAttrs(b.Body, nil, func(a *hclsyntax.Attribute, _ []*hclsyntax.Block) {
			s := m.expand(a.Expr)
			if strings.Contains(s, "allUsers") || strings.Contains(s, "allAuthenticatedUsers") {
				hits = append(hits, hit{b, a})
			}
		})
	}
	if len(hits) != 1 {
		for _, h := range hits {
			t.Errorf("%s (%s): %s = %s", blockName(h.block), pos(h.attr), h.attr.Name, m.text(h.attr.Expr))
		}
		t.Fatalf("want exactly 1 public binding (allUsers on ApprovalCallback), got %d", len(hits))
	}
	h := hits[0]
	typ := h.block.Labels[0]
	if typ != "google_cloud_run_service_iam_member" && typ != "google_cloud_run_v2_service_iam_member" {
		t.Errorf("%s: the public binding must be a Cloud Run service IAM member, got %s", blockName(h.block), typ)
	}
	if h.attr.Name != "member" || literalString(h.attr) != "allUsers" {
		t.Errorf("%s: want member = \"allUsers\", got %s = %s", blockName(h.block), h.attr.Name, m.text(h.attr.Expr))
	}
	if literalString(h.block.Body.Attributes["role"]) != "roles/run.invoker" {
		t.Errorf("%s: the public role must be roles/run.invoker", blockName(h.block))
	}
	svc := h.block.Body.Attributes["service"]
	if svc == nil {
		svc = h.block.Body.Attributes["name"]
	}
	if svc == nil || !strings.Contains(m.text(svc.Expr), `google_cloudfunctions2_function.function["ApprovalCallback"]`) {
		t.Errorf("%s: the public binding must be on ApprovalCallback's service, got %s", blockName(h.block), textOrNil(m, svc))
	}
	if h.block.Body.Attributes["for_each"] != nil || h.block.Body.Attributes["count"] != nil {
		t.Errorf("%s: the public binding must be a single, unconditional binding", blockName(h.block))
	}

	for _, v := range m.find("variable") {
		if d := v.Body.Attributes["default"]; d != nil && (strings.Contains(m.text(d.Expr), "allUsers") || strings.Contains(m.text(d.Expr), "allAuthenticatedUsers")) {
			t.Errorf("variable %s: default contains a public member: %s", v.Labels[0], m.text(d.Expr))
		}
	}
	for _, name := range []string{"developer_members", "approver_members"} {
		for _, public := range []string{"allUsers", "allAuthenticatedUsers", "domain:example.com"} {
			if m.validates(t, name, cty.ListVal([]cty.Value{cty.StringVal(public)})) {
				t.Errorf("variable %s: when [%q], want = rejected by validation, got = accepted", name, public)
			}
		}
		if !m.validates(t, name, cty.ListVal([]cty.Value{cty.StringVal("user:alice@example.com"), cty.StringVal("group:devs@example.com")})) {
			t.Errorf("variable %s: when [user:alice@example.com, group:devs@example.com], want = accepted, got = rejected", name)
		}
	}
}

func TestScheduler(t *testing.T) {
	m := loadModule(t)
	var job *hclsyntax.Block
	for _, j := range m.resources("google_cloud_scheduler_job") {
		if uri := attr(j, "http_target", "uri"); uri != nil && strings.Contains(m.text(uri.Expr), `["SweepExpired"]`) {
			job = j
		}
	}
	if job == nil {
		t.Fatal("no google_cloud_scheduler_job targets SweepExpired")
	}
	name := blockName(job)
	if got := literalString(attr(job, "schedule")); got != "* * * * *" {
		t.Errorf("%s: schedule want = \"* * * * *\", got = %q", name, got)
	}
	sa := attr(job, "http_target", "oidc_token", "service_account_email")
	if sa == nil || !refersTo(sa.Expr, "google_service_account", "scheduler") {
		t.Errorf("%s: http_target.oidc_token.service_account_email want = google_service_account.scheduler.email, got = %s", name, textOrNil(m, sa))
	}
	if aud := attr(job, "http_target", "oidc_token", "audience"); aud == nil || !strings.Contains(m.text(aud.Expr), `["SweepExpired"]`) {
		t.Errorf("%s: oidc_token.audience want = SweepExpired's URL, got = %s", name, textOrNil(m, aud))
	}
	if attr(job, "attempt_deadline") == nil {
		t.Errorf("%s: attempt_deadline is not set", name)
	}
	if len(children(job, "retry_config")) == 0 {
		t.Errorf("%s: retry_config is not set", name)
	}

	// The scheduler's identity may invoke SweepExpired and nothing else.
	grants := 0
	for _, b := range m.find("resource") {
		member := b.Body.Attributes["member"]
		if member == nil || !refersTo(member.Expr, "google_service_account", "scheduler") {
			continue
		}
		grants++
		role := literalString(b.Body.Attributes["role"])
		svc := b.Body.Attributes["service"]
		if role != "roles/run.invoker" || svc == nil || !strings.Contains(m.text(svc.Expr), `["SweepExpired"]`) {
			t.Errorf("%s: the scheduler service account may only get roles/run.invoker on SweepExpired, got role %q on %s", blockName(b), role, textOrNil(m, svc))
		}
	}
	if grants != 1 {
		t.Errorf("want exactly 1 grant to the scheduler service account (run.invoker on SweepExpired), got %d", grants)
	}
}

func TestVariablesAreDescribedAndTyped(t *testing.T) {
	m := loadModule(t)
	for _, v := range m.find("variable") {
		name := v.Labels[0]
		if literalString(v.Body.Attributes["description"]) == "" {
			t.Errorf("variable %s (%s): want a non-empty literal description", name, pos(v))
		}
		if v.Body.Attributes["type"] == nil {
			t.Errorf("variable %s (%s): want a type", name, pos(v))
		}
	}
}

func TestOutputsAreDescribed(t *testing.T) {
	m := loadModule(t)
	for _, o := range m.find("output") {
		if literalString(o.Body.Attributes["description"]) == "" {
			t.Errorf("output %s (%s): want a non-empty literal description", o.Labels[0], pos(o))
		}
	}
}

func TestReferencesAreDeclared(t *testing.T) {
	m := loadModule(t)
	builtin := map[string]bool{"each": true, "count": true, "path": true, "terraform": true, "self": true}
	declared := func(tr hcl.Traversal) (string, bool) {
		attrAt := func(i int) string {
			if len(tr) <= i {
				return ""
			}
			if a, ok := tr[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
			return ""
		}
		root := tr.RootName()
		switch root {
		case "var":
			return "var." + attrAt(1), len(m.find("variable", attrAt(1))) == 1
		case "local":
			_, ok := m.locals()[attrAt(1)]
			return "local." + attrAt(1), ok
		case "module":
			return "module." + attrAt(1), len(m.find("module", attrAt(1))) == 1
		case "data":
			return "data." + attrAt(1) + "." + attrAt(2), len(m.find("data", attrAt(1), attrAt(2))) == 1
		default:
			return root + "." + attrAt(1), len(m.find("resource", root, attrAt(1))) == 1
		}
	}
	for _, b := range m.blocks {
		if b.Type == "terraform" {
			continue // required_providers keys are names, not references
		}
		checkRefs(t, m, b, b.Body, builtin, declared)
	}
}

// checkRefs checks every reference in body, allowing the iterator names of dynamic blocks
// inside their content.
func checkRefs(t *testing.T, m *module, top *hclsyntax.Block, body *hclsyntax.Body, allowed map[string]bool, declared func(hcl.Traversal) (string, bool)) {
	t.Helper()
	for _, a := range body.Attributes {
		if top.Type == "variable" && a.Name == "type" {
			continue // a type expression: string, number, object(...)
		}
		for _, tr := range a.Expr.Variables() {
			if allowed[tr.RootName()] {
				continue
			}
			if ref, ok := declared(tr); !ok {
				t.Errorf("%s (%s): %s refers to %s, which is not declared", blockName(top), pos(a), a.Name, ref)
			}
		}
	}
	for _, c := range body.Blocks {
		inner := allowed
		if c.Type == "dynamic" && len(c.Labels) == 1 {
			inner = map[string]bool{}
			for k, v := range allowed {
				inner[k] = v
			}
			it := c.Labels[0]
			if a := c.Body.Attributes["iterator"]; a != nil {
				it = hcl.ExprAsKeyword(a.Expr)
			}
			inner[it] = true
		}
		checkRefs(t, m, top, c.Body, inner, declared)
	}
}

func TestNoSecretValuesInState(t *testing.T) {
	m := loadModule(t)
	if vs := m.resources("google_secret_manager_secret_version"); len(vs) > 0 {
		t.Errorf("google_secret_manager_secret_version at %s: secret values must be added outside Terraform", pos(vs[0]))
	}
	for _, b := range m.find("resource") {
		walkAttrs(b.Body, nil, func(a *hclsyntax.Attribute, _ []*hclsyntax.Block) {
			if a.Name == "secret_data" || a.Name == "secret_data_wo" {
				t.Errorf("%s (%s): %s puts a secret value in the configuration", blockName(b), pos(a), a.Name)
			}
		})
	}
}

func TestIAMGrants(t *testing.T) {
	m := loadModule(t)
	projectLevel := []string{
		"google_project_iam_member", "google_project_iam_binding", "google_project_iam_policy",
		"google_folder_iam_member", "google_folder_iam_binding", "google_organization_iam_member", "google_organization_iam_binding",
	}
	secretLevel := []string{"google_secret_manager_secret_iam_member", "google_secret_manager_secret_iam_binding"}

	t.Run("secret accessor only on secrets", func(t *testing.T) {
		granted := 0
		for _, b := range m.find("resource") {
			if !strings.Contains(m.blockText(b), "roles/secretmanager.secretAccessor") {
				continue
			}
			if !slices.Contains(secretLevel, b.Labels[0]) {
				t.Errorf("%s (%s): roles/secretmanager.secretAccessor may only be granted on a secret (%v)", blockName(b), pos(b), secretLevel)
				continue
			}
			if sid := b.Body.Attributes["secret_id"]; sid == nil || !refersTo(sid.Expr, "google_secret_manager_secret", "slack") {
				t.Errorf("%s: secret_id want = a google_secret_manager_secret managed here, got = %s", blockName(b), textOrNil(m, sid))
			}
			granted++
		}
		if granted == 0 {
			t.Error("no secret-level roles/secretmanager.secretAccessor grant: the functions could not read their secrets")
		}
	})

	t.Run("no owner or editor on the project", func(t *testing.T) {
		for _, typ := range projectLevel {
			for _, b := range m.resources(typ) {
				s := m.blockText(b)
				for _, role := range []string{`roles/owner`, `roles/editor`, `roles/secretmanager.`} {
					if strings.Contains(s, role) {
						t.Errorf("%s (%s): grants %s at project level or above", blockName(b), pos(b), role)
					}
				}
			}
		}
		for _, d := range m.find("data", "google_iam_policy") {
			if s := m.blockText(d); strings.Contains(s, "roles/owner") || strings.Contains(s, "roles/editor") {
				t.Errorf("%s: policy grants roles/owner or roles/editor", blockName(d))
			}
		}
	})
}

func TestSourceBucket(t *testing.T) {
	m := loadModule(t)
	objects := m.resources("google_storage_bucket_object")
	if len(objects) == 0 {
		t.Fatal("no google_storage_bucket_object for the function zips")
	}
	for _, o := range objects {
		name := attr(o, "name")
		s := textOrNil(m, name)
		if !strings.Contains(s, "filemd5(") && !strings.Contains(s, "filesha256(") && !strings.Contains(s, "filebase64sha256(") {
			t.Errorf("%s: name want = containing the zip's hash (filemd5/filesha256), so a changed zip redeploys; got = %s", blockName(o), s)
		}
		bucket := attr(o, "bucket")
		if bucket == nil {
			t.Fatalf("%s: bucket is not set", blockName(o))
		}
		for _, tr := range bucket.Expr.Variables() {
			if tr.RootName() != "google_storage_bucket" || len(tr) < 2 {
				continue
			}
			b := m.resource(t, "google_storage_bucket", tr[1].(hcl.TraverseAttr).Name)
			if !literalBool(attr(b, "uniform_bucket_level_access")) {
				t.Errorf("%s: uniform_bucket_level_access want = true", blockName(b))
			}
			if got := literalString(attr(b, "public_access_prevention")); got != "enforced" {
				t.Errorf("%s: public_access_prevention want = \"enforced\", got = %q", blockName(b), got)
			}
		}
	}
}

func TestSecurityEventsHaveMetricsAndAlerts(t *testing.T) {
	m := loadModule(t)
	events, ok := m.locals()["security_events"]
	if !ok {
		t.Fatal("local.security_events is not declared")
	}
	v, ok := literal(events.Expr)
	if !ok || !v.Type().IsObjectType() {
		t.Fatalf("local.security_events must be a literal map, got %s", m.text(events.Expr))
	}
	// shared/alerts is the one list of alerts the functions raise: Terraform must count
	// exactly those, at the same severity, from the same log.
	kinds := alerts.Kinds()
	for _, k := range kinds {
		if !v.Type().HasAttribute(k.Event) {
			t.Errorf("local.security_events: want an entry for %s (shared/alerts), got none", k.Event)
			continue
		}
		e := v.GetAttr(k.Event)
		for _, f := range []struct{ name, want string }{{"severity", string(k.Severity)}, {"source", k.Source}, {"description", k.Description}} {
			if got := e.GetAttr(f.name).AsString(); got != f.want {
				t.Errorf("local.security_events[%q].%s want = %q (shared/alerts), got = %q", k.Event, f.name, f.want, got)
			}
		}
	}
	for name := range v.Type().AttributeTypes() {
		if !slices.ContainsFunc(kinds, func(k alerts.Kind) bool { return k.Event == name }) {
			t.Errorf("local.security_events[%q]: no function raises it (not in shared/alerts)", name)
		}
	}

	metric := m.resource(t, "google_logging_metric", "security")
	if fe := metric.Body.Attributes["for_each"]; fe == nil || !refersTo(fe.Expr, "local", "security_events") {
		t.Errorf("google_logging_metric.security: for_each want = local.security_events, got = %s", textOrNil(m, fe))
	}
	if f := attr(metric, "filter"); f == nil || !strings.Contains(m.text(f.Expr), "jsonPayload.event") || !strings.Contains(m.text(f.Expr), "each.key") {
		t.Errorf("google_logging_metric.security: filter want = matching jsonPayload.event to each.key, got = %s", textOrNil(m, f))
	}

	var alert *hclsyntax.Block
	for _, a := range m.resources("google_monitoring_alert_policy") {
		if fe := a.Body.Attributes["for_each"]; fe != nil && (refersTo(fe.Expr, "google_logging_metric", "security") || refersTo(fe.Expr, "local", "security_events")) {
			alert = a
		}
	}
	if alert == nil {
		t.Fatal("no google_monitoring_alert_policy per security metric (for_each over google_logging_metric.security)")
	}
	if f := attr(alert, "conditions", "condition_threshold", "filter"); f == nil || !strings.Contains(m.text(f.Expr), "logging.googleapis.com/user/") {
		t.Errorf("%s: the condition must watch the log-based metric, got filter = %s", blockName(alert), textOrNil(m, f))
	}
	if nc := alert.Body.Attributes["notification_channels"]; nc == nil || !refersTo(nc.Expr, "var", "alert_notification_channels") {
		t.Errorf("%s: notification_channels want = var.alert_notification_channels, got = %s", blockName(alert), textOrNil(m, nc))
	}
	if m.validates(t, "alert_notification_channels", cty.ListValEmpty(cty.String)) {
		t.Error("variable alert_notification_channels: when [], want = rejected by validation, got = accepted")
	}
	if !m.validates(t, "alert_notification_channels", cty.ListVal([]cty.Value{cty.StringVal("projects/p-1/notificationChannels/123")})) {
		t.Error("variable alert_notification_channels: when [projects/p-1/notificationChannels/123], want = accepted, got = rejected")
	}
}

func textOrNil(m *module, n interface{}) string {
	switch n := n.(type) {
	case *hclsyntax.Attribute:
		if n != nil {
			return m.text(n.Expr)
		}
	case hclsyntax.Expression:
		if n != nil {
			return m.text(n)
		}
	}
	return "<unset>"
}
