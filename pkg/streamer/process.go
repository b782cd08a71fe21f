package streamer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// engine is the per-message path that both drivers share: the Streamer,
// which polls the queue itself, and the Processor, which is handed messages
// (the Lambda runtime's SQS event source mapping). It decodes, classifies
// and delivers; what happens to the message on the queue is the driver's.
type engine struct {
	cfg     Config
	objects ObjectAPI
	dec     *cloudtrail.Decoder
	cls     Classifier
	sinks   []sink.Sink
	sinkM   []sinkCounters
	health  []*sinkHealth // by sink index
	m       *Metrics
	log     zerolog.Logger
	// logVerdicts: settle collects each delivery's verdict log entries.
	logVerdicts bool
	// observe, when set, is told of the account, region and time of every
	// event decoded in scope (silence detection).
	observe func(account, region string, t time.Time)
}

// newEngine builds the engine from a validated cfg.
func newEngine(cfg Config, deps Deps) (engine, error) {
	if deps.Decoder == nil || deps.Classifier == nil {
		return engine{}, errors.New("streamer: decoder and classifier are required")
	}
	if len(deps.Sinks) == 0 {
		return engine{}, errors.New("streamer: at least one sink is required")
	}
	m := deps.Metrics
	if m == nil {
		var err error
		if m, err = NewMetrics(nil); err != nil {
			return engine{}, err
		}
	}
	e := engine{cfg: cfg, objects: deps.Objects, dec: deps.Decoder, cls: deps.Classifier, sinks: deps.Sinks, m: m, log: deps.Log}
	for _, sk := range deps.Sinks {
		c := m.forSink(sk.Name())
		c.failing.Set(0)
		e.sinkM = append(e.sinkM, c)
		e.health = append(e.health, &sinkHealth{})
	}
	return e, nil
}

type outcomeKind uint8

const (
	outcomeAck     outcomeKind = iota // every finding is safe: delete
	outcomeForget                     // undecodable: leave for the redrive policy
	outcomeHold                       // wait on the timer heap until at
	outcomeRelease                    // hand back with this visibility timeout
)

type outcome struct {
	kind       outcomeKind
	at         time.Time
	visibility time.Duration
	failed     bool // a store, S3 or sink failure (else a hold is an orphan re-check)
}

// processSafely is process, except that a panic while processing one
// message (a decoder or sink bug that message triggers) is logged and the
// message left for the redrive policy: one bad message never stops the
// process.
func (s *engine) processSafely(ctx context.Context, d *delivery) (o outcome) {
	defer func() {
		if p := recover(); p != nil {
			s.m.decodeErrors.Inc()
			s.log.Error().Str("message_id", d.id).Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).
				Msg("processing the message panicked; left for the queue's redrive policy")
			o = outcome{kind: outcomeForget}
		}
	}()
	return s.process(ctx, d)
}

// process advances d: decode (once), classify what is due, write the
// findings no sink has accepted yet, and says what happens next.
func (s *engine) process(ctx context.Context, d *delivery) outcome {
	if !d.decoded {
		if o, done := s.decode(ctx, d); done {
			return o
		}
	}
	now := time.Now()
	failed := false
	var wake time.Time
	for i := range d.items {
		it := &d.items[i]
		switch {
		case it.state == stateDone:
			continue
		case it.state != stateClassify && it.until.After(now):
			wake = earliest(wake, it.until)
			continue
		}
		if !s.classifyItem(ctx, d, it, now) {
			failed = true
			continue
		}
		if it.state != stateDone {
			wake = earliest(wake, it.until)
		}
	}
	if !s.deliver(ctx, d) {
		failed = true
	}
	if failed {
		return s.retry(d, now, wake)
	}
	if d.bo != nil {
		d.bo.Reset()
	}
	if !wake.IsZero() {
		return outcome{kind: outcomeHold, at: wake}
	}
	return outcome{kind: outcomeAck}
}

