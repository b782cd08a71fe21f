package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// ErrNoSource is returned when the source path does not exist.
var ErrNoSource = errors.New("source not found")

// storeRetries bounds how often one event's lookup is retried after the
// SDK's own retries: a store that stays down ends the run with an error,
// never with a verdict.
const storeRetries = 5

// listLogFiles returns the log files under path (or path itself), sorted, as
// a trail archive lays them out: .json and .json.gz hold {"Records":[…]},
// .jsonl and .jsonl.gz hold one message a line; digests are skipped.
func listLogFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoSource, path)
		}
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "CloudTrail-Digest" {
				return filepath.SkipDir
			}
			return nil
		}
		if logKind(p) != "" && !cloudtrail.IsDigestKey(filepath.ToSlash(p)) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	sort.Strings(files)
	return files, nil
}

// logKind is "records" for CloudTrail log files, "lines" for JSON lines.
func logKind(path string) string {
	name := strings.TrimSuffix(strings.ToLower(path), ".gz")
	switch {
	case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".ndjson"):
		return "lines"
	case strings.HasSuffix(name, ".json"):
		return "records"
	default:
		return ""
	}
}

// replay reads every file, classifies in-scope events of the window on a
// bounded pool of workers, and writes findings to every sink.
type replay struct {
	opts       options
	files      []string
	decoder    *cloudtrail.Decoder
	classifier *classify.Classifier
	sinks      []sink.Sink
	log        zerolog.Logger
	now        func() time.Time
	sum        *summary
}

type classified struct {
	ev *cloudtrail.Event
	r  classify.Result
}

