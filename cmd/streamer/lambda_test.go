package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/streamer"
)

func TestLambdaRuntimeDetected(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"runtime API", map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, true},
		{"RPC server port", map[string]string{"_LAMBDA_SERVER_PORT": "8001"}, true},
		{"empty", map[string]string{"AWS_LAMBDA_RUNTIME_API": ""}, false},
		{"neither", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			if got := lambdaRuntime(lookup); got != tt.want {
				t.Errorf("lambdaRuntime = %v, want %v", got, tt.want)
			}
		})
	}
}

// Under the Lambda runtime no queue URL is needed: the mapping receives.
func TestLambdaOptionsNeedNoQueueURL(t *testing.T) {
	vars := map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "SESSIONWATCH_TABLE": "sessions", "SESSIONWATCH_ORPHAN_GRACE": "90s"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	o, err := parseOptions(nil, env{stderr: io.Discard, lookupEnv: lookup})
	if err != nil || !o.lambda || o.stream.OrphanGrace != 90*time.Second {
		t.Errorf("parseOptions under Lambda: %+v, %v", o, err)
	}
	delete(vars, "AWS_LAMBDA_RUNTIME_API")
	if _, err := parseOptions(nil, env{stderr: io.Discard, lookupEnv: lookup}); err == nil {
		t.Error("no --queue-url outside Lambda: no error")
	}
}

// failingTable fails every read that names one of the keys it was given
// (a store outage for those users), and passes the rest to the table.
type failingTable struct {
	sessions.DynamoDBAPI
	fail []string
}

func (f *failingTable) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if v, ok := in.ExpressionAttributeValues[":v"].(*types.AttributeValueMemberS); ok {
		for _, k := range f.fail {
			if strings.Contains(v.Value, k) {
				return nil, fmt.Errorf("injected ProvisionedThroughputExceededException for %q", v.Value)
			}
		}
	}
	return f.DynamoDBAPI.Query(ctx, in, optFns...)
}

// verdicts maps each finding's event id to its verdict.
func verdicts(fs []sink.Finding) map[string]classify.Verdict {
	out := map[string]classify.Verdict{}
	for _, f := range fs {
		out[f.Event.ID] = f.Category
	}
	return out
}

// stsRecord is an AssumeRole CloudTrail record; si "" has no
// SourceIdentity.
func stsRecord(id, name, si string, at time.Time) string {
	rec := map[string]any{
		"eventVersion": "1.08", "eventID": id, "requestID": "req-" + id, "eventTime": at.UTC().Format(time.RFC3339),
		"eventSource": cloudtrail.STSEventSource, "eventName": name, "awsRegion": "eu-west-1",
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

// envelope wraps a record as the EventBridge rule delivers it.
func envelope(source, record string) string {
	return fmt.Sprintf(`{"version":"0","id":"e-1","detail-type":%q,"source":%q,"account":"111122223333","time":"2024-01-01T00:00:00Z","region":"eu-west-1","resources":[],"detail":%s}`,
		cloudtrail.EnvelopeDetailType, source, record)
}

// lambdaBatch is one SQS batch mixing every outcome, and the records the
// handler must report as failures.
func lambdaBatch(now time.Time) (events.SQSEvent, []string) {
	msgs := []struct{ id, body string }{
		{"finding", envelope(cloudtrail.EnvelopeSource, stsRecord("ev-finding", "AssumeRole", "", now))},
		{"tracked", envelope(cloudtrail.EnvelopeSource, stsRecord("ev-tracked", "AssumeRoleWithSAML", "sentinel:alice:direct:a1b2c3d4", now))},
		{"poison", `{"version":"0","detail-type":`},
		{"store-failure", envelope(cloudtrail.EnvelopeSource, stsRecord("ev-store", "AssumeRole", "sentinel:bob:direct:b1b2c3d4", now))},
		{"sink-failure", envelope(cloudtrail.EnvelopeSource, stsRecord("ev-sink", "AssumeRole", "", now))},
		{"orphan-held", envelope(cloudtrail.EnvelopeSource, stsRecord("ev-orphan-new", "AssumeRole", "sentinel:carol:direct:c1c2c3d4", now))},
		{"orphan-due", envelope(cloudtrail.EnvelopeSource, stsRecord("ev-orphan-old", "AssumeRole", "sentinel:dave:direct:d1d2d3d4", now.Add(-10*time.Minute)))},
		{"rejected", envelope("aws.evil", stsRecord("ev-forged", "AssumeRole", "", now))},
		{"out-of-scope", stsRecord("ev-gci", "GetCallerIdentity", "", now)},
	}
	var ev events.SQSEvent
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: m.id, ReceiptHandle: "rh-" + m.id, Body: m.body, EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		})
	}
	return ev, []string{"orphan-held", "poison", "sink-failure", "store-failure"}
}

