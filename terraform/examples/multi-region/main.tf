# Home region eu-west-1 runs the queue and the streamer (as Lambda here);
# us-east-1 (global-endpoint STS calls) and eu-central-1 forward their STS
# events to it. Add one forwarder per enabled region. For other accounts of
# the organization, deploy the same forwarder module in each of them (for
# example with StackSets-like tooling or one provider per account) and set
# organization_id so the home bus accepts their events.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.27"
    }
  }
}

provider "aws" {
  region = "eu-west-1"
}

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

provider "aws" {
  alias  = "eu_central_1"
  region = "eu-central-1"
}

variable "lambda_package" {
  description = "Zip holding the streamer built as bootstrap (see docs/DEPLOY.md)."
  type        = string
}

variable "organization_id" {
  description = "Organization whose accounts may forward events here."
  type        = string
}

data "aws_caller_identity" "home" {}

module "sessionwatch" {
  source = "../.."

  session_table_name = "sentinel-sessions"
  mode               = "lambda"
  lambda_package     = var.lambda_package
  organization_id    = var.organization_id
  sinks              = ["stdout"]
}

locals {
  home_bus_arn = "arn:aws:events:eu-west-1:${data.aws_caller_identity.home.account_id}:event-bus/default"
}

module "forward_us_east_1" {
  source    = "../../modules/forwarder"
  providers = { aws = aws.us_east_1 }

  target_event_bus_arn = local.home_bus_arn
}

module "forward_eu_central_1" {
  source    = "../../modules/forwarder"
  providers = { aws = aws.eu_central_1 }

  target_event_bus_arn = local.home_bus_arn
}

output "queue_url" {
  value = module.sessionwatch.queue_url
}

output "home_bus_arn" {
  value = local.home_bus_arn
}
