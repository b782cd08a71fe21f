package tfcontract

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// statement is one Allow statement of an aws_iam_policy_document.
type statement struct {
	sid       string
	actions   []string
	resources string // the expression as written
	// when is the for_each of a dynamic statement: the statement exists
	// only when the input it depends on is set. "" is always.
	when string
}

// policyStatements returns the Allow statements of the policy document
// data source name, with those of the documents it merges through
// source_policy_documents.
func (m *tfDir) policyStatements(name string) ([]statement, error) {
	doc, err := m.block("data", "aws_iam_policy_document", name)
	if err != nil {
		return nil, err
	}
	var out []statement
	if a, ok := doc.Body.Attributes["source_policy_documents"]; ok {
		tuple, ok := a.Expr.(*hclsyntax.TupleConsExpr)
		if !ok {
			return nil, fmt.Errorf("policy %s: source_policy_documents is not a list", name)
		}
		for _, e := range tuple.Exprs {
			ref := strings.Split(traversal(e), ".")
			if len(ref) != 4 || ref[0] != "data" || ref[1] != "aws_iam_policy_document" || ref[3] != "json" {
				return nil, fmt.Errorf("policy %s: source_policy_documents holds %q, want data.aws_iam_policy_document.NAME.json", name, m.text(e))
			}
			more, err := m.policyStatements(ref[2])
			if err != nil {
				return nil, err
			}
			out = append(out, more...)
		}
	}
	for _, b := range doc.Body.Blocks {
		var (
			body *hclsyntax.Body
			when string
		)
		switch {
		case b.Type == "statement":
			body = b.Body
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == "statement":
			content := nested(b, "content")
			fe, ok := b.Body.Attributes["for_each"]
			if len(content) != 1 || !ok {
				return nil, fmt.Errorf("policy %s: dynamic statement without for_each and one content", name)
			}
			body, when = content[0].Body, m.text(fe.Expr)
		default:
			continue
		}
		st, allow, err := m.statement(name, body)
		if err != nil {
			return nil, err
		}
		if allow {
			st.when = when
			out = append(out, st)
		}
	}
	return out, nil
}

func (m *tfDir) statement(policy string, body *hclsyntax.Body) (st statement, allow bool, err error) {
	if a, ok := body.Attributes["sid"]; ok {
		_ = literal(a.Expr, &st.sid)
	}
	effect := "Allow"
	if a, ok := body.Attributes["effect"]; ok {
		if err := literal(a.Expr, &effect); err != nil {
			return st, false, fmt.Errorf("policy %s statement %q: effect: %w", policy, st.sid, err)
		}
	}
	if _, ok := body.Attributes["not_actions"]; ok {
		return st, false, fmt.Errorf("policy %s statement %q: not_actions cannot be checked; list the actions", policy, st.sid)
	}
	a, ok := body.Attributes["actions"]
	if !ok {
		return st, false, fmt.Errorf("policy %s statement %q: no actions", policy, st.sid)
	}
	if err := literal(a.Expr, &st.actions); err != nil {
		return st, false, fmt.Errorf("policy %s statement %q: actions must be a literal list: %w", policy, st.sid, err)
	}
	for _, act := range st.actions {
		if strings.Contains(act, "*") {
			return st, false, fmt.Errorf("policy %s statement %q: wildcard action %q grants more than the code calls", policy, st.sid, act)
		}
	}
	if r, ok := body.Attributes["resources"]; ok {
		st.resources = m.text(r.Expr)
	}
	return st, effect == "Allow", nil
}

// granted maps each action the statements allow to the statements'
// descriptions.
func granted(sts []statement) map[string][]string {
	out := map[string][]string{}
	for _, st := range sts {
		desc := fmt.Sprintf("%q", st.sid)
		if st.when != "" {
			desc += " (when " + st.when + ")"
		}
		for _, a := range st.actions {
			out[a] = append(out[a], desc)
		}
	}
	return out
}