// sessionTable creates a session table holding alice's and bob's valid
// sessions.
func sessionTable(t *testing.T, now time.Time) (*dynamodb.Client, string) {
	t.Helper()
	ctx := context.Background()
	dyn := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, dyn, table); err != nil {
		t.Fatal(err)
	}
	var valid []sessions.Session
	for _, si := range []string{"sentinel:alice:direct:a1b2c3d4", "sentinel:bob:direct:b1b2c3d4"} {
		user := strings.Split(si, ":")[1]
		valid = append(valid, sessions.Session{
			ID: "s-" + user, User: user, Status: sessions.StatusActive, SourceIdentity: si,
			StartedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour),
		})
	}
	if err := testenv.PutSessions(ctx, dyn, table, valid); err != nil {
		t.Fatal(err)
	}
	return dyn, table
}

func failureIDs(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// One batch through the handler, with the real decoder and classifier over
// dynalite: only the messages that must come back are batch item failures.
func TestLambdaHandlerReportsPartialBatchFailures(t *testing.T) {
	now := time.Now()
	dyn, table := sessionTable(t, now)
	finder, err := sessions.Open(&failingTable{DynamoDBAPI: dyn, fail: []string{"bob"}}, sessions.Config{Store: sessions.StoreConfig{Table: table}})
	if err != nil {
		t.Fatal(err)
	}
	cls, err := classify.New(finder, classify.Config{})
	if err != nil {
		t.Fatal(err)
	}
	out := memory.NewSink("picky")
	out.Reject(func(f sink.Finding) bool { return f.Event.ID == "ev-sink" })
	var logs testkit.LockedBuffer
	log := zerolog.New(&logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	proc, err := streamer.NewProcessor(streamer.Config{OrphanGrace: streamer.DefaultOrphanGrace}, streamer.Deps{
		Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}), Classifier: cls, Sinks: []sink.Sink{out}, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &sqsHandler{proc: proc, workers: 4, log: log}

	batch, wantFailed := lambdaBatch(now)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.handle(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if got := failureIDs(resp); !slices.Equal(got, wantFailed) {
		t.Errorf("batch item failures %v, want %v", got, wantFailed)
	}
	wantFindings := map[string]classify.Verdict{"ev-finding": classify.NoSourceIdentity, "ev-orphan-old": classify.Orphaned}
	if got := verdicts(out.Findings()); !maps(got, wantFindings) {
		t.Errorf("findings by event %v, want %v", got, wantFindings)
	}
	// The runtime marshals the response: the field names the mapping reads.
	b, _ := json.Marshal(resp)
	if !strings.Contains(string(b), `"batchItemFailures":[{"itemIdentifier":"`) {
		t.Errorf("response JSON %s", b)
	}
	if !strings.Contains(logs.String(), `"messages":9,"done":5,"held":1,"failed":2,"undecodable":1`) {
		t.Errorf("no batch summary in the log")
	}

	// The redelivery, once the store is back and the sink accepts: only the
	// poison message and the orphan still inside its grace come back.
	h2 := &sqsHandler{proc: mustProcessor(t, dyn, table, memory.NewSink("picky")), workers: 4, log: log}
	resp, err = h2.handle(ctx, events.SQSEvent{Records: slices.DeleteFunc(slices.Clone(batch.Records), func(r events.SQSMessage) bool {
		return !slices.Contains(wantFailed, r.MessageId)
	})})
	if err != nil {
		t.Fatal(err)
	}
	if got := failureIDs(resp); !slices.Equal(got, []string{"orphan-held", "poison"}) {
		t.Errorf("redelivery: batch item failures %v, want [orphan-held poison]", got)
	}
}

func maps(a, b map[string]classify.Verdict) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustProcessor(t *testing.T, dyn sessions.DynamoDBAPI, table string, out sink.Sink) *streamer.Processor {
	t.Helper()
	finder, err := sessions.Open(dyn, sessions.Config{Store: sessions.StoreConfig{Table: table}})
	if err != nil {
		t.Fatal(err)
	}
	cls, err := classify.New(finder, classify.Config{})
	if err != nil {
		t.Fatal(err)
	}
	proc, err := streamer.NewProcessor(streamer.Config{OrphanGrace: streamer.DefaultOrphanGrace}, streamer.Deps{
		Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}), Classifier: cls, Sinks: []sink.Sink{out}, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return proc
}

// An invocation that ends before the batch is done answers in time, with
// what was not done as failures, instead of timing out (which would fail
// the whole batch).
func TestLambdaHandlerAnswersBeforeTheDeadline(t *testing.T) {
	now := time.Now()
	dyn, table := sessionTable(t, now)
	slow := &slowSink{}
	h := &sqsHandler{proc: mustProcessor(t, dyn, table, slow), workers: 2, log: zerolog.Nop()}
	batch, _ := lambdaBatch(now)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := h.handle(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 1900*time.Millisecond {
		t.Errorf("answered after %v; the invocation ends at 2s", took)
	}
	got := failureIDs(resp)
	for _, id := range []string{"finding", "sink-failure", "orphan-due"} { // their findings never got out
		if !slices.Contains(got, id) {
			t.Errorf("%s not reported failed: %v", id, got)
		}
	}
}

// slowSink never accepts before its context ends.
type slowSink struct{}

func (slowSink) Name() string { return "slow" }
func (slowSink) Write(ctx context.Context, fs []sink.Finding) error {
	<-ctx.Done()
	return &sink.BatchError{Sink: "slow", Failed: map[int]error{0: ctx.Err()}}
}
func (slowSink) Close(context.Context) error { return nil }

// fakeRuntime is the Lambda runtime API: it hands out one invocation, then
// holds the next poll until the test ends.
type fakeRuntime struct {
	srv      *httptest.Server
	payload  []byte
	mu       sync.Mutex
	served   bool
	response chan []byte
	errors   chan string
}

func newFakeRuntime(t *testing.T, payload []byte) *fakeRuntime {
	t.Helper()
	rt := &fakeRuntime{payload: payload, response: make(chan []byte, 1), errors: make(chan string, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		rt.mu.Lock()
		first := !rt.served
		rt.served = true
		rt.mu.Unlock()
		if !first {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", "inv-1")
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:111122223333:function:sessionwatch-streamer")
		_, _ = w.Write(rt.payload)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/inv-1/response", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rt.response <- b
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rt.errors <- r.URL.Path + ": " + string(b)
		w.WriteHeader(http.StatusAccepted)
	})
	rt.srv = httptest.NewServer(mux)
	t.Cleanup(rt.srv.Close)
	return rt
}

// The binary, started as the Lambda runtime starts it (the environment
// the Terraform module sets, no flags), answers an invocation with the
// batch item failures.
func TestLambdaBinaryUnderTheRuntimeAPI(t *testing.T) {
	now := time.Now()
	_, table := sessionTable(t, now)
	batch, _ := lambdaBatch(now)
	payload, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	rt := newFakeRuntime(t, payload)
	findings := filepath.Join(t.TempDir(), "findings.jsonl")
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(rt.srv.URL, "http://"),
		"SESSIONWATCH_TABLE="+table, "SESSIONWATCH_SINK=file:"+findings, "SESSIONWATCH_ORPHAN_GRACE=120s",
		"SESSIONWATCH_EVENT_NAMES="+strings.Join(cloudtrail.DefaultEventNames(), ","), "SESSIONWATCH_LOG_LEVEL=info",
	)
	stderr := &testkit.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("streamer stderr:\n%s", stderr.String())
		}
	})
	var resp events.SQSEventResponse
	select {
	case b := <-rt.response:
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Fatalf("response %s: %v", b, err)
		}
	case e := <-rt.errors:
		t.Fatalf("the function reported an error: %s", e)
	case <-time.After(30 * time.Second):
		t.Fatal("no response from the function within 30s")
	}
	// No store or sink failure here: the poison message and the orphan
	// inside its grace come back.
	if got := failureIDs(resp); !slices.Equal(got, []string{"orphan-held", "poison"}) {
		t.Errorf("batch item failures %v, want [orphan-held poison]", got)
	}
	got := map[string]classify.Verdict{}
	for _, f := range readFindings(t, findings) {
		got[f.Event.ID] = f.Category
	}
	want := map[string]classify.Verdict{"ev-finding": classify.NoSourceIdentity, "ev-sink": classify.NoSourceIdentity, "ev-orphan-old": classify.Orphaned}
	if !maps(got, want) {
		t.Errorf("findings written before the answer %v, want %v", got, want)
	}
}

