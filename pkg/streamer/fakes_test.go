package streamer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// fakeQueue is a stateful in-memory SQS queue: it models visibility
// timeouts, receipt handles, receive counts and a redrive policy, as AWS
// does (a visibility change is not a receive).
type fakeQueue struct {
	mu         sync.Mutex
	msgs       []*fakeMsg
	dlq        []*fakeMsg
	maxReceive int
	seq        int

	receives, deleteCalls, visibilityCalls int
	maxInFlight                            int // most messages invisible at once
	deleteFails                            bool
}

type fakeMsg struct {
	id, body, handle string
	receives         int
	visibleAt        time.Time
	deleted          bool
	extended         int
}

func newFakeQueue(maxReceive int) *fakeQueue { return &fakeQueue{maxReceive: maxReceive} }

func (q *fakeQueue) send(bodies ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range bodies {
		q.seq++
		q.msgs = append(q.msgs, &fakeMsg{id: fmt.Sprintf("m-%04d", q.seq), body: b})
	}
}

func (q *fakeQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	deadline := time.Now().Add(time.Duration(in.WaitTimeSeconds) * time.Second)
	for {
		if out := q.receiveNow(in); len(out.Messages) > 0 || time.Now().After(deadline) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (q *fakeQueue) receiveNow(in *sqs.ReceiveMessageInput) *sqs.ReceiveMessageOutput {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	out := &sqs.ReceiveMessageOutput{}
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		switch {
		case m.deleted:
			continue
		case now.Before(m.visibleAt) || len(out.Messages) >= int(in.MaxNumberOfMessages):
		case q.maxReceive > 0 && m.receives >= q.maxReceive:
			q.dlq = append(q.dlq, m)
			continue
		default:
			m.receives++
			q.receives++
			q.seq++
			m.handle = fmt.Sprintf("%s#%d", m.id, q.seq)
			m.visibleAt = now.Add(time.Duration(in.VisibilityTimeout) * time.Second)
			out.Messages = append(out.Messages, types.Message{
				MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle), Body: aws.String(m.body),
				Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)},
			})
		}
		kept = append(kept, m)
	}
	q.msgs = kept
	inFlight := 0
	for _, m := range q.msgs {
		if now.Before(m.visibleAt) {
			inFlight++
		}
	}
	q.maxInFlight = max(q.maxInFlight, inFlight)
	return out
}

func (q *fakeQueue) byHandle(h string) *fakeMsg {
	for _, m := range q.msgs {
		if m.handle == h && !m.deleted {
			return m
		}
	}
	return nil
}

func (q *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleteCalls++
	if len(in.Entries) > MaxBatch {
		return nil, errors.New("TooManyEntriesInBatchRequest")
	}
	if q.deleteFails {
		return nil, errors.New("injected delete failure")
	}
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		m := q.byHandle(aws.ToString(e.ReceiptHandle))
		if m == nil {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid")})
			continue
		}
		m.deleted = true
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (q *fakeQueue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.visibilityCalls++
	if len(in.Entries) > MaxBatch {
		return nil, errors.New("TooManyEntriesInBatchRequest")
	}
	now := time.Now()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		m := q.byHandle(aws.ToString(e.ReceiptHandle))
		if m == nil || !now.Before(m.visibleAt) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("MessageNotInflight")})
			continue
		}
		m.visibleAt = now.Add(time.Duration(e.VisibilityTimeout) * time.Second)
		if e.VisibilityTimeout > 0 {
			m.extended++
		}
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (q *fakeQueue) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{}, nil
}

// left returns the messages not deleted (in the queue or in the DLQ).
func (q *fakeQueue) left() (queue, dlq []*fakeMsg) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if !m.deleted {
			queue = append(queue, m)
		}
	}
	return queue, append([]*fakeMsg(nil), q.dlq...)
}

// fakeClassifier decides by the SourceIdentity's prefix:
//
//	""            no_source_identity
//	"ok:…"        tracked
//	"orphan:…"    orphaned until appear(si) is called, then tracked
//	"down:…"      a store failure while storeDown is set, else tracked
//	"panic:…"     panics
//	"wait:…"      not final yet (a *sessions.NotFinalError) until appear(si), then revoked
//	"worphan:…"   orphaned; its re-check is not final until appear(si), then orphaned
//	anything else non_sentinel_format
type fakeClassifier struct {
	mu        sync.Mutex
	appeared  map[string]bool
	storeDown bool
	calls     map[string]int // by event id
	rechecks  map[string]int
	block     chan struct{} // when set, Classify of "slow:" waits for it
}

