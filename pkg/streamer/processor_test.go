package streamer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

func newTestProcessor(t *testing.T, cls *fakeClassifier, objects ObjectAPI, sinks ...sink.Sink) *Processor {
	t.Helper()
	cfg := testConfig()
	cfg.QueueURL = "" // the event source mapping's queue: not the processor's
	cfg.OrphanGrace = time.Minute
	p, err := NewProcessor(cfg, Deps{
		Objects: objects, Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}),
		Classifier: cls, Sinks: sinks, Log: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// One pass per message: each disposition, and the findings that reached the
// sink by the time Process returned.
func TestProcessorDispositions(t *testing.T) {
	now := time.Now()
	old := now.Add(-time.Hour)
	rec := recordJSON("ev-env", "", now)
	objects := &fakeObjects{objs: map[string][]byte{
		"trail/AWSLogs/1/CloudTrail/a.json.gz": logFile(t, recordJSON("s3-1", "", old), recordJSON("s3-2", "ok:2", old)),
	}}
	tests := []struct {
		name      string
		body      string
		storeDown bool
		sinkFails bool
		want      Disposition
		findings  []string // event ids in the sink after the pass
		rechecks  int
	}{
		{name: "tracked", body: recordJSON("ev-1", "ok:1", now), want: Done},
		{name: "finding accepted", body: recordJSON("ev-2", "", now), want: Done, findings: []string{"ev-2"}},
		{name: "in an EventBridge envelope", body: `{"version":"0","id":"e","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","account":"111122223333","detail":` + rec + `}`,
			want: Done, findings: []string{"ev-env"}},
		{name: "orphan within the grace", body: recordJSON("ev-3", "orphan:3", now), want: Held},
		{name: "orphan past the grace is re-checked at once", body: recordJSON("ev-4", "orphan:4", old), want: Done, findings: []string{"ev-4"}, rechecks: 1},
		{name: "store failure", body: recordJSON("ev-5", "down:5", now), storeDown: true, want: Failed},
		{name: "sink failure", body: recordJSON("ev-6", "", now), sinkFails: true, want: Failed},
		{name: "undecodable", body: "this is not JSON", want: Undecodable},
		{name: "panic", body: recordJSON("ev-7", "panic:7", now), want: Undecodable},
		{name: "rejected envelope", body: `{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","account":"111122223333","detail":` + rec + `}`, want: Done},
		{name: "out of scope", body: strings.Replace(recordJSON("ev-8", "", now), `"AssumeRole"`, `"GetCallerIdentity"`, 1), want: Done},
		{name: "S3 notification", body: `{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/1/CloudTrail/a.json.gz"]}`, want: Done, findings: []string{"s3-1"}},
		{name: "S3 notification, object missing", body: `{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/1/CloudTrail/gone.json.gz"]}`, want: Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cls := newFakeClassifier()
			cls.setStoreDown(tt.storeDown)
			c := memory.NewSink("capture")
			c.SetFailing(tt.sinkFails, false)
			p := newTestProcessor(t, cls, objects, c)
			got := p.Process(context.Background(), Message{ID: "m-1", Body: tt.body, ReceiveCount: 1})
			if got != tt.want {
				t.Errorf("Process = %v, want %v", got, tt.want)
			}
			var ids []string
			for _, f := range c.Findings() {
				ids = append(ids, f.Event.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.findings, ",") {
				t.Errorf("findings for events %v, want %v", ids, tt.findings)
			}
			cls.mu.Lock()
			defer cls.mu.Unlock()
			rechecks := 0
			for _, n := range cls.rechecks {
				rechecks += n
			}
			if rechecks != tt.rechecks {
				t.Errorf("%d re-checks, want %d", rechecks, tt.rechecks)
			}
		})
	}
}

// A held orphan comes back after the grace (the queue's visibility timeout
// is longer) and is then re-checked and emitted, or cleared when its
// session appeared meanwhile.
func TestProcessorRedeliveredOrphanIsRecheckedAfterTheGrace(t *testing.T) {
	cls := newFakeClassifier()
	c := memory.NewSink("capture")
	cfg := testConfig()
	cfg.OrphanGrace = time.Second // the record's time is cut to whole seconds
	p, err := NewProcessor(cfg, Deps{Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}), Classifier: cls, Sinks: []sink.Sink{c}, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	confirmed, cleared := Message{ID: "m-1", Body: recordJSON("ev-1", "orphan:1", now)}, Message{ID: "m-2", Body: recordJSON("ev-2", "orphan:2", now)}
	for _, m := range []Message{confirmed, cleared} {
		if got := p.Process(context.Background(), m); got != Held {
			t.Fatalf("%s first pass: %v, want held", m.ID, got)
		}
	}
	cls.appear("orphan:2")
	time.Sleep(cfg.OrphanGrace + 100*time.Millisecond)
	for _, m := range []Message{confirmed, cleared} {
		if got := p.Process(context.Background(), m); got != Done {
			t.Errorf("%s after the grace: %v, want done", m.ID, got)
		}
	}
	got := byEvent(c.Findings())
	if len(got) != 1 || len(got["ev-1"]) != 1 || got["ev-1"][0].Category != classify.Orphaned {
		t.Errorf("findings %v, want one orphaned for ev-1", got)
	}
}

func TestNewProcessorNeedsNoQueue(t *testing.T) {
	_, err := NewProcessor(Config{}, Deps{Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}), Classifier: newFakeClassifier(), Sinks: []sink.Sink{memory.NewSink("")}})
	if err != nil {
		t.Errorf("NewProcessor without a queue: %v", err)
	}
	if _, err := NewProcessor(Config{}, Deps{Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}), Classifier: newFakeClassifier()}); err == nil {
		t.Error("NewProcessor without a sink: no error")
	}
	if _, err := New(Config{}, Deps{Queue: newFakeQueue(0), Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}), Classifier: newFakeClassifier(), Sinks: []sink.Sink{memory.NewSink("")}}); err == nil {
		t.Error("New without a queue URL: no error")
	}
}
