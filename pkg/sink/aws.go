package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/time/rate"
)

// Service limits the AWS sinks respect.
const (
	SQSMaxPerCall         = 10
	SQSMaxMessageBytes    = 256 * 1024 // a queue's classic maximum; larger queues accept up to 1 MiB
	SQSMaxCallBytes       = 1024 * 1024
	SNSMaxPerCall         = 10
	SNSMaxCallBytes       = 256 * 1024 // messages and attributes of one PublishBatch
	EventBridgeMaxPerCall = 10
	EventBridgeMaxBytes   = 256 * 1024 // one PutEvents request
	SecurityHubMaxPerCall = ASFFMaxPerCall
)

// Narrow consumer-side interfaces: the one call each sink makes.
type (
	sqsAPI interface {
		SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	}
	snsAPI interface {
		PublishBatch(context.Context, *sns.PublishBatchInput, ...func(*sns.Options)) (*sns.PublishBatchOutput, error)
	}
	eventBridgeAPI interface {
		PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
	}
	securityHubAPI interface {
		BatchImportFindings(context.Context, *securityhub.BatchImportFindingsInput, ...func(*securityhub.Options)) (*securityhub.BatchImportFindingsOutput, error)
	}
)

// attrs are the message attributes of SQS and SNS messages, for routing
// and subscription filter policies without parsing the body.
func attrs(it *item, format Format) map[string]string {
	return map[string]string{
		"finding_id": it.id,
		"category":   it.meta.category,
		"severity":   it.meta.severity,
		"format":     string(format),
	}
}

// attrsSize is what message attributes count towards a message's size:
// names, the data type "String" and values.
func attrsSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len("String") + len(v)
	}
	return n
}

// entryID is a batch entry's id: its position, so two copies of one
// finding in a call never collide.
func entryID(i int) string { return strconv.Itoa(i) }

// entryIndex maps a batch entry id back to its position.
func entryIndex(id *string, n int) (int, bool) {
	i, err := strconv.Atoi(aws.ToString(id))
	return i, err == nil && i >= 0 && i < n
}

// --- SQS ---

type sqsSender struct {
	api    sqsAPI
	url    string
	fifo   bool
	format Format
}

func (s *sqsSender) limits() callLimits {
	return callLimits{
		maxItems: SQSMaxPerCall, maxBytes: SQSMaxCallBytes, maxItemBytes: SQSMaxMessageBytes,
		size: func(it *item) int { return len(it.body) + attrsSize(attrs(it, s.format)) },
	}
}

func (s *sqsSender) send(ctx context.Context, items []*item) error {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.url)}
	for i, it := range items {
		e := sqstypes.SendMessageBatchRequestEntry{
			Id: aws.String(entryID(i)), MessageBody: aws.String(string(it.body)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{},
		}
		for k, v := range attrs(it, s.format) {
			if v != "" {
				e.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
			}
		}
		if s.fifo {
			e.MessageGroupId = aws.String(groupID(it))
			e.MessageDeduplicationId = aws.String(it.id)
		}
		in.Entries = append(in.Entries, e)
	}
	out, err := s.api.SendMessageBatch(ctx, in)
	if err != nil {
		return err
	}
	ok := make([]*string, 0, len(out.Successful))
	for _, e := range out.Successful {
		ok = append(ok, e.Id)
	}
	failed := map[*string]error{}
	for _, f := range out.Failed {
		failed[f.Id] = &ItemError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), Retryable: !f.SenderFault}
	}
	return markResults(items, ok, failed)
}

// groupID orders FIFO messages per account.
func groupID(it *item) string {
	if it.meta.account != "" {
		return it.meta.account
	}
	return "sessionwatch"
}

// markResults applies a batch response to items. An entry the response
// names neither successful nor failed is failed too (retryable): nothing
// counts as delivered without the service saying so.
func markResults(items []*item, successful []*string, failed map[*string]error) error {
	seen := make([]bool, len(items))
	for _, id := range successful {
		i, ok := entryIndex(id, len(items))
		if !ok {
			return fmt.Errorf("response names unknown entry %q", aws.ToString(id))
		}
		seen[i] = true
	}
	for id, err := range failed {
		i, ok := entryIndex(id, len(items))
		if !ok {
			return fmt.Errorf("response names unknown entry %q", aws.ToString(id))
		}
		items[i].err, seen[i] = err, true
	}
	for i, it := range items {
		if !seen[i] {
			it.err = &ItemError{Code: "NoResult", Message: "the service reported no result for this entry", Retryable: true}
		}
	}
	return nil
}

// --- SNS ---

type snsSender struct {
	api    snsAPI
	topic  string
	fifo   bool
	format Format
}

func (s *snsSender) limits() callLimits {
	return callLimits{
		maxItems: SNSMaxPerCall, maxBytes: SNSMaxCallBytes, maxItemBytes: SNSMaxCallBytes,
		size: func(it *item) int { return len(it.body) + attrsSize(attrs(it, s.format)) },
	}
}

