package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ReplicaFinderConfig configures a ReplicaFinder. Zero fields take their
// defaults.
type ReplicaFinderConfig struct {
	Matcher MatcherConfig // strategies, clock skew: as for the Query path
	// OrphanGrace is added to what a Fresh query (the streamer's orphan
	// re-check) needs: the broker may write a session a little after its
	// event.
	OrphanGrace time.Duration
	// MaxWait is the longest an event may wait for the watermark; 0 means
	// never wait (the backfill): an answer that is not final yet comes from
	// the fallback.
	MaxWait time.Duration
}

// Validate reports a configuration the ReplicaFinder cannot use.
func (c ReplicaFinderConfig) Validate() error {
	errs := []error{c.Matcher.Validate()}
	if c.OrphanGrace < 0 {
		errs = append(errs, fmt.Errorf("orphan grace %v is negative", c.OrphanGrace))
	}
	if c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("max wait %v is negative", c.MaxWait))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sessions: replica finder config: %w", err)
	}
	return nil
}

// NotFinalError says the replica cannot answer yet: its watermark has not
// passed Until (the event time plus the clock skew, plus OrphanGrace for a
// Fresh query). RetryAfter is how long the caller should hold the event
// before asking again: the expected time for the watermark to pass Until.
type NotFinalError struct {
	Until      time.Time
	RetryAfter time.Duration
}

func (e *NotFinalError) Error() string {
	return fmt.Sprintf("sessions: replica not final until %s (retry after %v)", e.Until.UTC().Format(time.RFC3339Nano), e.RetryAfter)
}

// ReplicaFinderStats counts a ReplicaFinder's answers.
type ReplicaFinderStats struct {
	FromReplica uint64 // answered from memory
	NotFinal    uint64 // NotFinalError returned
	Fallbacks   uint64 // answered by the fallback
}

// ReplicaFinder answers Lookup from the replica once the answer is final,
// with exactly the Matcher's match policy (it runs a Matcher over the
// replica), so that it can never give an answer the Query path would not
// give reading the table after the event. Until then it returns a
// NotFinalError (the event should wait), or, when waiting would exceed
// MaxWait or the replica is not healthy (its watermark older than about two
// refresh periods), it asks the fallback (the Query path) at once.
type ReplicaFinder struct {
	replica  *Replica
	fallback interface {
		Lookup(context.Context, Query) (Result, error)
	}
	matcher *Matcher
	cfg     ReplicaFinderConfig
	skew    time.Duration

	fromReplica, notFinal, fallbacks atomic.Uint64
}

// NewReplicaFinder returns a ReplicaFinder over r, asking fallback (today's
// Matcher over the cache) when the replica cannot answer in time.
func NewReplicaFinder(r *Replica, fallback interface {
	Lookup(context.Context, Query) (Result, error)
}, cfg ReplicaFinderConfig) (*ReplicaFinder, error) {
	if r == nil || fallback == nil {
		return nil, errors.New("sessions: replica finder: nil replica or fallback")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reader := replicaReader{r}
	m, err := NewMatcher(reader, reader, cfg.Matcher)
	if err != nil {
		return nil, err
	}
	m.now = r.now // the replica's entries are always current: one read each
	return &ReplicaFinder{replica: r, fallback: fallback, matcher: m, cfg: cfg, skew: m.cfg.ClockSkew}, nil
}

// Until returns the watermark the answer to q needs.
func (f *ReplicaFinder) Until(q Query) time.Time {
	until := q.At.Add(f.skew)
	if q.Fresh {
		until = until.Add(f.cfg.OrphanGrace)
	}
	return until
}

// Lookup answers q from the replica when its watermark has passed
// f.Until(q); otherwise it returns a *NotFinalError when the wait fits in
// MaxWait and the replica is healthy, and else the fallback's answer to q
// read fresh (past any cache).
func (f *ReplicaFinder) Lookup(ctx context.Context, q Query) (Result, error) {
	until := f.Until(q)
	if !f.replica.Watermark().Before(until) {
		f.fromReplica.Add(1)
		return f.matcher.Lookup(ctx, q)
	}
	if f.cfg.MaxWait > 0 && f.replica.healthy() {
		if wait := f.replica.expectedPass(until); wait <= f.cfg.MaxWait {
			f.notFinal.Add(1)
			return Result{}, &NotFinalError{Until: until, RetryAfter: wait}
		}
	}
	f.fallbacks.Add(1)
	// Past the cache: a cached answer can be older than the replica (a
	// valid session cached before its revocation), and the fallback must
	// answer as the table does now.
	q.Fresh = true
	return f.fallback.Lookup(ctx, q)
}

// Stats returns a snapshot of the counters.
func (f *ReplicaFinder) Stats() ReplicaFinderStats {
	return ReplicaFinderStats{
		FromReplica: f.fromReplica.Load(),
		NotFinal:    f.notFinal.Load(),
		Fallbacks:   f.fallbacks.Load(),
	}
}
