# The four Airlock functions (Cloud Functions 2nd gen, i.e. Cloud Run services built from
# source). Their settings are in local.functions (main.tf); var.function_settings can change
# memory, timeout and instance limits per function.
resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = each.key
  description = each.value.description

  build_config {
    runtime           = "go126"
    entry_point       = each.key
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.function[each.key].email
    ingress_settings               = each.value.ingress_settings
    all_traffic_on_latest_revision = true

    # Cloud SQL has only a private address; the connector is the way to it. Only private
    # ranges go through the VPC: Slack webhooks and Google APIs are reached directly.
    vpc_connector                 = google_vpc_access_connector.connector.id
    vpc_connector_egress_settings = "PRIVATE_RANGES_ONLY"

    available_memory   = coalesce(try(var.function_settings[each.key].available_memory, null), each.value.available_memory)
    timeout_seconds    = coalesce(try(var.function_settings[each.key].timeout_seconds, null), each.value.timeout_seconds)
    max_instance_count = coalesce(try(var.function_settings[each.key].max_instance_count, null), each.value.max_instance_count)
    min_instance_count = each.value.min_instance_count

    environment_variables = merge(
      local.common_env,
      local.function_env[each.key],
      {
        DB_IAM_USER = google_sql_user.function[each.key].name
      },
      # Secret *names*: the functions read the values with the Secret Manager client when
      # first needed (contract), so a secret without a version does not stop a deploy and a
      # rotated value is picked up without one.
      { for s in each.value.secrets : local.slack_secrets[s].env => "${google_secret_manager_secret.slack[s].id}/versions/latest" },
    )

    # For a value a function needs at start-up rather than by name. None does today (see
    # above); a revision that references a secret without any version would fail to deploy.
    dynamic "secret_environment_variables" {
      for_each = each.value.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.slack[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_kms_crypto_key_iam_member.function_signer, # no signer, no audit, no service
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build,
    google_secret_manager_secret_iam_member.function,
  ]
}
