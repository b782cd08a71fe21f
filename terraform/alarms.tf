# Alarms a security team pages on: a message reached the DLQ (an event was
# not classified), or events are waiting too long (the streamer is down).

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name_prefix}-dlq-not-empty"
  alarm_description   = "sessionwatch could not process a message: inspect ${aws_sqs_queue.dlq.name} and redrive it."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  alarm_name          = "${var.name_prefix}-events-waiting"
  alarm_description   = "Events wait longer than ${var.oldest_message_alarm_seconds}s on ${aws_sqs_queue.events.name}: the streamer is down or falling behind."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.events.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_message_alarm_seconds
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

# The streamer writes sessionwatch_streamer_silent_regions once a minute as
# a CloudWatch embedded metric format log line (namespace sessionwatch,
# metric SilentRegions, dimension QueueName): CloudWatch Logs extracts it
# from the log group, with no agent and no cloudwatch:PutMetricData grant.
# Missing data is breaching: a streamer that writes no log line sees
# nothing either. Replicas share the queue, so each sees part of the
# traffic and may count a quiet pair as silent that another replica saw:
# the alarm takes the Minimum over them (every replica counts a silent
# pair). In Prometheus the exact per-pair answer is
# time() - max by (account, region) (sessionwatch_streamer_last_event_timestamp_seconds).
resource "aws_cloudwatch_metric_alarm" "silent_regions" {
  count               = var.mode == "lambda" ? 0 : 1 # a Lambda streamer keeps no silence state
  alarm_name          = "${var.name_prefix}-silent-regions"
  alarm_description   = "An expected account and region sent no AssumeRole event to sessionwatch for longer than ${var.silence_after_seconds}s (or the streamer reports nothing): a rule disabled, a forwarder removed, a region missing. The streamer's 'silence:' log lines name them."
  namespace           = "sessionwatch"
  metric_name         = "SilentRegions"
  dimensions          = { QueueName = aws_sqs_queue.events.name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}

# EventBridge could not deliver to the queue (its policy changed, say): the
# events go to the DLQ at best.
resource "aws_cloudwatch_metric_alarm" "failed_invocations" {
  for_each = merge(
    { sts = aws_cloudwatch_event_rule.sts.name },
    var.pipeline_events ? { pipeline = aws_cloudwatch_event_rule.pipeline[0].name } : {},
  )
  alarm_name          = "${var.name_prefix}-${each.key}-rule-failed-invocations"
  alarm_description   = "EventBridge rule ${each.value} failed to deliver events to ${aws_sqs_queue.events.name}: check the queue policy and the DLQ."
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags
}
