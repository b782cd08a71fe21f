package streamer

// Integration tests: the streamer against local-aws-sqs and dynalite (make
// test starts both), with the real decoder, classifier and session store,
// fed by the generated corpus.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/sqstest"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// live is a Streamer wired as cmd/streamer wires it, against emulators,
// with its ops endpoints on an httptest server.
type live struct {
	s      *Streamer
	queue  *sqstest.Queue
	ops    *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

type liveOptions struct {
	cfg      Config
	table    string
	dynamo   *dynamodb.Client
	objects  ObjectAPI
	accounts []string
	sinks    []sink.Sink
	log      io.Writer // also gets the streamer's log lines
	vlog     VerdictLog
	// replica, when set, puts a loaded session replica (kept fresh by its
	// Run) in front of the Query path, as --session-replica on does.
	replica *liveReplica
	// eventNames are classified (cloudtrail.DefaultEventNames when empty).
	eventNames []string
}

// liveReplica configures the session replica of a live streamer.
type liveReplica struct {
	refresh, maxWait, skew time.Duration
}

func startLive(t *testing.T, q *sqstest.Queue, o liveOptions) *live {
	t.Helper()
	finder, err := sessions.Open(o.dynamo, sessions.Config{Store: sessions.StoreConfig{Table: o.table}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var lookup classify.SessionFinder = finder
	var skew time.Duration
	if o.replica != nil {
		lookup, skew = startLiveReplica(t, reg, o, finder), o.replica.skew
	}
	cls, err := classify.New(lookup, classify.Config{ClockSkew: skew})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterStoreStats(reg, finder.Cache.Stats); err != nil {
		t.Fatal(err)
	}
	var also []io.Writer
	if o.log != nil {
		also = append(also, o.log)
	}
	logger := testLogger(t, also...)
	cfg := o.cfg
	cfg.QueueURL = q.URL
	// local-aws-sqs keeps a long poll open until it has collected
	// MaxNumberOfMessages or the wait ends (AWS returns as soon as it has
	// any), holding what it collected while their visibility runs: short
	// polls keep that from delaying or duplicating deliveries here.
	if cfg.WaitTime == 0 {
		cfg.WaitTime = time.Second
	}
	s, err := New(cfg, Deps{
		Queue: q.Client, Objects: o.objects,
		Decoder:    cloudtrail.NewDecoder(cloudtrail.Config{Accounts: o.accounts, EventNames: o.eventNames}),
		Classifier: cls, Sinks: o.sinks, Metrics: m, Log: logger, VerdictLog: o.vlog,
	})
	if err != nil {
		t.Fatal(err)
	}
	probe := &Probe{Queue: q.Client, QueueURL: q.URL, Table: o.dynamo, TableName: o.table}
	l := &live{s: s, queue: q, ops: httptest.NewServer(OpsHandler(reg, probe.Check, s.Draining, s.Degraded)), done: make(chan error, 1)}
	t.Cleanup(l.ops.Close)
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() { l.done <- s.Run(ctx) }()
	t.Cleanup(func() { l.stop(t) })
	return l
}

// startLiveReplica loads a replica of o.table, runs it until the test
// ends, and returns its finder over fallback, its metrics registered.
func startLiveReplica(t *testing.T, reg prometheus.Registerer, o liveOptions, fallback *sessions.Finder) *sessions.ReplicaFinder {
	t.Helper()
	rep, err := sessions.NewReplica(o.dynamo, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: o.table},
		Refresh: o.replica.refresh, ScanSegments: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := sessions.NewReplicaFinder(rep, fallback, sessions.ReplicaFinderConfig{Matcher: sessions.MatcherConfig{ClockSkew: o.replica.skew},
		OrphanGrace: o.cfg.OrphanGrace, MaxWait: o.replica.maxWait})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterReplicaStats(reg, rep.Stats, f.Stats); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return f
}

func (l *live) stop(t *testing.T) {
	t.Helper()
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	select {
	case err := <-l.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("Run did not return within 60s")
	}
}

// get fetches an ops endpoint: status code and body.
func (l *live) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(l.ops.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metrics scrapes /metrics into "name{labels}" -> value.
func (l *live) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	code, body := l.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// waitDone waits for the queue to be empty and every message resolved.
func (l *live) waitDone(t *testing.T, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := l.queue.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "nothing in flight", func() bool { return l.s.InFlight() == 0 })
}

// genCorpus generates events up to a day old (at least an hour: their
// orphan grace has passed) with sessions, two accounts and out-of-scope
// noise.
func genCorpus(t *testing.T, seed int64, events int) *corpus.Corpus {
	t.Helper()
	c, err := corpus.Generate(corpus.Config{
		Seed: seed, Events: events, Now: time.Now(), MinAge: time.Hour,
		Accounts: []string{"111122223333", "444455556666"}, OutOfScope: events / 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sessionTable creates a session table holding c's sessions.
func sessionTable(t *testing.T, client *dynamodb.Client, c *corpus.Corpus) string {
	t.Helper()
	ctx := context.Background()
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, client, table); err != nil {
		t.Fatalf("%v (start the emulators: scripts/emulators.sh start)", err)
	}
	if err := testenv.PutSessions(ctx, client, table, c.Sessions); err != nil {
		t.Fatal(err)
	}
	return table
}

// bodies renders every event of c as the queue would carry it: most in
// EventBridge envelopes, every fourth in-scope one wrapped in SNS, and the
// out-of-scope ones as bare records.
func bodies(c *corpus.Corpus) [][]byte {
	var out [][]byte
	for i, ev := range c.Events {
		env := corpus.EventBridgeEnvelope(ev)
		if i%4 == 3 {
			env = corpus.SNSNotification(env, "", ev.Time)
		}
		out = append(out, env)
	}
	for _, ev := range c.Ignored {
		out = append(out, ev.Record)
	}
	return out
}

// checkFindings: exactly one finding per expected event, with the expected
// category, and none for any other event. With dupes, an event may have
// several findings, all with the same finding_id.
func checkFindings(t *testing.T, c *corpus.Corpus, got []sink.Finding, dupes bool) {
	t.Helper()
	by := byEvent(got)
	want := c.Findings()
	for _, ev := range want {
		fs := by[ev.ID]
		switch {
		case len(fs) == 0:
			t.Errorf("event %s (%s): no finding, want %s", ev.ID, ev.Case, ev.Expected)
			continue
		case len(fs) > 1 && !dupes:
			t.Errorf("event %s (%s): %d findings, want one", ev.ID, ev.Case, len(fs))
		}
		for _, f := range fs {
			if f.Category != ev.Expected {
				t.Errorf("event %s (%s): category %s, want %s", ev.ID, ev.Case, f.Category, ev.Expected)
			}
			if f.FindingID != fs[0].FindingID {
				t.Errorf("event %s: duplicates with different finding_ids %s and %s", ev.ID, f.FindingID, fs[0].FindingID)
			}
		}
		delete(by, ev.ID)
	}
	for id, fs := range by {
		t.Errorf("unexpected finding for event %s: %s (%s)", id, fs[0].Category, fs[0].Reason)
	}
	if !t.Failed() {
		t.Logf("%d events in: the %d expected findings out, nothing else (%d finding lines in all, duplicates sharing their finding_id)", len(c.Events)+len(c.Ignored), len(want), len(got))
	}
}

func TestLiveCorpusExactlyTheExpectedFindingsAndMetrics(t *testing.T) {
	dyn := testenv.DynamoClient(t)
	client := sqstest.Client(t)
	c := genCorpus(t, 1, 400)
	table := sessionTable(t, dyn, c)
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 100})

	msgs := bodies(c)
	// Three envelopes that must be rejected: a foreign source, a foreign
	// detail-type, an account outside the allowlist.
	rec := string(c.Events[0].Record)
	rejected := []string{
		`{"version":"0","id":"r1","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","account":"111122223333","time":"2025-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":` + rec + `}`,
		`{"version":"0","id":"r2","detail-type":"Forged","source":"aws.sts","account":"111122223333","time":"2025-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":` + rec + `}`,
		`{"version":"0","id":"r3","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","account":"999999999999","time":"2025-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":` + rec + `}`,
	}
	for _, r := range rejected {
		msgs = append(msgs, []byte(r))
	}
	out := memory.NewSink("capture")
	cfg := Config{OrphanGrace: DefaultOrphanGrace, VisibilityTimeout: 30 * time.Second, ShutdownTimeout: 5 * time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, accounts: c.Config.Accounts, sinks: []sink.Sink{out}})
	if code, body := l.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	// The shared emulators can be slow while every package's tests run:
	// readiness may take a few probes.
	testkit.Eventually(t, 15*time.Second, "/readyz ready", func() bool {
		code, _ := l.get(t, "/readyz")
		return code == http.StatusOK
	})

	start := time.Now()
	if err := q.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	l.waitDone(t, 2*time.Minute)
	t.Logf("%d messages through in %v", len(msgs), time.Since(start))
	checkFindings(t, c, out.Findings(), false)

	// DLQ empty: nothing was left for the redrive policy.
	if v, f, err := q.DLQ.Depth(context.Background()); err != nil || v+f != 0 {
		t.Errorf("DLQ depth %d+%d (%v), want empty", v, f, err)
	}

	// /metrics counts what was sent.
	testkit.Eventually(t, 5*time.Second, "deletes counted", func() bool {
		return l.metrics(t)["sessionwatch_streamer_messages_deleted_total"] == float64(len(msgs))
	})
	m := l.metrics(t)
	counts := c.Counts()
	want := map[string]float64{
		"sessionwatch_streamer_messages_received_total":                  float64(len(msgs)),
		"sessionwatch_streamer_messages_deleted_total":                   float64(len(msgs)),
		"sessionwatch_streamer_message_delete_failures_total":            0,
		"sessionwatch_streamer_decode_errors_total":                      0,
		"sessionwatch_streamer_rejected_total":                           float64(len(rejected)),
		"sessionwatch_streamer_out_of_scope_events_total":                float64(len(c.Ignored)),
		"sessionwatch_streamer_store_failures_total":                     0,
		`sessionwatch_streamer_findings_total{sink="capture"}`:           float64(len(c.Findings())),
		"sessionwatch_streamer_messages_in_flight":                       0,
		"sessionwatch_streamer_messages_held":                            0,
		`sessionwatch_streamer_orphan_rechecks_total{outcome="cleared"}`: 0,
		"sessionwatch_streamer_receive_to_ack_seconds_count":             float64(len(msgs)),
		"sessionwatch_store_errors_total":                                0,
	}
	for _, v := range classify.AllVerdicts() {
		want[fmt.Sprintf(`sessionwatch_streamer_verdicts_total{verdict=%q}`, v)] = float64(counts[v])
	}
	for name, w := range want {
		if got, ok := m[name]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, w)
		}
	}
	if got := m[`sessionwatch_streamer_orphan_rechecks_total{outcome="confirmed"}`]; got < float64(counts[classify.Orphaned]) {
		t.Errorf("orphan re-checks confirmed = %v, want at least the %d orphaned events", got, counts[classify.Orphaned])
	}
	if m["sessionwatch_store_lookups_total"] == 0 || m["sessionwatch_store_queries_total"] == 0 {
		t.Errorf("store metrics not exported: lookups %v queries %v", m["sessionwatch_store_lookups_total"], m["sessionwatch_store_queries_total"])
	}
}

