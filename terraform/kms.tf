# The key that certifies each function instance's audit chain (shared/audit): when an
# instance starts its chain it has this key sign a certificate for the chain's own
# Ed25519 key, once, and then signs every entry with that in-memory key. Whoever can write
# to the log but cannot use this key cannot make an entry that verifies. It is an HSM key
# that only the four functions' service accounts may sign with; auditors need only its
# public key, which signs nothing.
resource "google_kms_key_ring" "audit" {
  project  = var.project_id
  name     = "${var.name_prefix}-audit"
  location = var.region

  depends_on = [google_project_service.apis]
}

resource "google_kms_crypto_key" "audit_chain" {
  name     = "audit-chain"
  key_ring = google_kms_key_ring.audit.id
  purpose  = "ASYMMETRIC_SIGN"

  version_template {
    algorithm        = "EC_SIGN_P256_SHA256"
    protection_level = "HSM"
  }

  # Destroying the key would make every chain it certified unverifiable (key rings cannot
  # be deleted at all; a key's versions are scheduled for destruction).
  lifecycle {
    prevent_destroy = true
  }
}

locals {
  # The version the functions sign with (AUDIT_KMS_KEY). An asymmetric key has no primary
  # version: rotating means creating a version, setting audit_signing_key_version to it
  # and applying. Keep earlier versions enabled: `audit-verify --kms-key` on the key trusts
  # every enabled version, so chains certified before the rotation still verify.
  audit_signing_key_version = "${google_kms_crypto_key.audit_chain.id}/cryptoKeyVersions/${var.audit_signing_key_version}"
}

# Only the functions may sign, and only with this key: roles/cloudkms.signer is the
# narrowest role holding cloudkms.cryptoKeyVersions.useToSign (it cannot verify, decrypt,
# read public keys or manage the key).
resource "google_kms_crypto_key_iam_member" "function_signer" {
  for_each = local.functions

  crypto_key_id = google_kms_crypto_key.audit_chain.id
  role          = "roles/cloudkms.signer"
  member        = google_service_account.function[each.key].member
}

# Auditors read the public key (cloudkms.cryptoKeyVersions.viewPublicKey) to verify
# exports; they can sign nothing.
resource "google_kms_crypto_key_iam_member" "auditor_public_key_viewer" {
  for_each = toset(var.audit_key_viewers)

  crypto_key_id = google_kms_crypto_key.audit_chain.id
  role          = "roles/cloudkms.publicKeyViewer"
  member        = each.value
}
