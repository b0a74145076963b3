# The read replica ExecuteQuery sends plain reads to (CLOUDSQL_REPLICA_INSTANCE), so that a
# developer's heavy SELECT cannot slow down production writes. It has the same network and
# connection rules as the primary: no public IP, encrypted only, connectors only.
resource "google_sql_database_instance" "replica" {
  project              = var.project_id
  name                 = "${var.instance_name}-replica"
  region               = var.region
  database_version     = "POSTGRES_16"
  master_instance_name = google_sql_database_instance.primary.name
  deletion_protection  = true

  settings {
    tier                        = coalesce(var.database.replica_tier, var.database.tier)
    edition                     = var.database.edition
    availability_type           = "ZONAL" # a replica is not the recovery path; the primary's HA is
    disk_type                   = "PD_SSD"
    disk_autoresize             = true
    deletion_protection_enabled = true
    user_labels                 = local.labels
    connector_enforcement       = "REQUIRED"

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.vpc.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    # Flags are per instance, not inherited: the replica needs IAM logins and pgAudit too.
    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "pgaudit.log"
      value = var.pgaudit_log
    }

    database_flags {
      name  = "pgaudit.log_relation"
      value = "on"
    }

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
    # SQL does not give, so it is an instance flag and applies to every session. Reads run
    # here when the replica is configured, so it needs the same limit.
    database_flags {
      name  = "temp_file_limit"
      value = "1048576"
    }
  }
}
