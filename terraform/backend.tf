# The state lives in a GCS bucket the operator creates once (see README, step 2). The bucket
# and prefix are not written here so that one configuration serves every environment:
#   terraform init -backend-config=bucket=STATE_BUCKET -backend-config=prefix=airlock/prod
# The state holds no secret values (secrets get their versions outside Terraform), but it does
# hold the policy text and every resource name, so the bucket must stay private.
terraform {
  backend "gcs" {}
}
