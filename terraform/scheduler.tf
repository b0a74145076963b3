# Calls SweepExpired every minute, so that an expired grant loses its database role within
# about a minute of expiry.
resource "google_cloud_scheduler_job" "sweep_expired" {
  project     = var.project_id
  region      = coalesce(var.scheduler_region, var.region)
  name        = "${var.name_prefix}-sweep-expired"
  description = "Revokes expired Airlock grants (calls the SweepExpired function)."
  schedule    = "* * * * *"
  time_zone   = "Etc/UTC"

  # A little above the function's own timeout (50 s), so the scheduler does not give up on a
  # sweep that is still within its limit.
  attempt_deadline = "60s"

  # One quick retry: the sweep is idempotent, and the next minute's run covers anything a
  # failed run left, so retrying longer would only overlap with it.
  retry_config {
    retry_count          = 1
    min_backoff_duration = "5s"
    max_backoff_duration = "10s"
    max_doublings        = 1
    max_retry_duration   = "30s"
  }

  http_target {
    http_method = "POST"
    # The run.app URL: Cloud Run counts Scheduler traffic as internal only on that URL, which
    # is what lets SweepExpired stay ALLOW_INTERNAL_ONLY.
    uri  = google_cloudfunctions2_function.function["SweepExpired"].service_config[0].uri
    body = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.function["SweepExpired"].service_config[0].uri
    }
  }

  # Without the invoker grant the first runs would be refused.
  depends_on = [google_cloud_run_service_iam_member.scheduler_invoker]
}