func TestLivePoisonMessageGoesToDLQ(t *testing.T) {
	dyn := testenv.DynamoClient(t)
	client := sqstest.Client(t)
	c := genCorpus(t, 2, 60)
	table := sessionTable(t, dyn, c)
	const maxReceive = 3
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: maxReceive})
	poison := [][]byte{[]byte(`{"Records": "not a list"`), []byte("\x00\x01 binary junk"), []byte(`{"detail-type":"AWS API Call via CloudTrail","source":"aws.sts","detail":{"eventName":"AssumeRole"}}`)}
	msgs := append(bodies(c), poison...)
	out := memory.NewSink("capture")
	// Short, so the poison messages come back quickly; not under 3 s, so a
	// good message still in flight at a long poll's end is extended in time
	// (see testLiveOrphanGrace).
	cfg := Config{VisibilityTimeout: 3 * time.Second, ShutdownTimeout: 5 * time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, sinks: []sink.Sink{out}})
	if err := q.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	l.waitDone(t, time.Minute)
	checkFindings(t, c, out.Findings(), false)

	dead, err := q.DLQ.ReceiveAll(context.Background(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != len(poison) {
		t.Fatalf("DLQ holds %d messages, want the %d poison ones", len(dead), len(poison))
	}
	for _, m := range dead {
		found := false
		for _, p := range poison {
			found = found || aws.ToString(m.Body) == string(p)
		}
		if !found {
			t.Errorf("DLQ holds a good message: %.100s", aws.ToString(m.Body))
		}
	}
	// Each poison message was seen and left alone (not deleted, not
	// released) until the redrive policy moved it. Receive counts are not
	// asserted: the SDK sometimes retries a receive the emulator already
	// answered, and that lost answer counts as a receive too.
	got := l.metrics(t)
	if d := got["sessionwatch_streamer_decode_errors_total"]; d < float64(len(poison)) {
		t.Errorf("decode errors = %v, want at least %d", d, len(poison))
	}
	if d := got["sessionwatch_streamer_messages_deleted_total"]; d != float64(len(msgs)-len(poison)) {
		t.Errorf("deleted = %v, want %d", d, len(msgs)-len(poison))
	}
}

func TestLiveStoreOutage(t *testing.T) {
	dynalite := testenv.StartRestartableDynalite(t)
	dyn := testenv.DynamoClient(t, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(dynalite.Endpoint) })
	client := sqstest.Client(t)
	c := genCorpus(t, 3, 300)
	table := sessionTable(t, dyn, c)
	// local-aws-sqs counts visibility extensions as receives: keep the
	// held messages out of the DLQ.
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 1000})
	out := memory.NewSink("capture")
	cfg := Config{VisibilityTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second, RetryMax: 2 * time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, sinks: []sink.Sink{out}})

	msgs := bodies(c)
	half := len(msgs) / 2
	ctx := context.Background()
	if err := q.Send(ctx, msgs[:half]); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "a first batch classified", func() bool {
		return l.metrics(t)["sessionwatch_streamer_messages_deleted_total"] >= 30
	})
	dynalite.Stop()
	down := time.Now()
	if err := q.Send(ctx, msgs[half:]); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "/readyz failing while the store is down", func() bool {
		code, _ := l.get(t, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	_, body := l.get(t, "/readyz")
	t.Logf("/readyz while down: %s", strings.TrimSpace(body))
	testkit.Eventually(t, 10*time.Second, "store failures", func() bool {
		return l.metrics(t)["sessionwatch_streamer_store_failures_total"] > 0
	})
	time.Sleep(10*time.Second - time.Since(down))
	dynalite.Start()
	t.Logf("dynalite down for %v", time.Since(down).Round(100*time.Millisecond))
	testkit.Eventually(t, 10*time.Second, "/readyz back", func() bool {
		code, _ := l.get(t, "/readyz")
		return code == http.StatusOK
	})
	l.waitDone(t, 2*time.Minute)
	checkFindings(t, c, out.Findings(), false)

	m := l.metrics(t)
	classified := 0.0
	for _, v := range classify.AllVerdicts() {
		classified += m[fmt.Sprintf(`sessionwatch_streamer_verdicts_total{verdict=%q}`, v)]
	}
	if classified != float64(len(c.Events)) {
		t.Errorf("%v verdicts, want each of the %d events classified exactly once", classified, len(c.Events))
	}
	t.Logf("store failures during the outage: %v; messages released: %v", m["sessionwatch_streamer_store_failures_total"],
		m[`sessionwatch_streamer_messages_released_total{reason="retry"}`])
}

func TestLiveSinkFailingForAWhile(t *testing.T) {
	dyn := testenv.DynamoClient(t)
	client := sqstest.Client(t)
	c := genCorpus(t, 4, 200)
	table := sessionTable(t, dyn, c)
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 1000})
	good := memory.NewSink("good")
	flaky := memory.NewSink("flaky")
	flaky.SetFailing(true, true) // writes land, but the sink reports failure: duplicates
	cfg := Config{VisibilityTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second, RetryMax: time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, sinks: []sink.Sink{good, flaky}})
	if err := q.Send(context.Background(), bodies(c)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "sink failures", func() bool {
		return l.metrics(t)[`sessionwatch_streamer_sink_failures_total{sink="flaky"}`] >= float64(len(c.Findings()))
	})
	time.Sleep(3 * time.Second)
	if v, f, _ := q.Depth(context.Background()); v+f < len(c.Findings())/2 {
		t.Errorf("only %d+%d messages left while a sink fails; messages with findings must stay", v, f)
	}
	flaky.SetFailing(false, false)
	l.waitDone(t, time.Minute)
	checkFindings(t, c, good.Findings(), true)
	checkFindings(t, c, flaky.Findings(), true)
	if got, want := len(flaky.Findings()), len(c.Findings()); got <= want {
		t.Errorf("flaky sink holds %d findings for %d events; the failures should have made duplicates", got, want)
	}
}

