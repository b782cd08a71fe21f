# Forwards CloudTrail STS events from this region (or account) to the
# sessionwatch home region's default bus. STS calls to a regional endpoint
# are logged in that region, calls to the global endpoint in us-east-1, so
# every enabled region needs one forwarder.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.27"
    }
  }
}

variable "name_prefix" {
  description = "Prefix of the rule and role names."
  type        = string
  default     = "sessionwatch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 32 lowercase letters, digits and hyphens."
  }
}

variable "target_event_bus_arn" {
  description = "ARN of the home region's default event bus (where the sessionwatch rule and queue are)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/default$", var.target_event_bus_arn))
    error_message = "target_event_bus_arn must be a default event bus ARN."
  }
}

variable "event_names" {
  description = "STS calls to forward; the same list as the home module's event_names."
  type        = list(string)
  default     = ["AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"]
}

variable "pipeline_events" {
  description = "Also forward changes to this forwarder's own rules (DisableRule, DeleteRule, PutRule, PutTargets, RemoveTargets), which the home module reports as pipeline_tampered. The home module matches them by name: keep name_prefix equal to the home module's."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

data "aws_region" "current" {}

resource "aws_cloudwatch_event_rule" "sts" {
  name           = "${var.name_prefix}-sts-forward"
  description    = "Forward AssumeRole-family calls to the sessionwatch home bus"
  event_bus_name = "default"
  state          = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  event_pattern = jsonencode({
    source      = ["aws.sts"]
    detail-type = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["sts.amazonaws.com"]
      eventName   = var.event_names
    }
  })
  tags = var.tags
}

locals {
  # This forwarder's rule names; the home module's pipeline rule matches
  # changes to the same names.
  rule_names = ["${var.name_prefix}-sts-forward", "${var.name_prefix}-pipeline-forward"]
}

# Changes to this forwarder (disabling it blinds the home streamer to the
# region) go home as well; write management events, so ENABLED.
resource "aws_cloudwatch_event_rule" "pipeline" {
  count          = var.pipeline_events ? 1 : 0
  name           = "${var.name_prefix}-pipeline-forward"
  description    = "Forward changes to the sessionwatch forwarder's rules to the home bus"
  event_bus_name = "default"
  state          = "ENABLED"
  event_pattern = jsonencode({
    source      = ["aws.events"]
    detail-type = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["events.amazonaws.com"]
      eventName   = ["DeleteRule", "DisableRule", "PutRule", "PutTargets", "RemoveTargets"]
      "$or" = [
        { requestParameters = { name = local.rule_names } },
        { requestParameters = { rule = local.rule_names } },
      ]
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "pipeline" {
  count          = var.pipeline_events ? 1 : 0
  rule           = aws_cloudwatch_event_rule.pipeline[0].name
  event_bus_name = "default"
  target_id      = "sessionwatch-home"
  arn            = var.target_event_bus_arn
  role_arn       = aws_iam_role.forward.arn
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "forward" {
  name               = "${var.name_prefix}-sts-forward-${data.aws_region.current.name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "forward" {
  name = "put-events"
  role = aws_iam_role.forward.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "events:PutEvents", Resource = var.target_event_bus_arn }]
  })
}

resource "aws_cloudwatch_event_target" "home" {
  rule           = aws_cloudwatch_event_rule.sts.name
  event_bus_name = "default"
  target_id      = "sessionwatch-home"
  arn            = var.target_event_bus_arn
  role_arn       = aws_iam_role.forward.arn
}

output "rule_arn" {
  description = "ARN of the forwarding rule."
  value       = aws_cloudwatch_event_rule.sts.arn
}
