package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// defaultReconcileSettle is --reconcile-settle's default: how old an event
// must be, at the run's clock, before its absence from the verdict log
// counts. The streamer writes its log a minute at a time and a message can
// wait in the queue (orphan grace, retries) before it is classified.
const defaultReconcileSettle = 15 * time.Minute

// maxListedGaps bounds the missed events kept for the table and the HTML
// report; the JSON lines list every one as it is found.
const maxListedGaps = report.DefaultMaxFindings

// idKey is a logged event id as the set holds it: the first 16 bytes of
// its SHA-256. An id of any length then takes 16 bytes, and a collision
// (which would hide a missed event) needs about 2^64 ids, far past any
// log, and cannot be forged from a chosen event id.
type idKey [16]byte

func keyOf(id string) idKey {
	sum := sha256.Sum256([]byte(id))
	return idKey(sum[:16])
}

// idSet is the set of event ids a verdict log holds for the window: a
// sorted array of keys, 16 bytes per distinct id (16 MB per million
// logged events; up to twice that while it loads, as the array grows).
// It is read-only once built, so lookups need no lock.
type idSet struct{ keys []idKey }

func (s *idSet) add(id string) { s.keys = append(s.keys, keyOf(id)) }

// seal sorts the keys and drops repeats (the streamer logs a redelivered
// event again); it returns the number of distinct ids.
func (s *idSet) seal() int {
	slices.SortFunc(s.keys, func(a, b idKey) int { return bytes.Compare(a[:], b[:]) })
	s.keys = slices.Compact(s.keys)
	return len(s.keys)
}

func (s *idSet) has(id string) bool {
	k := keyOf(id)
	_, ok := slices.BinarySearchFunc(s.keys, k, func(a, b idKey) int { return bytes.Compare(a[:], b[:]) })
	return ok
}

// reconcileOptions checks the flags that go with --reconcile; sinkSet
// says whether --sink was given. Stdout carries the missed events, so the
// findings go to the sinks given, none by default, and never to stdout.
func (o *options) reconcileOptions(sinkSet bool) error {
	if err := verdictlog.ParseURI(o.reconcile); err != nil {
		return fmt.Errorf("--reconcile: %w", err)
	}
	if o.reconcileSettle < 0 {
		return fmt.Errorf("--reconcile-settle %s: want zero or more", cli.FormatDuration(o.reconcileSettle))
	}
	if o.reconcileMargin < 0 {
		return fmt.Errorf("--reconcile-margin %s: want zero or more", cli.FormatDuration(o.reconcileMargin))
	}
	if o.checkpoint != "" {
		return errors.New("--reconcile counts the whole window in one run: it does not combine with --checkpoint")
	}
	if !sinkSet {
		o.sinks = nil
	}
	for _, uri := range o.sinks {
		if sink.IsStdout(uri) {
			return fmt.Errorf("--reconcile lists missed events on stdout: it cannot share it with --sink %s", uri)
		}
	}
	return nil
}

// reconciler compares the events a run admits with the verdict log: an
// event the log lacks is missed, classified, and listed as a JSON line on
// out; the others only count. It is safe for concurrent use once built.
type reconciler struct {
	uri           string
	settle        time.Duration
	settledBefore time.Time
	logged        int
	malformed     int
	ids           idSet
	counter       *report.CoverageCounter

	mu   sync.Mutex
	out  *bufio.Writer
	enc  *json.Encoder
	gaps []report.Gap // kept for the table and the report, at most maxListedGaps
}

// reconcileConfig is what newReconciler reads the log with.
type reconcileConfig struct {
	URI string
	// S3 reads an s3:// log.
	S3 verdictlog.ReadAPI
	// Since and Until are the run's window; events at or after Now-Settle
	// are too young to count.
	Since, Until, Now time.Time
	Settle            time.Duration
	// Margin is how long after an event the streamer may have logged it
	// (verdictlog.ReaderOptions.Margin; zero: its default).
	Margin time.Duration
	// Out receives the missed events' JSON lines.
	Out io.Writer
	Log zerolog.Logger
}

