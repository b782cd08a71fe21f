output "queue_url" {
  description = "URL of the event queue (the streamer's --queue-url)."
  value       = aws_sqs_queue.events.url
}

output "queue_arn" {
  description = "ARN of the event queue."
  value       = aws_sqs_queue.events.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "rule_arn" {
  description = "ARN of the EventBridge rule that feeds the queue."
  value       = aws_cloudwatch_event_rule.sts.arn
}

output "pipeline_rule_arn" {
  description = "ARN of the EventBridge rule that sends changes to the pipeline to the queue, when pipeline_events is set."
  value       = one(aws_cloudwatch_event_rule.pipeline[*].arn)
}

output "streamer_role_arn" {
  description = "Role of the streamer (ECS task role or Lambda execution role)."
  value       = aws_iam_role.streamer.arn
}

output "backfill_role_arn" {
  description = "Role for the backfill, when backfill_trusted_principal_arns is set."
  value       = one(aws_iam_role.backfill[*].arn)
}

output "session_table_arn" {
  description = "ARN of the session table (created here or Sentinel's)."
  value       = local.session_table_arn
}

output "session_table_stream_arn" {
  description = "ARN of the stream of the session table created here (create_session_table), else null."
  value       = one(aws_dynamodb_table.sessions[*].stream_arn)
}

output "session_stream_arn" {
  description = "The stream the streamer's replica follows (--session-stream); \"\": none, it re-scans the table."
  value       = local.session_stream_arn
}

output "log_group_name" {
  description = "Log group of the streamer (ECS mode)."
  value       = aws_cloudwatch_log_group.streamer.name
}

output "streamer_environment" {
  description = "SESSIONWATCH_ variables the streamer runs with; reuse them to run it elsewhere."
  value       = local.streamer_environment
}
