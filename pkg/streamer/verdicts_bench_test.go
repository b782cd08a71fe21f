package streamer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// corpusEntries are the verdict log lines of n generated events (the
// default verdict mix, three accounts, four regions), built as the
// streamer builds them.
func corpusEntries(b *testing.B, n int) []verdictlog.Entry {
	b.Helper()
	c, err := corpus.Generate(corpus.Config{Seed: 100, Events: n, Now: time.Now(), MinAge: time.Hour,
		Accounts: []string{"111122223333", "444455556666", "777788889999"}, Regions: []string{"us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"}})
	if err != nil {
		b.Fatal(err)
	}
	dec := cloudtrail.NewDecoder(cloudtrail.Config{IncludeServiceCallers: true})
	out := make([]verdictlog.Entry, 0, n)
	for _, ev := range c.Events {
		msg, _ := dec.DecodeMessage(ev.Record)
		if msg.Event == nil {
			b.Fatalf("event %s: not decoded", ev.ID)
		}
		r := classify.Result{Verdict: ev.Expected}
		id := ""
		if r.IsFinding() {
			id = classify.FindingID(msg.Event.DedupKey(), ev.Expected)
		}
		e, ok := verdictEntry(msg.Event, r, id)
		if !ok {
			b.Fatalf("event %s: no entry", ev.ID)
		}
		out = append(out, e)
	}
	return out
}

// BenchmarkVerdictLogObject writes one object of the size the streamer
// writes at 100 events/s: 500 events (a flush every 5 s: with the default
// --max-in-flight 1000 half of it fills first) and 6,000 (one object per
// --verdict-log-interval of 1m, with --max-in-flight above 12,000).
func BenchmarkVerdictLogObject(b *testing.B) {
	const rate = 100 // events per second
	for _, perObject := range []int{500, 6000} {
		b.Run(fmt.Sprintf("events=%d", perObject), func(b *testing.B) {
			entries := corpusEntries(b, perObject)
			w, err := verdictlog.OpenWriter(context.Background(), "file:"+b.TempDir(), verdictlog.WriterOptions{StreamerID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			var (
				obj      verdictlog.Object
				jsonSize int
			)
			b.ResetTimer()
			for range b.N {
				if err := w.Add(context.Background(), entries...); err != nil {
					b.Fatal(err)
				}
				_, jsonSize = w.Buffered()
				if obj, err = w.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(obj.Bytes)/float64(obj.Entries), "gzip-bytes/event")
			b.ReportMetric(float64(jsonSize)/float64(obj.Entries), "json-bytes/event")
			b.ReportMetric(float64(rate*3600)/float64(perObject), "objects/hour")
			b.ReportMetric(float64(obj.Bytes)*float64(rate*3600)/float64(perObject)/(1<<20), "MiB/hour")
		})
	}
}

// BenchmarkVerdictLogAt100EventsPerSecond runs the streamer (default
// flags, a fake queue and classifier) fed 100 messages a second for 15 s
// and counts the verdict log objects it writes. Run it once:
// -bench VerdictLogAt100 -benchtime 1x.
func BenchmarkVerdictLogAt100EventsPerSecond(b *testing.B) {
	const (
		rate = 100
		secs = 15
	)
	for range b.N {
		q := newFakeQueue(0)
		vlog := &fakeVerdictLog{}
		cfg := Config{QueueURL: "https://queue.test/fake", WaitTime: time.Second}
		m, err := NewMetrics(nil)
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(cfg, Deps{Queue: q, Decoder: cloudtrail.NewDecoder(cloudtrail.Config{}), Classifier: newFakeClassifier(),
			Sinks: []sink.Sink{memory.NewSink("capture")}, Metrics: m, VerdictLog: vlog, Log: testLogger(b)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		start := time.Now()
		for sec := range secs {
			for i := range rate {
				q.send(recordJSON(fmt.Sprintf("ev-%03d-%03d", sec, i), "ok:x", start.Add(-time.Hour)))
			}
			time.Sleep(time.Until(start.Add(time.Duration(sec+1) * time.Second)))
		}
		objects := vlog.flushes // before the shutdown's last flush
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(objects)*3600/secs, "objects/hour")
	}
}