// TestLiveOrphanGrace: a session written 1 s after its event gives no
// orphaned finding; an event whose session never comes is orphaned after
// the grace. Through the Query path, and with the replica on (which then
// answers everything: the table is never queried).
func TestLiveOrphanGrace(t *testing.T) {
	for _, tt := range []struct {
		name    string
		replica *liveReplica
	}{
		{name: "query path"},
		{name: "replica", replica: &liveReplica{refresh: time.Second, maxWait: 10 * time.Second, skew: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) { testLiveOrphanGrace(t, tt.replica) })
	}
}

func testLiveOrphanGrace(t *testing.T, replica *liveReplica) {
	dyn := testenv.DynamoClient(t)
	client := sqstest.Client(t)
	table := sessionTable(t, dyn, &corpus.Corpus{})
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 1000})
	out := memory.NewSink("capture")
	const grace = 6 * time.Second
	// Both messages are held past their visibility timeout, so the
	// heartbeat must extend them. 4 s, not less: local-aws-sqs starts a
	// message's visibility clock when a long poll picks it up but answers
	// only when the poll's wait (1 s here) ends, so the streamer learns of
	// the message up to 1 s into its timeout (SQS answers at once).
	cfg := Config{OrphanGrace: grace, VisibilityTimeout: 4 * time.Second, ShutdownTimeout: 5 * time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, sinks: []sink.Sink{out}, replica: replica})

	now := time.Now().UTC().Truncate(time.Second)
	late := "sentinel:alice:direct:a1b2c3d4" // its session is written a second later
	never := "sentinel:bob:direct:b2c3d4e5"  // no session ever
	ctx := context.Background()
	if err := q.Send(ctx, [][]byte{[]byte(recordJSON("ev-late", late, now)), []byte(recordJSON("ev-never", never, now))}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "both events classified once", func() bool {
		return l.metrics(t)["sessionwatch_streamer_messages_held"] == 2
	})
	time.Sleep(time.Until(now.Add(time.Second)))
	err := testenv.PutSessions(ctx, dyn, table, []sessions.Session{{
		ID: "sess-late", User: "alice", Status: "active", SourceIdentity: late,
		StartedAt: now.Add(-time.Second), ExpiresAt: now.Add(time.Hour), CreatedAt: now.Add(time.Second), UpdatedAt: now.Add(time.Second),
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.waitDone(t, 30*time.Second)
	got := byEvent(out.Findings())
	if len(got["ev-late"]) != 0 {
		t.Errorf("ev-late: %s finding though its session was written 1 s after the event", got["ev-late"][0].Category)
	}
	if fs := got["ev-never"]; len(fs) != 1 || fs[0].Category != classify.Orphaned {
		t.Fatalf("ev-never: %v, want one orphaned finding", fs)
	} else if wait := fs[0].DetectedAt.Sub(now); wait < grace {
		t.Errorf("ev-never emitted %v after its event, before the %v grace", wait, grace)
	}
	t.Logf("session written 1 s after its event: no finding; the never-tracked one: orphaned, emitted %v after its event (grace %v)",
		got["ev-never"][0].DetectedAt.Sub(now).Round(100*time.Millisecond), grace)
	m := l.metrics(t)
	want := map[string]float64{
		`sessionwatch_streamer_orphan_rechecks_total{outcome="cleared"}`:   1,
		`sessionwatch_streamer_orphan_rechecks_total{outcome="confirmed"}`: 1,
		`sessionwatch_streamer_verdicts_total{verdict="tracked"}`:          1,
		`sessionwatch_streamer_verdicts_total{verdict="orphaned"}`:         1,
		// More would mean a held message's visibility lapsed and it came
		// back while the first copy was still waiting.
		`sessionwatch_streamer_messages_received_total`: 2,
	}
	if replica != nil {
		// The replica may already hold ev-late's session when it first
		// answers (it waits for the skew): then no orphan re-check.
		delete(want, `sessionwatch_streamer_orphan_rechecks_total{outcome="cleared"}`)
		want[`sessionwatch_replica_lookups_total{answer="fallback"}`] = 0
		want[`sessionwatch_store_queries_total`] = 0
	}
	for name, want := range want {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}

func TestLiveS3Notifications(t *testing.T) {
	dyn := testenv.DynamoClient(t)
	client := sqstest.Client(t)
	c := genCorpus(t, 5, 200)
	table := sessionTable(t, dyn, c)
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 1000})

	ctx := context.Background()
	bucket := corpus.ArchiveBucket
	s3c := fakeS3(t, bucket)
	var keys []string
	for _, f := range corpus.Archive(c, 25) {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.Key), Body: strings.NewReader(string(f.Body))}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, f.Key)
	}
	// Half the keys in CloudTrail delivery notifications (two per message,
	// one inside SNS), the rest in S3 event notifications; the digest key
	// rides along and must be skipped.
	var msgs [][]byte
	for i := 0; i < len(keys); i += 2 {
		batch := keys[i:min(i+2, len(keys))]
		switch {
		case i%4 == 0:
			msgs = append(msgs, corpus.S3DeliveryNotification(bucket, batch))
		case i%8 == 2:
			msgs = append(msgs, corpus.SNSNotification(corpus.S3DeliveryNotification(bucket, batch), "", time.Now()))
		default:
			msgs = append(msgs, corpus.S3EventNotification(bucket, batch, time.Now()))
		}
	}
	out := memory.NewSink("capture")
	cfg := Config{VisibilityTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, objects: s3c, sinks: []sink.Sink{out}})
	if err := q.Send(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	l.waitDone(t, time.Minute)
	checkFindings(t, c, out.Findings(), false)
	m := l.metrics(t)
	if got := m["sessionwatch_streamer_s3_objects_total"]; got != float64(len(keys)-1) {
		t.Errorf("objects fetched = %v, want %d (every log file, not the digest)", got, len(keys)-1)
	}
	if got := m["sessionwatch_streamer_out_of_scope_events_total"]; got != float64(len(c.Ignored)) {
		t.Errorf("out of scope = %v, want %d", got, len(c.Ignored))
	}
}