func (r *replay) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	events := make(chan *cloudtrail.Event, 4*r.opts.workers)
	findings := make(chan classified, 4*r.opts.workers)

	g.Go(func() error {
		defer close(events)
		for _, f := range r.files {
			if err := r.readFile(ctx, f, events); err != nil {
				return err
			}
		}
		return nil
	})
	workers, wctx := errgroup.WithContext(ctx)
	for range r.opts.workers {
		workers.Go(func() error {
			for ev := range events {
				res, err := r.classify(wctx, ev)
				if err != nil {
					return err
				}
				r.sum.addVerdict(res.Verdict)
				if res.IsFinding() {
					select {
					case findings <- classified{ev, res}:
					case <-wctx.Done():
						return wctx.Err()
					}
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(findings)
		return workers.Wait()
	})
	g.Go(func() error { return r.writeFindings(ctx, findings) })
	return g.Wait()
}

// readFile streams one file's events into out, counting what it skips.
func (r *replay) readFile(ctx context.Context, path string, out chan<- *cloudtrail.Event) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	rd, err := cloudtrail.Uncompressed(f)
	if err != nil {
		r.malformed(path, 0, err)
		return nil
	}
	send := func(ev *cloudtrail.Event) error {
		select {
		case out <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if logKind(path) == "lines" {
		for lm, err := range cloudtrail.Lines(rd, r.decoder) {
			if ev := r.admit(path, lm.Line, lm.Event, err); ev != nil {
				if err := send(ev); err != nil {
					return err
				}
			}
		}
		return nil
	}
	n := 0
	for ev, err := range cloudtrail.Records(rd) {
		n++
		if err == nil {
			err = r.decoder.CheckRecord(ev)
		}
		if ev := r.admit(path, n, ev, err); ev != nil {
			if err := send(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// admit counts one decoded record and returns it when it should be
// classified: decoded, accepted, in scope and inside the window.
func (r *replay) admit(path string, n int, ev *cloudtrail.Event, err error) *cloudtrail.Event {
	r.sum.read.Add(1)
	switch {
	case errors.Is(err, cloudtrail.ErrOutOfScope):
		r.sum.outOfScope.Add(1)
		return nil
	case errors.Is(err, cloudtrail.ErrRejected):
		r.sum.rejected.Add(1)
		r.log.Warn().Err(err).Str("file", path).Int("record", n).Msg("record rejected")
		return nil
	case err != nil || ev == nil:
		r.malformed(path, n, err)
		return nil
	case ev.Time.Before(r.opts.since) || !ev.Time.Before(r.opts.until):
		r.sum.outsideWindow.Add(1)
		return nil
	}
	r.sum.inScope.Add(1)
	return ev
}

func (r *replay) malformed(path string, n int, err error) {
	r.sum.malformed.Add(1)
	r.log.Warn().Err(err).Str("file", path).Int("record", n).Msg("record not decoded")
}

// classify retries a store failure with backoff; the event never gets a
// verdict from a failed lookup.
func (r *replay) classify(ctx context.Context, ev *cloudtrail.Event) (classify.Result, error) {
	op := func() (classify.Result, error) {
		res, err := r.classifier.Classify(ctx, ev)
		if err != nil && !errors.Is(err, classify.ErrStore) {
			return res, backoff.Permanent(err)
		}
		if err != nil {
			r.sum.storeErrors.Add(1)
			r.log.Warn().Err(err).Str("event_id", ev.ID).Msg("session lookup failed; retrying")
		}
		return res, err
	}
	res, err := backoff.Retry(ctx, op, backoff.WithMaxTries(storeRetries), backoff.WithBackOff(backoff.NewExponentialBackOff()))
	if err != nil {
		return res, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	return res, nil
}

// writeFindings batches findings to every sink; a finding counts once every
// sink accepted it.
func (r *replay) writeFindings(ctx context.Context, in <-chan classified) error {
	const batchSize = 100
	batch := make([]sink.Finding, 0, batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for _, s := range r.sinks {
			if err := s.Write(ctx, batch); err != nil {
				return fmt.Errorf("write findings: %w", err)
			}
		}
		batch = batch[:0]
		return nil
	}
	for c := range in {
		f := sink.NewFinding(c.ev, c.r, sink.DetectorBackfill, r.now())
		batch = append(batch, f)
		r.sum.findingCount.Add(1)
		r.log.Info().Str("finding_id", f.FindingID).Str("category", string(f.Category)).
			Str("event_id", c.ev.ID).Str("source_identity", c.ev.SourceIdentity).Msg("finding")
		// Flush when the batch is full or no more findings are waiting.
		if len(batch) == batchSize || len(in) == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// summary counts a run. Counters are atomic: workers update them; the
// verdict map is filled once, before any worker starts.
type summary struct {
	window        [2]time.Time
	source        string
	region        string
	started       time.Time
	elapsed       time.Duration
	read          atomic.Int64
	malformed     atomic.Int64
	rejected      atomic.Int64
	outOfScope    atomic.Int64
	outsideWindow atomic.Int64
	inScope       atomic.Int64
	storeErrors   atomic.Int64
	verdicts      map[classify.Verdict]*atomic.Int64
	findingCount  atomic.Int64
}

func newSummary(o options, region string) *summary {
	s := &summary{window: [2]time.Time{o.since, o.until}, source: o.source, region: region, started: time.Now(),
		verdicts: map[classify.Verdict]*atomic.Int64{}}
	for _, v := range classify.AllVerdicts() {
		s.verdicts[v] = new(atomic.Int64)
	}
	return s
}

func (s *summary) addVerdict(v classify.Verdict) {
	if c, ok := s.verdicts[v]; ok {
		c.Add(1)
	}
}

func (s *summary) findings() int64 { return s.findingCount.Load() }

func (s *summary) finish(now time.Time) { s.elapsed = now.Sub(s.started) }

func (s *summary) write(w io.Writer) {
	var classified int64
	for _, c := range s.verdicts {
		classified += c.Load()
	}
	fmt.Fprintf(w, "\nsessionwatch backfill summary\n")
	fmt.Fprintf(w, "  window          %s .. %s\n", s.window[0].Format(time.RFC3339), s.window[1].Format(time.RFC3339))
	fmt.Fprintf(w, "  source          %s\n", s.source)
	fmt.Fprintf(w, "  events read     %d\n", s.read.Load())
	fmt.Fprintf(w, "  in scope        %d\n", s.inScope.Load())
	fmt.Fprintf(w, "  outside window  %d\n", s.outsideWindow.Load())
	fmt.Fprintf(w, "  out of scope    %d\n", s.outOfScope.Load())
	fmt.Fprintf(w, "  rejected        %d\n", s.rejected.Load())
	fmt.Fprintf(w, "  malformed       %d\n", s.malformed.Load())
	fmt.Fprintf(w, "  store retries   %d\n", s.storeErrors.Load())
	fmt.Fprintf(w, "  classified      %d\n", classified)
	for _, v := range classify.AllVerdicts() {
		fmt.Fprintf(w, "    %-20s %d\n", v, s.verdicts[v].Load())
	}
	rate := "n/a"
	if classified > 0 {
		rate = fmt.Sprintf("%.1f%%", 100*float64(s.verdicts[classify.Tracked].Load())/float64(classified))
	}
	fmt.Fprintf(w, "  tracked rate    %s\n", rate)
	fmt.Fprintf(w, "  findings        %d\n", s.findings())
	fmt.Fprintf(w, "  elapsed         %s\n", s.elapsed.Round(time.Millisecond))
}
