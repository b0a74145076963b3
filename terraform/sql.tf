# The primary Cloud SQL for PostgreSQL instance.
#
# Every database flag is written out literally (here and in read_replica.tf) rather than
# generated, so that a reviewer, and terraform/policy_test.go, can see each security setting
# as it is.
resource "google_sql_database_instance" "primary" {
  project             = var.project_id
  name                = var.instance_name
  region              = var.region
  database_version    = "POSTGRES_16"
  deletion_protection = true # Terraform refuses to destroy it

  settings {
    tier                        = var.database.tier
    edition                     = var.database.edition
    availability_type           = var.database.availability_type
    disk_type                   = "PD_SSD"
    disk_size                   = var.database.disk_size_gb
    disk_autoresize             = true # pgAudit writes its log to the instance disk first
    deletion_protection_enabled = true # the Cloud SQL API refuses to delete it, whoever asks
    user_labels                 = local.labels

    # Only the Cloud SQL connectors (cloudsqlconn, the Auth Proxy) may connect: they carry IAM
    # authorization and TLS; a direct psql to the private IP is refused.
    connector_enforcement = "REQUIRED"

    ip_configuration {
      ipv4_enabled    = false # no public IP
      private_network = google_compute_network.vpc.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    # Point-in-time recovery needs the write-ahead log kept; REGIONAL availability also
    # requires it.
    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = var.database.backup_start_time
      transaction_log_retention_days = var.database.transaction_log_retention_days

      backup_retention_settings {
        retained_backups = var.database.retained_backups
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = var.database.maintenance_day
      hour         = var.database.maintenance_hour
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = true
      record_client_address   = false
    }

    # The functions log in as IAM service-account users; no passwords exist for them.
    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    # pgAudit: an audit trail kept by the server itself, independent of Airlock's own. Its
    # entries go to Cloud Logging as Data Access audit logs (enabled below) and are copied to
    # the locked bucket by logging.tf. The extension itself is created by the migrations.
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "pgaudit.log"
      value = var.pgaudit_log
    }

    # One entry per relation touched, so a read of a masked view and the table behind it are
    # both visible.
    database_flags {
      name  = "pgaudit.log_relation"
      value = "on"
    }

    # Bind parameters may carry personal data; Airlock records parameters in its own audit.
    database_flags {
      name  = "pgaudit.log_parameter"
      value = "off"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    # At most 1 GiB (the value is in kB) of temporary files per backend: a developer's
    # statement that sorts or materialises more is cancelled with SQLSTATE 53400 instead of
    # filling the disk. PostgreSQL allows only a superuser to set it per role, which Cloud
    # SQL does not give, so it is an instance flag and applies to every session.
    database_flags {
      name  = "temp_file_limit"
      value = "1048576"
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "app" {
  project  = var.project_id
  instance = google_sql_database_instance.primary.name
  name     = var.database_name

  # Dropping the database would drop the production data with it.
  deletion_policy = "ABANDON"
}

# One IAM database user per function, named as Cloud SQL requires for service accounts: the
# email without ".gserviceaccount.com". The migrations give each one its NOINHERIT login role
# membership (airlock-admin --grant-logins). Users replicate to the read replica by themselves.
resource "google_sql_user" "function" {
  for_each = local.functions

  project  = var.project_id
  instance = google_sql_database_instance.primary.name
  name     = trimsuffix(google_service_account.function[each.key].email, ".gserviceaccount.com")
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

# The people who run the one-time bootstrap (migrations, roles, masked views) as IAM users.
resource "google_sql_user" "admin" {
  for_each = toset(var.admin_iam_users)

  project  = var.project_id
  instance = google_sql_database_instance.primary.name
  name     = each.value
  type     = "CLOUD_IAM_USER"
}

# pgAudit writes to the Cloud SQL Data Access audit log, which is off unless enabled.
resource "google_project_iam_audit_config" "cloudsql" {
  project = var.project_id
  service = "cloudsql.googleapis.com"

  audit_log_config {
    log_type = "ADMIN_READ"
  }

  audit_log_config {
    log_type = "DATA_READ"
  }

  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
