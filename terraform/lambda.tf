# mode = "lambda": the streamer binary as a provided.al2023 function behind
# an SQS event source mapping. It reports per-message failures, so only
# failed or held (orphan grace) messages come back, after the queue's
# visibility timeout.

locals {
  lambda = var.mode == "lambda" ? 1 : 0
}

resource "aws_iam_role_policy_attachment" "lambda_logs" {
  count      = local.lambda
  role       = aws_iam_role.streamer.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_cloudwatch_log_group" "lambda" {
  count             = local.lambda
  name              = "/aws/lambda/${var.name_prefix}-streamer"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "streamer" {
  count            = local.lambda
  function_name    = "${var.name_prefix}-streamer"
  role             = aws_iam_role.streamer.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["x86_64"]
  filename         = var.lambda_package
  source_code_hash = var.lambda_package == null ? null : filebase64sha256(var.lambda_package)
  memory_size      = var.lambda_memory_mb
  timeout          = var.lambda_timeout_seconds

  environment {
    # No queue polling in Lambda: the event source mapping delivers.
    variables = { for k, v in local.streamer_environment : k => v if k != "SESSIONWATCH_QUEUE_URL" }
  }

  lifecycle {
    precondition {
      condition     = var.lambda_package != null
      error_message = "mode = \"lambda\" needs lambda_package."
    }
    # A held orphan is handed back and must not come back before its
    # grace has passed, or it would be held again (and count a receive).
    # The event source mapping deletes the messages: no verdict log, and no
    # long-lived process to report silence (the silent-regions alarm would
    # stay in alarm).
    precondition {
      condition     = var.verdict_log == null
      error_message = "verdict_log needs mode = \"ecs\": under Lambda the event source mapping deletes the messages."
    }
    precondition {
      condition     = var.session_stream_arn == null || var.session_stream_arn == ""
      error_message = "session_stream_arn needs mode = \"ecs\": under Lambda the session replica is off."
    }
    precondition {
      condition     = var.queue_visibility_timeout_seconds > var.lambda_timeout_seconds + var.orphan_grace_seconds
      error_message = "In lambda mode queue_visibility_timeout_seconds must exceed lambda_timeout_seconds plus orphan_grace_seconds."
    }
  }
  depends_on = [aws_cloudwatch_log_group.lambda]
  tags       = var.tags
}

resource "aws_lambda_event_source_mapping" "streamer" {
  count                              = local.lambda
  event_source_arn                   = aws_sqs_queue.events.arn
  function_name                      = aws_lambda_function.streamer[0].arn
  batch_size                         = var.lambda_batch_size
  maximum_batching_window_in_seconds = var.lambda_batch_size > 10 ? 5 : 0
  function_response_types            = ["ReportBatchItemFailures"]
}
