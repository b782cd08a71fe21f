variable "name_prefix" {
  description = "Prefix of every resource name (queue, rule, roles, alarms, service)."
  type        = string
  default     = "sessionwatch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 32 lowercase letters, digits and hyphens."
  }
}

variable "event_names" {
  description = "STS calls the EventBridge rule forwards and the streamer classifies. Keep in step with the streamer's --event-names."
  type        = list(string)
  default     = ["AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"]

  validation {
    condition     = length(var.event_names) > 0 && alltrue([for n in var.event_names : contains(["AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot"], n)])
    error_message = "event_names must be a non-empty subset of AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity and AssumeRoot."
  }
}

variable "accounts" {
  description = "Account allowlist passed to the streamer (--accounts): envelopes from other accounts are rejected. Empty: every account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.accounts : can(regex("^[0-9]{12}$", a))])
    error_message = "accounts must be 12-digit AWS account ids."
  }
}

variable "session_table_name" {
  description = "Name of Sentinel's session table."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.session_table_name))
    error_message = "session_table_name must be a valid DynamoDB table name."
  }
}

variable "create_session_table" {
  description = "Create Sentinel's session table here, with gsi-user, gsi-source-identity and TTL. Leave false when Sentinel owns the table; README.md shows how to add gsi-source-identity to it."
  type        = bool
  default     = false
}

variable "session_stream_arn" {
  description = "ARN of the session table's DynamoDB stream (NEW_IMAGE or NEW_AND_OLD_IMAGES), passed to the streamer as --session-stream: its replica follows the stream instead of re-scanning the table. null: the stream of the table created here (create_session_table), else none. \"\": none, the replica re-scans (--replica-refresh). Not with mode = \"lambda\" (the replica is off under Lambda)."
  type        = string
  default     = null

  validation {
    condition     = var.session_stream_arn == null || var.session_stream_arn == "" || can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[a-zA-Z0-9_.-]{3,255}/stream/[^/]+$", var.session_stream_arn))
    error_message = "session_stream_arn must be a DynamoDB stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL), \"\" or null."
  }
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the event queue. The ECS streamer sets and extends its own; in lambda mode a held orphan comes back after it, so it must exceed the Lambda timeout plus the orphan grace."
  type        = number
  default     = 300

  validation {
    condition     = var.queue_visibility_timeout_seconds >= 60 && var.queue_visibility_timeout_seconds <= 43200
    error_message = "queue_visibility_timeout_seconds must be between 60 and 43200."
  }
}

variable "orphan_grace_seconds" {
  description = "How long the streamer holds an orphaned verdict before re-checking the session table (--orphan-grace)."
  type        = number
  default     = 120

  validation {
    condition     = var.orphan_grace_seconds >= 0 && var.orphan_grace_seconds <= 900
    error_message = "orphan_grace_seconds must be between 0 and 900."
  }
}

variable "queue_message_retention_seconds" {
  description = "How long events wait on the queue (and the DLQ keeps poison messages) before SQS drops them."
  type        = number
  default     = 1209600

  validation {
    condition     = var.queue_message_retention_seconds >= 3600 && var.queue_message_retention_seconds <= 1209600
    error_message = "queue_message_retention_seconds must be between 3600 and 1209600 (14 days)."
  }
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the DLQ. An undecodable message is left for this policy; store outages are retried until it, so keep it generous."
  type        = number
  default     = 20

  validation {
    condition     = var.max_receive_count >= 3 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 3 and 1000."
  }
}

variable "kms_key_arn" {
  description = "KMS key for queue encryption. Null: SQS-managed server-side encryption."
  type        = string
  default     = null
}

variable "trail_bucket_arn" {
  description = "ARN of the CloudTrail bucket, when the queue also carries S3 delivery notifications or the backfill reads the archive. Null: no S3 access."
  type        = string
  default     = null
}

variable "organization_id" {
  description = "AWS Organizations id (o-…). When set, accounts of the organization may put events on this region's default bus (forwarded CloudTrail events)."
  type        = string
  default     = null

  validation {
    condition     = var.organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must look like o-abcdefghij."
  }
}

variable "mode" {
  description = "How the streamer runs: ecs (a Fargate service), lambda (an SQS event source mapping), or none (queue, rule and roles only)."
  type        = string
  default     = "ecs"

  validation {
    condition     = contains(["ecs", "lambda", "none"], var.mode)
    error_message = "mode must be ecs, lambda or none."
  }
}

variable "sinks" {
  description = "Where findings go: the streamer's --sink URIs (stdout, sqs:URL, sns:ARN, eventbridge:BUS, securityhub, webhook:URL, hec:URL)."
  type        = list(string)
  default     = ["stdout"]
}

variable "sink_sqs_queue_arns" {
  description = "Queues the sqs: sinks write to (grants sqs:SendMessage)."
  type        = list(string)
  default     = []
}

variable "sink_sns_topic_arns" {
  description = "Topics the sns: sinks publish to (grants sns:Publish)."
  type        = list(string)
  default     = []
}

variable "sink_event_bus_arns" {
  description = "Event buses the eventbridge: sink writes to (grants events:PutEvents)."
  type        = list(string)
  default     = []
}

