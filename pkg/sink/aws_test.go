package sink

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// sentEntry is an SQS or SNS batch entry as the test compares it.
type sentEntry struct {
	ID, Body, Group, Dedup string
	Attrs                  map[string]string
}

// batchReply is what the fake services answer: entry ids accepted, and
// failed ones with whether the sender is at fault.
type batchReply struct {
	ok     []string
	failed map[string]bool // id -> sender's fault
}

type fakeSQS struct {
	in    *sqs.SendMessageBatchInput
	reply batchReply
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.in = in
	out := &sqs.SendMessageBatchOutput{}
	for _, id := range f.reply.ok {
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: aws.String(id)})
	}
	for id, fault := range f.reply.failed {
		out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String("C" + id), Message: aws.String("m" + id), SenderFault: fault})
	}
	return out, nil
}

func (f *fakeSQS) sent() (target string, entries []sentEntry) {
	for _, e := range f.in.Entries {
		attrs := map[string]string{}
		for k, v := range e.MessageAttributes {
			attrs[k] = aws.ToString(v.DataType) + "=" + aws.ToString(v.StringValue)
		}
		entries = append(entries, sentEntry{aws.ToString(e.Id), aws.ToString(e.MessageBody), aws.ToString(e.MessageGroupId), aws.ToString(e.MessageDeduplicationId), attrs})
	}
	return aws.ToString(f.in.QueueUrl), entries
}

type fakeSNS struct {
	in    *sns.PublishBatchInput
	reply batchReply
}

func (f *fakeSNS) PublishBatch(_ context.Context, in *sns.PublishBatchInput, _ ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	f.in = in
	out := &sns.PublishBatchOutput{}
	for _, id := range f.reply.ok {
		out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: aws.String(id)})
	}
	for id, fault := range f.reply.failed {
		out.Failed = append(out.Failed, snstypes.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String("C" + id), Message: aws.String("m" + id), SenderFault: fault})
	}
	return out, nil
}

func (f *fakeSNS) sent() (target string, entries []sentEntry) {
	for _, e := range f.in.PublishBatchRequestEntries {
		attrs := map[string]string{}
		for k, v := range e.MessageAttributes {
			attrs[k] = aws.ToString(v.DataType) + "=" + aws.ToString(v.StringValue)
		}
		entries = append(entries, sentEntry{aws.ToString(e.Id), aws.ToString(e.Message), aws.ToString(e.MessageGroupId), aws.ToString(e.MessageDeduplicationId), attrs})
	}
	return aws.ToString(f.in.TopicArn), entries
}

