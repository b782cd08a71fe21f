package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sessionwatch/sessionwatch/internal/sinkfake"
)

// memSink accepts findings except the indexes in fail (per Write call).
type memSink struct {
	name   string
	fail   map[int]bool
	err    error // returned whole when set
	mu     sync.Mutex
	got    []string
	closed bool
}

func (m *memSink) Name() string { return m.name }
func (m *memSink) Write(_ context.Context, fs []Finding) error {
	if m.err != nil {
		return m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	be := &BatchError{Sink: m.name, Failed: map[int]error{}}
	for i, f := range fs {
		if m.fail[i] {
			be.Failed[i] = errors.New("nope")
			continue
		}
		m.got = append(m.got, f.FindingID)
	}
	if len(be.Failed) > 0 {
		return be
	}
	return nil
}
func (m *memSink) Close(context.Context) error { m.closed = true; return nil }

func TestMultiAcceptsOnlyWhatEverySinkAccepted(t *testing.T) {
	a := &memSink{name: "a", fail: map[int]bool{1: true}}
	b := &memSink{name: "b", fail: map[int]bool{1: true, 3: true}}
	c := &memSink{name: "c"}
	m := NewMulti(a, b, c)
	err := m.Write(context.Background(), testFindings("m", 5))
	var be *BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 || be.Failed[1] == nil || be.Failed[3] == nil {
		t.Fatalf("got %v, want failures at 1 and 3", err)
	}
	if msg := be.Failed[1].Error(); !strings.Contains(msg, "a: nope") || !strings.Contains(msg, "b: nope") {
		t.Errorf("#1 should name both sinks: %q", msg)
	}
	if err := NewMulti(c, &memSink{name: "d"}).Write(context.Background(), testFindings("ok", 3)); err != nil {
		t.Errorf("all accepted: %v", err)
	}
	down := &memSink{name: "down", err: errors.New("unreachable")}
	err = NewMulti(c, down).Write(context.Background(), testFindings("x", 3))
	if !errors.As(err, &be) || len(be.Failed) != 3 {
		t.Errorf("a whole-call error fails every finding: %v", err)
	}
	if err := m.Close(context.Background()); err != nil || !a.closed || !b.closed || !c.closed {
		t.Errorf("close: %v", err)
	}
	if m.Name() != "multi(a,b,c)" {
		t.Errorf("name %q", m.Name())
	}
}

func TestOpenAllAndURIs(t *testing.T) {
	dir := t.TempDir()
	env := testEnv(map[string]string{EnvHECToken: "t", EnvWebhookSecret: "k"})
	s, err := OpenAll(context.Background(), []string{"file:" + filepath.Join(dir, "a.jsonl"), "ocsf+file:" + filepath.Join(dir, "b.jsonl")}, Options{LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Multi); !ok {
		t.Fatalf("two URIs gave %T", s)
	}
	if err := s.Write(context.Background(), testFindings("u", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "b.jsonl"))
	if !strings.Contains(string(b), `"class_uid":2004`) {
		t.Errorf("ocsf+file wrote %s", b)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.jsonl"))
	if !strings.Contains(string(a), `"schema":"sessionwatch.finding/v1"`) {
		t.Errorf("file wrote %s", a)
	}

	for _, tt := range []struct {
		uri     string
		ok      bool
		wantErr error // when not ok, and the error has a sentinel
	}{
		{uri: "kafka:x", wantErr: ErrUnknownSink},
		{uri: "cef+file:/tmp/x"}, // unknown format
		{uri: "webhook:https://h.example/x", ok: true},
		{uri: "hec:https://h.example/x", ok: true},
	} {
		s, err := Open(tt.uri, Options{LookupEnv: env})
		if err == nil {
			_ = s.Close(context.Background())
		}
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v", tt.uri, err)
		case !tt.ok && err == nil:
			t.Errorf("%s accepted", tt.uri)
		case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
			t.Errorf("%s: %v, want %v", tt.uri, err, tt.wantErr)
		}
	}
	for _, uri := range []string{"sns:not-an-arn", "sqs:", "eventbridge:", "webhook:ftp://h/x", "hec:nohost"} {
		if _, err := Open(uri, Options{LookupEnv: env, AWS: testAWSConfig("http://127.0.0.1:1")}); err == nil {
			t.Errorf("%s accepted", uri)
		}
	}
	if _, err := Open("webhook:https://h.example/x", Options{LookupEnv: testEnv(nil)}); !errors.Is(err, ErrNoSecret) {
		t.Errorf("webhook without a key: %v", err)
	}
	sh, err := Open("securityhub", Options{AWS: testAWSConfig("http://127.0.0.1:1")})
	if err != nil || sh.Name() != "securityhub" {
		t.Errorf("securityhub: %v %v", sh, err)
	}
	_ = sh.Close(context.Background())
}

func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "findings.jsonl")
	one, _ := Render(ptr(fixedFinding()), FormatNative, RenderConfig{})
	s, err := Open("file:"+path, Options{File: FileConfig{MaxBytes: int64(len(one)+1) * 3, MaxBackups: 2}})
	if err != nil {
		t.Fatal(err)
	}
	fs := testFindings("rot", 20)
	for i := 0; i < len(fs); i += 2 {
		if err := s.Write(context.Background(), fs[i:i+2]); err != nil {
			t.Fatal(err)
		}
	}
	closeSink(t, s)
	backups, _ := filepath.Glob(path + ".*")
	if len(backups) != 2 {
		t.Errorf("%d backups, want 2 (MaxBackups): %v", len(backups), backups)
	}
	lines := 0
	for _, p := range append(backups, path) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(p)
		if st.Size() > int64(len(one)+1)*3 {
			t.Errorf("%s is %d bytes, over MaxBytes", p, st.Size())
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", p, st.Mode().Perm())
		}
		lines += strings.Count(string(b), "\n")
	}
	if lines != 6 { // the current file and the two newest backups, 2 lines each
		t.Errorf("%d lines kept, want 6", lines)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSecurityHubRateAndBatches(t *testing.T) {
	f := sinkfake.NewSecurityHub(t, testAccount, testRegion)
	o := fastRetry()
	o.AWS, o.Render = testAWSConfig(f.URL), RenderConfig{AccountID: testAccount}
	o.Batch.MaxItems = 5 // 60 findings → 12 calls: more than 10 calls' worth
	o.Batch.MaxInFlight = 4
	s, err := Open("securityhub", o)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	fs := testFindings("rate", 60)
	start := time.Now()
	if err := s.Write(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("12 calls took %v: faster than 10 calls a second", d)
	}
	if v := f.RateViolations(); v != 0 {
		t.Errorf("%d calls over the rate", v)
	}
	wantCounts(t, f.Counts(), ids(fs), true)
}

func TestOversizeFindingFailsAlone(t *testing.T) {
	topic := "arn:aws:sns:us-east-1:" + testAccount + ":findings"
	f := sinkfake.NewSNS(t, topic)
	o := fastRetry()
	o.AWS = testAWSConfig(f.URL)
	s, err := Open("sns:"+topic, o)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	fs := testFindings("big", 4)
	fs[2].Reason = strings.Repeat("r", 300*1024)
	err = s.Write(context.Background(), fs)
	var be *BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || !errors.Is(be.Failed[2], ErrTooLarge) {
		t.Fatalf("got %v, want only #2 too large", err)
	}
	wantCounts(t, f.Counts(), ids(fs, 2), true)
	if m := f.Malformed(); len(m) > 0 {
		t.Errorf("sent over the limit: %q", m)
	}
}

func TestEnvelopes(t *testing.T) {
	eb := sinkfake.NewEventBridge(t, "security")
	o := fastRetry()
	o.AWS = testAWSConfig(eb.URL)
	s, err := Open("ocsf+eventbridge:arn:aws:events:us-east-1:"+testAccount+":event-bus/security", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testFindings("env", 1)); err != nil {
		t.Fatal(err)
	}
	closeSink(t, s)
	got := eb.Received()
	if len(got) != 1 || got[0].Attrs["source"] != "sessionwatch" || got[0].Attrs["detail-type"] != "sessionwatch finding" ||
		got[0].Attrs["resources"] != "arn:aws:iam::111122223333:role/Admin" || !strings.Contains(string(got[0].Body), `"class_uid":2004`) {
		t.Errorf("EventBridge event %+v", got)
	}

	hec := sinkfake.NewHEC(t, "tok")
	o = fastRetry()
	o.LookupEnv = testEnv(map[string]string{EnvHECToken: "tok"})
	o.HEC = HECConfig{Host: "sw-1", Index: "security"}
	s, err = Open("ocsf+hec:"+hec.URL+"/services/collector/event", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testFindings("hec", 1)); err != nil {
		t.Fatal(err)
	}
	closeSink(t, s)
	var env struct {
		Time                            float64
		Host, Source, Sourcetype, Index string
		Event                           map[string]any
	}
	if r := hec.Received(); len(r) != 1 || json.Unmarshal(r[0].Body, &env) != nil {
		t.Fatalf("HEC got %+v", r)
	}
	if env.Time != 1795168802 || env.Host != "sw-1" || env.Source != "sessionwatch" || env.Sourcetype != "sessionwatch:ocsf" ||
		env.Index != "security" || env.Event["class_uid"] != float64(2004) {
		t.Errorf("HEC envelope %+v", env)
	}

	hook := sinkfake.NewWebhook(t, []byte("k"), "X-Signature")
	o = fastRetry()
	o.Webhook = WebhookConfig{Secret: SecretSource{Env: "HOOK_KEY"}, SignatureHeader: "X-Signature"}
	o.LookupEnv = testEnv(map[string]string{"HOOK_KEY": "k"})
	s, err = Open("webhook:"+hook.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testFindings("hook", 2)); err != nil {
		t.Fatal(err)
	}
	closeSink(t, s)
	for _, r := range hook.Received() {
		if r.Attrs["finding-id-header"] != r.ID {
			t.Errorf("finding id header %q for %q", r.Attrs["finding-id-header"], r.ID)
		}
	}
	if len(hook.Received()) != 2 {
		t.Errorf("webhook got %d", len(hook.Received()))
	}
}

func TestClassifyAndRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	if d := parseRetryAfter("3", now); d != 3*time.Second {
		t.Errorf("seconds: %v", d)
	}
	if d := parseRetryAfter(now.Add(5*time.Second).Format(http.TimeFormat), now); d != 5*time.Second {
		t.Errorf("date: %v", d)
	}
	if d := parseRetryAfter("soon", now); d != 0 {
		t.Errorf("garbage: %v", d)
	}
	resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"2"}}}
	sdkErr := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: errors.New("unavailable")}
	if d := retryAfter(sdkErr, now); d != 2*time.Second {
		t.Errorf("SDK Retry-After: %v", d)
	}
	for _, tc := range []struct {
		err    error
		retry  bool
		reason string
	}{
		{&HTTPError{Status: 429}, true, ReasonThrottled},
		{&HTTPError{Status: 502}, true, ReasonServerError},
		{&HTTPError{Status: 400}, false, ReasonRejected},
		{&ItemError{Code: "ThrottlingException", Retryable: true}, true, ReasonThrottled},
		{&ItemError{Code: "InternalError", Retryable: true}, true, ReasonItem},
		{&ItemError{Code: "InvalidParameter"}, false, ReasonRejected},
		{sdkErr, true, ReasonServerError},
		{context.DeadlineExceeded, true, ReasonTimeout},
		{context.Canceled, false, ReasonCanceled},
		{ErrTooLarge, false, ReasonTooLarge},
	} {
		if retry, reason := classifyErr(tc.err); retry != tc.retry || reason != tc.reason {
			t.Errorf("%v: %v %s, want %v %s", tc.err, retry, reason, tc.retry, tc.reason)
		}
	}
}

// TestHECEventIsTheRendering: the HEC envelope carries the format's
// rendering byte for byte, attacker-supplied strings unescaped as in every
// other sink (a json.RawMessage inside json.Marshal would HTML-escape them).
func TestHECEventIsTheRendering(t *testing.T) {
	f := fixedFinding()
	f.Event.UserAgent = `a<b>&c`
	for _, format := range Formats() {
		want, err := Render(&f, format, RenderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := hecRender(HECConfig{Source: "sessionwatch", Sourcetype: "st"}, format, RenderConfig{})(&f)
		if err != nil {
			t.Fatal(err)
		}
		var env struct{ Event json.RawMessage }
		if err := json.Unmarshal(got, &env); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(env.Event, want) {
			t.Errorf("%s: HEC event\n%s\nwant the rendering\n%s", format, env.Event, want)
		}
		if !bytes.Contains(got, []byte(`a<b>&c`)) {
			t.Errorf("%s: the user agent is escaped in %s", format, got)
		}
	}
}