func newFakeClassifier() *fakeClassifier {
	return &fakeClassifier{appeared: map[string]bool{}, calls: map[string]int{}, rechecks: map[string]int{}}
}

func (c *fakeClassifier) appear(si string) {
	c.mu.Lock()
	c.appeared[si] = true
	c.mu.Unlock()
}

func (c *fakeClassifier) setStoreDown(down bool) {
	c.mu.Lock()
	c.storeDown = down
	c.mu.Unlock()
}

func (c *fakeClassifier) Classify(ctx context.Context, ev *cloudtrail.Event) (classify.Result, error) {
	return c.judge(ctx, ev, false)
}

func (c *fakeClassifier) Recheck(ctx context.Context, ev *cloudtrail.Event) (classify.Result, error) {
	return c.judge(ctx, ev, true)
}

func (c *fakeClassifier) judge(ctx context.Context, ev *cloudtrail.Event, recheck bool) (classify.Result, error) {
	si := ev.SourceIdentity
	if strings.HasPrefix(si, "slow:") && c.block != nil {
		select {
		case <-c.block:
		case <-ctx.Done():
			return classify.Result{}, fmt.Errorf("%w: %w", classify.ErrStore, ctx.Err())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if recheck {
		c.rechecks[ev.ID]++
	} else {
		c.calls[ev.ID]++
	}
	if ctx.Err() != nil {
		return classify.Result{}, fmt.Errorf("%w: %w", classify.ErrStore, ctx.Err())
	}
	if strings.HasPrefix(si, "panic:") {
		panic("injected classifier panic")
	}
	var v classify.Verdict
	switch {
	case si == "":
		v = classify.NoSourceIdentity
	case strings.HasPrefix(si, "ok:"), strings.HasPrefix(si, "slow:"):
		v = classify.Tracked
	case strings.HasPrefix(si, "orphan:"):
		v = classify.Orphaned
		if c.appeared[si] {
			v = classify.Tracked
		}
	case strings.HasPrefix(si, "wait:"):
		if !c.appeared[si] {
			return classify.Result{}, fmt.Errorf("classify: %w", &sessions.NotFinalError{Until: ev.Time, RetryAfter: 50 * time.Millisecond})
		}
		v = classify.Revoked
	case strings.HasPrefix(si, "worphan:"):
		if recheck && !c.appeared[si] {
			return classify.Result{}, fmt.Errorf("classify: %w", &sessions.NotFinalError{Until: ev.Time, RetryAfter: 50 * time.Millisecond})
		}
		v = classify.Orphaned
	case strings.HasPrefix(si, "down:"):
		if c.storeDown {
			return classify.Result{}, fmt.Errorf("%w: injected outage", classify.ErrStore)
		}
		v = classify.Tracked
	default:
		v = classify.NonSentinel
	}
	return classify.Result{Verdict: v, Severity: v.DefaultSeverity(), FindingID: classify.FindingID(ev.DedupKey(), v),
		SourceIdentity: classify.SourceIdentity{Value: si, Origin: ev.SourceIdentityOrigin}}, nil
}

// recordJSON is a minimal AssumeRole record: id is the eventID and the
// requestID; si the SourceIdentity ("" for none).
func recordJSON(id, si string, at time.Time) string {
	rec := map[string]any{
		"eventVersion": "1.08", "eventID": id, "requestID": id, "eventTime": at.UTC().Format(time.RFC3339),
		"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "awsRegion": "us-east-1",
		"recipientAccountId": "111122223333", "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2",
		"userIdentity":      map[string]any{"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/x", "accountId": "111122223333"},
		"requestParameters": map[string]any{"roleArn": "arn:aws:iam::111122223333:role/admin", "roleSessionName": "s"},
	}
	if si != "" {
		rec["responseElements"] = map[string]any{"sourceIdentity": si}
	}
	b, _ := json.Marshal(rec)
	return string(b)
}

// byEvent groups findings by event id.
func byEvent(fs []sink.Finding) map[string][]sink.Finding {
	m := map[string][]sink.Finding{}
	for _, f := range fs {
		m[f.Event.ID] = append(m[f.Event.ID], f)
	}
	return m
}

// testLogger logs to a buffer dumped when the test fails.
func testLogger(t testing.TB, also ...io.Writer) zerolog.Logger {
	var buf testkit.LockedBuffer
	t.Cleanup(func() {
		if t.Failed() {
			out := buf.String()
			if len(out) > 20000 {
				out = "…" + out[len(out)-20000:]
			}
			t.Logf("streamer log:\n%s", out)
		}
	})
	return zerolog.New(io.MultiWriter(append([]io.Writer{&buf}, also...)...)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}