// iamAction maps each AWS SDK operation the code calls ("service.Operation",
// the service package's name) to the IAM action that authorises it; "" is
// an operation that needs none. A call that is not listed fails the
// contract test: add it here, with its action, and grant that action in
// terraform/iam.tf.
func iamAction() map[string]string {
	return map[string]string{
		// The streamer's queue. Batch calls authorise as the single call.
		"sqs.ReceiveMessage":               "sqs:ReceiveMessage",
		"sqs.DeleteMessageBatch":           "sqs:DeleteMessage",
		"sqs.ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
		"sqs.GetQueueAttributes":           "sqs:GetQueueAttributes",
		// The session table: Query on both GSIs; Scan of gsi-user's user
		// attribute for the directory of raw names.
		"dynamodb.Query": "dynamodb:Query",
		"dynamodb.Scan":  "dynamodb:Scan",
		// The session replica's stream follower (--session-stream): the
		// streams client's calls authorise as dynamodb: actions on the
		// table's stream ARN (ListStreams on "*").
		"dynamodbstreams.DescribeStream":   "dynamodb:DescribeStream",
		"dynamodbstreams.GetShardIterator": "dynamodb:GetShardIterator",
		"dynamodbstreams.GetRecords":       "dynamodb:GetRecords",
		"dynamodbstreams.ListStreams":      "dynamodb:ListStreams",
		// CloudTrail log objects (S3 notifications, the trail archive).
		"s3.GetObject":     "s3:GetObject",
		"s3.ListObjectsV2": "s3:ListBucket",
		// The verdict log (streamer --verdict-log).
		"s3.PutObject": "s3:PutObject",
		// Sinks.
		"sqs.SendMessageBatch":            "sqs:SendMessage",
		"sns.PublishBatch":                "sns:Publish",
		"eventbridge.PutEvents":           "events:PutEvents",
		"securityhub.BatchImportFindings": "securityhub:BatchImportFindings",
		// The backfill.
		"cloudtrail.LookupEvents":    "cloudtrail:LookupEvents",
		"account.ListRegions":        "account:ListRegions",
		"organizations.ListAccounts": "organizations:ListAccounts",
		"sts.AssumeRole":             "sts:AssumeRole",
		"sts.GetCallerIdentity":      "", // allowed to every principal
	}
}

// requiredActions maps the IAM action of every call to the calls that need
// it; a call without a mapping is an error.
func requiredActions(calls []sdkCall) (map[string][]sdkCall, error) {
	table := iamAction()
	out := map[string][]sdkCall{}
	var unmapped []string
	for _, c := range calls {
		action, ok := table[c.op()]
		switch {
		case !ok:
			unmapped = append(unmapped, fmt.Sprintf("%s (%s)", c.op(), c.pos))
		case action != "":
			out[action] = append(out[action], c)
		}
	}
	if len(unmapped) > 0 {
		slices.Sort(unmapped)
		return out, fmt.Errorf("SDK calls with no IAM action in iamAction(): %s", strings.Join(unmapped, ", "))
	}
	return out, nil
}

// streamFollowerCalls are the calls the session replica makes to follow the
// table's stream (--session-stream: pkg/sessions' follower, through the
// dynamodbstreams client): DescribeStream for the shards and their children
// after a reshard, GetShardIterator and GetRecords to read each shard. The
// scanner finds them in pkg/sessions/stream.go; the contract also names them
// here, so that a change the scanner cannot follow (a call moved behind
// another interface) still leaves the streamer required to hold them.
func streamFollowerCalls() []sdkCall {
	const pos = "the replica's stream follower (--session-stream)"
	return []sdkCall{
		{service: "dynamodbstreams", operation: "DescribeStream", pos: pos},
		{service: "dynamodbstreams", operation: "GetShardIterator", pos: pos},
		{service: "dynamodbstreams", operation: "GetRecords", pos: pos},
	}
}

// withCalls adds to calls those of more whose operation it lacks, sorted as
// sdkCalls sorts.
func withCalls(calls []sdkCall, more ...sdkCall) []sdkCall {
	out := slices.Clone(calls)
	for _, c := range more {
		if !slices.ContainsFunc(out, func(have sdkCall) bool { return have.op() == c.op() }) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b sdkCall) int { return strings.Compare(a.op(), b.op()) })
	return out
}
