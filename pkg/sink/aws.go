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

// --- SQS and SNS ---

// messageSender sends findings as SQS messages or SNS notifications in
// batches of E, the service's request entry: build makes an entry, call
// makes the request and reads which entries the service accepted and which
// it failed.
type messageSender[E any] struct {
	fifo   bool
	format Format
	lim    callLimits
	build  func(batchEntry) E
	call   func(context.Context, []E) (successful []*string, failed map[*string]error, err error)
}

// batchEntry is what an SQS or SNS batch entry carries, before the
// service's own entry type is built from it.
type batchEntry struct {
	id, body         *string
	attrs            map[string]string // attributes with a value
	groupID, dedupID *string           // set for a FIFO destination only
}

func (s *messageSender[E]) limits() callLimits { return s.lim }

// send makes one entry an item: its id is the item's position (see
// markResults), its attributes those with a value, and a FIFO destination
// gets a group (the account) and the finding id to deduplicate on.
func (s *messageSender[E]) send(ctx context.Context, items []*item) error {
	entries := make([]E, 0, len(items))
	for i, it := range items {
		e := batchEntry{id: aws.String(entryID(i)), body: aws.String(string(it.body)), attrs: map[string]string{}}
		for k, v := range attrs(it, s.format) {
			if v != "" {
				e.attrs[k] = v
			}
		}
		if s.fifo {
			e.groupID, e.dedupID = aws.String(groupID(it)), aws.String(it.id)
		}
		entries = append(entries, s.build(e))
	}
	ok, failed, err := s.call(ctx, entries)
	if err != nil {
		return err
	}
	return markResults(items, ok, failed)
}

// newSQSSender sends to the queue at url with SendMessageBatch.
func newSQSSender(api sqsAPI, url string, format Format) sender {
	call := func(ctx context.Context, entries []sqstypes.SendMessageBatchRequestEntry) ([]*string, map[*string]error, error) {
		out, err := api.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return nil, nil, err
		}
		return entryIDs(out.Successful, func(e sqstypes.SendMessageBatchResultEntry) *string { return e.Id }),
			failedEntries(out.Failed, func(f sqstypes.BatchResultErrorEntry) (*string, *string, *string, bool) {
				return f.Id, f.Code, f.Message, f.SenderFault
			}), nil
	}
	return &messageSender[sqstypes.SendMessageBatchRequestEntry]{
		fifo: strings.HasSuffix(url, ".fifo"), format: format, build: sqsEntry, call: call,
		lim: messageLimits(format, SQSMaxPerCall, SQSMaxMessageBytes, SQSMaxCallBytes),
	}
}

// newSNSSender publishes to the topic with PublishBatch.
func newSNSSender(api snsAPI, topic string, format Format) sender {
	call := func(ctx context.Context, entries []snstypes.PublishBatchRequestEntry) ([]*string, map[*string]error, error) {
		out, err := api.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: entries})
		if err != nil {
			return nil, nil, err
		}
		return entryIDs(out.Successful, func(e snstypes.PublishBatchResultEntry) *string { return e.Id }),
			failedEntries(out.Failed, func(f snstypes.BatchResultErrorEntry) (*string, *string, *string, bool) {
				return f.Id, f.Code, f.Message, f.SenderFault
			}), nil
	}
	return &messageSender[snstypes.PublishBatchRequestEntry]{
		fifo: strings.HasSuffix(topic, ".fifo"), format: format, build: snsEntry, call: call,
		lim: messageLimits(format, SNSMaxPerCall, SNSMaxCallBytes, SNSMaxCallBytes),
	}
}

func sqsEntry(e batchEntry) sqstypes.SendMessageBatchRequestEntry {
	return sqstypes.SendMessageBatchRequestEntry{
		Id: e.id, MessageBody: e.body, MessageGroupId: e.groupID, MessageDeduplicationId: e.dedupID,
		MessageAttributes: stringAttrs(e.attrs, func(v *string) sqstypes.MessageAttributeValue {
			return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: v}
		}),
	}
}

func snsEntry(e batchEntry) snstypes.PublishBatchRequestEntry {
	return snstypes.PublishBatchRequestEntry{
		Id: e.id, Message: e.body, MessageGroupId: e.groupID, MessageDeduplicationId: e.dedupID,
		MessageAttributes: stringAttrs(e.attrs, func(v *string) snstypes.MessageAttributeValue {
			return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: v}
		}),
	}
}

// stringAttrs converts attributes to a service's String-typed attribute
// values.
func stringAttrs[V any](m map[string]string, value func(*string) V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = value(aws.String(v))
	}
	return out
}

// entryIDs lists the entry ids of a batch response's successful entries.
func entryIDs[T any](entries []T, id func(T) *string) []*string {
	out := make([]*string, 0, len(entries))
	for _, e := range entries {
		out = append(out, id(e))
	}
	return out
}

// failedEntries maps the failed entries of an SQS or SNS batch response,
// read by fields (id, code, message, sender's fault), to their errors: an
// entry failed by the sender's fault is not retried.
func failedEntries[T any](entries []T, fields func(T) (id, code, message *string, senderFault bool)) map[*string]error {
	failed := make(map[*string]error, len(entries))
	for _, e := range entries {
		id, code, message, senderFault := fields(e)
		failed[id] = &ItemError{Code: aws.ToString(code), Message: aws.ToString(message), Retryable: !senderFault}
	}
	return failed
}

// messageLimits are the call limits of SQS and SNS: a message's size
// counts its body and its attributes.
func messageLimits(format Format, maxItems, maxItemBytes, maxCallBytes int) callLimits {
	return callLimits{
		maxItems: maxItems, maxBytes: maxCallBytes, maxItemBytes: maxItemBytes,
		size: func(it *item) int { return len(it.body) + attrsSize(attrs(it, format)) },
	}
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
