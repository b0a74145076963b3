variable "project_id" {
  description = "ID of the project Airlock and its Cloud SQL instance live in. Use one project per environment: function names are fixed (their entry points)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits and hyphens), such as \"acme-airlock-prod\"."
  }
}

variable "region" {
  description = "Region of the functions, the Cloud SQL instances, the connector and the source bucket, for example \"europe-west1\"."
  type        = string
  default     = "europe-west1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as \"europe-west1\" or \"us-central1\"."
  }
}

variable "environment" {
  description = "Name of the environment, used in labels and the state prefix, for example \"prod\" or \"staging\"."
  type        = string
  default     = "prod"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.environment))
    error_message = "environment must be 1-16 lowercase letters, digits or hyphens, starting with a letter, such as \"prod\"."
  }
}

variable "name_prefix" {
  description = "Prefix of resource names (service accounts, network, secrets, buckets). Short, because service account IDs are limited to 30 characters."
  type        = string
  default     = "airlock"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-16 lowercase letters, digits or hyphens, such as \"airlock\" or \"airlock-stg\"."
  }
}

variable "labels" {
  description = "Extra labels for every resource that takes labels. app, environment and managed-by are always set."
  type        = map(string)
  default     = {}
}

variable "policy_file" {
  description = "Path of the Airlock policy YAML (relative to the directory terraform runs in). Its text becomes AIRLOCK_POLICY in every function, so a policy change redeploys them."
  type        = string
  validation {
    condition     = can(regex("\\.ya?ml$", var.policy_file)) && fileexists(var.policy_file)
    error_message = "policy_file must name an existing .yaml or .yml file, such as \"policy.yaml\"."
  }
}

variable "function_source_dir" {
  description = "Directory holding the zips made by scripts/package.sh (<EntryPoint>.zip). Defaults to the repository's .build directory (\"<module>/../.build\")."
  type        = string
  default     = null
}

variable "developer_members" {
  description = "IAM members of the developers: \"user:alice@example.com\" or \"group:developers@example.com\". They may invoke ExecuteQuery and RequestAccess (and pass IAP). What each may do in the database is decided by the policy, not here."
  type        = list(string)
  validation {
    condition     = length([for m in var.developer_members : m if !can(regex("^(user|group):[^@\\s]+@[^@\\s]+$", m))]) == 0
    error_message = "developer_members entries must be \"user:EMAIL\" or \"group:EMAIL\", such as \"user:alice@example.com\"; allUsers, allAuthenticatedUsers and domain: are not accepted."
  }
}

variable "approver_members" {
  description = "IAM members of the approvers: \"user:lead@example.com\" or \"group:leads@example.com\". They may invoke ExecuteQuery and RequestAccess, and look up ApprovalCallback. Who may approve what is decided by the policy."
  type        = list(string)
  validation {
    condition     = length([for m in var.approver_members : m if !can(regex("^(user|group):[^@\\s]+@[^@\\s]+$", m))]) == 0
    error_message = "approver_members entries must be \"user:EMAIL\" or \"group:EMAIL\", such as \"user:lead@example.com\"; allUsers, allAuthenticatedUsers and domain: are not accepted."
  }
}

variable "admin_iam_users" {
  description = "E-mail addresses of the people who run the database bootstrap (airlock-admin migrate) as Cloud SQL IAM users, for example [\"you@example.com\"]. They get Cloud SQL client and instance-user rights on the primary only."
  type        = list(string)
  default     = []
  validation {
    condition     = length([for e in var.admin_iam_users : e if !can(regex("^[^@\\s:]+@[^@\\s]+$", e))]) == 0
    error_message = "admin_iam_users entries must be plain e-mail addresses, such as \"you@example.com\" (no \"user:\" prefix)."
  }
}

variable "smoke_test_service_account" {
  description = "E-mail of the CI service account whose smoke test calls RequestAccess with its own ID token; it gets run.invoker on RequestAccess only. Empty: no grant."
  type        = string
  default     = ""
  validation {
    condition     = var.smoke_test_service_account == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.iam\\.gserviceaccount\\.com$", var.smoke_test_service_account))
    error_message = "smoke_test_service_account must be empty or a service account e-mail, such as \"ci-deployer@acme-airlock-prod.iam.gserviceaccount.com\"."
  }
}