func (s *snsSender) send(ctx context.Context, items []*item) error {
	in := &sns.PublishBatchInput{TopicArn: aws.String(s.topic)}
	for i, it := range items {
		e := snstypes.PublishBatchRequestEntry{
			Id: aws.String(entryID(i)), Message: aws.String(string(it.body)),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{},
		}
		for k, v := range attrs(it, s.format) {
			if v != "" {
				e.MessageAttributes[k] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
			}
		}
		if s.fifo {
			e.MessageGroupId = aws.String(groupID(it))
			e.MessageDeduplicationId = aws.String(it.id)
		}
		in.PublishBatchRequestEntries = append(in.PublishBatchRequestEntries, e)
	}
	out, err := s.api.PublishBatch(ctx, in)
	if err != nil {
		return err
	}
	ok := make([]*string, 0, len(out.Successful))
	for _, e := range out.Successful {
		ok = append(ok, e.Id)
	}
	failed := map[*string]error{}
	for _, f := range out.Failed {
		failed[f.Id] = &ItemError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), Retryable: !f.SenderFault}
	}
	return markResults(items, ok, failed)
}

// --- EventBridge ---

type eventBridgeSender struct {
	api        eventBridgeAPI
	bus        string
	source     string
	detailType string
}

// ebEntrySize follows EventBridge's PutEvents entry size calculation: Time
// (14 bytes), Source, DetailType, Detail and each Resource, in UTF-8 bytes.
func (s *eventBridgeSender) entrySize(it *item) int {
	n := 14 + len(s.source) + len(s.detailType) + len(it.body)
	for _, r := range ebResources(it) {
		n += len(r)
	}
	return n
}

func ebResources(it *item) []string {
	if strings.HasPrefix(it.meta.roleARN, "arn:") {
		return []string{it.meta.roleARN}
	}
	return nil
}

func (s *eventBridgeSender) limits() callLimits {
	return callLimits{maxItems: EventBridgeMaxPerCall, maxBytes: EventBridgeMaxBytes, maxItemBytes: EventBridgeMaxBytes, size: s.entrySize}
}

var ebRetryableCodes = map[string]bool{"InternalFailure": true, "ThrottlingException": true, "InternalException": true}

func (s *eventBridgeSender) send(ctx context.Context, items []*item) error {
	in := &eventbridge.PutEventsInput{}
	for _, it := range items {
		e := ebtypes.PutEventsRequestEntry{
			EventBusName: aws.String(s.bus), Source: aws.String(s.source), DetailType: aws.String(s.detailType),
			Detail: aws.String(string(it.body)), Resources: ebResources(it),
		}
		if !it.meta.time.IsZero() {
			t := it.meta.time
			e.Time = &t
		}
		in.Entries = append(in.Entries, e)
	}
	out, err := s.api.PutEvents(ctx, in)
	if err != nil {
		return err
	}
	// Result entries are positional: the i-th answers the i-th request entry.
	if len(out.Entries) != len(items) {
		return fmt.Errorf("PutEvents answered %d entries for %d events", len(out.Entries), len(items))
	}
	for i, e := range out.Entries {
		if code := aws.ToString(e.ErrorCode); code != "" {
			items[i].err = &ItemError{Code: code, Message: aws.ToString(e.ErrorMessage), Retryable: ebRetryableCodes[code]}
		} else if aws.ToString(e.EventId) == "" {
			items[i].err = &ItemError{Code: "NoEventId", Message: "no event id and no error", Retryable: true}
		}
	}
	return nil
}

// --- Security Hub ---

type securityHubSender struct {
	api     securityHubAPI
	limiter *rate.Limiter
}

func (s *securityHubSender) limits() callLimits {
	return callLimits{maxItems: SecurityHubMaxPerCall, maxItemBytes: ASFFMaxFindingBytes}
}

var shRetryableCodes = map[string]bool{"InternalException": true, "InternalFailure": true, "InternalError": true, "ThrottlingException": true, "LimitExceededException": true, "TooManyRequestsException": true}

func (s *securityHubSender) send(ctx context.Context, items []*item) error {
	in := &securityhub.BatchImportFindingsInput{}
	byID := map[string][]*item{}
	for _, it := range items {
		var a asffFinding
		if err := json.Unmarshal(it.body, &a); err != nil {
			return fmt.Errorf("decode ASFF finding: %w", err)
		}
		in.Findings = append(in.Findings, a.sdk())
		byID[a.ID] = append(byID[a.ID], it)
	}
	if err := s.limiter.Wait(ctx); err != nil {
		return err
	}
	out, err := s.api.BatchImportFindings(ctx, in)
	if err != nil {
		return err
	}
	for _, f := range out.FailedFindings {
		code := aws.ToString(f.ErrorCode)
		for _, it := range byID[aws.ToString(f.Id)] {
			it.err = &ItemError{Code: code, Message: aws.ToString(f.ErrorMessage), Retryable: shRetryableCodes[code]}
		}
	}
	if n := aws.ToInt32(out.FailedCount); int(n) != len(out.FailedFindings) {
		// A count without the findings: which ones failed is unknown, so all
		// unaccounted ones are retried (the finding id makes it idempotent).
		for _, it := range items {
			if it.err == nil && n > 0 {
				it.err = &ItemError{Code: "Unaccounted", Message: "FailedCount without FailedFindings", Retryable: true}
			}
		}
	}
	return nil
}
