package streamer

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// harness runs a Streamer over a fake queue.
type harness struct {
	q     *fakeQueue
	cls   *fakeClassifier
	sinks []*memory.Sink
	s     *Streamer
	m     *Metrics
	log   *testkit.LockedBuffer // the streamer's log lines

	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// testConfig is quick to react: short polls, flushes and back-offs.
func testConfig() Config {
	return Config{
		QueueURL:          "https://queue.test/fake",
		Pollers:           2,
		Workers:           4,
		MaxInFlight:       100,
		VisibilityTimeout: 2 * time.Second,
		WaitTime:          time.Second,
		FlushInterval:     50 * time.Millisecond,
		ShutdownTimeout:   3 * time.Second,
		RetryInitial:      20 * time.Millisecond,
		RetryMax:          200 * time.Millisecond,
	}
}

func startHarness(t *testing.T, cfg Config, q *fakeQueue, cls *fakeClassifier, objects ObjectAPI, sinks ...*memory.Sink) *harness {
	t.Helper()
	return startHarnessDeps(t, cfg, Deps{Queue: q, Objects: objects}, q, cls, sinks...)
}

// startHarnessDeps is startHarness with deps' Queue, Objects and
// VerdictLog (the rest is filled in).
func startHarnessDeps(t *testing.T, cfg Config, deps Deps, q *fakeQueue, cls *fakeClassifier, sinks ...*memory.Sink) *harness {
	t.Helper()
	if len(sinks) == 0 {
		sinks = []*memory.Sink{memory.NewSink("capture")}
	}
	outs := make([]sink.Sink, len(sinks))
	for i, s := range sinks {
		outs[i] = s
	}
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	log := &testkit.LockedBuffer{}
	deps.Decoder, deps.Classifier, deps.Sinks, deps.Metrics, deps.Log = cloudtrail.NewDecoder(cloudtrail.Config{}), cls, outs, m, testLogger(t, log)
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{q: q, cls: cls, sinks: sinks, s: s, m: m, log: log, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- s.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

// stop cancels Run and returns how long it took to return.
func (h *harness) stop(t *testing.T) time.Duration {
	t.Helper()
	if h.stopped {
		return 0
	}
	h.stopped = true
	start := time.Now()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}
	return time.Since(start)
}

func (h *harness) waitDrained(t *testing.T, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, "every message deleted", func() bool {
		left, dlq := h.q.left()
		return len(left) == 0 && len(dlq) == 0
	})
}

func TestDeletesOnlyAfterEverySinkAcceptedInBatches(t *testing.T) {
	q := newFakeQueue(0)
	now := time.Now()
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("ev-%02d", i)
		si := "ok:" + id
		if i%3 == 0 {
			si = "" // no_source_identity: a finding
			want = append(want, id)
		}
		q.send(recordJSON(id, si, now.Add(-time.Hour)))
	}
	cfg := testConfig()
	cfg.FlushInterval = time.Second
	a, b := memory.NewSink("a"), memory.NewSink("b")
	h := startHarness(t, cfg, q, newFakeClassifier(), nil, a, b)
	h.waitDrained(t, 10*time.Second)

	for _, s := range []*memory.Sink{a, b} {
		got := byEvent(s.Findings())
		if len(got) != len(want) {
			t.Errorf("sink %s: %d findings, want %d", s.Name(), len(got), len(want))
		}
		for _, id := range want {
			if fs := got[id]; len(fs) != 1 || fs[0].Category != classify.NoSourceIdentity {
				t.Errorf("sink %s: event %s: findings %+v, want one no_source_identity", s.Name(), id, fs)
			}
		}
	}
	h.q.mu.Lock()
	calls := h.q.deleteCalls
	h.q.mu.Unlock()
	// 25 deletes: 10 + 10 + 5 when nothing lags; allow a few partial
	// batches from the 1 s tick on a slow machine.
	if calls < 3 || calls > 6 {
		t.Errorf("DeleteMessageBatch calls = %d, want 3..6 for 25 messages", calls)
	}
	if got := testutil.ToFloat64(h.m.deleted); got != 25 {
		t.Errorf("deleted = %v, want 25", got)
	}
	if got := testutil.ToFloat64(h.m.verdicts[classify.Tracked]); got != float64(25-len(want)) {
		t.Errorf("tracked verdicts = %v, want %d", got, 25-len(want))
	}
	if got := testutil.ToFloat64(h.m.findings.WithLabelValues("b")); got != float64(len(want)) {
		t.Errorf("findings{sink=b} = %v, want %d", got, len(want))
	}
	if n := testutil.CollectAndCount(h.m.ackLatency); n != 1 {
		t.Errorf("latency histogram series = %d", n)
	}
}

