package streamer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// Deps are what a Streamer talks to.
type Deps struct {
	Queue      QueueAPI
	Objects    ObjectAPI // for S3 notifications; nil fails them (left for the DLQ)
	Decoder    *cloudtrail.Decoder
	Classifier Classifier
	// Sinks receive every finding. Run closes them before it returns.
	// Write is called from several workers at once.
	Sinks   []sink.Sink
	Metrics *Metrics // nil: unregistered metrics
	Log     zerolog.Logger

	// VerdictLog, when set, records every classified event; a message is
	// deleted only once its events are in it (Streamer only).
	VerdictLog VerdictLog
	// Now is the clock of silence detection (nil: time.Now).
	Now func() time.Time
}

// Streamer consumes the queue. Build it with New and run it once with Run.
type Streamer struct {
	engine
	queue QueueAPI

	slots    *semaphore.Weighted // in-flight cap
	track    *tracker
	sched    *scheduler
	work     chan *delivery
	acks     chan ackRequest
	vlog     *verdictBatcher // nil: no verdict log
	silence  *silence
	draining atomic.Bool
	ran      atomic.Bool
	// shutdownReleases counts the messages handed back at shutdown (held,
	// finished failing while draining, or still in flight at the end).
	shutdownReleases atomic.Int64
}

// New checks cfg and builds a Streamer.
func New(cfg Config, deps Deps) (*Streamer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if deps.Queue == nil {
		return nil, errors.New("streamer: queue is required")
	}
	e, err := newEngine(cfg, deps)
	if err != nil {
		return nil, err
	}
	m := e.m
	s := &Streamer{
		engine: e, queue: deps.Queue,
		slots: semaphore.NewWeighted(int64(cfg.MaxInFlight)),
		work:  make(chan *delivery, cfg.MaxInFlight),
		acks:  make(chan ackRequest, cfg.MaxInFlight),
	}
	s.track = newTracker(cfg.MaxInFlight, func(n int) { m.inFlight.Set(float64(n)) })
	if deps.VerdictLog != nil {
		s.vlog = newVerdictBatcher(s, deps.VerdictLog)
		s.logVerdicts = true
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	s.silence = newSilence(cfg, now, m, deps.Log)
	s.observe = s.silence.observe
	s.sched = newScheduler(func(n int) { m.held.Set(float64(n)) }, func(d *delivery) { s.release(d, 0, reasonShutdown) })
	return s, nil
}

// Draining reports whether shutdown has begun (readiness turns false).
func (s *Streamer) Draining() bool { return s.draining.Load() }

// InFlight is the number of messages received and not yet resolved.
func (s *Streamer) InFlight() int { return s.track.len() }

// Run consumes the queue until ctx ends, then shuts down within
// Config.ShutdownTimeout (see the package documentation) and returns nil.
// It returns an error only when a long-lived part failed; one message never
// stops it.
func (s *Streamer) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("streamer: Run called twice")
	}
	// finalCtx bounds every queue call and the sinks' Close; it ends at the
	// shutdown deadline, not when ctx does.
	finalCtx, cancelFinal := context.WithCancel(context.Background())
	defer cancelFinal()
	g, gctx := errgroup.WithContext(finalCtx)
	recvCtx, stopRecv := context.WithCancel(gctx)
	defer stopRecv()
	workCtx, stopWork := context.WithCancel(finalCtx)
	defer stopWork()
	hbCtx, stopHeartbeat := context.WithCancel(gctx)
	defer stopHeartbeat()

	ackDone := make(chan error, 1)
	go func() { ackDone <- s.acker(finalCtx) }()

	g.Go(func() error { return s.heartbeat(hbCtx) })
	g.Go(func() error { s.silence.run(hbCtx, silenceCheckEvery); return nil })
	// Pollers and workers stop in turn (receive, then work), so each kind
	// has its own group; neither ever returns an error.
	var pollers, workers errgroup.Group
	for range s.cfg.Pollers {
		pollers.Go(func() error { s.poll(recvCtx); return nil })
	}
	for range s.cfg.Workers {
		workers.Go(func() error { s.worker(workCtx); return nil })
	}
	workers.Go(func() error { return s.sched.run(workCtx, s.work) })
	var vlogDone chan struct{}
	vlogCtx, stopVlog := context.WithCancel(finalCtx)
	defer stopVlog()
	if s.vlog != nil {
		vlogDone = make(chan struct{})
		go func() { defer close(vlogDone); s.vlog.run(vlogCtx) }()
	}
	s.log.Info().Str("queue_url", s.cfg.QueueURL).Int("pollers", s.cfg.Pollers).Int("workers", s.cfg.Workers).
		Int("max_in_flight", s.cfg.MaxInFlight).Dur("visibility_timeout", s.cfg.VisibilityTimeout).
		Dur("orphan_grace", s.cfg.OrphanGrace).Msg("streamer started")

	select {
	case <-ctx.Done():
	case <-gctx.Done():
	}

	// Phase 1: stop receiving; release what waits; finish what is being
	// worked on until the drain deadline.
	start := time.Now()
	hard := start.Add(s.cfg.ShutdownTimeout)
	hardTimer := time.AfterFunc(s.cfg.ShutdownTimeout, cancelFinal)
	defer hardTimer.Stop()
	drainUntil := start.Add(s.cfg.ShutdownTimeout - reserve(s.cfg.ShutdownTimeout))
	s.log.Info().Int("in_flight", s.track.len()).Dur("timeout", s.cfg.ShutdownTimeout).Msg("stopping: no more receives; draining")
	s.draining.Store(true)
	stopRecv()
	_ = pollers.Wait()
	s.sched.drain()
	for s.track.len() > 0 && time.Now().Before(drainUntil) {
		time.Sleep(20 * time.Millisecond)
	}

	// Phase 2: stop the workers, release whatever is left, flush the
	// acker, close the sinks.
	stopWork()
	_ = workers.Wait()
	if s.vlog != nil {
		// Log and delete what finished; what cannot be logged is
		// released below with the rest.
		stopVlog()
		<-vlogDone
		s.vlog.flush(finalCtx)
	}
	left := s.track.drainAll()
	for _, d := range left {
		s.acks <- ackRequest{d: d, release: true, visibility: 0, reason: reasonShutdown}
	}
	s.shutdownReleases.Add(int64(len(left)))
	stopHeartbeat()
	close(s.acks)
	<-ackDone
	var closeErrs []error
	for _, sk := range s.sinks {
		if err := sk.Close(finalCtx); err != nil {
			closeErrs = append(closeErrs, fmt.Errorf("close sink %s: %w", sk.Name(), err))
		}
	}
	runErr := g.Wait()
	if err := errors.Join(closeErrs...); err != nil {
		s.log.Error().Err(err).Msg("closing sinks failed")
	}
	ev := s.log.Info()
	if time.Now().After(hard) {
		ev = s.log.Warn()
	}
	ev.Int64("released", s.shutdownReleases.Load()).Int("released_unfinished", len(left)).Dur("took", time.Since(start)).Msg("streamer stopped")
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// reserve is the part of the shutdown timeout kept for releasing, flushing
// and closing after the drain.
func reserve(timeout time.Duration) time.Duration {
	return min(timeout/4, 5*time.Second)
}

