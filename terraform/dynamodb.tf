# Sentinel's session table, for deployments where sessionwatch owns it (a
# test account, or a new gateway). gsi-source-identity is what sessionwatch
# adds: it serves the exact SourceIdentity match. Attribute names and index
# names must match pkg/sessions (checked by internal/tfcontract).
#
# The stream feeds the session replica (--session-stream): NEW_IMAGE, because
# the follower applies an INSERT or MODIFY from the item's new image and a
# REMOVE by its key, and never reads the old image; NEW_AND_OLD_IMAGES would
# double the bytes of every GetRecords for nothing it uses.
resource "aws_dynamodb_table" "sessions" {
  count        = var.create_session_table ? 1 : 0
  name         = var.session_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"

  attribute {
    name = "id"
    type = "S"
  }
  attribute {
    name = "user"
    type = "S"
  }
  attribute {
    name = "created_at"
    type = "S"
  }
  attribute {
    name = "source_identity"
    type = "S"
  }

  global_secondary_index {
    name            = "gsi-user"
    hash_key        = "user"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "gsi-source-identity"
    hash_key        = "source_identity"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}