func TestInFlightCapMakesReceivingWait(t *testing.T) {
	q := newFakeQueue(0)
	now := time.Now()
	for i := range 30 {
		q.send(recordJSON(fmt.Sprintf("slow-%02d", i), fmt.Sprintf("slow:%d", i), now))
	}
	cls := newFakeClassifier()
	cls.block = make(chan struct{})
	cfg := testConfig()
	cfg.MaxInFlight = 5
	cfg.Workers = 8
	h := startHarness(t, cfg, q, cls, nil)
	testkit.Eventually(t, 5*time.Second, "5 messages received", func() bool { return testutil.ToFloat64(h.m.received) == 5 })
	time.Sleep(300 * time.Millisecond)
	if got := testutil.ToFloat64(h.m.received); got != 5 {
		t.Fatalf("received %v messages with 5 in flight allowed", got)
	}
	if got := h.s.InFlight(); got != 5 {
		t.Errorf("in flight = %d, want 5", got)
	}
	close(cls.block)
	h.waitDrained(t, 10*time.Second)
	h.q.mu.Lock()
	peak := h.q.maxInFlight
	h.q.mu.Unlock()
	if peak > 5 {
		t.Errorf("the queue saw %d messages in flight at once, cap is 5", peak)
	}
}

func TestHeartbeatKeepsSlowMessageInvisible(t *testing.T) {
	q := newFakeQueue(0)
	q.send(recordJSON("slow-1", "slow:1", time.Now()))
	cls := newFakeClassifier()
	cls.block = make(chan struct{})
	cfg := testConfig()
	cfg.VisibilityTimeout = time.Second
	h := startHarness(t, cfg, q, cls, nil)
	time.Sleep(2500 * time.Millisecond) // 2.5 visibility timeouts
	close(cls.block)
	h.waitDrained(t, 5*time.Second)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.receives != 1 {
		t.Errorf("message received %d times; the heartbeat should have kept it invisible", q.receives)
	}
	if got := testutil.ToFloat64(h.m.extended); got < 2 {
		t.Errorf("visibility extensions = %v, want at least 2", got)
	}
}

