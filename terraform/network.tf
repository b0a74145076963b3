# A dedicated VPC: Cloud SQL has only a private address in it, and the functions reach that
# address through the Serverless VPC Access connector.
resource "google_compute_network" "vpc" {
  project                 = var.project_id
  name                    = "${var.name_prefix}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.apis]
}

# The subnet for the one-time bootstrap VM (README, "Database bootstrap"): Cloud SQL has no
# public IP, so migrations must run from inside the VPC. Private Google Access lets that VM
# reach Google APIs without an external address.
resource "google_compute_subnetwork" "admin" {
  project                  = var.project_id
  name                     = "${var.name_prefix}-admin"
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.admin_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# SSH only through IAP TCP forwarding (35.235.240.0/20 is IAP's documented source range), and
# only to instances tagged airlock-admin. No VM has that tag until the operator creates the
# bootstrap VM, and it is deleted afterwards.
resource "google_compute_firewall" "iap_ssh_to_admin" {
  project       = var.project_id
  name          = "${var.name_prefix}-allow-iap-ssh-admin"
  network       = google_compute_network.vpc.id
  direction     = "INGRESS"
  source_ranges = ["35.235.240.0/20"]
  target_tags   = ["airlock-admin"]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Private services access: the range Google's service producer network (where Cloud SQL
# lives) takes its addresses from, and the peering to it.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.name_prefix}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_services_prefix_length
  network       = google_compute_network.vpc.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.vpc.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]

  # Deleting the peering fails while Cloud SQL still uses it (and the instances have deletion
  # protection), so on destroy Terraform forgets the connection instead of deleting it.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.apis]
}

# The functions' way into the VPC. Egress is PRIVATE_RANGES_ONLY on every function, so only
# traffic to private addresses (Cloud SQL) goes through it; Slack and Google APIs do not.
resource "google_vpc_access_connector" "connector" {
  project       = var.project_id
  name          = "${var.name_prefix}-conn"
  region        = var.region
  network       = google_compute_network.vpc.name
  ip_cidr_range = var.connector.ip_cidr_range
  machine_type  = var.connector.machine_type
  min_instances = var.connector.min_instances
  max_instances = var.connector.max_instances

  depends_on = [google_project_service.apis]
}