// Every variable the Terraform module sets for the streamer (ECS task and
// Lambda function alike) is one the streamer reads: a renamed flag would
// otherwise be ignored silently.
func TestTerraformEnvironmentIsTheStreamersFlags(t *testing.T) {
	path := filepath.Join("..", "..", "terraform", "main.tf")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var names []string
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		a, ok := b.Body.Attributes["streamer_environment"]
		if b.Type != "locals" || !ok {
			continue
		}
		call, ok := a.Expr.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "merge" || len(call.Args) == 0 {
			t.Fatalf("local.streamer_environment is not merge({...}, ...)")
		}
		obj, ok := call.Args[0].(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Fatalf("local.streamer_environment: merge's first argument is not an object")
		}
		for _, item := range obj.Items {
			names = append(names, hcl.ExprAsKeyword(item.KeyExpr))
		}
	}
	if len(names) < 5 {
		t.Fatalf("local.streamer_environment names %v", names)
	}
	read := map[string]bool{}
	lookup := func(k string) (string, bool) { read[k] = true; return "", false }
	_, _ = parseOptions(nil, env{stderr: io.Discard, lookupEnv: lookup})
	for _, n := range names {
		if !read[n] {
			t.Errorf("terraform sets %s, which the streamer does not read", n)
		}
	}
}
