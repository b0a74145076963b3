output "function_urls" {
  description = "Classic URL of each function (https://REGION-PROJECT.cloudfunctions.net/NAME), keyed by entry point."
  value       = { for k, f in google_cloudfunctions2_function.function : k => f.url }
}

output "function_uris" {
  description = "run.app URL of each function's Cloud Run service, keyed by entry point. Use it as the ID token audience."
  value       = { for k, f in google_cloudfunctions2_function.function : k => f.service_config[0].uri }
}

output "slack_interactions_url" {
  description = "Request URL to enter under Interactivity & Shortcuts in the Slack app: ApprovalCallback's URL + /slack/interactions."
  value       = "${google_cloudfunctions2_function.function["ApprovalCallback"].service_config[0].uri}/slack/interactions"
}

output "approval_callback_audience" {
  description = "Audience ApprovalCallback expects in Google ID tokens (its AUTH_AUDIENCE)."
  value       = local.approval_callback_audience
}

output "instance_connection_name" {
  description = "Connection name (PROJECT:REGION:INSTANCE) of the primary Cloud SQL instance, for airlock-admin --instance and CLOUDSQL_INSTANCE."
  value       = google_sql_database_instance.primary.connection_name
}

output "replica_connection_name" {
  description = "Connection name of the read replica ExecuteQuery reads from (CLOUDSQL_REPLICA_INSTANCE)."
  value       = google_sql_database_instance.replica.connection_name
}

output "database_name" {
  description = "Name of the application database."
  value       = google_sql_database.app.name
}

output "service_account_emails" {
  description = "Service account of each function, keyed by entry point."
  value       = { for k, sa in google_service_account.function : k => sa.email }
}

output "scheduler_service_account_email" {
  description = "Service account Cloud Scheduler signs its SweepExpired calls with (SCHEDULER_EMAIL)."
  value       = google_service_account.scheduler.email
}

output "build_service_account_email" {
  description = "Service account Cloud Build builds the functions as."
  value       = google_service_account.build.email
}

output "db_iam_users" {
  description = "Cloud SQL IAM user of each function (service account e-mail without .gserviceaccount.com), keyed by entry point."
  value       = { for k, u in google_sql_user.function : k => u.name }
}

output "grant_logins" {
  description = "Value for airlock-admin's --grant-logins flag: each function's database group and IAM user."
  value       = join(",", [for k, cfg in local.functions : "${cfg.db_group}=${google_sql_user.function[k].name}"])
}

output "source_bucket_name" {
  description = "Private bucket the function zips are uploaded to."
  value       = google_storage_bucket.source.name
}

output "vpc_connector_id" {
  description = "ID of the Serverless VPC Access connector the functions use."
  value       = google_vpc_access_connector.connector.id
}

output "network_id" {
  description = "ID of the VPC the Cloud SQL instances have their private addresses in."
  value       = google_compute_network.vpc.id
}

output "admin_subnet" {
  description = "Subnet to create the one-time bootstrap VM in (tag it airlock-admin for IAP SSH)."
  value       = google_compute_subnetwork.admin.name
}

output "audit_log_bucket" {
  description = "Resource name of the locked log bucket holding the audit trail."
  value       = google_logging_project_bucket_config.audit.id
}

output "secret_ids" {
  description = "Secret Manager secret IDs, keyed by purpose. Add their values with `gcloud secrets versions add ID --data-file=-`."
  value       = { for k, s in google_secret_manager_secret.slack : k => s.secret_id }
}

output "scheduler_job_name" {
  description = "Name of the Cloud Scheduler job that calls SweepExpired every minute."
  value       = google_cloud_scheduler_job.sweep_expired.name
}

output "iap_ip_address" {
  description = "IP address of the IAP load balancer, for iap_domain's DNS A record (null without enable_iap)."
  value       = one(google_compute_global_address.request_access[*].address)
}

output "iap_url" {
  description = "URL of the IAP-protected request form (null without enable_iap)."
  value       = var.enable_iap ? "https://${var.iap_domain}/" : null
}

output "iap_audience" {
  description = "Audience of IAP's signed header, to copy into var.iap_audience (null without enable_iap)."
  value       = var.enable_iap ? "/projects/${data.google_project.project.number}/global/backendServices/${google_compute_backend_service.request_access[0].generated_id}" : null
}

output "audit_signing_key" {
  description = "The Cloud KMS key that certifies the functions' audit chains; give it to scripts/audit-verify --kms-key to trust each enabled version."
  value       = google_kms_crypto_key.audit_chain.id
}

output "audit_signing_key_version" {
  description = "The key version the functions sign with now (their AUDIT_KMS_KEY)."
  value       = local.audit_signing_key_version
}
