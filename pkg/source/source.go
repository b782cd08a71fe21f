// Package source reads past CloudTrail events for the backfill: from
// CloudTrail LookupEvents (paced per account and region), from a trail's S3
// archive, or from local log files. Every source yields decoded records to
// one pipeline, in units of progress (a LookupEvents page, a log object, a
// file) whose completion the pipeline acknowledges; a Checkpoint records the
// completed units so that a rerun resumes where a run stopped.
package source

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// Record is one CloudTrail record on its way to the classifier.
type Record struct {
	// Event is the decoded record; nil when Err says it could not be read.
	Event *cloudtrail.Event
	// Err is why the record is not classified: cloudtrail.ErrOutOfScope,
	// ErrRejected or ErrMalformed. Nil for an in-scope record.
	Err error
	// Origin names where it came from (a file, an object key, a lookup
	// stream) and Pos its 1-based position there, for logs.
	Origin string
	Pos    int
	// Ack is the unit of progress the record belongs to: the pipeline
	// releases it once, when the record needs nothing more (dropped,
	// classified without a finding, or its finding accepted by every sink).
	Ack *Ack
}

// Emit hands a record to the pipeline, blocking while it is full. An error
// ends the source.
type Emit func(ctx context.Context, r Record) error

// Source yields the records of a window.
type Source interface {
	// Run emits every record and returns when all were emitted (not
	// necessarily acknowledged), or on the first error.
	Run(ctx context.Context, emit Emit) error
	// Stats reports progress while Run runs, and totals after.
	Stats() *Stats
}

// Ack counts the records of one unit of progress still in the pipeline and
// calls done when the last is released. It starts with one hold, the
// source's own, released by Close once every record was emitted.
type Ack struct {
	n    atomic.Int64
	done func()
}

// NewAck returns an Ack holding the source's reference.
func NewAck(done func()) *Ack {
	a := &Ack{done: done}
	a.n.Store(1)
	return a
}

// Hold adds a record to the unit.
func (a *Ack) Hold() { a.n.Add(1) }

// Release marks one record (or the source's reference) done.
func (a *Ack) Release() {
	if a.n.Add(-1) == 0 && a.done != nil {
		a.done()
	}
}

// Close releases the source's reference: the unit is complete once every
// record emitted with it is released.
func (a *Ack) Close() { a.Release() }

// Stats are a source's counters, safe for concurrent use.
type Stats struct {
	// APICalls counts every call made (each retry too); Throttles those
	// answered with a throttling error (and retried).
	APICalls  atomic.Int64
	Throttles atomic.Int64
	// Units counts finished pages, objects or files.
	Units atomic.Int64

	mu         sync.Mutex
	streams    []*Stream
	failures   []Failure
	unreadable []Unreadable
}

// Failure is an account (or account and region) that could not be read.
// The others go on.
type Failure struct {
	Account string `json:"account"`
	Region  string `json:"region,omitempty"`
	Error   string `json:"error"`
}

// Stream is one progress line: an account and region of LookupEvents, an
// archive, a folder.
type Stream struct {
	Name   string
	Events atomic.Int64 // records read
	Pages  atomic.Int64 // units finished
	// covered is the part of the work done, in millionths; -1 unknown.
	covered atomic.Int64
	done    atomic.Bool
	start   time.Time
	elapsed atomic.Int64 // nanoseconds from start to Finish
}

// NewStream registers a progress line.
func (s *Stats) NewStream(name string) *Stream {
	st := &Stream{Name: name, start: time.Now()}
	st.covered.Store(-1)
	s.mu.Lock()
	s.streams = append(s.streams, st)
	s.mu.Unlock()
	return st
}

// Streams returns the progress lines registered so far.
func (s *Stats) Streams() []*Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Stream(nil), s.streams...)
}

// Fail records a failed account or region.
func (s *Stats) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f)
}

// Failures returns the failed accounts and regions.
func (s *Stats) Failures() []Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Failure(nil), s.failures...)
}

// AddUnreadable records a file or folder that could not be read.
func (s *Stats) AddUnreadable(u Unreadable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreadable = append(s.unreadable, u)
}

// Unreadable returns the files and folders that could not be read.
func (s *Stats) Unreadable() []Unreadable {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Unreadable(nil), s.unreadable...)
}

// SetCovered records the part of the work done, 0 to 1.
func (st *Stream) SetCovered(f float64) {
	st.covered.Store(int64(min(max(f, 0), 1) * 1e6))
}

// Covered returns the part of the work done, 0 to 1, or -1 when unknown.
func (st *Stream) Covered() float64 {
	c := st.covered.Load()
	if c < 0 {
		return -1
	}
	return float64(c) / 1e6
}

// Finish marks the stream done.
func (st *Stream) Finish() {
	st.SetCovered(1)
	st.elapsed.Store(int64(time.Since(st.start)))
	st.done.Store(true)
}

// Elapsed is the time from the stream's start to its end (so far, while it
// runs).
func (st *Stream) Elapsed() time.Duration {
	if st.done.Load() {
		return time.Duration(st.elapsed.Load())
	}
	return time.Since(st.start)
}

// Done reports whether the stream finished.
func (st *Stream) Done() bool { return st.done.Load() }

// windowCovered is the part of [since, until] covered by reading newest
// first down to oldest.
func windowCovered(since, until, oldest time.Time) float64 {
	total := until.Sub(since)
	if total <= 0 {
		return 1
	}
	return float64(until.Sub(oldest)) / float64(total)
}

// sequence reports units of progress, finished in any order, in the order
// they were started: a checkpoint may only move past a unit once every
// earlier one is finished too.
type sequence[T any] struct {
	mu   sync.Mutex
	next uint64
	base uint64 // first unit not yet committed
	done map[uint64]T
}

func newSequence[T any]() *sequence[T] { return &sequence[T]{done: map[uint64]T{}} }

// start numbers a new unit.
func (s *sequence[T]) start() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.next
	s.next++
	return n
}

// finish marks unit n done with value v and returns the values of the
// units that became committed, in order, and those finished past them.
func (s *sequence[T]) finish(n uint64, v T) (committed, pending []T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[n] = v
	for {
		v, ok := s.done[s.base]
		if !ok {
			break
		}
		committed = append(committed, v)
		delete(s.done, s.base)
		s.base++
	}
	for _, v := range s.done {
		pending = append(pending, v)
	}
	return committed, pending
}
