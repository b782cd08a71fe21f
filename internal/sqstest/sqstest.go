// Package sqstest gives tests, the demo and the load test an SQS queue to
// talk to: a client for the local-aws-sqs that scripts/emulators.sh starts,
// a queue with a dead-letter queue and a redrive policy, and helpers to send,
// count and read messages. Production code never imports it.
package sqstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"
)

// EndpointEnv is the variable the AWS SDK reads for an SQS endpoint.
const EndpointEnv = "AWS_ENDPOINT_URL_SQS"

const startHint = "start the emulators: scripts/emulators.sh start; source .emulators/env"

// NewClient returns a client for the SQS at $AWS_ENDPOINT_URL_SQS,
// configured as production is (the SDK's default chain reads the endpoint).
// Without the variable it fails: nothing here may talk to real AWS.
func NewClient(ctx context.Context, optFns ...func(*sqs.Options)) (*sqs.Client, error) {
	if os.Getenv(EndpointEnv) == "" {
		return nil, fmt.Errorf("%s is not set; %s", EndpointEnv, startHint)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return sqs.NewFromConfig(cfg, optFns...), nil
}

// Client is NewClient for a test: a missing emulator fails the test, it
// never skips it.
func Client(t testing.TB, optFns ...func(*sqs.Options)) *sqs.Client {
	t.Helper()
	c, err := NewClient(context.Background(), optFns...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// UniqueQueueName returns a queue name derived from the test's name that no
// other test (or earlier run against the same emulator) uses.
func UniqueQueueName(t testing.TB) string {
	t.Helper()
	base := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "-")
	if len(base) > 50 {
		base = base[:50]
	}
	return base + "-" + RandomSuffix()
}

// RandomSuffix is 8 random hex digits.
func RandomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Queue is a queue and, for a main queue, its dead-letter queue.
type Queue struct {
	Client *sqs.Client
	Name   string
	URL    string
	ARN    string
	DLQ    *Queue // nil for a dead-letter queue
}

// Options for CreateQueue.
type Options struct {
	// MaxReceiveCount moves a message to the DLQ after this many receives.
	// local-aws-sqs also counts each ChangeMessageVisibility (a heartbeat
	// or a release) as a receive, which AWS does not: give tests that hold
	// messages a higher count.
	MaxReceiveCount int
	// VisibilityTimeout is the queue's default (30 s when zero); the
	// streamer asks for its own on every receive.
	VisibilityTimeout time.Duration
}

// CreateQueue creates NAME-dlq and NAME with a redrive policy to it.
func CreateQueue(ctx context.Context, client *sqs.Client, name string, opts Options) (*Queue, error) {
	if opts.MaxReceiveCount == 0 {
		opts.MaxReceiveCount = 5
	}
	if opts.VisibilityTimeout == 0 {
		opts.VisibilityTimeout = 30 * time.Second
	}
	dlq, err := createOne(ctx, client, name+"-dlq", map[string]string{
		string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(14 * 24 * 3600),
	})
	if err != nil {
		return nil, err
	}
	policy, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlq.ARN, "maxReceiveCount": opts.MaxReceiveCount})
	q, err := createOne(ctx, client, name, map[string]string{
		string(types.QueueAttributeNameRedrivePolicy):     string(policy),
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(opts.VisibilityTimeout / time.Second)),
	})
	if err != nil {
		return nil, err
	}
	q.DLQ = dlq
	return q, nil
}

// CreateTestQueue creates a uniquely named queue with its DLQ and deletes
// both when the test ends.
func CreateTestQueue(t testing.TB, client *sqs.Client, opts Options) *Queue {
	t.Helper()
	q, err := CreateQueue(context.Background(), client, UniqueQueueName(t), opts)
	if err != nil {
		t.Fatalf("create queue: %v (%s)", err, startHint)
	}
	t.Cleanup(func() { _ = q.Delete(context.Background()) })
	return q
}

func createOne(ctx context.Context, client *sqs.Client, name string, attrs map[string]string) (*Queue, error) {
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return nil, fmt.Errorf("create queue %s: %w", name, err)
	}
	q := &Queue{Client: client, Name: name, URL: aws.ToString(out.QueueUrl)}
	got, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return nil, fmt.Errorf("queue %s ARN: %w", name, err)
	}
	q.ARN = got.Attributes[string(types.QueueAttributeNameQueueArn)]
	return q, nil
}

// Delete deletes the queue and its DLQ.
func (q *Queue) Delete(ctx context.Context) error {
	_, err := q.Client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q.URL)})
	if q.DLQ != nil {
		err = errors.Join(err, q.DLQ.Delete(ctx))
	}
	return err
}

// Send sends the bodies, ten to a SendMessageBatch call, a few calls at a
// time.
func (q *Queue) Send(ctx context.Context, bodies [][]byte) error {
	var g errgroup.Group
	g.SetLimit(8)
	for start := 0; start < len(bodies); start += 10 {
		batch := bodies[start:min(start+10, len(bodies))]
		g.Go(func() error {
			entries := make([]types.SendMessageBatchRequestEntry, len(batch))
			for i, b := range batch {
				entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(b))}
			}
			out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
			if err != nil {
				return fmt.Errorf("send to %s: %w", q.Name, err)
			}
			if len(out.Failed) > 0 {
				f := out.Failed[0]
				return fmt.Errorf("send to %s: %d entries failed, first: %s %s", q.Name, len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
			}
			return nil
		})
	}
	return g.Wait()
}

// Depth returns the messages visible and in flight (not visible).
func (q *Queue) Depth(ctx context.Context) (visible, inFlight int, err error) {
	out, err := q.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("depth of %s: %w", q.Name, err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight, nil
}

// WaitEmpty polls until the queue holds no message, visible or not.
func (q *Queue) WaitEmpty(ctx context.Context) error {
	for {
		v, f, err := q.Depth(ctx)
		if err == nil && v == 0 && f == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("queue %s not empty (visible %d, in flight %d): %w", q.Name, v, f, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ReceiveAll receives every visible message (hiding each for visibility)
// until a receive comes back empty. It deletes none.
func (q *Queue) ReceiveAll(ctx context.Context, visibility time.Duration) ([]types.Message, error) {
	var all []types.Message
	for {
		out, err := q.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(q.URL),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             1,
			VisibilityTimeout:           int32(visibility / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return all, fmt.Errorf("receive from %s: %w", q.Name, err)
		}
		if len(out.Messages) == 0 {
			return all, nil
		}
		all = append(all, out.Messages...)
	}
}