// TestMessageSenders: the SQS and SNS senders build one entry an item
// (position as id, attributes with a value, FIFO group and deduplication
// id) and map the reply onto the items: accepted, failed (retryable unless
// the sender is at fault) or, when the reply does not name an entry,
// failed retryable.
func TestMessageSenders(t *testing.T) {
	items := func() []*item {
		return []*item{
			{id: "f0", body: []byte(`{"a":0}`), meta: findingMeta{category: "orphaned", severity: "high", account: "111122223333"}},
			{id: "f1", body: []byte(`{"a":1}`), meta: findingMeta{category: "revoked"}},
			{id: "f2", body: []byte(`{"a":2}`), meta: findingMeta{category: "expired", severity: "low"}},
			{id: "f3", body: []byte(`{"a":3}`)},
		}
	}
	reply := batchReply{ok: []string{"0"}, failed: map[string]bool{"1": true, "2": false}}
	wantErrs := []error{
		nil,
		&ItemError{Code: "C1", Message: "m1", Retryable: false},
		&ItemError{Code: "C2", Message: "m2", Retryable: true},
		&ItemError{Code: "NoResult", Message: "the service reported no result for this entry", Retryable: true},
	}
	attrs := []map[string]string{
		{"finding_id": "String=f0", "category": "String=orphaned", "severity": "String=high", "format": "String=ocsf"},
		{"finding_id": "String=f1", "category": "String=revoked", "format": "String=ocsf"},
		{"finding_id": "String=f2", "category": "String=expired", "severity": "String=low", "format": "String=ocsf"},
		{"finding_id": "String=f3", "format": "String=ocsf"},
	}
	entries := func(fifo bool) []sentEntry {
		var out []sentEntry
		for i, it := range items() {
			e := sentEntry{ID: entryID(i), Body: string(it.body), Attrs: attrs[i]}
			if fifo {
				e.Group, e.Dedup = "sessionwatch", it.id
			}
			out = append(out, e)
		}
		if fifo {
			out[0].Group = "111122223333"
		}
		return out
	}
	type fake interface {
		sent() (string, []sentEntry)
	}
	for _, tc := range []struct {
		name, target string
		open         func(target string) (sender, fake)
	}{
		{"sqs", "https://sqs.example/123/findings", func(target string) (sender, fake) {
			f := &fakeSQS{reply: reply}
			return newSQSSender(f, target, FormatOCSF), f
		}},
		{"sqs fifo", "https://sqs.example/123/findings.fifo", func(target string) (sender, fake) {
			f := &fakeSQS{reply: reply}
			return newSQSSender(f, target, FormatOCSF), f
		}},
		{"sns", "arn:aws:sns:eu-west-1:123:findings", func(target string) (sender, fake) {
			f := &fakeSNS{reply: reply}
			return newSNSSender(f, target, FormatOCSF), f
		}},
		{"sns fifo", "arn:aws:sns:eu-west-1:123:findings.fifo", func(target string) (sender, fake) {
			f := &fakeSNS{reply: reply}
			return newSNSSender(f, target, FormatOCSF), f
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snd, f := tc.open(tc.target)
			its := items()
			if err := snd.send(context.Background(), its); err != nil {
				t.Fatal(err)
			}
			target, got := f.sent()
			if target != tc.target {
				t.Errorf("sent to %q, want %q", target, tc.target)
			}
			if want := entries(tc.target[len(tc.target)-5:] == ".fifo"); !reflect.DeepEqual(got, want) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, want)
			}
			for i, it := range its {
				if !reflect.DeepEqual(it.err, wantErrs[i]) {
					t.Errorf("item %d: err %v, want %v", i, it.err, wantErrs[i])
				}
			}
		})
	}
}

// TestMessageSendersCallError: a failed call is the send's error, and no
// item is marked.
func TestMessageSendersCallError(t *testing.T) {
	boom := errors.New("boom")
	for name, snd := range map[string]sender{
		"sqs": newSQSSender(failingSQS{boom}, "q", FormatOCSF),
		"sns": newSNSSender(failingSNS{boom}, "t", FormatOCSF),
	} {
		its := []*item{{id: "f0", body: []byte("{}")}}
		if err := snd.send(context.Background(), its); !errors.Is(err, boom) || its[0].err != nil {
			t.Errorf("%s: err %v, item err %v; want boom and none", name, err, its[0].err)
		}
	}
}

type failingSQS struct{ err error }

func (f failingSQS) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return nil, f.err
}

type failingSNS struct{ err error }

func (f failingSNS) PublishBatch(context.Context, *sns.PublishBatchInput, ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	return nil, f.err
}

// TestMessageLimits: SQS caps a message at 256 KiB and a call at 1 MiB,
// SNS both at 256 KiB; a message's size counts its attributes.
func TestMessageLimits(t *testing.T) {
	it := &item{id: "f0", body: []byte("0123456789"), meta: findingMeta{category: "orphaned"}}
	want := len(it.body) + attrsSize(attrs(it, FormatOCSF))
	for name, tc := range map[string]struct {
		snd                      sender
		items, itemBytes, called int
	}{
		"sqs": {newSQSSender(failingSQS{}, "q", FormatOCSF), SQSMaxPerCall, SQSMaxMessageBytes, SQSMaxCallBytes},
		"sns": {newSNSSender(failingSNS{}, "t", FormatOCSF), SNSMaxPerCall, SNSMaxCallBytes, SNSMaxCallBytes},
	} {
		l := tc.snd.limits()
		if l.maxItems != tc.items || l.maxItemBytes != tc.itemBytes || l.maxBytes != tc.called || l.sizeOf(it) != want {
			t.Errorf("%s: limits %+v size %d; want %d items, %d bytes a message, %d a call, size %d", name, l, l.sizeOf(it), tc.items, tc.itemBytes, tc.called, want)
		}
	}
}