variable "query_min_instance_count" {
  description = "Instances of ExecuteQuery kept warm (0-10). 1 avoids a cold start (and a new Cloud SQL connection) on the first query after a quiet spell, at the cost of an idle instance."
  type        = number
  default     = 0
  validation {
    condition     = var.query_min_instance_count >= 0 && var.query_min_instance_count <= 10 && floor(var.query_min_instance_count) == var.query_min_instance_count
    error_message = "query_min_instance_count must be a whole number from 0 to 10, such as 1."
  }
}

variable "function_settings" {
  description = "Per-function overrides, keyed by entry point (ExecuteQuery, RequestAccess, ApprovalCallback, SweepExpired): available_memory (\"512M\"), timeout_seconds, max_instance_count. Unset fields keep the defaults in main.tf."
  type = map(object({
    available_memory   = optional(string)
    timeout_seconds    = optional(number)
    max_instance_count = optional(number)
  }))
  default = {}
  validation {
    condition     = length(setsubtract(keys(var.function_settings), ["ExecuteQuery", "RequestAccess", "ApprovalCallback", "SweepExpired"])) == 0
    error_message = "function_settings keys must be entry points: \"ExecuteQuery\", \"RequestAccess\", \"ApprovalCallback\" or \"SweepExpired\"."
  }
}

variable "admin_subnet_cidr" {
  description = "Range of the subnet the one-time bootstrap VM runs in, for example \"10.10.0.0/24\". Must not overlap the connector or private services ranges."
  type        = string
  default     = "10.10.0.0/24"
  validation {
    condition     = can(cidrhost(var.admin_subnet_cidr, 0))
    error_message = "admin_subnet_cidr must be a CIDR range, such as \"10.10.0.0/24\"."
  }
}

variable "connector" {
  description = "Serverless VPC Access connector: ip_cidr_range (an unused /28, default \"10.8.0.0/28\"), machine_type (\"f1-micro\", \"e2-micro\" or \"e2-standard-4\"), min_instances and max_instances (2-10)."
  type = object({
    ip_cidr_range = optional(string, "10.8.0.0/28")
    machine_type  = optional(string, "e2-micro")
    min_instances = optional(number, 2)
    max_instances = optional(number, 3)
  })
  default = {}
  validation {
    condition = (
      can(regex("/28$", var.connector.ip_cidr_range)) && can(cidrhost(var.connector.ip_cidr_range, 0))
      && contains(["f1-micro", "e2-micro", "e2-standard-4"], var.connector.machine_type)
      && var.connector.min_instances >= 2 && var.connector.max_instances <= 10
      && var.connector.min_instances < var.connector.max_instances
    )
    error_message = "connector needs a /28 ip_cidr_range (\"10.8.0.0/28\"), machine_type \"f1-micro\", \"e2-micro\" or \"e2-standard-4\", and 2 <= min_instances < max_instances <= 10."
  }
}

variable "private_services_prefix_length" {
  description = "Prefix length of the range reserved for private services access (Cloud SQL's private addresses), 16-24. 20 leaves room for several instances."
  type        = number
  default     = 20
  validation {
    condition     = var.private_services_prefix_length >= 16 && var.private_services_prefix_length <= 24
    error_message = "private_services_prefix_length must be from 16 to 24, such as 20."
  }
}

variable "instance_name" {
  description = "Name of the primary Cloud SQL instance; the replica is \"<name>-replica\". A deleted instance's name cannot be reused for about a week."
  type        = string
  default     = "airlock-pg"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,78}[a-z0-9]$", var.instance_name))
    error_message = "instance_name must be lowercase letters, digits and hyphens, starting with a letter, such as \"airlock-pg\"."
  }
}

