provider "google" {
  project = var.project_id
  region  = var.region

  # Labels on every resource that takes them, so billing and inventory can find Airlock.
  default_labels = local.labels
}
