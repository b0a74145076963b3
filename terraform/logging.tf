# The audit trail's home: a log bucket whose retention is locked.
#
# WARNING: locking cannot be undone. The retention period of a locked bucket can never be
# changed, and the bucket cannot be deleted until it is empty, that is, until every entry in it
# has aged out (audit_log_retention_days after the last one was written). prevent_destroy makes
# Terraform refuse to even plan that.
resource "google_logging_project_bucket_config" "audit" {
  project        = var.project_id
  location       = coalesce(var.audit_log_location, var.region)
  bucket_id      = "${var.name_prefix}-audit"
  description    = "Airlock audit trail (log airlock-audit) and pgAudit entries. Retention is locked."
  retention_days = var.audit_log_retention_days
  locked         = true

  lifecycle {
    prevent_destroy = true
  }

  depends_on = [google_project_service.apis]
}

# Routes the functions' audit log to the locked bucket. The destination is a log bucket in this
# project, which the Logs Router may write to without any grant to the sink's writer identity.
resource "google_logging_project_sink" "audit" {
  project                = var.project_id
  name                   = "${var.name_prefix}-audit"
  description            = "Airlock audit log to the locked bucket."
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.audit.id}"
  filter                 = local.audit_log_filter
  unique_writer_identity = true
}

# Keeps the audit log out of the _Default bucket, so it has one home, with one retention and
# one set of readers. A project-level exclusion is, by the Logging API's definition, an
# exclusion on the _Default sink; managing the _Default sink itself from Terraform would mean
# importing a resource Google creates and would put every other log's routing in this
# configuration. Exclusions do not affect other sinks (the one above) or log-based metrics,
# which count entries before exclusions apply.
resource "google_logging_project_exclusion" "audit_out_of_default" {
  project     = var.project_id
  name        = "${var.name_prefix}-audit-out-of-default"
  description = "The Airlock audit log is stored only in the locked ${google_logging_project_bucket_config.audit.bucket_id} bucket."
  filter      = local.audit_log_filter
}

# A copy of the pgAudit entries (Cloud SQL Data Access audit logs) in the locked bucket: the
# server's own record of every statement, which nobody with database access can edit. They stay
# in _Default as well (30 days), where the Cloud SQL console looks for them.
resource "google_logging_project_sink" "pgaudit" {
  count = var.route_pgaudit_to_audit_bucket ? 1 : 0

  project                = var.project_id
  name                   = "${var.name_prefix}-pgaudit"
  description            = "pgAudit entries of the Airlock instances to the locked bucket."
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.audit.id}"
  filter                 = "resource.type=\"cloudsql_database\" AND logName=\"projects/${var.project_id}/logs/cloudaudit.googleapis.com%2Fdata_access\" AND protoPayload.request.@type=\"type.googleapis.com/google.cloud.sql.audit.v1.PgAuditEntry\""
  unique_writer_identity = true
}
