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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
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
	if !strings.HasPrefix(o.reconcile, "s3://") && !(strings.HasPrefix(o.reconcile, "file:") && len(o.reconcile) > len("file:")) {
		return fmt.Errorf("--reconcile %q: want s3://BUCKET[/PREFIX] or file:DIR", o.reconcile)
	}
	if o.reconcileSettle < 0 {
		return fmt.Errorf("--reconcile-settle %s: want zero or more", o.reconcileSettle)
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

// loggedEvent is what the reconciliation reads of a verdict log entry.
type loggedEvent struct {
	ID   string
	Time time.Time
}

// verdictReader reads a verdict log: every entry written for events of
// [since, until), possibly others, which the caller drops by time.
type verdictReader func(ctx context.Context, uri string, since, until time.Time, fn func(loggedEvent) error) error

// reconciler compares the events a run admits with the verdict log: an
// event the log lacks is missed, classified, and listed as a JSON line on
// out; the others only count. It is safe for concurrent use once built.
type reconciler struct {
	uri           string
	settle        time.Duration
	settledBefore time.Time
	logged        int
	ids           idSet
	counter       *report.CoverageCounter

	mu     sync.Mutex
	out    *bufio.Writer
	enc    *json.Encoder
	gaps   []report.Gap // kept for the table and the report, at most maxListedGaps
	listed int
}

// newReconciler loads the log's event ids for [since, until). Events at
// or after now-settle are too young to count.
func newReconciler(ctx context.Context, read verdictReader, uri string, since, until, now time.Time, settle time.Duration, out io.Writer) (*reconciler, error) {
	r := &reconciler{uri: uri, settle: settle, settledBefore: now.Add(-settle), counter: report.NewCoverageCounter()}
	err := read(ctx, uri, since, until, func(e loggedEvent) error {
		if e.ID != "" && !e.Time.Before(since) && e.Time.Before(until) {
			r.ids.add(e.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("--reconcile %s: %w", uri, err)
	}
	r.logged = r.ids.seal()
	r.out = bufio.NewWriter(out)
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
	r.listed++
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
	c.Log, c.Logged, c.Settle, c.SettledBefore = r.uri, r.logged, r.settle, r.settledBefore
	r.mu.Lock()
	c.Gaps = slices.Clone(r.gaps)
	r.mu.Unlock()
	slices.SortFunc(c.Gaps, func(a, b report.Gap) int {
		return cmp.Or(a.EventTime.Compare(b.EventTime), cmp.Compare(a.EventID, b.EventID))
	})
	return &c
}

// verdictLogReader reads a verdict log with pkg/verdictlog.
func verdictLogReader(awsCfg aws.Config, pathStyle bool) verdictReader {
	return func(ctx context.Context, uri string, since, until time.Time, fn func(loggedEvent) error) error {
		return errors.New("verdict log reader: not yet available")
	}
}
