package terraform_test

import (
	"strings"
	"testing"
)

// TestAuditSigningKey: the key that certifies the audit chains is an HSM signing key
// that cannot be destroyed by Terraform, every function is told its version, and only
// the functions' service accounts may sign with it; anyone else gets at most its public key.
func TestAuditSigningKey(t *testing.T) {
	m := loadModule(t)
	key := m.resource(t, "google_kms_crypto_key", "audit_chain")
	if got := literalString(attr(key, "purpose")); got != "ASYMMETRIC_SIGN" {
		t.Errorf("audit_chain: purpose want = ASYMMETRIC_SIGN, got = %q", got)
	}
	if got := literalString(attr(key, "version_template", "algorithm")); got != "EC_SIGN_P256_SHA256" {
		t.Errorf("audit_chain: algorithm want = EC_SIGN_P256_SHA256 (what shared/audit verifies), got = %q", got)
	}
	if got := literalString(attr(key, "version_template", "protection_level")); got != "HSM" {
		t.Errorf("audit_chain: protection_level want = HSM, got = %q", got)
	}
	if !literalBool(attr(key, "lifecycle", "prevent_destroy")) {
		t.Error("audit_chain: lifecycle.prevent_destroy want = true: destroying the key leaves every chain unverifiable")
	}
	if kr := attr(key, "key_ring"); kr == nil || !refersTo(kr.Expr, "google_kms_key_ring", "audit") {
		t.Errorf("audit_chain: key_ring want = google_kms_key_ring.audit, got = %s", textOrNil(m, kr))
	}

	t.Run("every function signs with it", func(t *testing.T) {
		env := m.locals()["common_env"]
		if env == nil {
			t.Fatal("no local.common_env")
		}
		v, ok := objectItems(env.Expr)["AUDIT_KMS_KEY"]
		if !ok || !strings.Contains(m.expand(v), "google_kms_crypto_key.audit_chain.id") || !strings.Contains(m.expand(v), "/cryptoKeyVersions/") {
			t.Errorf("local.common_env: AUDIT_KMS_KEY want = a version of google_kms_crypto_key.audit_chain, got = %s", textOrNil(m, v))
		}
		fn := m.resource(t, "google_cloudfunctions2_function", "function")
		if !strings.Contains(m.text(attr(fn, "service_config", "environment_variables").Expr), "local.common_env") {
			t.Error("the functions' environment_variables do not include local.common_env")
		}
		if !strings.Contains(m.text(attr(fn, "depends_on").Expr), "google_kms_crypto_key_iam_member.function_signer") {
			t.Error("the functions must depend on their signer grant: without it every request fails closed")
		}
	})

	t.Run("only the functions may sign", func(t *testing.T) {
		signers := 0
		for _, b := range m.find("resource") {
			s := m.blockText(b)
			if !strings.Contains(s, "roles/cloudkms.") && !strings.Contains(b.Labels[0], "kms") || b.Labels[0] == "google_kms_key_ring" || b.Labels[0] == "google_kms_crypto_key" {
				continue
			}
			switch typ := b.Labels[0]; {
			case typ == "google_kms_crypto_key_iam_member":
			case strings.HasPrefix(typ, "google_kms_") && strings.Contains(typ, "_iam_"):
				t.Errorf("%s (%s): KMS IAM must be granted member by member on the key (google_kms_crypto_key_iam_member), not with %s", blockName(b), pos(b), typ)
				continue
			default:
				t.Errorf("%s (%s): grants a Cloud KMS role outside the audit key (project, folder or key ring level); every key of the project would be usable", blockName(b), pos(b))
				continue
			}
			if ck := b.Body.Attributes["crypto_key_id"]; ck == nil || !refersTo(ck.Expr, "google_kms_crypto_key", "audit_chain") {
				t.Errorf("%s: crypto_key_id want = google_kms_crypto_key.audit_chain.id, got = %s", blockName(b), textOrNil(m, ck))
			}
			role := literalString(b.Body.Attributes["role"])
			member := m.text(b.Body.Attributes["member"].Expr)
			switch role {
			case "roles/cloudkms.signer":
				signers++
				if !strings.Contains(member, "google_service_account.function[") || !strings.Contains(m.text(b.Body.Attributes["for_each"].Expr), "local.functions") {
					t.Errorf("%s: roles/cloudkms.signer want = each function's service account (for_each local.functions), got member = %s", blockName(b), member)
				}
			case "roles/cloudkms.publicKeyViewer":
				if !strings.Contains(m.text(b.Body.Attributes["for_each"].Expr), "var.audit_key_viewers") {
					t.Errorf("%s: roles/cloudkms.publicKeyViewer want = var.audit_key_viewers, got = %s", blockName(b), member)
				}
			default:
				t.Errorf("%s: role %q on the audit key; only roles/cloudkms.signer (the functions) and roles/cloudkms.publicKeyViewer (auditors) are allowed", blockName(b), role)
			}
		}
		if signers != 1 {
			t.Errorf("want one roles/cloudkms.signer grant (for_each over the functions), got = %d", signers)
		}
	})

	t.Run("the Cloud KMS API is on", func(t *testing.T) {
		if s := m.blockText(m.resource(t, "google_project_service", "apis")); !strings.Contains(s, `"cloudkms.googleapis.com"`) {
			t.Error("google_project_service.apis does not enable cloudkms.googleapis.com")
		}
	})
}
