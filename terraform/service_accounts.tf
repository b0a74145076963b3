# One identity per function, so each one's database login, secrets and logs are its own and a
# compromise of one function does not lend the others' rights.
resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.value.db_group}"
  display_name = "Airlock ${each.key}"
  description  = "Runs the ${each.key} function and logs in to Cloud SQL as the airlock_${each.value.db_group} login."

  depends_on = [google_project_service.apis]
}

# Cloud Scheduler signs its calls to SweepExpired with this account's OIDC token; it can invoke
# SweepExpired and nothing else. SweepExpired checks the token's email (SCHEDULER_EMAIL).
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "Airlock scheduler"
  description  = "Identity Cloud Scheduler uses to call SweepExpired every minute."

  depends_on = [google_project_service.apis]
}

# Cloud Build builds the functions' images as this account instead of the project's default
# build identity (in older projects the Compute Engine default account, which holds Editor):
# code being built, including its dependencies, only gets what a build needs.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-fn-build"
  display_name = "Airlock function builds"
  description  = "Identity Cloud Build uses to build the Airlock functions' images."

  depends_on = [google_project_service.apis]
}