// retry holds d for its next back-off (or until an earlier orphan re-check),
// or releases it once it has been held for RetryHold.
func (s *engine) retry(d *delivery, now, wake time.Time) outcome {
	if d.bo == nil {
		d.bo = &backoff.ExponentialBackOff{
			InitialInterval:     s.cfg.RetryInitial,
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         s.cfg.RetryMax,
		}
		d.bo.Reset()
	}
	delay := d.bo.NextBackOff()
	if now.Add(delay).Sub(d.received) > s.cfg.RetryHold {
		s.log.Warn().Str("message_id", d.id).Dur("held", now.Sub(d.received)).Dur("visibility", delay).
			Msg("message still failing; released to the queue")
		return outcome{kind: outcomeRelease, visibility: delay, failed: true}
	}
	return outcome{kind: outcomeHold, at: earliest(wake, now.Add(delay)), failed: true}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// decode turns the body into items. done means the message is resolved (or
// must be retried) without classifying anything.
func (s *engine) decode(ctx context.Context, d *delivery) (o outcome, done bool) {
	msg, err := s.dec.DecodeMessage([]byte(d.body))
	if err != nil {
		switch {
		case errors.Is(err, cloudtrail.ErrOutOfScope):
			s.m.outOfScope.Inc()
			s.log.Debug().Str("message_id", d.id).Err(err).Msg("event out of scope; deleted")
			return outcome{kind: outcomeAck}, true
		case errors.Is(err, cloudtrail.ErrRejected):
			s.m.rejected.Inc()
			s.log.Warn().Str("message_id", d.id).Str("shape", string(msg.Shape)).Err(err).Msg("message rejected; deleted unclassified")
			return outcome{kind: outcomeAck}, true
		default:
			s.m.decodeErrors.Inc()
			s.log.Warn().Str("message_id", d.id).Int("receive_count", d.receives).Err(err).
				Msg("undecodable message; left for the queue's redrive policy")
			return outcome{kind: outcomeForget}, true
		}
	}
	switch {
	case msg.Event != nil:
		d.items = []item{{ev: msg.Event}}
	case len(msg.Objects) > 0:
		items, err := s.fetchAll(ctx, d, msg.Objects)
		if errors.Is(err, errBadObject) {
			s.m.decodeErrors.Inc()
			return outcome{kind: outcomeForget}, true
		}
		if err != nil {
			return s.retry(d, time.Now(), time.Time{}), true
		}
		d.items = items
	}
	d.decoded = true
	d.body = "" // decoded once: a message waiting (orphan grace, verdict log) holds its events only
	if s.observe != nil {
		for _, it := range d.items {
			s.observe(it.ev.Account, it.ev.Region, it.ev.Time)
		}
	}
	return outcome{}, false
}

// classifyItem classifies it (or re-checks an orphan that is due) and
// settles it; false means the store failed and it must be tried again.
func (s *engine) classifyItem(ctx context.Context, d *delivery, it *item, now time.Time) bool {
	recheck := it.state == stateRecheck
	if it.state == stateNotFinal {
		it.state = stateClassify
	}
	var (
		r   classify.Result
		err error
	)
	if recheck {
		r, err = s.cls.Recheck(ctx, it.ev)
	} else {
		r, err = s.cls.Classify(ctx, it.ev)
	}
	if s.notFinal(it, err, now) {
		return true
	}
	if err != nil {
		s.storeFailed(d, it, err)
		return false
	}
	if !recheck && s.cfg.OrphanGrace > 0 && orphaned(r) {
		// The broker may write the session just after the STS call, and
		// GSIs are eventually consistent: wait until the grace after the
		// event has passed, then read the store again past the cache. A
		// record dated in the future (clock skew, or forged by whoever can
		// send to the queue) waits no longer than the grace from now.
		it.state, it.until = stateRecheck, minTime(it.ev.Time, now).Add(s.cfg.OrphanGrace)
		if it.until.After(now) {
			return true
		}
		r, err = s.cls.Recheck(ctx, it.ev)
		if s.notFinal(it, err, now) {
			return true
		}
		if err != nil {
			s.storeFailed(d, it, err)
			return false
		}
		recheck = true
	}
	if recheck {
		if orphaned(r) {
			s.m.orphanConfirmed.Inc()
		} else {
			s.m.orphanCleared.Inc()
		}
	}
	s.settle(d, it, r)
	return true
}

// notFinal holds it for the session replica when err says the replica
// cannot answer it yet: until its RetryAfter, in process (the scheduler,
// as for an orphan's grace), then it is classified again; an orphan
// re-check stays one. The replica bounds the wait (--replica-max-wait):
// beyond it, it answers from the table instead.
func (s *engine) notFinal(it *item, err error, now time.Time) bool {
	var nf *sessions.NotFinalError
	if err == nil || !errors.As(err, &nf) {
		return false
	}
	s.m.replicaWaits.Inc()
	if it.state != stateRecheck {
		it.state = stateNotFinal
	}
	it.until, it.waited = now.Add(max(nf.RetryAfter, time.Millisecond)), true
	return true
}

func (s *engine) storeFailed(d *delivery, it *item, err error) {
	s.m.storeFailures.Inc()
	level := s.log.Warn()
	if !errors.Is(err, classify.ErrStore) {
		level = s.log.Error() // not expected: Classify fails only on the store
	}
	level.Str("message_id", d.id).Str("event_id", it.ev.ID).Err(err).Msg("classification failed; will retry")
}

// orphaned reports whether r rests on no session being found: an orphaned
// verdict, or a denied call that would have been orphaned.
func orphaned(r classify.Result) bool {
	return r.Verdict == classify.Orphaned || (r.Verdict == classify.DeniedAttempt && r.Underlying == classify.Orphaned)
}

// settle records the final verdict of it and queues its finding.
func (s *engine) settle(d *delivery, it *item, r classify.Result) {
	it.state = stateDone
	if c := s.m.verdicts[r.Verdict]; c != nil {
		c.Inc()
	}
	if c := s.m.replicaVerdicts[r.Verdict]; c != nil && it.waited {
		c.Inc()
	}
	if !r.IsFinding() {
		s.logVerdict(d, it, r, "")
		return
	}
	f := sink.NewFinding(it.ev, r, sink.DetectorStreamer, time.Now())
	s.logVerdict(d, it, r, f.FindingID)
	left := make([]bool, len(s.sinks))
	for j := range left {
		left[j] = true
	}
	d.out = append(d.out, pending{finding: f, left: left})
	s.log.Info().Str("message_id", d.id).Str("finding_id", f.FindingID).Str("category", string(f.Category)).
		Str("severity", f.Severity).Str("event_id", f.Event.ID).Str("event_name", f.Event.Name).
		Str("account", f.Event.Account).Str("role_arn", f.Target.RoleARN).
		Str("source_identity", f.SourceIdentity.Value).Str("user_agent", f.Event.UserAgent).Msg("finding")
}

// logVerdict adds the verdict log entry of it to d.
func (s *engine) logVerdict(d *delivery, it *item, r classify.Result, findingID string) {
	if !s.logVerdicts {
		return
	}
	e, ok := verdictEntry(it.ev, r, findingID)
	if !ok {
		s.m.verdictLogSkipped.Inc()
		s.log.Warn().Str("message_id", d.id).Str("event_id", it.ev.ID).Msg("event without eventID or eventTime: not in the verdict log")
		return
	}
	d.entries = append(d.entries, e)
}

// deliver writes every pending finding to every sink that has not accepted
// it, and reports whether all are now accepted everywhere.
func (s *engine) deliver(ctx context.Context, d *delivery) bool {
	if len(d.out) == 0 {
		return true
	}
	var (
		idx   []int
		batch []sink.Finding
	)
	for j, sk := range s.sinks {
		idx, batch = idx[:0], batch[:0]
		for i := range d.out {
			if d.out[i].left[j] {
				idx = append(idx, i)
				batch = append(batch, d.out[i].finding)
			}
		}
		if len(batch) == 0 {
			continue
		}
		err := sk.Write(ctx, batch)
		var be *sink.BatchError
		failed := 0
		for k, i := range idx {
			bad := err != nil
			if errors.As(err, &be) {
				_, bad = be.Failed[k]
			}
			if bad {
				failed++
				continue
			}
			d.out[i].left[j] = false
		}
		s.sinkM[j].accepted.Add(float64(len(idx) - failed))
		if failed > 0 {
			s.sinkM[j].failed.Add(float64(failed))
			since := s.health[j].fail(time.Now(), err)
			s.sinkM[j].failing.Set(1)
			s.log.Error().Str("message_id", d.id).Str("sink", sk.Name()).Int("failed", failed).Int("findings", len(idx)).
				Time("failing_since", since).Err(err).Msg("sink did not accept findings; will retry")
		} else if s.health[j].ok() {
			s.sinkM[j].failing.Set(0)
			s.log.Info().Str("sink", sk.Name()).Msg("sink accepts findings again")
		}
	}
	kept := d.out[:0]
	for _, p := range d.out {
		for _, l := range p.left {
			if l {
				kept = append(kept, p)
				break
			}
		}
	}
	clear(d.out[len(kept):])
	d.out = kept
	return len(d.out) == 0
}