// A message held in process (its sink failing) when the streamer stops is
// released at once (visibility 0): the next streamer delivers its finding
// long before the visibility timeout would have let it, the message never
// reaches the DLQ, and the shutdown log counts it.
func TestLiveShutdownReleasesHeldMessage(t *testing.T) {
	dyn := testenv.DynamoClient(t)
	client := sqstest.Client(t)
	c := genCorpus(t, 5, 40)
	table := sessionTable(t, dyn, c)
	var body []byte
	var want corpus.Event
	for _, ev := range c.Findings() {
		want, body = ev, corpus.EventBridgeEnvelope(ev)
		break
	}
	if body == nil {
		t.Fatal("corpus has no finding")
	}
	// One receive by the first streamer, one release (local-aws-sqs counts
	// the ChangeMessageVisibility as a receive, AWS does not), one receive
	// by the second: a message that burnt any more receives goes to the DLQ.
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 3})
	// A visibility timeout far longer than the test waits: only a release
	// lets the second streamer see the message in time.
	const visibility = 2 * time.Minute
	cfg := Config{VisibilityTimeout: visibility, ShutdownTimeout: 5 * time.Second, RetryMax: time.Second}
	failing := memory.NewSink("failing")
	failing.SetFailing(true, false)
	var log1 testkit.LockedBuffer
	// One slot: while the message is held no receive is open. (local-aws-sqs
	// keeps serving a long poll the client gave up on, and would hand the
	// released message to the first streamer's abandoned receive.)
	firstCfg := cfg
	firstCfg.Pollers, firstCfg.MaxInFlight = 1, 1
	first := startLive(t, q, liveOptions{cfg: firstCfg, table: table, dynamo: dyn, sinks: []sink.Sink{failing}, log: &log1})
	if err := q.Send(context.Background(), [][]byte{body}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the sink failing on the message", func() bool {
		return first.metrics(t)[`sessionwatch_streamer_sink_failures_total{sink="failing"}`] >= 2
	})
	if n := first.s.InFlight(); n != 1 {
		t.Fatalf("%d messages in flight in the first streamer, want the 1 held", n)
	}
	first.stop(t)
	stopped := stopLine(t, log1.String())
	if got := stopped["released"]; got != float64(1) {
		t.Errorf("shutdown log says released %v, want 1 (the held message): %v", got, stopped)
	}

	good := memory.NewSink("good")
	second := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, sinks: []sink.Sink{good}})
	testkit.Eventually(t, 20*time.Second, "the second streamer delivering the finding", func() bool {
		if v, f, _ := q.DLQ.Depth(context.Background()); v+f > 0 {
			t.Fatalf("the message went to the DLQ (%d+%d)", v, f)
		}
		return len(good.Findings()) > 0
	})
	fs := good.Findings()
	if len(fs) != 1 || fs[0].Event.ID != want.ID || fs[0].Category != want.Expected {
		t.Errorf("second streamer delivered %d findings (first %+v), want one %s for event %s", len(fs), fs[0].Event, want.Expected, want.ID)
	}
	second.waitDone(t, 30*time.Second)
	if v, f, err := q.DLQ.Depth(context.Background()); err != nil || v+f != 0 {
		t.Errorf("DLQ depth %d+%d (%v), want empty", v, f, err)
	}
}

