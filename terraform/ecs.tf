# mode = "ecs": the streamer as a Fargate service, scaled on the queue's
# backlog per task and on the age of its oldest message.

locals {
  ecs = var.mode == "ecs" ? 1 : 0
}

data "aws_iam_policy_document" "execution_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  count              = local.ecs
  name               = "${var.name_prefix}-streamer-execution"
  assume_role_policy = data.aws_iam_policy_document.execution_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  count      = local.ecs
  role       = aws_iam_role.execution[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = local.ecs == 1 && length(var.sink_secret_arns) > 0 ? 1 : 0
  name  = "${var.name_prefix}-streamer-secrets"
  role  = aws_iam_role.execution[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "secretsmanager:GetSecretValue", Resource = values(var.sink_secret_arns) }]
  })
}

resource "aws_ecs_task_definition" "streamer" {
  count                    = local.ecs
  family                   = "${var.name_prefix}-streamer"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution[0].arn
  task_role_arn            = aws_iam_role.streamer.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name                   = "streamer"
    image                  = var.container_image
    essential              = true
    command                = ["streamer"]
    readonlyRootFilesystem = true
    user                   = "65532:65532"
    # SIGTERM first: the streamer drains and exits within its
    # --shutdown-timeout (default 30s), inside this stop timeout.
    stopTimeout  = 60
    portMappings = [{ containerPort = 9090, protocol = "tcp" }]
    environment  = [for k, v in local.streamer_environment : { name = k, value = v }]
    secrets      = [for k, v in var.sink_secret_arns : { name = k, valueFrom = v }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.streamer.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "streamer"
      }
    }
  }])
  tags = var.tags
}

resource "aws_ecs_service" "streamer" {
  count           = local.ecs
  name            = "${var.name_prefix}-streamer"
  cluster         = var.ecs_cluster_arn
  task_definition = aws_ecs_task_definition.streamer[0].arn
  desired_count   = var.min_tasks
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  lifecycle {
    # The autoscaler owns the task count.
    ignore_changes = [desired_count]

    precondition {
      condition     = var.container_image != null && var.ecs_cluster_arn != null && length(var.subnet_ids) > 0
      error_message = "mode = \"ecs\" needs container_image, ecs_cluster_arn and subnet_ids."
    }
  }
  tags = var.tags
}

resource "aws_appautoscaling_target" "streamer" {
  count              = local.ecs
  service_namespace  = "ecs"
  resource_id        = "service/${element(split("/", var.ecs_cluster_arn), 1)}/${aws_ecs_service.streamer[0].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

# Backlog per task: visible messages divided by running tasks.
resource "aws_appautoscaling_policy" "backlog" {
  count              = local.ecs
  name               = "${var.name_prefix}-streamer-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.streamer[0].service_namespace
  resource_id        = aws_appautoscaling_target.streamer[0].resource_id
  scalable_dimension = aws_appautoscaling_target.streamer[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.scale_out_visible_messages
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      metrics {
        id          = "visible"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.events.name
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = element(split("/", var.ecs_cluster_arn), 1)
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.streamer[0].name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_task"
        expression  = "visible / IF(tasks > 0, tasks, 1)"
        label       = "Visible messages per task"
        return_data = true
      }
    }
  }
}

# Age of the oldest message: one more task whenever the queue falls behind.
resource "aws_appautoscaling_policy" "age" {
  count              = local.ecs
  name               = "${var.name_prefix}-streamer-age"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.streamer[0].service_namespace
  resource_id        = aws_appautoscaling_target.streamer[0].resource_id
  scalable_dimension = aws_appautoscaling_target.streamer[0].scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 120
    metric_aggregation_type = "Maximum"
    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = 1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "scale_on_age" {
  count               = local.ecs
  alarm_name          = "${var.name_prefix}-streamer-falling-behind"
  alarm_description   = "Scale the streamer out: the oldest event waits longer than the orphan grace plus a minute."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.events.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.orphan_grace_seconds + 60
  alarm_actions       = [aws_appautoscaling_policy.age[0].arn]
  tags                = var.tags
}