// poll receives until ctx ends, one batch at a time, each only once every
// message it may return has an in-flight slot.
func (s *Streamer) poll(ctx context.Context) {
	n := s.cfg.batchSize()
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 20 * time.Second
	for {
		if err := s.slots.Acquire(ctx, int64(n)); err != nil {
			return
		}
		out, err := s.queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(s.cfg.QueueURL),
			MaxNumberOfMessages: int32(n),
			WaitTimeSeconds:     int32(s.cfg.WaitTime / time.Second),
			VisibilityTimeout:   s.cfg.visibilitySeconds(),
			// For the logs (local-aws-sqs reads only the deprecated
			// AttributeNames, so it reports 0 there).
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			s.slots.Release(int64(n))
			if ctx.Err() != nil {
				return
			}
			s.m.receiveErrors.Inc()
			wait := bo.NextBackOff()
			s.log.Warn().Err(err).Dur("retry_in", wait).Msg("receive failed")
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		bo.Reset()
		if unused := n - len(out.Messages); unused > 0 {
			s.slots.Release(int64(unused))
		}
		now := time.Now()
		deadline := now.Add(s.cfg.VisibilityTimeout)
		s.m.received.Add(float64(len(out.Messages)))
		for _, msg := range out.Messages {
			d := newDelivery(msg, now)
			s.track.add(d, deadline)
			s.work <- d // room for MaxInFlight: never blocks for long
		}
	}
}

func (s *Streamer) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-s.work:
			s.handle(ctx, d)
		}
	}
}

// handle advances d as far as it can go now and resolves or holds it.
func (s *Streamer) handle(ctx context.Context, d *delivery) {
	o := s.processSafely(ctx, d)
	switch o.kind {
	case outcomeAck:
		if s.vlog != nil && len(d.entries) > 0 {
			s.vlog.add(ctx, d)
			return
		}
		s.ack(d)
	case outcomeForget:
		s.forget(d)
	case outcomeHold:
		if s.draining.Load() {
			s.release(d, 0, reasonShutdown)
			return
		}
		s.sched.add(d, o.at)
	case outcomeRelease:
		s.release(d, o.visibility, reasonRetry)
	}
}

// ack queues d's delete.
func (s *Streamer) ack(d *delivery) {
	if s.track.remove(d) {
		s.acks <- ackRequest{d: d}
	}
}

// release queues a visibility change for d, handing it back to the queue.
func (s *Streamer) release(d *delivery, visibility time.Duration, reason string) {
	if s.track.remove(d) {
		if reason == reasonShutdown {
			s.shutdownReleases.Add(1)
		}
		secs := int32(min(visibility, MaxVisibilityTimeout).Round(time.Second) / time.Second)
		s.acks <- ackRequest{d: d, release: true, visibility: secs, reason: reason}
	}
}

// forget stops tracking d without touching it on the queue: its visibility
// runs out and the redrive policy counts the receive.
func (s *Streamer) forget(d *delivery) {
	if s.track.remove(d) {
		s.slots.Release(1)
	}
}