// stopLine finds the "streamer stopped" line of a JSON log.
func stopLine(t *testing.T, log string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "streamer stopped" {
			return m
		}
	}
	t.Fatalf("no \"streamer stopped\" line in the log:\n%s", log)
	return nil
}

// fakeS3 is an in-process S3 (gofakes3) holding bucket, and a real SDK
// client pointed at it (path-style addressing); only tests point the SDK
// at it.
func fakeS3(t *testing.T, bucket string) *s3.Client {
	t.Helper()
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(fake.Close)
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(fake.URL)
		o.UsePathStyle = true
	})
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return s3c
}

// TestLiveVerdictLogHoldsExactlyTheDeleted: a corpus through local SQS
// with a verdict log (file:, and s3:// on gofakes3 through the SDK); the
// log holds every classified event (tracked included) once per delete,
// with the finding_id the sink got, and nothing for the out-of-scope
// events.
func TestLiveVerdictLogHoldsExactlyTheDeleted(t *testing.T) {
	for _, dest := range []string{"file", "s3"} {
		t.Run(dest, func(t *testing.T) { testLiveVerdictLog(t, dest) })
	}
}

func testLiveVerdictLog(t *testing.T, dest string) {
	dyn := testenv.DynamoClient(t)
	c := genCorpus(t, 14, 300)
	table := sessionTable(t, dyn, c)
	q := sqstest.CreateTestQueue(t, sqstest.Client(t), sqstest.Options{MaxReceiveCount: 100})
	uri := "file:" + t.TempDir()
	var s3c *s3.Client
	if dest == "s3" {
		uri, s3c = "s3://verdicts/sessionwatch/prod", fakeS3(t, "verdicts")
	}
	w, err := verdictlog.OpenWriter(context.Background(), uri, verdictlog.WriterOptions{StreamerID: "live-test", S3: s3c})
	if err != nil {
		t.Fatal(err)
	}
	out := memory.NewSink("capture")
	cfg := Config{VisibilityTimeout: 30 * time.Second, ShutdownTimeout: 5 * time.Second, VerdictLogInterval: time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, accounts: c.Config.Accounts, sinks: []sink.Sink{out}, vlog: w})
	msgs := bodies(c)
	if err := q.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	// The emulator's queue depth can read 0 just after a send: wait for
	// every delete.
	testkit.Eventually(t, 2*time.Minute, "every message deleted", func() bool {
		return l.metrics(t)["sessionwatch_streamer_messages_deleted_total"] == float64(len(msgs))
	})
	l.waitDone(t, 2*time.Minute)
	m := l.metrics(t)
	l.stop(t)

	findingIDs := map[string]string{}
	for _, f := range out.Findings() {
		findingIDs[f.Event.ID] = f.FindingID
	}
	oldest, _ := c.Span()
	logged := map[string][]verdictlog.Entry{}
	var opts verdictlog.ReaderOptions
	if s3c != nil {
		opts.S3 = s3c
	}
	if err := verdictlog.Read(context.Background(), uri, oldest, time.Now(), opts, func(e verdictlog.Entry) error {
		logged[e.EventID] = append(logged[e.EventID], e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(logged) != len(c.Events) {
		t.Errorf("verdict log holds %d events, want the %d in scope", len(logged), len(c.Events))
	}
	for _, ev := range c.Events {
		es := logged[ev.ID]
		if len(es) == 0 {
			t.Errorf("event %s (%s) deleted but not in the verdict log", ev.ID, ev.Expected)
			continue
		}
		for _, e := range es {
			if e.Verdict != string(ev.Expected) || e.FindingID != findingIDs[ev.ID] || !e.EventTime.Equal(ev.Time.Truncate(time.Second)) {
				t.Errorf("event %s logged as %+v, want verdict %s finding_id %q", ev.ID, e, ev.Expected, findingIDs[ev.ID])
			}
		}
	}
	for _, ev := range c.Ignored {
		if len(logged[ev.ID]) > 0 {
			t.Errorf("out-of-scope event %s in the verdict log", ev.ID)
		}
	}
	t.Logf("%d messages, %d events logged in %v objects, %v gzip bytes (%.1f bytes per event)", len(msgs), len(logged),
		m["sessionwatch_streamer_verdict_log_objects_total"], m["sessionwatch_streamer_verdict_log_bytes_total"],
		m["sessionwatch_streamer_verdict_log_bytes_total"]/m["sessionwatch_streamer_verdict_log_entries_total"])
}

// replicaSession is a session of user valid from an hour ago for an hour.
func replicaSession(id, user, si string, now time.Time) sessions.Session {
	return sessions.Session{ID: id, User: user, Status: sessions.StatusActive, SourceIdentity: si,
		StartedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
}

// TestLiveReplicaSeesRevocation: with the replica on, a session revoked in
// the table while the streamer runs gives revoked for an event after the
// revocation, within one refresh of the event, and the table is never
// queried: every answer comes from the replica (after waiting for it).
func TestLiveReplicaSeesRevocation(t *testing.T) {
	dyn := testenv.DynamoClient(t)
	client := sqstest.Client(t)
	table := sessionTable(t, dyn, &corpus.Corpus{})
	ctx := context.Background()
	si := "sentinel:alice:direct:a1b2c3d4"
	sess := replicaSession("sess-alice", "alice", si, time.Now())
	if err := testenv.PutSessions(ctx, dyn, table, []sessions.Session{sess}); err != nil {
		t.Fatal(err)
	}
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 1000})
	out := memory.NewSink("capture")
	// Two seconds: a loaded machine's scans must not make the replica look
	// stale (two refresh periods), which would send lookups to the table.
	const refresh, skew = 2 * time.Second, time.Second
	cfg := Config{VisibilityTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, sinks: []sink.Sink{out},
		replica: &liveReplica{refresh: refresh, maxWait: 10 * time.Second, skew: skew}})

	before := time.Now().UTC().Truncate(time.Second)
	if err := q.Send(ctx, [][]byte{[]byte(recordJSON("ev-before", si, before))}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the event before the revocation tracked", func() bool {
		return l.metrics(t)[`sessionwatch_streamer_verdicts_total{verdict="tracked"}`] == 1
	})
	revokedAt := time.Now().UTC()
	sess.Status, sess.UpdatedAt, sess.RevokedBy, sess.RevokedReason = sessions.StatusRevoked, revokedAt, "secops", "leak"
	if err := testenv.PutSessions(ctx, dyn, table, []sessions.Session{sess}); err != nil {
		t.Fatal(err)
	}
	// The first whole second after the revocation plus the skew.
	after := revokedAt.Add(skew + time.Second).Truncate(time.Second)
	time.Sleep(time.Until(after))
	if err := q.Send(ctx, [][]byte{[]byte(recordJSON("ev-after", si, after))}); err != nil {
		t.Fatal(err)
	}
	// The queue's depth can read 0 before the message is received: wait
	// for its verdict first.
	testkit.Eventually(t, 20*time.Second, "the event after the revocation classified", func() bool {
		m := l.metrics(t)
		return m[`sessionwatch_streamer_verdicts_total{verdict="tracked"}`]+m[`sessionwatch_streamer_verdicts_total{verdict="revoked"}`] == 2
	})
	l.waitDone(t, 30*time.Second)
	got := byEvent(out.Findings())
	if len(got["ev-before"]) != 0 {
		t.Errorf("ev-before: %s finding, want none (tracked before the revocation)", got["ev-before"][0].Category)
	}
	fs := got["ev-after"]
	if len(fs) != 1 || fs[0].Category != classify.Revoked {
		t.Fatalf("ev-after: %v, want one revoked finding", fs)
	}
	// Final once the watermark passes the event and the skew: the next
	// refresh that starts after that, and its scan.
	if late := fs[0].DetectedAt.Sub(after); late > skew+refresh+3*time.Second {
		t.Errorf("revoked emitted %v after its event, more than the skew and one refresh (%v, %v) and slack", late, skew, refresh)
	}
	t.Logf("revocation seen %v after the event (skew %v, refresh %v)", fs[0].DetectedAt.Sub(after).Round(10*time.Millisecond), skew, refresh)
	m := l.metrics(t)
	for name, want := range map[string]float64{
		`sessionwatch_replica_lookups_total{answer="fallback"}`:                0, // never the Query path
		`sessionwatch_store_queries_total`:                                     0,
		`sessionwatch_streamer_replica_confirmations_total{verdict="revoked"}`: 1,
		`sessionwatch_replica_sessions`:                                        1,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	if m[`sessionwatch_replica_lookups_total{answer="replica"}`] < 2 || m[`sessionwatch_replica_refreshes_total`] < 1 {
		t.Errorf("replica answers %v, refreshes %v: want both events answered from it after a refresh",
			m[`sessionwatch_replica_lookups_total{answer="replica"}`], m[`sessionwatch_replica_refreshes_total`])
	}
}

