// Package memory holds in-memory stand-ins that tests, benchmarks and demo
// programs share: Sessions, a session table the real cache, directory and
// matcher read, and Sink, a sink that records what it accepts and fails
// what it is told to. Production code never imports it.
package memory

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// Sessions is a session table in memory, indexed as the DynamoDB table is
// (by SourceIdentity and by user). It counts reads, so a benchmark can
// prove it ran on a warm cache. It is safe for concurrent reads; the table
// is fixed at NewSessions.
type Sessions struct {
	bySI, byUser map[string][]sessions.Session
	reads        atomic.Int64
}

// NewSessions indexes table.
func NewSessions(table []sessions.Session) *Sessions {
	m := &Sessions{bySI: map[string][]sessions.Session{}, byUser: map[string][]sessions.Session{}}
	for _, s := range table {
		if s.SourceIdentity != "" {
			m.bySI[s.SourceIdentity] = append(m.bySI[s.SourceIdentity], s)
		}
		m.byUser[s.User] = append(m.byUser[s.User], s)
	}
	return m
}

// BySourceIdentity returns the sessions stamped si, none when there are
// none.
func (m *Sessions) BySourceIdentity(_ context.Context, si string) ([]sessions.Session, error) {
	m.reads.Add(1)
	return m.bySI[si], nil
}

// ByUser returns user's sessions.
func (m *Sessions) ByUser(_ context.Context, user string) ([]sessions.Session, error) {
	m.reads.Add(1)
	return m.byUser[user], nil
}

// UserNames lists the users with a session, sorted.
func (m *Sessions) UserNames(context.Context) ([]string, error) {
	return slices.Sorted(maps.Keys(m.byUser)), nil
}

// Reads is how many BySourceIdentity and ByUser calls were made.
func (m *Sessions) Reads() int64 { return m.reads.Load() }

// Errors the Sink injects.
var (
	// ErrSinkFailing fails every finding of a Write while SetFailing is on.
	ErrSinkFailing = errors.New("injected sink failure")
	// ErrRejected fails a finding that the Reject function holds for.
	ErrRejected = errors.New("injected item failure")
)

// Sink records the findings it accepts, safe for concurrent use. By
// default it accepts everything; SetFailing fails whole writes and Reject
// single findings, each reported in a *sink.BatchError as a real sink
// would.
type Sink struct {
	name string

	mu         sync.Mutex
	got        []sink.Finding
	writes     int
	failing    bool
	keepFailed bool
	reject     func(sink.Finding) bool
}

// NewSink is a recording sink called name.
func NewSink(name string) *Sink { return &Sink{name: name} }

// Name is the name given to NewSink.
func (s *Sink) Name() string { return s.name }

// Write records the findings it accepts and fails the others.
func (s *Sink) Write(_ context.Context, fs []sink.Finding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	var be *sink.BatchError
	fail := func(i int, err error) {
		if be == nil {
			be = &sink.BatchError{Sink: s.name, Failed: map[int]error{}}
		}
		be.Failed[i] = err
	}
	for i, f := range fs {
		switch {
		case s.failing:
			fail(i, ErrSinkFailing)
			if s.keepFailed {
				s.got = append(s.got, f)
			}
		case s.reject != nil && s.reject(f):
			fail(i, ErrRejected)
		default:
			s.got = append(s.got, f)
		}
	}
	if be != nil {
		return be
	}
	return nil
}

// Close does nothing.
func (s *Sink) Close(context.Context) error { return nil }

// SetFailing makes every Write fail (or succeed again). With keepFailed the
// failed findings are recorded all the same: a timeout after the write
// landed, which makes duplicates.
func (s *Sink) SetFailing(failing, keepFailed bool) {
	s.mu.Lock()
	s.failing, s.keepFailed = failing, keepFailed
	s.mu.Unlock()
}

// Reject fails, on every Write, the findings reject holds for, wherever
// they are in a batch; nil accepts them all again.
func (s *Sink) Reject(reject func(sink.Finding) bool) {
	s.mu.Lock()
	s.reject = reject
	s.mu.Unlock()
}

// Findings is a copy of what the sink accepted, in order.
func (s *Sink) Findings() []sink.Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// Writes is how many times Write was called.
func (s *Sink) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}
