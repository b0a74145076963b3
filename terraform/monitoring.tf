locals {
  # The security events the functions write (jsonPayload.event), each with the severity it is
  # logged at. The names are fixed by the functions; this map is literal so that
  # policy_test.go can read it. source says where the event is logged:
  #   audit          the airlock-audit log (the locked bucket)
  #   function_logs  the functions' own stdout/stderr (audit.unavailable is logged exactly
  #                  when the audit log itself cannot be written)
  # label is the metric label extracted from each entry, so an alert names the person.
  security_events = {
    "security.denied_burst" = {
      severity    = "WARNING"
      source      = "audit"
      label       = "actor"
      description = "A burst of denied queries from one person: probing for what the guard lets through."
    }
    "security.masked_column_access" = {
      severity    = "WARNING"
      source      = "audit"
      label       = "actor"
      description = "A query touched a column the person may only see masked."
    }
    "security.forbidden_statement" = {
      severity    = "ALERT"
      source      = "audit"
      label       = "actor"
      description = "An attempt at DELETE, TRUNCATE, DDL or a role change, which Airlock never allows."
    }
    "breakglass.activated" = {
      severity    = "ALERT"
      source      = "audit"
      label       = "actor"
      description = "Break-glass access was activated."
    }
    "breakglass.write" = {
      severity    = "ALERT"
      source      = "audit"
      label       = "actor"
      description = "A write was made under break-glass access."
    }
    "security.bulk_write" = {
      severity    = "ALERT"
      source      = "audit"
      label       = "actor"
      description = "A write touched more rows than the policy's bulk-write threshold."
    }
    "security.off_hours_approval" = {
      severity    = "WARNING"
      source      = "audit"
      label       = "actor"
      description = "An access request was approved outside working hours."
    }
    "security.slack_replay" = {
      severity    = "ALERT"
      source      = "audit"
      label       = "actor"
      description = "A signed Slack callback was received a second time: someone is replaying a captured approval."
    }
    "audit.unavailable" = {
      severity    = "ALERT"
      source      = "function_logs"
      label       = "service"
      description = "A function could not write the audit log and refused to act. Airlock is down until this is fixed."
    }
  }

  label_extractors = {
    actor   = "EXTRACT(jsonPayload.actor)"
    service = "EXTRACT(resource.labels.service_name)"
  }
}

# One counter per event. Project-level log-based metrics count entries as the Logging API
# receives them, before sinks and exclusions, so excluding airlock-audit from _Default does not
# hide anything from them.
resource "google_logging_metric" "security" {
  for_each = local.security_events

  project     = var.project_id
  name        = "${var.name_prefix}_${replace(each.key, ".", "_")}"
  description = each.value.description
  filter = (
    each.value.source == "audit"
    ? "${local.audit_log_filter} AND jsonPayload.event=\"${each.key}\""
    : "resource.type=\"cloud_run_revision\" AND (jsonPayload.event=\"${each.key}\" OR textPayload:\"${each.key}\")"
  )

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = each.value.label
      value_type  = "STRING"
      description = each.value.label == "actor" ? "Who caused the event (e-mail address)." : "The Cloud Run service that logged it."
    }
  }

  label_extractors = {
    (each.value.label) = local.label_extractors[each.value.label]
  }

  depends_on = [google_project_service.apis]
}

# One alert per metric: any occurrence notifies. Each actor is its own time series, so one
# incident names one person.
resource "google_monitoring_alert_policy" "security" {
  for_each = google_logging_metric.security

  project               = var.project_id
  display_name          = "Airlock: ${each.key}"
  combiner              = "OR"
  severity              = local.security_events[each.key].severity == "ALERT" ? "CRITICAL" : "WARNING"
  notification_channels = var.alert_notification_channels

  conditions {
    display_name = "${each.key} logged"

    condition_threshold {
      # Alert filters must name a monitored-resource type; it is the type of the log entries
      # the metric counted.
      filter = join(" AND ", [
        "metric.type=\"logging.googleapis.com/user/${each.value.name}\"",
        "resource.type=\"${local.security_events[each.key].source == "audit" ? var.audit_log_resource_type : "cloud_run_revision"}\"",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Airlock ${local.security_events[each.key].severity}: ${each.key}"
    content   = <<-EOT
      ${local.security_events[each.key].description}

      ${local.security_events[each.key].label}: $${metric.label.${local.security_events[each.key].label}}

      The entries are in the log `${local.security_events[each.key].source == "audit" ? "airlock-audit" : "the functions' logs"}` with `jsonPayload.event="${each.key}"`.
    EOT
  }
}