// TestLiveReplicaStoreOutage: with the replica on, dynalite stopped for
// 10 s while events arrive: the replica's refreshes fail and its watermark
// stays; past events are still answered from memory, a new one waits and
// then, the replica no longer fresh, goes to the Query path, which fails
// until dynalite is back: no false finding, nothing lost, every event
// classified once.
func TestLiveReplicaStoreOutage(t *testing.T) {
	dynalite := testenv.StartRestartableDynalite(t)
	dyn := testenv.DynamoClient(t, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(dynalite.Endpoint) })
	client := sqstest.Client(t)
	c := genCorpus(t, 3, 200)
	table := sessionTable(t, dyn, c)
	si := "sentinel:zoe:direct:c3d4e5f6"
	ctx := context.Background()
	if err := testenv.PutSessions(ctx, dyn, table, []sessions.Session{replicaSession("sess-zoe", "zoe", si, time.Now())}); err != nil {
		t.Fatal(err)
	}
	q := sqstest.CreateTestQueue(t, client, sqstest.Options{MaxReceiveCount: 1000})
	out := memory.NewSink("capture")
	cfg := Config{VisibilityTimeout: 5 * time.Second, ShutdownTimeout: 5 * time.Second, RetryMax: 2 * time.Second}
	l := startLive(t, q, liveOptions{cfg: cfg, table: table, dynamo: dyn, sinks: []sink.Sink{out},
		replica: &liveReplica{refresh: time.Second, maxWait: 10 * time.Second, skew: time.Second}})

	msgs := bodies(c)
	half := len(msgs) / 2
	if err := q.Send(ctx, msgs[:half]); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "a first batch classified", func() bool {
		return l.metrics(t)["sessionwatch_streamer_messages_deleted_total"] >= 30
	})
	dynalite.Stop()
	down := time.Now()
	fresh := []byte(recordJSON("ev-fresh", si, down.UTC().Truncate(time.Second)))
	if err := q.Send(ctx, append(msgs[half:], fresh)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "replica refreshes failing", func() bool {
		return l.metrics(t)["sessionwatch_replica_refresh_errors_total"] > 0
	})
	testkit.Eventually(t, 10*time.Second, "the new event on the failing Query path", func() bool {
		return l.metrics(t)["sessionwatch_streamer_store_failures_total"] > 0
	})
	if got := byEvent(out.Findings())["ev-fresh"]; len(got) != 0 {
		t.Fatalf("ev-fresh: %s finding while the store is down", got[0].Category)
	}
	time.Sleep(10*time.Second - time.Since(down))
	dynalite.Start()
	t.Logf("dynalite down for %v", time.Since(down).Round(100*time.Millisecond))
	l.waitDone(t, 2*time.Minute)
	checkFindings(t, c, out.Findings(), false)

	m := l.metrics(t)
	classified := 0.0
	for _, v := range classify.AllVerdicts() {
		classified += m[fmt.Sprintf(`sessionwatch_streamer_verdicts_total{verdict=%q}`, v)]
	}
	if classified != float64(len(c.Events)+1) {
		t.Errorf("%v verdicts, want each of the %d events classified exactly once", classified, len(c.Events)+1)
	}
	testkit.Eventually(t, 10*time.Second, "the replica fresh again", func() bool {
		return l.metrics(t)["sessionwatch_replica_watermark_age_seconds"] < 5
	})
	t.Logf("refresh errors %v, store failures %v, answers: replica %v, not final %v, fallback %v",
		m["sessionwatch_replica_refresh_errors_total"], m["sessionwatch_streamer_store_failures_total"],
		m[`sessionwatch_replica_lookups_total{answer="replica"}`], m[`sessionwatch_replica_lookups_total{answer="not_final"}`],
		m[`sessionwatch_replica_lookups_total{answer="fallback"}`])
}