variable "database" {
  description = "Cloud SQL sizing and backups: tier (\"db-custom-2-8192\"), replica_tier (defaults to tier), edition (\"ENTERPRISE\" or \"ENTERPRISE_PLUS\"; db-custom tiers need ENTERPRISE), availability_type (\"REGIONAL\" or \"ZONAL\"), disk_size_gb, backup_start_time (\"HH:MM\" UTC), transaction_log_retention_days (1-7 on ENTERPRISE, up to 35 on ENTERPRISE_PLUS), retained_backups, maintenance_day (1 = Monday .. 7 = Sunday) and maintenance_hour (0-23 UTC)."
  type = object({
    tier                           = optional(string, "db-custom-2-8192")
    replica_tier                   = optional(string)
    edition                        = optional(string, "ENTERPRISE")
    availability_type              = optional(string, "REGIONAL")
    disk_size_gb                   = optional(number, 20)
    backup_start_time              = optional(string, "02:00")
    transaction_log_retention_days = optional(number, 7)
    retained_backups               = optional(number, 30)
    maintenance_day                = optional(number, 7)
    maintenance_hour               = optional(number, 3)
  })
  default = {}
  validation {
    condition = (
      contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.database.edition)
      && contains(["REGIONAL", "ZONAL"], var.database.availability_type)
      && can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.database.backup_start_time))
      && var.database.transaction_log_retention_days >= 1 && var.database.transaction_log_retention_days <= 35
      && var.database.retained_backups >= 1
      && var.database.maintenance_day >= 1 && var.database.maintenance_day <= 7
      && var.database.maintenance_hour >= 0 && var.database.maintenance_hour <= 23
    )
    error_message = "database: edition must be \"ENTERPRISE\" or \"ENTERPRISE_PLUS\", availability_type \"REGIONAL\" or \"ZONAL\", backup_start_time like \"02:00\", transaction_log_retention_days 1-35, retained_backups >= 1, maintenance_day 1-7, maintenance_hour 0-23."
  }
}

variable "database_name" {
  description = "Name of the application database (Airlock's schemas live in it too), for example \"airlock\"."
  type        = string
  default     = "airlock"
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase PostgreSQL identifier, such as \"airlock\"."
  }
}

variable "pgaudit_log" {
  description = "Value of the pgaudit.log flag: a comma-separated list of read, write, function, role, ddl, misc, misc_set, all or none (a leading \"-\" removes a class), for example \"ddl,role,write,read\"."
  type        = string
  default     = "ddl,role,write,read"
  validation {
    condition     = length([for c in split(",", var.pgaudit_log) : c if !contains(["all", "none", "read", "write", "function", "role", "ddl", "misc", "misc_set"], trimprefix(trimspace(lower(c)), "-"))]) == 0
    error_message = "pgaudit_log must list classes from read, write, function, role, ddl, misc, misc_set, all, none, such as \"ddl,role,write,read\"."
  }
}

variable "audit_log_location" {
  description = "Location of the locked audit log bucket (\"global\" or a region). Defaults to var.region. It can never be changed after creation."
  type        = string
  default     = null
}

variable "audit_log_retention_days" {
  description = "Days entries stay in the locked audit bucket, at least 365 (default 400). Once applied it can never be changed: the bucket is locked."
  type        = number
  default     = 400
  validation {
    condition     = var.audit_log_retention_days >= 365 && var.audit_log_retention_days <= 3650
    error_message = "audit_log_retention_days must be from 365 to 3650 days, such as 400."
  }
}

variable "audit_signing_key_version" {
  description = "Version of the audit-chain KMS key the functions sign chain certificates with (1 after the first apply). To rotate: create a version (gcloud kms keys versions create), set this to its number and apply; keep older versions enabled so the chains they certified still verify."
  type        = number
  default     = 1
  validation {
    condition     = var.audit_signing_key_version >= 1 && floor(var.audit_signing_key_version) == var.audit_signing_key_version
    error_message = "audit_signing_key_version must be a whole number from 1, such as 1 or 2."
  }
}

variable "audit_key_viewers" {
  description = "Members who may read the audit-chain key's public key to verify exported trails (roles/cloudkms.publicKeyViewer), such as [\"group:auditors@example.com\"]. They cannot sign."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.audit_key_viewers : can(regex("^(user|group|serviceAccount|domain):[^ ]+$", m))])
    error_message = "audit_key_viewers entries must be IAM members such as \"group:auditors@example.com\" or \"user:ann@example.com\"."
  }
}

