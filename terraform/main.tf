locals {
  labels = merge(var.labels, {
    app         = "airlock"
    environment = var.environment
    managed-by  = "terraform"
  })

  # The four functions, keyed by entry point. The key is also the function's name, so the
  # classic URL is https://REGION-PROJECT.cloudfunctions.net/<key> and developers can run
  # `gcloud functions call ExecuteQuery`. One function per project and region: run one project
  # per environment.
  #
  # ingress_settings is as tight as each caller allows:
  #   - ExecuteQuery and RequestAccess are called by developers with `gcloud functions call`
  #     (or a browser) from laptops. That is internet traffic, so ALLOW_INTERNAL_ONLY would
  #     lock them out; IAM (roles/run.invoker, granted per person in iam.tf) is the gate.
  #     With enable_iap, RequestAccess is reached through the HTTPS load balancer instead and
  #     becomes ALLOW_INTERNAL_AND_GCLB, so nobody can skip IAP by calling the run.app URL.
  #   - ApprovalCallback must be reached by Slack's servers, which are on the internet and carry
  #     no Google identity: ALLOW_ALL plus allUsers, and the function authenticates every
  #     request itself (Slack signature, Google ID token or IAP header).
  #   - SweepExpired is called only by Cloud Scheduler. Cloud Run's ingress documentation lists
  #     Cloud Scheduler among the products whose requests count as internal when the job is in
  #     the same project and targets the default run.app URL, which is what scheduler.tf does.
  #     So ALLOW_INTERNAL_ONLY works and nothing on the internet can reach it at all.
  #
  # secrets lists the Secret Manager secrets (keys of local.slack_secrets) the function may
  # read; it gets the secret's resource name in an environment variable and
  # roles/secretmanager.secretAccessor on those secrets only.
  functions = {
    ExecuteQuery = {
      description        = "Airlock: runs a developer's SQL through the guard, against the masked views; reads go to the replica."
      db_group           = "query"
      ingress_settings   = "ALLOW_ALL"
      available_memory   = "512M"
      timeout_seconds    = 120
      max_instance_count = 10
      min_instance_count = var.query_min_instance_count
      secrets            = ["slack_security_webhook"]
      secret_env         = {}
    }
    RequestAccess = {
      description        = "Airlock: serves the request form and records access requests, then asks approvers in Slack."
      db_group           = "requests"
      ingress_settings   = var.enable_iap ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_ALL"
      available_memory   = "256M"
      timeout_seconds    = 60
      max_instance_count = 5
      min_instance_count = 0
      secrets            = ["slack_approvers_webhook", "slack_security_webhook", "csrf_key"]
      secret_env         = {}
    }
    ApprovalCallback = {
      description        = "Airlock: receives approvals (Slack interactions, approvers' ID tokens) and records grants."
      db_group           = "approvals"
      ingress_settings   = "ALLOW_ALL"
      available_memory   = "256M"
      timeout_seconds    = 30
      max_instance_count = 5
      min_instance_count = 0
      secrets            = ["slack_signing_secret", "slack_approvers_webhook", "slack_security_webhook", "csrf_key"]
      secret_env         = {}
    }
    SweepExpired = {
      description        = "Airlock: revokes expired grants and ends their sessions; called every minute by Cloud Scheduler."
      db_group           = "sweeper"
      ingress_settings   = "ALLOW_INTERNAL_ONLY"
      available_memory   = "256M"
      timeout_seconds    = 50
      max_instance_count = 1
      min_instance_count = 0
      secrets            = ["slack_approvers_webhook", "slack_security_webhook"]
      secret_env         = {}
    }
  }

  # Slack credentials. Only the secrets are created here; their values are added by the
  # operator with `gcloud secrets versions add` so that they never enter the Terraform state.
  slack_secrets = {
    slack_signing_secret = {
      secret_id   = "${var.name_prefix}-slack-signing-secret"
      env         = "SLACK_SIGNING_SECRET_NAME"
      description = "Slack app signing secret, used to verify interaction requests."
    }
    slack_approvers_webhook = {
      secret_id   = "${var.name_prefix}-slack-approvers-webhook"
      env         = "SLACK_APPROVERS_WEBHOOK_NAME"
      description = "Slack incoming-webhook URL of the approvers' channel."
    }
    slack_security_webhook = {
      secret_id   = "${var.name_prefix}-slack-security-webhook"
      env         = "SLACK_SECURITY_WEBHOOK_NAME"
      description = "Slack incoming-webhook URL of the security channel."
    }
    # Not Slack, but kept the same way: the web form's anti-forgery tokens are signed with it,
    # and RequestAccess and ApprovalCallback must share it.
    csrf_key = {
      secret_id   = "${var.name_prefix}-csrf-key"
      env         = "CSRF_SECRET_NAME"
      description = "Key (32+ random bytes) signing the web form's anti-forgery tokens."
    }
  }

  # Everyone who may call the developer-facing functions. Approvers are usually developers too.
  people = distinct(concat(var.developer_members, var.approver_members))

  function_source_dir = coalesce(var.function_source_dir, "${path.module}/../.build")

  # The log that the functions write their audit trail to (the contract fixes the name).
  audit_log_filter = "logName=\"projects/${var.project_id}/logs/airlock-audit\""

  # Google ID tokens sent to ApprovalCallback must name it as audience. Its own URL is an
  # output of the function, so using it here would be a cycle; the classic URL is predictable
  # from region, project and function name. (The run.app URL is predictable too, as
  # https://approvalcallback-PROJECT_NUMBER.REGION.run.app, if callers prefer it; set
  # approval_callback_audience to override.)
  approval_callback_audience = coalesce(
    var.approval_callback_audience,
    "https://${var.region}-${var.project_id}.cloudfunctions.net/ApprovalCallback",
  )

  # Environment shared by every function (see the contract in the repository README).
  common_env = {
    AIRLOCK_POLICY    = file(var.policy_file)
    CLOUDSQL_INSTANCE = google_sql_database_instance.primary.connection_name
    DB_NAME           = google_sql_database.app.name
    AUDIT_SINK        = "cloudlogging"
    AUDIT_PROJECT     = var.project_id
    AUDIT_KMS_KEY     = local.audit_signing_key_version
    AUTH_MODE         = "cloudrun"
  }

  # Environment only one function needs.
  function_env = {
    ExecuteQuery = {
      CLOUDSQL_REPLICA_INSTANCE = google_sql_database_instance.replica.connection_name
    }
    RequestAccess = merge(
      { APPROVAL_URL = local.approval_callback_audience },
      { for k, v in { IAP_AUDIENCE = var.iap_audience } : k => v if var.enable_iap && var.iap_audience != "" },
    )
    # A revocation (ApprovalCallback) and an expiry (SweepExpired) end the grant's
    # sessions on the replica too, where ExecuteQuery's reads run.
    ApprovalCallback = {
      AUTH_AUDIENCE             = local.approval_callback_audience
      REQUEST_ACCESS_URL        = "https://${var.region}-${var.project_id}.cloudfunctions.net/RequestAccess"
      CLOUDSQL_REPLICA_INSTANCE = google_sql_database_instance.replica.connection_name
    }
    SweepExpired = {
      SCHEDULER_EMAIL           = google_service_account.scheduler.email
      CLOUDSQL_REPLICA_INSTANCE = google_sql_database_instance.replica.connection_name
    }
  }
}

data "google_project" "project" {
  project_id = var.project_id

  depends_on = [google_project_service.apis]
}
