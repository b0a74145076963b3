terraform {
  # 1.5 for startswith() (iam.tf) and optional() attribute defaults (1.3). CI runs 1.11.
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Written against the 7.x schema (iap { enabled = true } on backend services is the
      # provider-7 syntax). The ceiling is the next major, whose breaking changes we have not read.
      version = ">= 7.0, < 8"
    }
  }

  provider_meta "google" {
    module_name = "airlock.dev/airlock:terraform/v1"
  }
}
