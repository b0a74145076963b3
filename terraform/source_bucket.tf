# The private bucket the function zips are uploaded to. Cloud Build reads them from here.
resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-sources"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Keep old uploads for a while so that a rollback can point at them; each object name
  # carries its zip's hash, so nothing is ever overwritten.
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# One object per function, made by `scripts/package.sh ENTRY_POINT`. The name contains the
# zip's MD5, so a changed zip is a new object and the function is rebuilt and redeployed; an
# unchanged zip changes nothing.
resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  bucket       = google_storage_bucket.source.name
  name         = "${each.key}/${each.key}-${filemd5("${local.function_source_dir}/${each.key}.zip")}.zip"
  source       = "${local.function_source_dir}/${each.key}.zip"
  content_type = "application/zip"
}

# Build images stay in a repository of our own, which the build identity may write to, rather
# than in the project-wide gcf-artifacts repository.
resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  description   = "Images built from the Airlock functions."
  format        = "DOCKER"

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.apis]
}
