# Optional: Identity-Aware Proxy in front of RequestAccess's web form, so that browsers sign in
# with Google (and the organisation's 2-Step Verification rules apply) before the form loads.
# With it, RequestAccess's ingress is ALLOW_INTERNAL_AND_GCLB (main.tf): the run.app URL no
# longer answers from the internet, so IAP cannot be bypassed, and `gcloud functions call
# RequestAccess` from a laptop stops working too; requests then go through the form.

resource "google_compute_region_network_endpoint_group" "request_access" {
  count = var.enable_iap ? 1 : 0

  project               = var.project_id
  name                  = "${var.name_prefix}-request-access"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = google_cloudfunctions2_function.function["RequestAccess"].service_config[0].service
  }
}

resource "google_compute_backend_service" "request_access" {
  count = var.enable_iap ? 1 : 0

  project               = var.project_id
  name                  = "${var.name_prefix}-request-access"
  load_balancing_scheme = "EXTERNAL_MANAGED"

  backend {
    group = google_compute_region_network_endpoint_group.request_access[0].id
  }

  # Provider 7 syntax. Without an OAuth client IAP uses a Google-managed one, which serves
  # users of the project's own organisation; set the client for anyone else.
  iap {
    enabled              = true
    oauth2_client_id     = var.iap_oauth2_client_id
    oauth2_client_secret = var.iap_oauth2_client_secret
  }

  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_url_map" "request_access" {
  count = var.enable_iap ? 1 : 0

  project         = var.project_id
  name            = "${var.name_prefix}-request-access"
  default_service = google_compute_backend_service.request_access[0].id
}

resource "google_compute_managed_ssl_certificate" "request_access" {
  count = var.enable_iap ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-request-access"

  managed {
    domains = [var.iap_domain]
  }

  lifecycle {
    precondition {
      condition     = var.iap_domain != ""
      error_message = "enable_iap needs iap_domain, the host name browsers will use (for example \"airlock.example.com\")."
    }
  }
}

resource "google_compute_ssl_policy" "request_access" {
  count = var.enable_iap ? 1 : 0

  project         = var.project_id
  name            = "${var.name_prefix}-request-access"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "request_access" {
  count = var.enable_iap ? 1 : 0

  project          = var.project_id
  name             = "${var.name_prefix}-request-access"
  url_map          = google_compute_url_map.request_access[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.request_access[0].id]
  ssl_policy       = google_compute_ssl_policy.request_access[0].id
}

resource "google_compute_global_address" "request_access" {
  count = var.enable_iap ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-request-access"
}

resource "google_compute_global_forwarding_rule" "request_access" {
  count = var.enable_iap ? 1 : 0

  project               = var.project_id
  name                  = "${var.name_prefix}-request-access"
  target                = google_compute_target_https_proxy.request_access[0].id
  ip_address            = google_compute_global_address.request_access[0].id
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# Who may pass IAP: developers and approvers, on this backend only.
resource "google_iap_web_backend_service_iam_member" "people" {
  for_each = var.enable_iap ? toset(local.people) : toset([])

  project             = var.project_id
  web_backend_service = google_compute_backend_service.request_access[0].name
  role                = "roles/iap.httpsResourceAccessor"
  member              = each.value
}

# IAP calls Cloud Run as its service agent (X-Serverless-Authorization), so that agent needs
# invoker on RequestAccess; RequestAccess then reads the person from IAP's signed header
# (IAP_AUDIENCE). The agent exists once IAP has been set up in the project (README).
resource "google_cloud_run_service_iam_member" "iap_invoker" {
  count = var.enable_iap ? 1 : 0

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function["RequestAccess"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-iap.iam.gserviceaccount.com"
}
