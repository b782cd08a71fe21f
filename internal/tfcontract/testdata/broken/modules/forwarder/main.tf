variable "event_names" {
  type    = list(string)
  default = ["AssumeRole", "AssumeRoleWithSAML"]
}

resource "aws_cloudwatch_event_rule" "sts" {
  name  = "forward"
  state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  event_pattern = jsonencode({
    source      = ["aws.sts"]
    detail-type = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource = ["sts.amazonaws.com"]
      eventName   = var.event_names
    }
  })
}
