package main

import (
	"context"
	"io"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cloudtrailfake"
	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	ct "github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/source"
)

// memoryClassifier classifies against m with a cache that keeps every
// answer for the whole benchmark (a warm cache once primed).
func memoryClassifier(b *testing.B, m *memory.Sessions, now time.Time, retention time.Duration) *classify.Classifier {
	b.Helper()
	cache, err := sessions.NewCache(m, sessions.CacheConfig{Capacity: 1 << 20, ExpireAfter: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	dir, err := sessions.NewDirectory(m, sessions.DirectoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	matcher, err := sessions.NewMatcher(cache, dir, sessions.MatcherConfig{PositiveTTL: time.Hour, NegativeTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	c, err := classify.New(matcher, classify.Config{Retention: retention, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// replayOnce runs src through the pipeline into a discarding sink.
func replayOnce(b *testing.B, src source.Source, cl *classify.Classifier, since, until time.Time) *summary {
	b.Helper()
	o := options{since: since, until: until}
	r := &replay{workers: 8, since: since, until: until, source: src, classifier: cl,
		sinks: []sink.Sink{sink.NewWriter("discard", io.Discard)}, log: zerolog.Nop(), now: time.Now, sum: newSummary(o)}
	if err := r.run(context.Background()); err != nil {
		b.Fatal(err)
	}
	r.sum.finish(src.Stats())
	return r.sum
}

func benchConfig(b *testing.B) aws.Config {
	b.Helper()
	b.Setenv("AWS_ACCESS_KEY_ID", "test")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	b.Setenv("AWS_REGION", "us-east-1")
	// The SDK's warnings (a closed idle connection when a fake from an
	// earlier run shuts down) would break benchmark output lines.
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithLogger(logging.Nop{}))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// lookupBenchEvents is the in-scope events per region: about 30 pages,
// fifteen seconds of a region's limit.
const lookupBenchEvents = 1500

// BenchmarkLookup reads LookupEvents through the fake, its limit of 2 calls
// a second per region enforced, for one and for three regions, and beside
// it the seed's approach: one region, AssumeRole only, pages asked for as
// fast as they come back, throttles left to the SDK's retries, every page
// collected before anything is classified.
//
//	go test ./cmd/backfill -run '^$' -bench Lookup -benchtime 1x -count 3
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run("regions="+strconv.Itoa(n), func(b *testing.B) {
			regions := threeRegions[:n]
			c, srv, cl := lookupBenchSetup(b, regions)
			cfg := benchConfig(b)
			since, until := windowTimes(c)
			var (
				elapsed           time.Duration
				events, throttles int64
				regionRates       []float64
			)
			for b.Loop() {
				src, err := source.NewLookup(source.LookupConfig{AWS: cfg, Regions: regions, EventNames: corpus.DefaultEventNames(),
					Since: since, Until: until, Decoder: ct.NewDecoder(ct.Config{})})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				sum := replayOnce(b, src, cl, since, until)
				elapsed += time.Since(start)
				if sum.inScope.Load() != int64(len(c.Events)) {
					b.Fatalf("%d events in scope, want %d", sum.inScope.Load(), len(c.Events))
				}
				events += sum.inScope.Load()
				throttles += sum.throttles
				for _, st := range src.Stats().Streams() {
					regionRates = append(regionRates, float64(st.Events.Load())/st.Elapsed().Seconds())
				}
			}
			if fake := srv.CloudTrail.TotalStats(); fake.Throttled != 0 {
				b.Errorf("the fake throttled %d calls", fake.Throttled)
			}
			// Each region's events over its own time (regions hold
			// different numbers of events); the slowest region's rate too.
			b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			b.ReportMetric(mean(regionRates), "events/s/region")
			b.ReportMetric(slices.Min(regionRates), "min-events/s/region")
			b.ReportMetric(float64(throttles)/float64(b.N), "throttles/op")
			b.ReportMetric(0, "user-errors/op")
		})
	}
	b.Run("seed", func(b *testing.B) {
		c, srv, cl := lookupBenchSetup(b, threeRegions[:1])
		cfg := benchConfig(b)
		since, until := windowTimes(c)
		client := cloudtrail.NewFromConfig(cfg) // the SDK's default retryer: 3 attempts
		var elapsed time.Duration
		var events, pages, failures int64
		before := srv.CloudTrail.TotalStats().Throttled
		for b.Loop() {
			start := time.Now()
			n, p, err := seedLookup(context.Background(), client, cl, since, until)
			elapsed += time.Since(start)
			events += int64(n)
			pages += int64(p)
			if err != nil {
				failures++
				b.Logf("seed run failed after %d pages, %d events classified: %v", p, n, err)
			}
		}
		perSec := float64(events) / elapsed.Seconds()
		b.ReportMetric(perSec, "events/s")
		b.ReportMetric(perSec, "events/s/region")
		b.ReportMetric(float64(pages)/float64(b.N), "pages/op")
		b.ReportMetric(float64(srv.CloudTrail.TotalStats().Throttled-before)/float64(b.N), "throttles/op")
		b.ReportMetric(float64(failures)/float64(b.N), "user-errors/op")
	})
}

func lookupBenchSetup(b *testing.B, regions []string) (*corpus.Corpus, *cloudtrailfake.Server, *classify.Classifier) {
	b.Helper()
	c, err := corpus.Generate(corpus.Config{Seed: 61, Events: lookupBenchEvents * len(regions), Now: testNow, Window: 72 * time.Hour,
		Retention: 30 * 24 * time.Hour, Regions: regions})
	if err != nil {
		b.Fatal(err)
	}
	now := c.Config.Now
	srv := cloudtrailfake.New(cloudtrailfake.Config{Now: func() time.Time { return now }})
	b.Cleanup(srv.Close)
	for k, v := range srv.Env() {
		b.Setenv(k, v)
	}
	var recs [][]byte
	for _, ev := range c.All() {
		recs = append(recs, ev.Record)
	}
	if err := srv.CloudTrail.Add(recs...); err != nil {
		b.Fatal(err)
	}
	return c, srv, memoryClassifier(b, memory.NewSessions(c.Sessions), now, 30*24*time.Hour)
}

func windowTimes(c *corpus.Corpus) (since, until time.Time) {
	oldest, newest := c.Span()
	return oldest.Add(-time.Hour), newest.Add(time.Hour)
}

// seedLookup is the seed's backfill loop (Sentinel's audit/untracked.go):
// AssumeRole only, NextToken followed without pacing, each throttle left to
// the SDK's retryer, all pages held in memory, then classified. A throttle
// that outlasts the retries ends the run.
func seedLookup(ctx context.Context, client *cloudtrail.Client, cl *classify.Classifier, since, until time.Time) (events, pages int, err error) {
	var all []cttypes.Event
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("AssumeRole")}},
		StartTime:        aws.Time(since), EndTime: aws.Time(until),
	}
	for {
		out, err := client.LookupEvents(ctx, in)
		if err != nil {
			return 0, pages, err
		}
		pages++
		all = append(all, out.Events...)
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	n := 0
	for _, e := range all {
		ev, err := ct.DecodeRecord([]byte(aws.ToString(e.CloudTrailEvent)))
		if err != nil || ev.Source != "sts.amazonaws.com" {
			continue
		}
		if _, err := cl.Classify(ctx, ev); err != nil {
			return n, pages, err
		}
		n++
	}
	return n, pages, nil
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// BenchmarkS3Archive's archive: 7 days of one account and region, as many
// out-of-scope records as in-scope events, one log file an hour (about 95
// records each; s3BenchPerFile caps them).
const (
	s3BenchEvents  = 8_000
	s3BenchPerFile = 500
)

// BenchmarkS3Archive lists, downloads (from an in-process gofakes3),
// gunzips, stream-decodes and classifies a generated trail archive with a
// warm session cache. Run it on one core:
//
//	go test ./cmd/backfill -run '^$' -bench S3Archive -cpu 1 -count 6
func BenchmarkS3Archive(b *testing.B) {
	c, err := corpus.Generate(corpus.Config{Seed: 71, Events: s3BenchEvents, Now: testNow, Window: 7 * 24 * time.Hour,
		OutOfScope: s3BenchEvents})
	if err != nil {
		b.Fatal(err)
	}
	files := corpus.Archive(c, s3BenchPerFile)
	startS3(b, files, nil)
	cfg := benchConfig(b)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true })
	store := memory.NewSessions(c.Sessions)
	cl := memoryClassifier(b, store, c.Config.Now, 0)
	since, until := windowTimes(c)
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.Body))
	}
	runOnce := func() *summary {
		src, err := source.NewArchive(source.S3Config{Client: client, Bucket: testBucket, Since: since, Until: until,
			Decoder: ct.NewDecoder(ct.Config{})})
		if err != nil {
			b.Fatal(err)
		}
		return replayOnce(b, src, cl, since, until)
	}
	if sum := runOnce(); sum.inScope.Load() != int64(len(c.Events)) { // primes the cache
		b.Fatalf("%d events in scope, want %d", sum.inScope.Load(), len(c.Events))
	}
	reads := store.Reads()
	b.SetBytes(bytes)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		runOnce()
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	if n := store.Reads() - reads; n != 0 {
		b.Fatalf("cache not warm: %d store reads during the benchmark", n)
	}
	// Wall-clock rates, and rates per second of this process's CPU time
	// (the in-process S3 server's included): on a shared machine the
	// latter is what one core does.
	events, records := float64(len(c.Events))*float64(b.N), float64(len(c.All()))*float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(records/cpu.Seconds(), "records/cpu-s")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