func TestOrphanIsHeldWithoutBlockingOtherWork(t *testing.T) {
	q := newFakeQueue(0)
	now := time.Now().Truncate(time.Second)
	q.send(recordJSON("orphan-1", "orphan:1", now))                   // stays orphaned
	q.send(recordJSON("orphan-2", "orphan:2", now))                   // its session appears within the grace
	q.send(recordJSON("orphan-old", "orphan:3", now.Add(-time.Hour))) // grace long past: re-checked at once
	for i := range 5 {
		q.send(recordJSON(fmt.Sprintf("ok-%d", i), fmt.Sprintf("ok:%d", i), now))
	}
	cls := newFakeClassifier()
	cfg := testConfig()
	cfg.Workers = 1 // a held orphan must not take the only worker
	cfg.VisibilityTimeout = time.Second
	grace := 5 * time.Second
	cfg.OrphanGrace = grace
	c := memory.NewSink("capture")
	h := startHarness(t, cfg, q, cls, nil, c)

	testkit.Eventually(t, 3*time.Second, "the tracked messages and the old orphan deleted while two orphans are held", func() bool {
		return testutil.ToFloat64(h.m.deleted) == 6
	})
	if got := byEvent(c.Findings()); len(got) != 1 || len(got["orphan-old"]) != 1 {
		t.Fatalf("findings before the grace ended: %v, want only orphan-old's", got)
	}
	if got := testutil.ToFloat64(h.m.held); got != 2 {
		t.Errorf("held = %v, want 2", got)
	}
	cls.appear("orphan:2")
	h.waitDrained(t, 5*time.Second)

	got := byEvent(c.Findings())
	if len(got) != 2 || len(got["orphan-1"]) != 1 || got["orphan-1"][0].Category != classify.Orphaned {
		t.Fatalf("findings = %v, want orphaned for orphan-1 and orphan-old only", got)
	}
	if f := got["orphan-1"][0]; f.DetectedAt.Sub(now) < grace {
		t.Errorf("orphan-1 emitted %v after its event, before the %v grace", f.DetectedAt.Sub(now), grace)
	}
	cls.mu.Lock()
	for _, id := range []string{"orphan-1", "orphan-2", "orphan-old"} {
		if cls.rechecks[id] != 1 || cls.calls[id] != 1 {
			t.Errorf("%s: %d classifications and %d re-checks, want 1 and 1", id, cls.calls[id], cls.rechecks[id])
		}
	}
	cls.mu.Unlock()
	if got := testutil.ToFloat64(h.m.orphanConfirmed); got != 2 {
		t.Errorf("orphan re-checks confirmed = %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.m.orphanCleared); got != 1 {
		t.Errorf("orphan re-checks cleared = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.m.verdicts[classify.Orphaned]); got != 2 {
		t.Errorf("orphaned verdicts = %v, want 2", got)
	}
	q.mu.Lock()
	if q.receives != 8 {
		t.Errorf("receives = %d, want 8 (the held messages stayed invisible)", q.receives)
	}
	q.mu.Unlock()
}

// TestNotFinalIsHeldInProcess: an event the session replica cannot answer
// yet waits in process, without taking the only worker, without a store
// failure and without another receive, and is classified again until the
// answer is final; an orphan re-check that is not final stays a re-check.
// Each confirmation is counted by its verdict.
func TestNotFinalIsHeldInProcess(t *testing.T) {
	q := newFakeQueue(0)
	now := time.Now().Truncate(time.Second)
	q.send(recordJSON("wait-1", "wait:1", now))
	q.send(recordJSON("orphan-1", "worphan:1", now.Add(-time.Hour))) // grace long past: re-checked at once
	for i := range 3 {
		q.send(recordJSON(fmt.Sprintf("ok-%d", i), fmt.Sprintf("ok:%d", i), now))
	}
	cls := newFakeClassifier()
	cfg := testConfig()
	cfg.Workers = 1
	cfg.VisibilityTimeout = time.Second
	cfg.OrphanGrace = time.Minute
	c := memory.NewSink("capture")
	h := startHarness(t, cfg, q, cls, nil, c)

	testkit.Eventually(t, 3*time.Second, "the tracked messages deleted and both waits retried while held", func() bool {
		cls.mu.Lock()
		defer cls.mu.Unlock()
		return testutil.ToFloat64(h.m.deleted) == 3 && cls.calls["wait-1"] >= 3 && cls.rechecks["orphan-1"] >= 3
	})
	if got := c.Findings(); len(got) != 0 {
		t.Fatalf("findings before the answers were final: %v", got)
	}
	if got := testutil.ToFloat64(h.m.held); got != 2 {
		t.Errorf("held = %v, want 2", got)
	}
	cls.appear("wait:1")
	cls.appear("worphan:1")
	h.waitDrained(t, 5*time.Second)

	got := byEvent(c.Findings())
	if len(got) != 2 || len(got["wait-1"]) != 1 || got["wait-1"][0].Category != classify.Revoked ||
		len(got["orphan-1"]) != 1 || got["orphan-1"][0].Category != classify.Orphaned {
		t.Fatalf("findings = %v, want revoked for wait-1 and orphaned for orphan-1", got)
	}
	cls.mu.Lock()
	if cls.calls["orphan-1"] != 1 {
		t.Errorf("orphan-1 classified %d times, want once (then re-checked)", cls.calls["orphan-1"])
	}
	cls.mu.Unlock()
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"store failures", testutil.ToFloat64(h.m.storeFailures), 0},
		{"revoked confirmations", testutil.ToFloat64(h.m.replicaVerdicts[classify.Revoked]), 1},
		{"orphaned confirmations", testutil.ToFloat64(h.m.replicaVerdicts[classify.Orphaned]), 1},
		{"tracked confirmations", testutil.ToFloat64(h.m.replicaVerdicts[classify.Tracked]), 0},
		{"orphans confirmed", testutil.ToFloat64(h.m.orphanConfirmed), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if got := testutil.ToFloat64(h.m.replicaWaits); got < 4 {
		t.Errorf("replica waits = %v, want at least 4", got)
	}
	q.mu.Lock()
	if q.receives != 5 {
		t.Errorf("receives = %d, want 5 (the held messages stayed invisible)", q.receives)
	}
	q.mu.Unlock()
}

func TestStoreFailureRetriesWithoutFinding(t *testing.T) {
	q := newFakeQueue(0)
	for i := range 10 {
		q.send(recordJSON(fmt.Sprintf("down-%d", i), fmt.Sprintf("down:%d", i), time.Now()))
	}
	cls := newFakeClassifier()
	cls.setStoreDown(true)
	c := memory.NewSink("capture")
	h := startHarness(t, testConfig(), q, cls, nil, c)
	testkit.Eventually(t, 5*time.Second, "store failures", func() bool { return testutil.ToFloat64(h.m.storeFailures) >= 30 })
	if got := testutil.ToFloat64(h.m.deleted); got != 0 {
		t.Fatalf("deleted %v messages while the store was down", got)
	}
	cls.setStoreDown(false)
	h.waitDrained(t, 5*time.Second)
	if fs := c.Findings(); len(fs) != 0 {
		t.Errorf("findings after a store outage: %v", fs)
	}
	if got := testutil.ToFloat64(h.m.verdicts[classify.Tracked]); got != 10 {
		t.Errorf("tracked verdicts = %v, want 10 (each event classified once)", got)
	}
	q.mu.Lock()
	if q.receives != 10 {
		t.Errorf("receives = %d, want 10: retries are held in the process", q.receives)
	}
	q.mu.Unlock()
}

func TestSinkFailureKeepsMessageUntilAccepted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retryHold time.Duration
	}{
		{"held in process", time.Minute},
		{"released to the queue", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newFakeQueue(0)
			q.send(recordJSON("ev-1", "", time.Now()))
			good, flaky := memory.NewSink("good"), memory.NewSink("flaky")
			flaky.SetFailing(true, true) // keeps what it "fails": duplicates
			cfg := testConfig()
			cfg.VisibilityTimeout = time.Second
			cfg.RetryHold = tc.retryHold
			h := startHarness(t, cfg, q, newFakeClassifier(), nil, good, flaky)
			testkit.Eventually(t, 5*time.Second, "a few failed writes", func() bool { return testutil.ToFloat64(h.m.sinkFailures.WithLabelValues("flaky")) >= 3 })
			if tc.retryHold < time.Second {
				testkit.Eventually(t, 5*time.Second, "the message released and received again", func() bool {
					q.mu.Lock()
					defer q.mu.Unlock()
					return testutil.ToFloat64(h.m.released[reasonRetry]) >= 1 && q.receives >= 2
				})
			}
			if got := testutil.ToFloat64(h.m.deleted); got != 0 {
				t.Fatalf("deleted %v while a sink failed", got)
			}
			flaky.SetFailing(false, false)
			h.waitDrained(t, 10*time.Second)

			for _, s := range []*memory.Sink{good, flaky} {
				fs := s.Findings()
				if len(fs) == 0 {
					t.Fatalf("sink %s got nothing", s.Name())
				}
				for _, f := range fs {
					if f.FindingID != fs[0].FindingID || f.Event.ID != "ev-1" {
						t.Errorf("sink %s: duplicate with another finding_id: %s vs %s", s.Name(), f.FindingID, fs[0].FindingID)
					}
				}
			}
			if len(flaky.Findings()) < 2 {
				t.Errorf("flaky sink holds %d copies; the ambiguous failures should have made duplicates", len(flaky.Findings()))
			}
			q.mu.Lock()
			receives := q.receives
			q.mu.Unlock()
			if tc.retryHold == time.Minute && (receives != 1 || len(good.Findings()) != 1) {
				t.Errorf("held in process: %d receives, good sink %d copies; want 1 and 1", receives, len(good.Findings()))
			}
			if tc.retryHold < time.Second && receives < 2 {
				t.Errorf("released: %d receives, want at least 2", receives)
			}
		})
	}
}

