# Slack credentials. Only the secret containers are managed here: no
# google_secret_manager_secret_version with secret_data, so no value ever enters the
# Terraform state or plan. The operator adds the values (README, step 7):
#   printf %s "$VALUE" | gcloud secrets versions add SECRET_ID --data-file=-
resource "google_secret_manager_secret" "slack" {
  for_each = local.slack_secrets

  project   = var.project_id
  secret_id = each.value.secret_id
  labels    = local.labels

  annotations = {
    description = each.value.description
  }

  replication {
    # Google-chosen locations unless the operator pins them (data residency).
    dynamic "auto" {
      for_each = length(var.secret_replica_locations) == 0 ? [1] : []
      content {}
    }

    dynamic "user_managed" {
      for_each = length(var.secret_replica_locations) == 0 ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = toset(var.secret_replica_locations)
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}
