package sink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sessionwatch/sessionwatch/internal/sinkfake"
	"github.com/sessionwatch/sessionwatch/internal/testkit"
)

// The contract every sink keeps (DESIGN.md "Findings", issue 4):
//   - accepted: Write returns nil once every finding reached the backend,
//     each exactly once, across the backend's per-call limits;
//   - partial failure: a finding the backend rejects is reported by its
//     index and not retried; one that failed transiently is retried alone
//     and delivered; the others are delivered exactly once;
//   - throttling: throttled calls are retried with backoff, honouring
//     Retry-After, and nothing is lost or duplicated;
//   - timeout: a Write whose context ends while the backend hangs returns
//     promptly with every finding failed with the context's error;
//   - close flushes: findings waiting for a batch are sent by Close.
//
// Backends: local-aws-sqs (SQS) behind a fault-injecting proxy, and the
// protocol fakes of internal/awsfake for SNS, EventBridge, Security Hub,
// webhook and HEC, all driven by the real SDK clients and HTTP.

const (
	testAccount = "111122223333"
	testRegion  = "us-east-1"
	testHECKey  = "hec-token-for-contract"
	testHookKey = "webhook-key-for-contract"
)

type backend struct {
	faults *sinkfake.Faults
	// open builds the sink under test with o (batching, retries) on top of
	// the backend's own settings.
	open func(t *testing.T, o Options) Sink
	// counts reads how often each finding id reached the backend so far.
	counts func(t *testing.T) map[string]int
	// malformed lists requests the backend refused as malformed or over a
	// limit: the sink must never send one.
	malformed func() []string
	// perItem: the protocol reports results per finding. HEC stops a batch
	// at a bad event without saying what came before, so the events
	// before it are retried and may arrive twice.
	perItem bool
}

type backendFactory struct {
	name string
	new  func(t *testing.T) *backend
}

func testAWSConfig(endpoint string) *aws.Config {
	return &aws.Config{
		Region:       testRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "test"}, nil
		}),
	}
}

func testEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func fakeBackend[F interface{ Malformed() []string }](fake F, faults *sinkfake.Faults, rec *sinkfake.Record, uri string, base Options, perItem bool) *backend {
	return &backend{
		faults: faults,
		open: func(t *testing.T, o Options) Sink {
			o.AWS, o.LookupEnv, o.Render, o.Webhook = base.AWS, base.LookupEnv, base.Render, base.Webhook
			s, err := Open(uri, o)
			if err != nil {
				t.Fatalf("open %s: %v", uri, err)
			}
			return s
		},
		counts:    func(*testing.T) map[string]int { return rec.Counts() },
		malformed: fake.Malformed,
		perItem:   perItem,
	}
}

func backends() []backendFactory {
	return []backendFactory{
		{"sqs", newSQSBackend},
		{"sns", func(t *testing.T) *backend {
			topic := "arn:aws:sns:us-east-1:" + testAccount + ":findings"
			f := sinkfake.NewSNS(t, topic)
			return fakeBackend(f, &f.Faults, &f.Record, "sns:"+topic, Options{AWS: testAWSConfig(f.URL)}, true)
		}},
		{"eventbridge", func(t *testing.T) *backend {
			f := sinkfake.NewEventBridge(t, "security")
			return fakeBackend(f, &f.Faults, &f.Record, "eventbridge:security", Options{AWS: testAWSConfig(f.URL)}, true)
		}},
		{"securityhub", func(t *testing.T) *backend {
			f := sinkfake.NewSecurityHub(t, testAccount, testRegion)
			return fakeBackend(f, &f.Faults, &f.Record, "securityhub", Options{AWS: testAWSConfig(f.URL), Render: RenderConfig{AccountID: testAccount}}, true)
		}},
		{"webhook", func(t *testing.T) *backend {
			f := sinkfake.NewWebhook(t, []byte(testHookKey), DefaultSignatureHeader)
			f.RequireHeaders["X-Team"] = "secops"
			o := Options{
				LookupEnv: testEnv(map[string]string{EnvWebhookSecret: testHookKey}),
				Webhook:   WebhookConfig{Headers: map[string][]string{"X-Team": {"secops"}}},
			}
			return fakeBackend(f, &f.Faults, &f.Record, "webhook:"+f.URL+"/hook", o, true)
		}},
		{"hec", func(t *testing.T) *backend {
			f := sinkfake.NewHEC(t, testHECKey)
			o := Options{LookupEnv: testEnv(map[string]string{EnvHECToken: testHECKey})}
			return fakeBackend(f, &f.Faults, &f.Record, "hec:"+f.URL+"/services/collector/event", o, false)
		}},
	}
}