// newReconciler loads the log's event ids for [Since, Until) with
// pkg/verdictlog. A line or object that cannot be decoded is counted and
// skipped: the events it held then show as missed, never as covered, so a
// damaged log can raise a false gap but cannot hide one. A log that cannot
// be read (a failing S3 call, a missing folder) fails the run.
func newReconciler(ctx context.Context, cfg reconcileConfig) (*reconciler, error) {
	r := &reconciler{uri: cfg.URI, settle: cfg.Settle, settledBefore: cfg.Now.Add(-cfg.Settle), counter: report.NewCoverageCounter()}
	opts := verdictlog.ReaderOptions{Malformed: func(m *verdictlog.MalformedError) error {
		r.malformed++
		cfg.Log.Warn().Str("object", m.Object).Int("line", m.Line).Err(m.Err).Msg("verdict log: unreadable line or object skipped")
		return nil
	}}
	opts.Margin = cfg.Margin
	if dir, ok := strings.CutPrefix(cfg.URI, "file:"); ok {
		// verdictlog reads a missing hour folder as an empty one; a
		// missing log folder is a wrong flag, not a log that saw nothing.
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("--reconcile: the verdict log %s: %w", cfg.URI, err)
		}
	} else {
		opts.S3 = cfg.S3
	}
	err := verdictlog.Read(ctx, cfg.URI, cfg.Since, cfg.Until, opts, func(e verdictlog.Entry) error {
		if e.EventTime.Before(cfg.Until) { // Read's window includes Until; the run's does not
			r.ids.add(e.EventID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--reconcile: read the verdict log %s: %w", cfg.URI, err)
	}
	r.logged = r.ids.seal()
	if r.logged == 0 && r.malformed == 0 {
		// Nothing for the window: a log that lacks it, or a location that
		// is no verdict log at all, whose every event would show as a gap.
		holds, err := verdictlog.HoldsObjects(ctx, cfg.URI, opts)
		if err != nil {
			return nil, fmt.Errorf("--reconcile: read the verdict log %s: %w", cfg.URI, err)
		}
		if !holds {
			return nil, fmt.Errorf("--reconcile: %s holds no verdict log object at all: give the streamer's --verdict-log location (a streamer that never classified an event writes none)", cfg.URI)
		}
	}
	r.out = bufio.NewWriter(cfg.Out)
	r.enc = json.NewEncoder(r.out)
	return r, nil
}

// missed counts one admitted event and reports whether it should be
// classified: it is settled and the log lacks it. Without a reconciliation
// every event is classified.
func (r *reconciler) missed(ev *cloudtrail.Event) bool {
	if r == nil {
		return true
	}
	if !ev.Time.Before(r.settledBefore) {
		r.counter.AddUnsettled()
		return false
	}
	logged := r.ids.has(ev.ID)
	r.counter.Add(ev, logged)
	return !logged
}

// gap lists a missed event with its classification.
func (r *reconciler) gap(ev *cloudtrail.Event, res classify.Result) error {
	if r == nil {
		return nil
	}
	g := report.NewGap(ev, res)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.enc.Encode(g); err != nil {
		return fmt.Errorf("list a missed event: %w", err)
	}
	if len(r.gaps) < maxListedGaps {
		r.gaps = append(r.gaps, g)
	}
	return nil
}

// flush writes out what gap buffered.
func (r *reconciler) flush() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.out.Flush(); err != nil {
		return fmt.Errorf("list missed events: %w", err)
	}
	return nil
}

// coverage is the reconciliation's result so far; nil without one.
func (r *reconciler) coverage() *report.Coverage {
	if r == nil {
		return nil
	}
	c := r.counter.Coverage()
	c.Log, c.Logged, c.LogMalformed, c.Settle, c.SettledBefore = r.uri, r.logged, r.malformed, r.settle, r.settledBefore
	r.mu.Lock()
	c.Gaps = slices.Clone(r.gaps)
	r.mu.Unlock()
	slices.SortFunc(c.Gaps, func(a, b report.Gap) int {
		return cmp.Or(a.EventTime.Compare(b.EventTime), cmp.Compare(a.EventID, b.EventID))
	})
	return &c
}
