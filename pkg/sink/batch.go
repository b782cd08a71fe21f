package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed fails a Write to a sink that was closed.
var ErrClosed = errors.New("sink closed")

// callLimits are a service's per-call limits.
type callLimits struct {
	maxItems     int // findings per call
	maxBytes     int // bytes per call, summed over items; 0 is no limit
	maxItemBytes int // bytes per finding; 0 is no limit
	// size is an item's share of maxBytes and maxItemBytes; nil is len(body).
	size func(*item) int
}

func (l callLimits) sizeOf(it *item) int {
	if l.size != nil {
		return l.size(it)
	}
	return len(it.body)
}

// sender makes calls to one backend.
type sender interface {
	limits() callLimits
	send(ctx context.Context, items []*item) error
}

// ticket is one Write waiting for its items.
type ticket struct {
	ctx       context.Context
	items     []*item
	remaining atomic.Int64
	done      chan struct{}
}

func (t *ticket) finish() {
	if t.remaining.Add(-1) == 0 {
		close(t.done)
	}
}

// batchSink gathers findings from concurrent Writes into calls of a
// backend: a call goes out at the batch size, after MaxWait, or on Close.
// Each Write blocks until its own findings are delivered or failed.
type batchSink struct {
	name     string
	snd      sender
	render   func(*Finding) ([]byte, error)
	maxItems int
	maxWait  time.Duration
	retry    retrier
	obs      Observer

	mu      sync.RWMutex
	closed  bool
	in      chan *ticket
	closing chan struct{}
	done    chan struct{}
	sem     chan struct{}
	flights sync.WaitGroup
	pending atomic.Int64 // findings gathered, not yet handed to a call (tests)

	base       context.Context
	cancelBase context.CancelFunc
	closeOnce  sync.Once
}

func newBatchSink(name string, snd sender, render func(*Finding) ([]byte, error), o Options) *batchSink {
	lim := snd.limits()
	maxItems := lim.maxItems
	if o.Batch.MaxItems > 0 && o.Batch.MaxItems < maxItems {
		maxItems = o.Batch.MaxItems
	}
	base, cancel := context.WithCancel(context.Background())
	s := &batchSink{
		name: name, snd: snd, render: render, maxItems: maxItems, maxWait: o.Batch.MaxWait,
		retry: retrier{name: name, cfg: o.Retry, obs: o.Observer, log: o.Log},
		obs:   o.Observer,
		in:    make(chan *ticket), closing: make(chan struct{}), done: make(chan struct{}),
		sem:  make(chan struct{}, o.Batch.MaxInFlight),
		base: base, cancelBase: cancel,
	}
	go s.loop()
	return s
}

// Name identifies the sink in logs and metrics.
func (s *batchSink) Name() string { return s.name }

// Write delivers findings; see Sink.
func (s *batchSink) Write(ctx context.Context, findings []Finding) error {
	if len(findings) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return failAll(s.name, len(findings), err)
	}
	t := &ticket{ctx: ctx, done: make(chan struct{})}
	var failed map[int]error
	for i := range findings {
		body, err := s.render(&findings[i])
		if err != nil {
			if failed == nil {
				failed = map[int]error{}
			}
			failed[i] = err
			continue
		}
		t.items = append(t.items, &item{idx: i, id: findings[i].FindingID, body: body, meta: metaOf(&findings[i]), t: t})
	}
	if len(t.items) > 0 {
		t.remaining.Store(int64(len(t.items)))
		if err := s.submit(ctx, t); err != nil {
			return failAll(s.name, len(findings), err)
		}
		select {
		case <-t.done:
		case <-ctx.Done():
			// What was in flight may still land: the caller retries, and
			// the finding id lets the receiver drop the duplicate.
			return failAll(s.name, len(findings), ctx.Err())
		}
	}
	for _, it := range t.items {
		if it.err != nil {
			if failed == nil {
				failed = map[int]error{}
			}
			failed[it.idx] = it.err
		}
	}
	if failed != nil {
		return &BatchError{Sink: s.name, Failed: failed}
	}
	return nil
}

func (s *batchSink) submit(ctx context.Context, t *ticket) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.in <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what is pending and waits for calls in flight, or for ctx.
func (s *batchSink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancelBase()
		<-s.done
		return fmt.Errorf("close %s: %w", s.name, ctx.Err())
	}
}

func (s *batchSink) loop() {
	defer close(s.done)
	defer s.cancelBase()
	var pending []*item
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	add := func(t *ticket) {
		if len(pending) == 0 {
			timer.Reset(s.maxWait)
		}
		pending = append(pending, t.items...)
		for len(pending) >= s.maxItems {
			s.dispatch(pending[:s.maxItems:s.maxItems])
			pending = pending[s.maxItems:]
		}
		if len(pending) == 0 {
			timer.Stop()
		}
		s.pending.Store(int64(len(pending)))
	}
	flush := func() {
		timer.Stop()
		if len(pending) > 0 {
			s.dispatch(pending)
			pending = nil
		}
		s.pending.Store(0)
	}
	for {
		select {
		case t := <-s.in:
			add(t)
		case <-timer.C:
			flush()
		case <-s.closing:
			flush()
			s.flights.Wait()
			return
		}
	}
}

// dispatch sends a batch in its own goroutine, at most MaxInFlight at once.
func (s *batchSink) dispatch(batch []*item) {
	select {
	case s.sem <- struct{}{}:
	case <-s.base.Done():
		s.complete(batch, fmt.Errorf("%w before sending", ErrClosed))
		return
	}
	s.flights.Add(1)
	go func() {
		defer func() { <-s.sem; s.flights.Done() }()
		s.deliver(batch)
	}()
}

// deliver sends a batch in calls that fit the backend's limits. The calls
// stop when the sink is closed past its deadline or when every Write
// waiting on the batch has given up.
func (s *batchSink) deliver(batch []*item) {
	ctx, cancel := context.WithCancel(s.base)
	defer cancel()
	tickets := map[*ticket]bool{}
	for _, it := range batch {
		tickets[it.t] = true
	}
	var live atomic.Int64
	live.Store(int64(len(tickets)))
	for t := range tickets {
		stop := context.AfterFunc(t.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	lim := s.snd.limits()
	var call []*item
	bytes := 0
	flush := func() {
		if len(call) > 0 {
			s.retry.deliver(ctx, call, s.snd.send)
			s.complete(call, nil)
		}
		call, bytes = nil, 0
	}
	for _, it := range batch {
		n := lim.sizeOf(it)
		if lim.maxItemBytes > 0 && n > lim.maxItemBytes {
			it.err = fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, lim.maxItemBytes)
			s.complete([]*item{it}, it.err)
			continue
		}
		if len(call) == lim.maxItems || (lim.maxBytes > 0 && bytes+n > lim.maxBytes) {
			flush()
		}
		call = append(call, it)
		bytes += n
	}
	flush()
}

// complete reports outcomes (err, when set, overrides) and wakes Writes.
func (s *batchSink) complete(items []*item, err error) {
	ok := 0
	failed := map[string]int{}
	for _, it := range items {
		if err != nil {
			it.err = err
		}
		if it.err == nil {
			ok++
		} else {
			_, reason := classifyErr(it.err)
			failed[reason]++
		}
		it.t.finish()
	}
	if ok > 0 {
		s.obs.Delivered(s.name, ok)
	}
	for reason, n := range failed {
		s.obs.Failed(s.name, reason, n)
	}
}