// newSQSBackend makes a fresh queue on local-aws-sqs and puts the fault
// proxy in front of it.
func newSQSBackend(t *testing.T) *backend {
	endpoint := os.Getenv("AWS_ENDPOINT_URL_SQS")
	if endpoint == "" {
		t.Fatal("AWS_ENDPOINT_URL_SQS is not set; run under scripts/with-emulators.sh")
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	direct := sqs.NewFromConfig(cfg)
	name := fmt.Sprintf("contract-%d", time.Now().UnixNano())
	q, err := direct.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	t.Cleanup(func() { _, _ = direct.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl}) })
	proxy := sinkfake.NewSQSProxy(t, endpoint)
	var mu sync.Mutex
	counts := map[string]int{}
	return &backend{
		faults: &proxy.Faults,
		open: func(t *testing.T, o Options) Sink {
			o.AWS = testAWSConfig(proxy.URL)
			s, err := Open("sqs:"+aws.ToString(q.QueueUrl), o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		counts: func(t *testing.T) map[string]int {
			mu.Lock()
			defer mu.Unlock()
			for empty := 0; empty < 2; {
				out, err := direct.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60, MessageAttributeNames: []string{"All"},
				})
				if err != nil {
					t.Fatalf("receive: %v", err)
				}
				if len(out.Messages) == 0 {
					empty++
					continue
				}
				for _, m := range out.Messages {
					id := sinkfake.FindingID([]byte(aws.ToString(m.Body)))
					if attr := aws.ToString(m.MessageAttributes["finding_id"].StringValue); attr != id {
						t.Errorf("message attribute finding_id %q, body %q", attr, id)
					}
					counts[id]++
					_, _ = direct.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle})
				}
			}
			return maps(counts)
		},
		malformed: proxy.Malformed,
		perItem:   true,
	}
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// testFindings are n copies of the fixed finding with ids prefix-0...
func testFindings(prefix string, n int) []Finding {
	out := make([]Finding, n)
	for i := range out {
		out[i] = fixedFinding()
		out[i].FindingID = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// fastRetry keeps contract tests quick; the backoff shape is the same.
func fastRetry() Options {
	return Options{
		Batch: BatchConfig{MaxWait: 20 * time.Millisecond},
		Retry: RetryConfig{MaxAttempts: 6, InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, CallTimeout: 5 * time.Second},
	}
}

func closeSink(t *testing.T, s Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func wantCounts(t *testing.T, got map[string]int, ids []string, exactlyOnce bool) {
	t.Helper()
	for _, id := range ids {
		switch n := got[id]; {
		case n == 0:
			t.Errorf("finding %s never arrived", id)
		case n > 1 && exactlyOnce:
			t.Errorf("finding %s arrived %d times, want once", id, n)
		}
	}
}

func ids(fs []Finding, skip ...int) []string {
	var out []string
next:
	for i, f := range fs {
		for _, s := range skip {
			if s == i {
				continue next
			}
		}
		out = append(out, f.FindingID)
	}
	return out
}

func TestSinkContract(t *testing.T) {
	for _, bf := range backends() {
		t.Run(bf.name, func(t *testing.T) {
			t.Parallel()
			runContract(t, bf)
		})
	}
}

func runContract(t *testing.T, bf backendFactory) {
	t.Run("accepted", func(t *testing.T) {
		b := bf.new(t)
		s := b.open(t, fastRetry())
		defer closeSink(t, s)
		fs := testFindings("ok", 25) // more than one call of every service
		if err := s.Write(context.Background(), fs); err != nil {
			t.Fatalf("write: %v", err)
		}
		wantCounts(t, b.counts(t), ids(fs), true)
		if m := b.malformed(); len(m) > 0 {
			t.Errorf("backend refused requests as malformed: %q", m)
		}
	})

	t.Run("partial failure", func(t *testing.T) {
		b := bf.new(t)
		s := b.open(t, fastRetry())
		defer closeSink(t, s)
		fs := testFindings("part", 8)
		b.faults.Reject(fs[3].FindingID)
		b.faults.FailOnce(fs[5].FindingID)
		err := s.Write(context.Background(), fs)
		var be *BatchError
		if !errors.As(err, &be) {
			t.Fatalf("write: %v, want a BatchError", err)
		}
		if len(be.Failed) != 1 || be.Failed[3] == nil {
			t.Fatalf("failed %v, want only #3", be.Failed)
		}
		if retryable, _ := classifyErr(be.Failed[3]); retryable {
			t.Errorf("rejected finding reported retryable: %v", be.Failed[3])
		}
		got := b.counts(t)
		wantCounts(t, got, ids(fs, 3), b.perItem)
		if got[fs[3].FindingID] != 0 {
			t.Errorf("rejected finding arrived")
		}
		if m := b.malformed(); len(m) > 0 {
			t.Errorf("backend refused requests as malformed: %q", m)
		}
	})

	t.Run("throttling", func(t *testing.T) {
		b := bf.new(t)
		s := b.open(t, fastRetry())
		defer closeSink(t, s)
		fs := testFindings("thr", 5)
		b.faults.Throttle(2, 0)
		if err := s.Write(context.Background(), fs); err != nil {
			t.Fatalf("write after 2 throttled calls: %v", err)
		}
		wantCounts(t, b.counts(t), ids(fs), true)

		// Retry-After wins over a shorter backoff.
		b.faults.Throttle(1, time.Second)
		start := time.Now()
		more := testFindings("thr-after", 1)
		if err := s.Write(context.Background(), more); err != nil {
			t.Fatalf("write after Retry-After: %v", err)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("retried after %v, before the 1s Retry-After", d)
		}
		wantCounts(t, b.counts(t), ids(more), true)
	})

	t.Run("timeout", func(t *testing.T) {
		b := bf.new(t)
		s := b.open(t, fastRetry())
		defer closeSink(t, s)
		b.faults.Delay(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		fs := testFindings("slow", 3)
		start := time.Now()
		err := s.Write(ctx, fs)
		elapsed := time.Since(start)
		b.faults.Delay(0)
		var be *BatchError
		if !errors.As(err, &be) || len(be.Failed) != len(fs) {
			t.Fatalf("write: %v, want every finding failed", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not say the deadline passed", err)
		}
		if elapsed > 2*time.Second {
			t.Errorf("write returned after %v, long after its 300ms deadline", elapsed)
		}
		// The sink still works once the backend answers again.
		fresh := testFindings("after-slow", 2)
		if err := s.Write(context.Background(), fresh); err != nil {
			t.Fatalf("write after timeout: %v", err)
		}
		wantCounts(t, b.counts(t), ids(fresh), true)
	})

	t.Run("close flushes", func(t *testing.T) {
		b := bf.new(t)
		o := fastRetry()
		o.Batch.MaxWait = time.Hour // only Close sends
		s := b.open(t, o)
		fs := testFindings("flush", 3)
		done := make(chan error, 1)
		go func() { done <- s.Write(context.Background(), fs) }()
		bs, ok := s.(*batchSink)
		if !ok {
			t.Fatalf("%T is not a batching sink", s)
		}
		testkit.Eventually(t, 10*time.Second, "findings pending in the batch", func() bool { return bs.pending.Load() == int64(len(fs)) })
		select {
		case err := <-done:
			t.Fatalf("write returned before close: %v", err)
		default:
		}
		closeSink(t, s)
		if err := <-done; err != nil {
			t.Fatalf("write: %v", err)
		}
		wantCounts(t, b.counts(t), ids(fs), true)
		if err := s.Write(context.Background(), testFindings("late", 1)); !errors.Is(err, ErrClosed) {
			t.Errorf("write after close: %v, want ErrClosed", err)
		}
	})
}

// TestFileSinkContract holds the file sink to the parts of the contract
// that apply to it (a file neither throttles nor hangs).
func TestFileSinkContract(t *testing.T) {
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	s, err := Open("file:"+path, Options{File: FileConfig{SyncInterval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	fs := testFindings("file", 25)
	if err := s.Write(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	closeSink(t, s)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		got[sinkfake.FindingID([]byte(line))]++
	}
	wantCounts(t, got, ids(fs), true)
	if err := s.Write(context.Background(), fs[:1]); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v, want ErrClosed", err)
	}
}
