# IAM: one role for the streamer (reads the queue and the session table,
# writes findings), one for the backfill (reads CloudTrail and the archive,
# writes findings). Each grants only the calls the code makes:
# internal/tfcontract checks these lists against the AWS SDK calls in the Go
# code, both ways.

locals {
  table_resources = [local.session_table_arn, "${local.session_table_arn}/index/*"]
  # The table's streams: a stream ARN is the table's ARN, /stream/ and a
  # label that changes when the stream is turned off and on again.
  stream_resources = ["${local.session_table_arn}/stream/*"]

  streamer_principal = var.mode == "lambda" ? "lambda.amazonaws.com" : "ecs-tasks.amazonaws.com"
}

data "aws_iam_policy_document" "streamer_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [local.streamer_principal]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "streamer" {
  name               = "${var.name_prefix}-streamer"
  assume_role_policy = data.aws_iam_policy_document.streamer_assume.json
  tags               = var.tags
}

# The sinks' calls, for both roles: each statement exists when its sink is
# configured.
data "aws_iam_policy_document" "sinks" {
  dynamic "statement" {
    for_each = length(var.sink_sqs_queue_arns) == 0 ? [] : [1]
    content {
      sid       = "SinkSQS"
      actions   = ["sqs:SendMessage"]
      resources = var.sink_sqs_queue_arns
    }
  }
  dynamic "statement" {
    for_each = length(var.sink_sns_topic_arns) == 0 ? [] : [1]
    content {
      sid       = "SinkSNS"
      actions   = ["sns:Publish"]
      resources = var.sink_sns_topic_arns
    }
  }
  dynamic "statement" {
    for_each = length(var.sink_event_bus_arns) == 0 ? [] : [1]
    content {
      sid       = "SinkEventBridge"
      actions   = ["events:PutEvents"]
      resources = var.sink_event_bus_arns
    }
  }
  dynamic "statement" {
    for_each = var.securityhub_sink ? [1] : []
    content {
      sid       = "SinkSecurityHub"
      actions   = ["securityhub:BatchImportFindings"]
      resources = ["arn:${local.partition}:securityhub:${local.region}:${local.account_id}:product/${local.account_id}/default"]
    }
  }
}

data "aws_iam_policy_document" "streamer" {
  source_policy_documents = [data.aws_iam_policy_document.sinks.json]

  statement {
    sid = "ConsumeQueue"
    # DeleteMessageBatch and ChangeMessageVisibilityBatch authorise as
    # DeleteMessage and ChangeMessageVisibility.
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.events.arn]
  }
  statement {
    sid = "ReadSessions"
    # Query: both GSIs, and the readiness probe. Scan: the session replica's
    # load and re-scans of the table, and the periodic read of gsi-user's
    # user attribute for the raw-name directory (never per event).
    actions   = ["dynamodb:Query", "dynamodb:Scan"]
    resources = local.table_resources
  }
  dynamic "statement" {
    for_each = local.session_stream ? [1] : []
    content {
      sid = "FollowSessionStream"
      # The replica's stream follower (--session-stream): DescribeStream for
      # the shards (and their children after a reshard), GetShardIterator and
      # GetRecords to read each shard.
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"]
      resources = local.stream_resources
    }
  }
  dynamic "statement" {
    for_each = local.session_stream ? [1] : []
    content {
      sid       = "ListSessionStreams"
      actions   = ["dynamodb:ListStreams"]
      resources = ["*"] # ListStreams supports no resource-level permissions.
    }
  }
  dynamic "statement" {
    for_each = var.verdict_log == null ? [] : [local.verdict_log_prefix == "" ? "*" : "${local.verdict_log_prefix}/*"]
    content {
      sid       = "WriteVerdictLog"
      actions   = ["s3:PutObject"]
      resources = ["arn:${local.partition}:s3:::${local.verdict_log_bucket}/${statement.value}"]
    }
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptQueue"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
  dynamic "statement" {
    for_each = var.trail_bucket_arn == null ? [] : [var.trail_bucket_arn]
    content {
      sid       = "ReadTrailObjects"
      actions   = ["s3:GetObject"]
      resources = ["${statement.value}/AWSLogs/*"]
    }
  }
}

resource "aws_iam_role_policy" "streamer" {
  name   = "${var.name_prefix}-streamer"
  role   = aws_iam_role.streamer.id
  policy = data.aws_iam_policy_document.streamer.json

  lifecycle {
    # The grants cover the streams of session_table_name only.
    precondition {
      condition     = !local.session_stream || startswith(local.session_stream_arn, "${local.session_table_arn}/stream/")
      error_message = "session_stream_arn must be a stream of the session table (session_table_name) in this account and region."
    }
  }
}

# Backfill: CloudTrail LookupEvents, the trail archive, the session table,
# (multi-account) the member-account role, and the same sinks.
data "aws_iam_policy_document" "backfill_assume" {
  count = length(var.backfill_trusted_principal_arns) == 0 ? 0 : 1
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.backfill_trusted_principal_arns
    }
  }
}

resource "aws_iam_role" "backfill" {
  count              = length(var.backfill_trusted_principal_arns) == 0 ? 0 : 1
  name               = "${var.name_prefix}-backfill"
  assume_role_policy = data.aws_iam_policy_document.backfill_assume[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "backfill" {
  source_policy_documents = [data.aws_iam_policy_document.sinks.json]

  statement {
    sid       = "LookupEvents"
    actions   = ["cloudtrail:LookupEvents"]
    resources = ["*"] # LookupEvents supports no resource-level permissions.
  }
  statement {
    sid       = "ReadSessions"
    actions   = ["dynamodb:Query", "dynamodb:Scan"]
    resources = local.table_resources
  }
  statement {
    sid       = "ListRegions" # --regions all
    actions   = ["account:ListRegions"]
    resources = ["*"]
  }
  dynamic "statement" {
    for_each = var.trail_bucket_arn == null ? [] : [var.trail_bucket_arn]
    content {
      sid       = "ListTrailArchive"
      actions   = ["s3:ListBucket"]
      resources = [statement.value]
    }
  }
  dynamic "statement" {
    for_each = var.trail_bucket_arn == null ? [] : [var.trail_bucket_arn]
    content {
      sid       = "ReadTrailArchive"
      actions   = ["s3:GetObject"]
      resources = ["${statement.value}/AWSLogs/*"]
    }
  }
  dynamic "statement" {
    for_each = var.backfill_member_role_name == null ? [] : [var.backfill_member_role_name]
    content {
      sid       = "MemberAccounts"
      actions   = ["sts:AssumeRole"]
      resources = ["arn:${local.partition}:iam::*:role/${statement.value}"]
    }
  }
  dynamic "statement" {
    for_each = var.backfill_member_role_name == null ? [] : [1]
    content {
      sid       = "ListOrganizationAccounts"
      actions   = ["organizations:ListAccounts"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "backfill" {
  count  = length(var.backfill_trusted_principal_arns) == 0 ? 0 : 1
  name   = "${var.name_prefix}-backfill"
  role   = aws_iam_role.backfill[0].id
  policy = data.aws_iam_policy_document.backfill.json
}
