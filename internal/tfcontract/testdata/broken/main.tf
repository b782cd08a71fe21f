# A module that breaks every contract check once: the contract test runs
# each check on it and expects the named failure.

variable "queue_visibility_timeout_seconds" {
  type    = number
  default = 60
}

variable "orphan_grace_seconds" {
  type    = number
  default = 120
}

variable "lambda_timeout_seconds" {
  type    = number
  default = 60
}

variable "mode" {
  type    = string
  default = "ecs"

  validation {
    condition     = contains(["ecs", "none"], var.mode)
    error_message = "no lambda mode"
  }
}

locals {
  session_table_arn = "arn:aws:dynamodb:eu-west-1:111122223333:table/sessions"
  table_resources   = [local.session_table_arn]
}

resource "aws_dynamodb_table" "sessions" {
  name     = "sessions"
  hash_key = "id"

  attribute {
    name = "id"
    type = "S"
  }
  attribute {
    name = "source_identity"
    type = "S"
  }

  global_secondary_index {
    name            = "gsi-sourceidentity"
    hash_key        = "source_identity"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "expires"
    enabled        = true
  }
}

resource "aws_cloudwatch_event_rule" "sts" {
  name  = "sts"
  state = "ENABLED"
  event_pattern = jsonencode({
    source      = ["aws.iam"]
    detail-type = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["sts.amazonaws.com"]
      eventName   = ["AssumeRole"]
    }
  })
}

resource "aws_sqs_queue" "events" {
  name                       = "events"
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
}

data "aws_iam_policy_document" "streamer" {
  statement {
    actions   = ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.events.arn]
  }
  statement {
    actions   = ["dynamodb:Query", "dynamodb:Scan", "dynamodb:PutItem"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "streamer" {
  role   = "streamer"
  policy = data.aws_iam_policy_document.streamer.json
}

data "aws_iam_policy_document" "backfill" {
  statement {
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "backfill" {
  role   = "backfill"
  policy = data.aws_iam_policy_document.backfill.json
}

resource "aws_lambda_function" "streamer" {
  function_name = "streamer"
  runtime       = "provided.al2023"
  handler       = "bootstrap"

  lifecycle {
    precondition {
      condition     = var.lambda_timeout_seconds <= var.queue_visibility_timeout_seconds
      error_message = "too short"
    }
  }
}

resource "aws_lambda_event_source_mapping" "streamer" {
  event_source_arn = aws_sqs_queue.events.arn
  function_name    = aws_lambda_function.streamer.arn
}

# The pipeline rule forgets SetQueueAttributes and the queue; the alarms read
# a namespace the streamer never writes and watch only the sts rule.
locals {
  pipeline_rule_names = ["sts", "pipeline"]
}

resource "aws_cloudwatch_event_rule" "pipeline" {
  name  = "pipeline"
  state = "ENABLED"
  event_pattern = jsonencode({
    source      = ["aws.events"]
    detail-type = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["events.amazonaws.com"]
      eventName   = ["DeleteRule", "DisableRule", "PutRule", "PutTargets", "RemoveTargets"]
      "$or"       = [{ requestParameters = { name = local.pipeline_rule_names } }]
    }
  })
}

resource "aws_cloudwatch_metric_alarm" "silent_regions" {
  namespace          = "sessionwatch-metrics"
  metric_name        = "SilentRegions"
  dimensions         = { QueueName = aws_sqs_queue.events.name }
  treat_missing_data = "notBreaching"
}

resource "aws_cloudwatch_metric_alarm" "failed_invocations" {
  for_each    = { sts = aws_cloudwatch_event_rule.sts.name }
  namespace   = "AWS/Events"
  metric_name = "FailedInvocations"
}
