# One account, one region: the streamer on ECS Fargate, findings to Security
# Hub and an SNS topic, the session table created here, alarms to a topic.

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

variable "container_image" {
  description = "The sessionwatch image (docker build -t … . in the repository)."
  type        = string
}

variable "ecs_cluster_arn" {
  description = "ECS cluster to run the streamer in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the tasks."
  type        = list(string)
}

variable "backfill_principal_arns" {
  description = "Principals (a security engineer's role) that may assume the backfill role. Empty: no backfill role."
  type        = list(string)
  default     = []
}

resource "aws_sns_topic" "alerts" {
  name = "sessionwatch-alerts"
}

resource "aws_sns_topic" "findings" {
  name = "sessionwatch-findings"
}

module "sessionwatch" {
  source = "../.."

  name_prefix          = "sessionwatch"
  session_table_name   = "sentinel-sessions"
  create_session_table = true

  mode               = "ecs"
  container_image    = var.container_image
  ecs_cluster_arn    = var.ecs_cluster_arn
  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids

  sinks               = ["securityhub", "sns:${aws_sns_topic.findings.arn}", "stdout"]
  securityhub_sink    = true
  sink_sns_topic_arns = [aws_sns_topic.findings.arn]

  alarm_actions = [aws_sns_topic.alerts.arn]

  backfill_trusted_principal_arns = var.backfill_principal_arns

  tags = { team = "security" }
}

output "queue_url" {
  value = module.sessionwatch.queue_url
}

output "log_group_name" {
  value = module.sessionwatch.log_group_name
}

output "findings_topic_arn" {
  value = aws_sns_topic.findings.arn
}

output "backfill_role_arn" {
  value = module.sessionwatch.backfill_role_arn
}