// TestLiveDisableRuleIsOnePipelineTamperedFinding: a DisableRule of the
// streamer's rule (a public CloudTrail record) through local SQS in its
// aws.events envelope gives exactly one pipeline_tampered finding; the
// same record in an aws.sts envelope is rejected.
func TestLiveDisableRuleIsOnePipelineTamperedFinding(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cloudtrail-public", "pipeline_records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var disable string
	for line := range strings.Lines(string(raw)) {
		if strings.Contains(line, `"eventName":"DisableRule"`) {
			disable = strings.TrimSpace(line)
		}
	}
	if disable == "" {
		t.Fatal("no DisableRule record in pipeline_records.jsonl")
	}
	envelope := func(id, source string) []byte {
		return []byte(`{"version":"0","id":"` + id + `","detail-type":"AWS API Call via CloudTrail","source":"` + source +
			`","account":"123456789012","time":"2015-11-18T00:11:28Z","region":"us-east-1","resources":[],"detail":` + disable + `}`)
	}
	dyn := testenv.DynamoClient(t)
	c := genCorpus(t, 15, 10)
	table := sessionTable(t, dyn, c)
	q := sqstest.CreateTestQueue(t, sqstest.Client(t), sqstest.Options{MaxReceiveCount: 100})
	out := memory.NewSink("capture")
	names := append(cloudtrail.DefaultEventNames(), cloudtrail.PipelineEventNames()...)
	l := startLive(t, q, liveOptions{cfg: Config{VisibilityTimeout: 30 * time.Second, ShutdownTimeout: 5 * time.Second},
		table: table, dynamo: dyn, sinks: []sink.Sink{out}, eventNames: names})
	if err := q.Send(context.Background(), [][]byte{envelope("p1", cloudtrail.EventsEnvelopeSource), envelope("p2", cloudtrail.EnvelopeSource)}); err != nil {
		t.Fatal(err)
	}
	// The emulator's queue depth can read 0 just after a send: wait for
	// the deletes.
	testkit.Eventually(t, time.Minute, "both messages deleted", func() bool {
		return l.metrics(t)["sessionwatch_streamer_messages_deleted_total"] == 2
	})
	l.waitDone(t, time.Minute)
	fs := out.Findings()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want one: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Category != classify.PipelineTampered || f.Severity != "high" || f.Event.Name != "DisableRule" ||
		f.Pipeline == nil || f.Pipeline.Rule != "sessionwatch-sts" || f.Pipeline.Service != cloudtrail.EventsEventSource {
		t.Errorf("finding %+v (pipeline %+v)", f, f.Pipeline)
	}
	m := l.metrics(t)
	if m[`sessionwatch_streamer_verdicts_total{verdict="pipeline_tampered"}`] != 1 || m["sessionwatch_streamer_rejected_total"] != 1 {
		t.Errorf("pipeline_tampered verdicts %v, rejected %v; want 1 and 1 (the aws.sts envelope)",
			m[`sessionwatch_streamer_verdicts_total{verdict="pipeline_tampered"}`], m["sessionwatch_streamer_rejected_total"])
	}
	t.Logf("finding %s: %s (%s)", f.FindingID, f.Reason, f.Severity)
}
