data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  session_table_arn = "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${var.session_table_name}"

  # The session replica follows the table's stream (--session-stream) when
  # one is given, or by default the stream of the table created here; never
  # under Lambda, where the replica is off. session_stream is known at plan
  # (it decides which statements and variables exist); the ARN of a table
  # created here is known after apply.
  session_stream     = var.mode != "lambda" && (var.session_stream_arn == null ? var.create_session_table : var.session_stream_arn != "")
  session_stream_arn = !local.session_stream ? "" : (var.session_stream_arn != null ? var.session_stream_arn : one(aws_dynamodb_table.sessions[*].stream_arn))

  # The streamer's environment: one SESSIONWATCH_ variable per flag.
  streamer_environment = merge({
    SESSIONWATCH_QUEUE_URL       = aws_sqs_queue.events.url
    SESSIONWATCH_TABLE           = var.session_table_name
    SESSIONWATCH_EVENT_NAMES     = join(",", var.event_names)
    SESSIONWATCH_ACCOUNTS        = join(",", var.accounts)
    SESSIONWATCH_SINK            = join(",", var.sinks)
    SESSIONWATCH_ORPHAN_GRACE    = "${var.orphan_grace_seconds}s"
    SESSIONWATCH_LOG_LEVEL       = "info"
    SESSIONWATCH_PIPELINE_EVENTS = tostring(var.pipeline_events)
    SESSIONWATCH_SILENCE_AFTER   = "${var.silence_after_seconds}s"
    SESSIONWATCH_EXPECT_REGIONS  = join(",", var.expect_regions)
    }, var.verdict_log == null ? {} : {
    SESSIONWATCH_VERDICT_LOG = var.verdict_log
    }, local.session_stream ? {
    SESSIONWATCH_SESSION_STREAM = local.session_stream_arn
  } : {}, var.extra_environment)

  # The verdict log's bucket and key prefix (s3://BUCKET[/PREFIX]).
  verdict_log_bucket = var.verdict_log == null ? null : regex("^s3://([^/]+)", var.verdict_log)[0]
  verdict_log_prefix = var.verdict_log == null ? null : trimsuffix(trimprefix(trimprefix(var.verdict_log, "s3://${local.verdict_log_bucket}"), "/"), "/")

  # The rules that may send to the queue.
  rule_arns = concat([aws_cloudwatch_event_rule.sts.arn], aws_cloudwatch_event_rule.pipeline[*].arn)
}

# Poison messages (undecodable, or failing past max_receive_count) end here.
resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name_prefix}-events-dlq"
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 3600
  tags                              = var.tags
}

resource "aws_sqs_queue" "events" {
  name                              = "${var.name_prefix}-events"
  visibility_timeout_seconds        = var.queue_visibility_timeout_seconds
  message_retention_seconds         = var.queue_message_retention_seconds
  receive_wait_time_seconds         = 20
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 3600

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.events.arn]
  })
}

# AssumeRole calls are read-only management events: the rule must opt in to
# them with ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS.
resource "aws_cloudwatch_event_rule" "sts" {
  name           = "${var.name_prefix}-sts-assume-role"
  description    = "CloudTrail AssumeRole-family calls for sessionwatch"
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

resource "aws_cloudwatch_event_target" "queue" {
  rule           = aws_cloudwatch_event_rule.sts.name
  event_bus_name = "default"
  target_id      = "sessionwatch-queue"
  arn            = aws_sqs_queue.events.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }
  # Events EventBridge could not deliver are kept for inspection.
  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# Changes to the pipeline itself (issue 14): disabling, deleting or
# rewriting either rule or its targets, or changing the queues' attributes
# (the queue policy among them), reach the streamer through this second rule
# and are reported as pipeline_tampered findings. They are write management
# events, which a rule sees when ENABLED. The pattern matches only this
# module's rules and queues, so another team's DisableRule is no finding.
resource "aws_cloudwatch_event_rule" "pipeline" {
  count          = var.pipeline_events ? 1 : 0
  name           = "${var.name_prefix}-pipeline-changes"
  description    = "Changes to sessionwatch's own EventBridge rules and queues"
  event_bus_name = "default"
  state          = "ENABLED"
  event_pattern = jsonencode({
    source      = ["aws.events", "aws.sqs"]
    detail-type = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["events.amazonaws.com", "sqs.amazonaws.com"]
      eventName   = ["DeleteRule", "DisableRule", "PutRule", "PutTargets", "RemoveTargets", "SetQueueAttributes"]
      "$or" = [
        { requestParameters = { name = local.pipeline_rule_names } },
        { requestParameters = { rule = local.pipeline_rule_names } },
        { requestParameters = { queueUrl = [aws_sqs_queue.events.url, aws_sqs_queue.dlq.url] } },
      ]
    }
  })
  tags = var.tags
}

locals {
  # Both rules' names, known before either exists (the pattern cannot refer
  # to its own rule), and those of the forwarders (modules/forwarder with
  # the same name_prefix), whose changes they forward here.
  pipeline_rule_names = [
    "${var.name_prefix}-sts-assume-role", "${var.name_prefix}-pipeline-changes",
    "${var.name_prefix}-sts-forward", "${var.name_prefix}-pipeline-forward",
  ]
}

resource "aws_cloudwatch_event_target" "pipeline" {
  count          = var.pipeline_events ? 1 : 0
  rule           = aws_cloudwatch_event_rule.pipeline[0].name
  event_bus_name = "default"
  target_id      = "sessionwatch-queue"
  arn            = aws_sqs_queue.events.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }
  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# Only the rules may send to the queue: anyone else with sqs:SendMessage
# could forge or drown events.
data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "EventBridgeRuleOnly"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.queue.json
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "EventBridgeDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# Cross-account delivery: member accounts forward their STS events to this
# region's default bus (see modules/forwarder).
resource "aws_cloudwatch_event_bus_policy" "organization" {
  count          = var.organization_id == null ? 0 : 1
  event_bus_name = "default"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "${var.name_prefix}-organization-put-events"
      Effect    = "Allow"
      Principal = "*"
      Action    = "events:PutEvents"
      Resource  = "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/default"
      Condition = { StringEquals = { "aws:PrincipalOrgID" = var.organization_id } }
    }]
  })
}

resource "aws_cloudwatch_log_group" "streamer" {
  name              = "/sessionwatch/${var.name_prefix}/streamer"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}