variable "audit_log_resource_type" {
  description = "Monitored-resource type of the airlock-audit entries as the functions write them; alert filters must name it. \"cloud_run_revision\" when the logging client detects the resource on Cloud Run (the default), \"global\" if the audit writer sets no resource."
  type        = string
  default     = "cloud_run_revision"
  validation {
    condition     = contains(["cloud_run_revision", "cloud_function", "global"], var.audit_log_resource_type)
    error_message = "audit_log_resource_type must be \"cloud_run_revision\", \"cloud_function\" or \"global\"."
  }
}

variable "route_pgaudit_to_audit_bucket" {
  description = "Also copy the instances' pgAudit entries to the locked audit bucket (true or false). They are retained, and billed, for audit_log_retention_days."
  type        = bool
  default     = true
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channels every security alert goes to, as IDs like \"projects/PROJECT/notificationChannels/123\". At least one."
  type        = list(string)
  validation {
    condition     = length(var.alert_notification_channels) > 0
    error_message = "alert_notification_channels must name at least one channel, such as [\"projects/acme-airlock-prod/notificationChannels/1234567890\"]."
  }
  validation {
    condition     = length([for c in var.alert_notification_channels : c if !can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))]) == 0
    error_message = "alert_notification_channels entries must look like \"projects/acme-airlock-prod/notificationChannels/1234567890\"."
  }
}

variable "secret_replica_locations" {
  description = "Regions the Slack secrets are replicated to, for example [\"europe-west1\", \"europe-west4\"]. Empty: automatic replication."
  type        = list(string)
  default     = []
}

variable "scheduler_region" {
  description = "Region of the Cloud Scheduler job, if Cloud Scheduler is not offered in var.region. Defaults to var.region."
  type        = string
  default     = null
}

variable "approval_callback_audience" {
  description = "Audience ApprovalCallback expects in Google ID tokens (AUTH_AUDIENCE). Defaults to its classic URL, https://REGION-PROJECT.cloudfunctions.net/ApprovalCallback."
  type        = string
  default     = ""
  validation {
    condition     = var.approval_callback_audience == "" || can(regex("^https://", var.approval_callback_audience))
    error_message = "approval_callback_audience must be empty or an https URL, such as \"https://europe-west1-acme-airlock-prod.cloudfunctions.net/ApprovalCallback\"."
  }
}

variable "enable_iap" {
  description = "Put Identity-Aware Proxy (HTTPS load balancer, managed certificate for iap_domain) in front of RequestAccess's web form (true or false). RequestAccess's ingress then becomes ALLOW_INTERNAL_AND_GCLB."
  type        = bool
  default     = false
}

variable "iap_domain" {
  description = "Host name of the IAP-protected form, for example \"airlock.example.com\". Required when enable_iap is true; point its DNS A record at the iap_ip_address output."
  type        = string
  default     = ""
}

variable "iap_oauth2_client_id" {
  description = "OAuth client ID for IAP. Null: IAP's Google-managed client, which serves users of the project's organisation only."
  type        = string
  default     = null
}

variable "iap_oauth2_client_secret" {
  description = "OAuth client secret for IAP, with iap_oauth2_client_id. It is stored in the Terraform state; prefer the Google-managed client."
  type        = string
  default     = null
  sensitive   = true
}

variable "iap_audience" {
  description = "Audience of IAP's signed header (IAP_AUDIENCE for RequestAccess), \"/projects/PROJECT_NUMBER/global/backendServices/ID\". Known only after the first apply with enable_iap: copy the iap_audience output here and apply again."
  type        = string
  default     = ""
  validation {
    condition     = var.iap_audience == "" || can(regex("^/projects/[0-9]+/global/backendServices/[0-9]+$", var.iap_audience))
    error_message = "iap_audience must be empty or like \"/projects/123456789012/global/backendServices/1234567890123456789\"."
  }
}
