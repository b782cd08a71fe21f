package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// TestKill9VerdictLogHoldsEveryDeleted kills the streamer (SIGKILL) while
// it consumes a corpus with --verdict-log file:DIR, then compares what is
// left on the queue with the log: every in-scope event whose message was
// deleted is in the log.
func TestKill9VerdictLogHoldsEveryDeleted(t *testing.T) {
	c, table, q := setup(t, 9, 2000)
	dir := t.TempDir()
	logURI := "file:" + filepath.Join(dir, "verdicts")
	p := startProcess(t, table, append([]string{"--queue-url", q.URL, "--sink", "file:" + filepath.Join(dir, "findings.jsonl"),
		"--verdict-log", logURI, "--verdict-log-interval", "1s", "--verdict-log-id", "kill9"}, processArgs...)...)
	testkit.Eventually(t, 60*time.Second, "a first part deleted", func() bool {
		return p.metric(t, "sessionwatch_streamer_messages_deleted_total") >= 300
	})
	deletedSeen := p.metric(t, "sessionwatch_streamer_messages_deleted_total")
	p.signal(t, syscall.SIGKILL, 10*time.Second)

	// What the dead streamer held comes back after its visibility timeout
	// (5 s in processArgs, from its last extension); wait that long before
	// trusting the emulator's approximate in-flight count.
	time.Sleep(5*time.Second + 500*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		_, inFlight, err := q.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if inFlight == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("messages still in flight a minute after the kill")
		case <-time.After(200 * time.Millisecond):
		}
	}
	left, err := q.ReceiveAll(ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	onQueue := map[string]bool{}
	for _, m := range left {
		var body struct {
			EventID string `json:"eventID"`
			Detail  struct {
				EventID string `json:"eventID"`
			} `json:"detail"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &body); err != nil {
			t.Fatal(err)
		}
		onQueue[body.EventID+body.Detail.EventID] = true
	}

	oldest, _ := c.Span()
	logged := map[string]bool{}
	if err := verdictlog.Read(context.Background(), logURI, oldest, time.Now(), verdictlog.ReaderOptions{}, func(e verdictlog.Entry) error {
		logged[e.EventID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deleted, missing := 0, 0
	for _, ev := range c.Events {
		if onQueue[ev.ID] {
			continue
		}
		deleted++
		if !logged[ev.ID] {
			missing++
			t.Errorf("event %s: message deleted, event not in the verdict log", ev.ID)
		}
	}
	total := len(c.Events) + len(c.Ignored)
	t.Logf("SIGKILL after %v of %d messages deleted: %d left on the queue, %d in-scope events deleted, %d logged, %d deleted unlogged",
		deletedSeen, total, len(left), deleted, len(logged), missing)
	if len(left) == 0 || deleted < 300 {
		t.Fatalf("not mid-run: %d left on the queue, %d in-scope deleted", len(left), deleted)
	}
}

func TestVerdictLogOptions(t *testing.T) {
	base := map[string]string{"SESSIONWATCH_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/111122223333/q", "SESSIONWATCH_TABLE": "t"}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		hostname string
		wantURI  string
		wantID   string
		wantIntv time.Duration
		wantErr  bool
	}{
		{name: "off by default", wantIntv: time.Minute},
		{name: "from the environment", env: map[string]string{"SESSIONWATCH_VERDICT_LOG": "s3://b/p", "SESSIONWATCH_VERDICT_LOG_INTERVAL": "30s", "SESSIONWATCH_VERDICT_LOG_ID": "s-1"},
			wantURI: "s3://b/p", wantID: "s-1", wantIntv: 30 * time.Second},
		{name: "id from the host name", args: []string{"--verdict-log", "file:/tmp/v"}, hostname: "ip-10-0-0-1.ec2 internal",
			wantURI: "file:/tmp/v", wantID: "ip-10-0-0-1.ec2-internal", wantIntv: time.Minute},
		{name: "bad id", args: []string{"--verdict-log", "file:/tmp/v", "--verdict-log-id", "a/b"}, wantErr: true},
		{name: "interval out of range", args: []string{"--verdict-log", "file:/tmp/v", "--verdict-log-interval", "1h"}, wantErr: true},
		{name: "not under Lambda", env: map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, args: []string{"--verdict-log", "file:/tmp/v"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) {
				if v, ok := tc.env[k]; ok {
					return v, true
				}
				v, ok := base[k]
				return v, ok
			}
			e := env{stderr: &bytes.Buffer{}, lookupEnv: lookup, hostname: func() (string, error) { return tc.hostname, nil }}
			o, err := parseOptions(tc.args, e)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; options %+v", o)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.verdictLog != tc.wantURI || o.verdictLogID != tc.wantID || o.stream.VerdictLogInterval != tc.wantIntv {
				t.Errorf("verdict log %q id %q interval %v, want %q %q %v", o.verdictLog, o.verdictLogID, o.stream.VerdictLogInterval, tc.wantURI, tc.wantID, tc.wantIntv)
			}
		})
	}
}

func TestSilenceOptions(t *testing.T) {
	vars := map[string]string{"SESSIONWATCH_QUEUE_URL": "q", "SESSIONWATCH_TABLE": "t", "SESSIONWATCH_ACCOUNTS": "111122223333",
		"SESSIONWATCH_EXPECT_REGIONS": "us-east-1,eu-west-1", "SESSIONWATCH_SILENCE_AFTER": "2h"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	o, err := parseOptions(nil, env{stderr: &bytes.Buffer{}, lookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if s := o.stream; s.SilenceAfter != 2*time.Hour || strings.Join(s.ExpectRegions, ",") != "us-east-1,eu-west-1" || strings.Join(s.ExpectAccounts, ",") != "111122223333" {
		t.Errorf("silence options %v %q %q", s.SilenceAfter, s.ExpectRegions, s.ExpectAccounts)
	}
	if o, err := parseOptions(nil, env{stderr: &bytes.Buffer{}, lookupEnv: noEnv}); err == nil || o.stream.SilenceAfter != 6*time.Hour {
		t.Errorf("default silence after %v (err %v)", o.stream.SilenceAfter, err) // err: no queue URL
	}
	for _, args := range [][]string{{"--expect-regions", "us-east-1,mars"}, {"--silence-after", "10s"}} {
		if _, err := parseOptions(append([]string{"--queue-url", "q", "--table", "t"}, args...), env{stderr: &bytes.Buffer{}, lookupEnv: noEnv}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestPipelineEventsOnByDefault(t *testing.T) {
	all := strings.Join(append(cloudtrail.DefaultEventNames(), cloudtrail.PipelineEventNames()...), ",")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, all},
		{[]string{"--pipeline-events=false"}, strings.Join(cloudtrail.DefaultEventNames(), ",")},
		{[]string{"--event-names", "AssumeRole,DisableRule"}, "AssumeRole,DisableRule,DeleteRule,PutRule,PutTargets,RemoveTargets,SetQueueAttributes"},
	} {
		o, err := parseOptions(append([]string{"--queue-url", "q", "--table", "t"}, tc.args...), env{stderr: &bytes.Buffer{}, lookupEnv: noEnv})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(o.classified(), ","); got != tc.want {
			t.Errorf("%q: classified %s, want %s", tc.args, got, tc.want)
		}
	}
}

// The values terraform/main.tf sets by default parse.
func TestTerraformDefaultsParse(t *testing.T) {
	vars := map[string]string{"SESSIONWATCH_QUEUE_URL": "q", "SESSIONWATCH_TABLE": "t", "SESSIONWATCH_ACCOUNTS": "",
		"SESSIONWATCH_PIPELINE_EVENTS": "true", "SESSIONWATCH_SILENCE_AFTER": "21600s", "SESSIONWATCH_EXPECT_REGIONS": "",
		"SESSIONWATCH_VERDICT_LOG": "s3://verdicts/sessionwatch"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	o, err := parseOptions(nil, env{stderr: &bytes.Buffer{}, lookupEnv: lookup, hostname: func() (string, error) { return "ip-10-0-1-23.ec2.internal", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !o.pipelineEvents || o.stream.SilenceAfter != 6*time.Hour || len(o.stream.ExpectRegions) != 0 || o.verdictLog != "s3://verdicts/sessionwatch" || o.verdictLogID != "ip-10-0-1-23.ec2.internal" {
		t.Errorf("options %+v", o)
	}
}

// The running binary logs the silence metric as a CloudWatch embedded
// metric format line at once, with its queue's name as the dimension.
func TestSilenceMetricLoggedAtStart(t *testing.T) {
	_, table, q := setup(t, 19, 20)
	p := startProcess(t, table, append([]string{"--queue-url", q.URL, "--sink", "file:" + filepath.Join(t.TempDir(), "f.jsonl")}, processArgs...)...)
	var line string
	testkit.Eventually(t, 15*time.Second, "the silence metric line", func() bool {
		for l := range strings.Lines(p.stderr.String()) {
			if strings.Contains(l, `"message":"silence metric"`) {
				line = l
				return true
			}
		}
		return false
	})
	var rec struct {
		AWS struct {
			CloudWatchMetrics []struct{ Namespace string } `json:"CloudWatchMetrics"`
		} `json:"_aws"`
		QueueName     string
		SilentRegions *int
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.AWS.CloudWatchMetrics) != 1 || rec.AWS.CloudWatchMetrics[0].Namespace != "sessionwatch" || rec.QueueName != q.Name || rec.SilentRegions == nil {
		t.Errorf("EMF line %s: want namespace sessionwatch, QueueName %s, SilentRegions", line, q.Name)
	}
}