variable "securityhub_sink" {
  description = "Grant securityhub:BatchImportFindings for the securityhub sink."
  type        = bool
  default     = false
}

variable "sink_secret_arns" {
  description = "Secrets Manager secrets holding sink credentials (HEC token, webhook key), injected into the ECS task as environment variables."
  type        = map(string)
  default     = {}
}

variable "container_image" {
  description = "Streamer image for mode = ecs (built from the repository's Dockerfile)."
  type        = string
  default     = null
}

variable "ecs_cluster_arn" {
  description = "ECS cluster for mode = ecs."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets of the ECS tasks (private subnets with a NAT gateway or VPC endpoints for SQS, DynamoDB, CloudWatch Logs)."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the ECS tasks (egress to AWS APIs only; /metrics is on port 9090)."
  type        = list(string)
  default     = []
}

variable "task_cpu" {
  description = "Fargate CPU units per task."
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.task_cpu)
    error_message = "task_cpu must be 256, 512, 1024, 2048 or 4096."
  }
}

variable "task_memory" {
  description = "Fargate memory (MiB) per task."
  type        = number
  default     = 512

  validation {
    condition     = var.task_memory >= 512 && var.task_memory <= 30720
    error_message = "task_memory must be between 512 and 30720."
  }
}

variable "min_tasks" {
  description = "Fewest streamer tasks (at least 1: the queue must always drain)."
  type        = number
  default     = 1

  validation {
    condition     = var.min_tasks >= 1
    error_message = "min_tasks must be at least 1."
  }
}

variable "max_tasks" {
  description = "Most streamer tasks when scaling on queue depth and age."
  type        = number
  default     = 4

  validation {
    condition     = var.max_tasks >= 1 && var.max_tasks <= 100
    error_message = "max_tasks must be between 1 and 100."
  }
}

variable "scale_out_visible_messages" {
  description = "Visible messages per task the service aims for."
  type        = number
  default     = 1000
}

variable "lambda_package" {
  description = "Path of the zip holding the streamer built as `bootstrap` for mode = lambda (provided.al2023)."
  type        = string
  default     = null
}

variable "lambda_memory_mb" {
  description = "Memory of the Lambda function."
  type        = number
  default     = 256
}

variable "lambda_timeout_seconds" {
  description = "Timeout of the Lambda function; with the orphan grace, less than the queue's visibility timeout."
  type        = number
  default     = 60

  validation {
    condition     = var.lambda_timeout_seconds >= 10 && var.lambda_timeout_seconds <= 900
    error_message = "lambda_timeout_seconds must be between 10 and 900."
  }
}

variable "lambda_batch_size" {
  description = "Messages per Lambda invocation."
  type        = number
  default     = 100

  validation {
    condition     = var.lambda_batch_size >= 1 && var.lambda_batch_size <= 10000
    error_message = "lambda_batch_size must be between 1 and 10000."
  }
}

variable "log_retention_days" {
  description = "Retention of the streamer's log group."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified by the alarms (DLQ not empty, oldest message too old, silent regions, failed rule invocations)."
  type        = list(string)
  default     = []
}

variable "oldest_message_alarm_seconds" {
  description = "Alarm when the oldest message on the queue is older than this: the streamer is down or falling behind."
  type        = number
  default     = 900
}

variable "pipeline_events" {
  description = "Add the second EventBridge rule, which sends changes to this module's rules and queues (DisableRule, DeleteRule, PutRule, PutTargets, RemoveTargets, SetQueueAttributes) to the streamer as pipeline_tampered findings (--pipeline-events)."
  type        = bool
  default     = true
}

variable "silence_after_seconds" {
  description = "An expected account and region with no event for longer counts as silent (--silence-after); the silent-regions alarm fires on any."
  type        = number
  default     = 21600

  validation {
    condition     = var.silence_after_seconds >= 60
    error_message = "silence_after_seconds must be at least 60."
  }
}

variable "expect_regions" {
  description = "Regions that must send events, in each of accounts (--expect-regions); every account and region seen is expected too. List the regions that always have AssumeRole traffic."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.expect_regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$", r))])
    error_message = "expect_regions must be region names such as eu-west-1."
  }
}

variable "verdict_log" {
  description = "s3://BUCKET[/PREFIX] for the streamer's verdict log (--verdict-log), which backfill --reconcile reads; null: none. The streamer role gets s3:PutObject on PREFIX/*."
  type        = string
  default     = null

  validation {
    condition     = var.verdict_log == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^/].*[^/])?/?$", var.verdict_log))
    error_message = "verdict_log must be s3://BUCKET or s3://BUCKET/PREFIX."
  }
}

variable "backfill_trusted_principal_arns" {
  description = "Principals allowed to assume the backfill role. Empty: no backfill role."
  type        = list(string)
  default     = []
}

variable "backfill_member_role_name" {
  description = "Role the backfill assumes in member accounts (--assume-role-name). Null: single-account backfill."
  type        = string
  default     = null
}

variable "extra_environment" {
  description = "More SESSIONWATCH_* variables for the streamer (e.g. SESSIONWATCH_SESSION_RETENTION)."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