// fakeObjects serves log objects; the first failures calls fail.
type fakeObjects struct {
	mu       sync.Mutex
	objs     map[string][]byte
	failures int
	calls    int
}

func (f *fakeObjects) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failures > 0 {
		f.failures--
		return nil, errors.New("injected S3 failure")
	}
	b, ok := f.objs[aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key)]
	if !ok {
		return nil, errors.New("NoSuchKey")
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func logFile(t *testing.T, records ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	fmt.Fprintf(zw, `{"Records":[%s]}`, strings.Join(records, ","))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestS3NotificationAckedWhenEveryRecordIsSafe(t *testing.T) {
	now := time.Now().Add(-time.Hour)
	outOfScope := strings.Replace(recordJSON("gst-1", "", now), `"AssumeRole"`, `"GetSessionToken"`, 1)
	objects := &fakeObjects{failures: 1, objs: map[string][]byte{
		"trail/AWSLogs/1/CloudTrail/a.json.gz": logFile(t, recordJSON("r-1", "", now), recordJSON("r-2", "ok:2", now), outOfScope),
		"trail/AWSLogs/1/CloudTrail/b.json.gz": logFile(t, recordJSON("r-3", "bad", now), recordJSON("r-4", "", now)),
	}}
	q := newFakeQueue(0)
	q.send(`{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/1/CloudTrail/a.json.gz","AWSLogs/1/CloudTrail-Digest/d.json.gz","AWSLogs/1/CloudTrail/b.json.gz"]}`)
	// r-3's finding is refused on every write until the sink recovers.
	c := memory.NewSink("capture")
	c.Reject(func(f sink.Finding) bool { return f.Event.ID == "r-3" })
	h := startHarness(t, testConfig(), q, newFakeClassifier(), objects, c)
	testkit.Eventually(t, 5*time.Second, "findings, and r-3's refused again", func() bool {
		return len(c.Findings()) >= 2 && c.Writes() >= 3
	})
	if got := testutil.ToFloat64(h.m.deleted); got != 0 {
		t.Fatalf("deleted while a finding was not accepted")
	}
	c.Reject(nil)
	h.waitDrained(t, 5*time.Second)

	got := byEvent(c.Findings())
	want := map[string]classify.Verdict{"r-1": classify.NoSourceIdentity, "r-3": classify.NonSentinel, "r-4": classify.NoSourceIdentity}
	if len(got) != len(want) {
		t.Errorf("findings for %d events, want %d: %v", len(got), len(want), got)
	}
	for id, v := range want {
		if len(got[id]) != 1 || got[id][0].Category != v {
			t.Errorf("event %s: %v, want one %s", id, got[id], v)
		}
	}
	if got := testutil.ToFloat64(h.m.outOfScope); got != 1 {
		t.Errorf("out of scope = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.m.s3Objects); got != 2 {
		t.Errorf("objects fetched = %v, want 2 (the digest skipped)", got)
	}
	if got := testutil.ToFloat64(h.m.s3Errors); got != 1 {
		t.Errorf("S3 errors = %v, want 1", got)
	}
}

func TestUndecodableLeftForRedrivePolicy(t *testing.T) {
	q := newFakeQueue(2)
	good := recordJSON("ev-1", "", time.Now())
	// With no S3 client, an S3 notification can never be read either.
	q.send("this is not JSON", good, `{"unknown":"shape"}`, `{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/1/CloudTrail/a.json.gz"]}`)
	cfg := testConfig()
	cfg.VisibilityTimeout = time.Second
	c := memory.NewSink("capture")
	h := startHarness(t, cfg, q, newFakeClassifier(), nil, c)
	testkit.Eventually(t, 8*time.Second, "the three poison messages in the DLQ", func() bool {
		left, dlq := q.left()
		return len(left) == 0 && len(dlq) == 3
	})
	_, dlq := q.left()
	for _, m := range dlq {
		if m.body == good || m.extended != 0 {
			t.Errorf("DLQ holds %q (extended %d)", m.body, m.extended)
		}
	}
	if got := testutil.ToFloat64(h.m.decodeErrors); got != 6 {
		t.Errorf("decode errors = %v, want 6 (3 messages x 2 receives)", got)
	}
	// The missing client is not a failed fetch: counted once, as undecodable.
	if got := testutil.ToFloat64(h.m.s3Errors); got != 0 {
		t.Errorf("S3 errors = %v, want 0 (no fetch was tried)", got)
	}
	if fs := c.Findings(); len(fs) != 1 || fs[0].Event.ID != "ev-1" {
		t.Errorf("findings = %v, want ev-1's only", fs)
	}
}

func TestRejectedAndOutOfScopeAreDeletedUnclassified(t *testing.T) {
	q := newFakeQueue(0)
	rec := recordJSON("ev-1", "", time.Now())
	q.send(
		`{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","account":"111122223333","detail":`+rec+`}`,
		strings.Replace(rec, `"AssumeRole"`, `"GetCallerIdentity"`, 1),
	)
	cls := newFakeClassifier()
	h := startHarness(t, testConfig(), q, cls, nil)
	h.waitDrained(t, 5*time.Second)
	if got := testutil.ToFloat64(h.m.rejected); got != 1 {
		t.Errorf("rejected = %v", got)
	}
	if got := testutil.ToFloat64(h.m.outOfScope); got != 1 {
		t.Errorf("out of scope = %v", got)
	}
	cls.mu.Lock()
	defer cls.mu.Unlock()
	if len(cls.calls) != 0 {
		t.Errorf("classified %v", cls.calls)
	}
}

func TestFutureDatedOrphanWaitsNoLongerThanTheGrace(t *testing.T) {
	q := newFakeQueue(0)
	q.send(recordJSON("forged", "orphan:forged", time.Now().Add(240*time.Hour)))
	cfg := testConfig()
	cfg.OrphanGrace = time.Second
	c := memory.NewSink("capture")
	h := startHarness(t, cfg, q, newFakeClassifier(), nil, c)
	h.waitDrained(t, 5*time.Second)
	if fs := c.Findings(); len(fs) != 1 || fs[0].Category != classify.Orphaned {
		t.Errorf("findings = %v, want the orphaned one", fs)
	}
}

func TestPanicOnOneMessageLeavesItForTheRedrivePolicy(t *testing.T) {
	q := newFakeQueue(1)
	q.send(recordJSON("boom", "panic:1", time.Now()), recordJSON("fine", "", time.Now()))
	cfg := testConfig()
	cfg.VisibilityTimeout = time.Second
	c := memory.NewSink("capture")
	h := startHarness(t, cfg, q, newFakeClassifier(), nil, c)
	testkit.Eventually(t, 5*time.Second, "the panicking message dead-lettered", func() bool {
		left, dlq := q.left()
		return len(left) == 0 && len(dlq) == 1
	})
	if _, dlq := q.left(); !strings.Contains(dlq[0].body, `"boom"`) {
		t.Errorf("DLQ holds %s", dlq[0].body)
	}
	if fs := c.Findings(); len(fs) != 1 || fs[0].Event.ID != "fine" {
		t.Errorf("findings = %v, want the other message's", fs)
	}
	if got := testutil.ToFloat64(h.m.decodeErrors); got != 1 {
		t.Errorf("decode errors = %v, want 1", got)
	}
}

func TestShutdownReleasesWhatIsLeftWithinTimeout(t *testing.T) {
	q := newFakeQueue(0)
	now := time.Now()
	q.send(recordJSON("orphan-1", "orphan:1", now), recordJSON("slow-1", "slow:1", now), recordJSON("ok-1", "ok:1", now))
	cls := newFakeClassifier()
	cls.block = make(chan struct{}) // never closed: slow-1 never finishes
	cfg := testConfig()
	cfg.OrphanGrace = time.Minute
	cfg.ShutdownTimeout = 2 * time.Second
	h := startHarness(t, cfg, q, cls, nil)
	testkit.Eventually(t, 5*time.Second, "ok-1 deleted and the orphan held", func() bool {
		return testutil.ToFloat64(h.m.deleted) == 1 && testutil.ToFloat64(h.m.held) == 1
	})
	took := h.stop(t)
	if took > cfg.ShutdownTimeout+500*time.Millisecond {
		t.Errorf("shutdown took %v, timeout %v", took, cfg.ShutdownTimeout)
	}
	left, _ := q.left()
	if len(left) != 2 {
		t.Fatalf("%d messages left, want the 2 unfinished", len(left))
	}
	for _, m := range left {
		if time.Until(m.visibleAt) > 0 {
			t.Errorf("%s not released: visible in %v", m.id, time.Until(m.visibleAt))
		}
	}
	if got := testutil.ToFloat64(h.m.released[reasonShutdown]); got != 2 {
		t.Errorf("released on shutdown = %v, want 2", got)
	}
}

// TestConfigWithDefaults: the zero config takes every default, OrphanGrace
// stays 0 (emit at once), and is then valid; a set field is kept.
func TestConfigWithDefaults(t *testing.T) {
	got := Config{QueueURL: "q"}.withDefaults()
	want := Config{QueueURL: "q", Pollers: DefaultPollers, Workers: DefaultWorkers, MaxInFlight: DefaultMaxInFlight,
		VisibilityTimeout: DefaultVisibilityTimeout, ShutdownTimeout: DefaultShutdownTimeout, WaitTime: DefaultWaitTime,
		FlushInterval: DefaultFlushInterval, RetryInitial: DefaultRetryInitial, RetryMax: DefaultRetryMax, RetryHold: DefaultRetryHold,
		VerdictLogInterval: DefaultVerdictLogInterval, SilenceAfter: DefaultSilenceAfter}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withDefaults:\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the defaults are not valid: %v", err)
	}
	if kept := (Config{Workers: 3, OrphanGrace: time.Minute}).withDefaults(); kept.Workers != 3 || kept.OrphanGrace != time.Minute {
		t.Errorf("withDefaults replaced set fields: %+v", kept)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"zero grace", func(c *Config) { c.OrphanGrace = 0 }, ""},
		{"negative pollers", func(c *Config) { c.Pollers = -1 }, "pollers"},
		{"negative max in flight", func(c *Config) { c.MaxInFlight = -1 }, "max in flight"},
		{"visibility too long", func(c *Config) { c.VisibilityTimeout = 13 * time.Hour }, "visibility"},
		{"negative grace", func(c *Config) { c.OrphanGrace = -time.Second }, "orphan grace"},
		{"negative shutdown timeout", func(c *Config) { c.ShutdownTimeout = -time.Second }, "shutdown timeout"},
		{"wait time too long", func(c *Config) { c.WaitTime = 21 * time.Second }, "wait time"},
		{"negative flush interval", func(c *Config) { c.FlushInterval = -time.Second }, "flush interval"},
		{"retry max below initial", func(c *Config) { c.RetryInitial, c.RetryMax = time.Minute, time.Second }, "retry back-off"},
		{"retry max below the default initial", func(c *Config) { c.RetryMax = time.Millisecond }, "retry back-off"},
		{"negative retry hold", func(c *Config) { c.RetryHold = -time.Second }, "retry hold"},
		{"verdict log interval too long", func(c *Config) { c.VerdictLogInterval = 11 * time.Minute }, "verdict log interval"},
		{"no queue", func(c *Config) { c.QueueURL = "" }, "queue URL"},
		{"fractional visibility", func(c *Config) { c.VisibilityTimeout = 1500 * time.Millisecond }, "visibility"},
		{"grace too long", func(c *Config) { c.OrphanGrace = 2 * time.Hour }, "orphan grace"},
		{"negative workers", func(c *Config) { c.Workers = -1 }, "workers"},
		{"verdict log interval too short", func(c *Config) { c.VerdictLogInterval = 500 * time.Millisecond }, "verdict log interval"},
		{"silence after too short", func(c *Config) { c.SilenceAfter = 30 * time.Second }, "silence after"},
		{"expected region malformed", func(c *Config) { c.ExpectRegions = []string{"eu-west-1", "Mars"} }, `expected region "Mars"`},
		{"expected account malformed", func(c *Config) { c.ExpectAccounts = []string{"1234"} }, `expected account "1234"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{QueueURL: "q"}
			tc.edit(&c)
			before := c
			err := c.Validate()
			if !reflect.DeepEqual(c, before) {
				t.Errorf("Validate changed the config: %+v, was %+v", c, before)
			}
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// A sink that keeps failing shows on /readyz (200, "degraded:", which sink,
// since when, the error), in the sink_failing gauge and in an error log line
// at each retry naming the sink and the error; all clear once it accepts
// findings again.
func TestFailingSinkShowsDegradedReadinessMetricAndErrorLog(t *testing.T) {
	q := newFakeQueue(0)
	q.send(recordJSON("ev-1", "", time.Now()))
	good, flaky := memory.NewSink("good"), memory.NewSink("flaky")
	flaky.SetFailing(true, false)
	h := startHarness(t, testConfig(), q, newFakeClassifier(), nil, good, flaky)
	ops := httptest.NewServer(OpsHandler(prometheus.NewRegistry(), func(context.Context) error { return nil }, h.s.Draining, h.s.Degraded))
	t.Cleanup(ops.Close)
	readyz := func() (int, string) {
		t.Helper()
		resp, err := http.Get(ops.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	failing := func(name string) float64 { return testutil.ToFloat64(h.m.sinkFailing.WithLabelValues(name)) }

	testkit.Eventually(t, 5*time.Second, "a few failed writes", func() bool { return testutil.ToFloat64(h.m.sinkFailures.WithLabelValues("flaky")) >= 3 })
	code, body := readyz()
	if code != http.StatusOK || !strings.HasPrefix(body, "degraded: sink flaky failing since ") || !strings.Contains(body, "injected sink failure") {
		t.Errorf("/readyz while a sink fails: %d %q, want 200 \"degraded: sink flaky failing since …: …injected sink failure\"", code, body)
	}
	if failing("flaky") != 1 || failing("good") != 0 {
		t.Errorf("sink_failing flaky=%v good=%v, want 1 and 0", failing("flaky"), failing("good"))
	}
	errorLines := 0
	for _, line := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, `"sink":"flaky"`) &&
			strings.Contains(line, "injected sink failure") && strings.Contains(line, `"failing_since"`) {
			errorLines++
		}
	}
	if errorLines < 3 {
		t.Errorf("%d error log lines naming the sink and its error, want one per retry (3 or more):\n%s", errorLines, h.log.String())
	}

	flaky.SetFailing(false, false)
	h.waitDrained(t, 10*time.Second)
	if code, body := readyz(); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz once the sink recovered: %d %q, want 200 \"ready\"", code, body)
	}
	if failing("flaky") != 0 {
		t.Errorf("sink_failing flaky=%v after recovery, want 0", failing("flaky"))
	}
}

// Metrics is the sinks' Observer: a real webhook sink answering 503 counts
// its retries and its give-up in sessionwatch_sink_*, by sink and reason.
func TestMetricsCountSinkRetriesAndFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sk, err := sink.Open("webhook:"+srv.URL, sink.Options{
		Observer:  m,
		LookupEnv: func(k string) (string, bool) { return "test-secret", k == "SESSIONWATCH_WEBHOOK_SECRET" },
		Retry:     sink.RetryConfig{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond},
		Batch:     sink.BatchConfig{MaxWait: time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sk.Close(context.Background()) })
	if err := sk.Write(context.Background(), []sink.Finding{{FindingID: "f-1"}}); err == nil {
		t.Fatal("Write to a 503 webhook succeeded")
	}
	if got := testutil.ToFloat64(m.sinkRetries.WithLabelValues(sk.Name(), sink.ReasonServerError)); got != 2 {
		t.Errorf("retries_total{reason=server_error} = %v, want 2 (3 attempts)", got)
	}
	if got := testutil.ToFloat64(m.sinkGaveUp.WithLabelValues(sk.Name(), sink.ReasonServerError)); got != 1 {
		t.Errorf("failures_total{reason=server_error} = %v, want 1", got)
	}
}
