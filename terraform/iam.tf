locals {
  # Project-level roles each function's identity needs. These three can only be granted on
  # the project (Cloud SQL instances have no IAM policy of their own), so the two Cloud SQL
  # roles carry an IAM condition that limits them to the instances the function uses.
  function_project_roles = {
    for pair in setproduct(keys(local.functions), ["roles/cloudsql.client", "roles/cloudsql.instanceUser", "roles/logging.logWriter"]) :
    "${pair[0]} ${pair[1]}" => { function = pair[0], role = pair[1] }
  }

  # Only ExecuteQuery reads from the replica.
  function_sql_instances = {
    for fn in keys(local.functions) :
    fn => fn == "ExecuteQuery" ? [var.instance_name, "${var.instance_name}-replica"] : [var.instance_name]
  }

  # Secret-level grants: each function may read only the secrets listed for it in main.tf.
  function_secret_access = merge([
    for fn, cfg in local.functions : {
      for s in cfg.secrets : "${fn} ${s}" => { function = fn, secret = s }
    }
  ]...)

  # Developers and approvers may invoke (and look up) ExecuteQuery and RequestAccess.
  people_invoker_bindings = {
    for pair in setproduct(["ExecuteQuery", "RequestAccess"], local.people) :
    "${pair[0]} ${pair[1]}" => { function = pair[0], member = pair[1] }
  }

  # `gcloud functions call` first reads the function (cloudfunctions.functions.get) to find its
  # URL. Approvers also get this on ApprovalCallback so they can call it with an ID token.
  people_viewer_bindings = merge(local.people_invoker_bindings, {
    for m in var.approver_members : "ApprovalCallback ${m}" => { function = "ApprovalCallback", member = m }
  })
}

resource "google_project_iam_member" "function" {
  for_each = local.function_project_roles

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.function[each.value.function].member

  dynamic "condition" {
    for_each = startswith(each.value.role, "roles/cloudsql.") ? [1] : []
    content {
      title       = "airlock-${lower(each.value.function)}-instances"
      description = "Only the Cloud SQL instances ${each.value.function} connects to."
      expression = join(" || ", [
        for name in local.function_sql_instances[each.value.function] :
        "(resource.type == 'sqladmin.googleapis.com/Instance' && resource.name == 'projects/${var.project_id}/instances/${name}')"
      ])
    }
  }
}

# The bootstrap admins connect to the primary as IAM database users.
resource "google_project_iam_member" "admin" {
  for_each = {
    for pair in setproduct(var.admin_iam_users, ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) :
    "${pair[0]} ${pair[1]}" => { email = pair[0], role = pair[1] }
  }

  project = var.project_id
  role    = each.value.role
  member  = "user:${each.value.email}"

  condition {
    title       = "airlock-admin-primary"
    description = "Only the Airlock primary instance."
    expression  = "resource.type == 'sqladmin.googleapis.com/Instance' && resource.name == 'projects/${var.project_id}/instances/${var.instance_name}'"
  }
}

# What Google documents for a custom Cloud Functions build identity: write build logs and read
# the uploaded source. Image pushes are granted on our repository only (below).
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/storage.objectViewer"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# Secret Manager access on each secret, never on the project.
resource "google_secret_manager_secret_iam_member" "function" {
  for_each = local.function_secret_access

  project   = var.project_id
  secret_id = google_secret_manager_secret.slack[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.function].member
}

# Invoker rights are granted on each function's Cloud Run service (a 2nd gen function is one),
# which is where the Authorization header is checked.
resource "google_cloud_run_service_iam_member" "people_invoker" {
  for_each = local.people_invoker_bindings

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.value.function].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value.member
}

resource "google_cloudfunctions2_function_iam_member" "people_viewer" {
  for_each = local.people_viewer_bindings

  project        = var.project_id
  location       = var.region
  cloud_function = google_cloudfunctions2_function.function[each.value.function].name
  role           = "roles/cloudfunctions.viewer"
  member         = each.value.member
}

# The scheduler's identity may invoke SweepExpired and nothing else.
resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function["SweepExpired"].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# The one public endpoint. Slack's servers must reach ApprovalCallback and carry no Google
# identity, so Cloud Run lets every request through and the function authenticates each one
# itself: Slack's signing-secret HMAC over timestamp and body (replays refused), or a Google ID
# token whose audience is AUTH_AUDIENCE, or IAP's signed header; anything else gets 401.
resource "google_cloud_run_service_iam_member" "approval_callback_public" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function["ApprovalCallback"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The CI identity's smoke test: an authenticated GET of RequestAccess's form must return 200.
# It gets no other function, so the smoke test also proves that ExecuteQuery refuses it.
resource "google_cloud_run_service_iam_member" "smoke_test_invoker" {
  count = var.smoke_test_service_account == "" ? 0 : 1

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function["RequestAccess"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.smoke_test_service_account}"
}
