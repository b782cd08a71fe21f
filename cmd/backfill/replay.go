package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/source"
)

// storeRetries bounds how often one event's lookup is retried after the
// SDK's own retries: a store that stays down ends the run with an error,
// never with a verdict.
const storeRetries = 5

// findingBatch is the most findings written to the sinks at once.
const findingBatch = 100

// replay runs a source through the classifier into the sinks: the source
// emits records, a bounded pool of workers classifies in-scope events of
// the window, one writer batches findings to the sink. A record's unit of
// progress (page, object, file) is acknowledged once the record needs
// nothing more, so the checkpoint never moves past a finding not yet
// accepted by the sink.
type replay struct {
	workers      int
	since, until time.Time
	source       source.Source
	classifier   *classify.Classifier
	// sinks are the --sink sinks, in order; none when the table is the
	// only output.
	sinks      []sink.Sink
	checkpoint *source.Checkpoint
	log        zerolog.Logger
	now        func() time.Time
	sum        *summary
	// filter drops events before classification (account, role,
	// principal) and after it (profile); nil keeps everything.
	filter *report.Filter
	// reconcile, when set, lets through to classification only the
	// settled events the verdict log lacks, and lists them.
	reconcile *reconciler
}

// classified is a finding on its way to the sinks, rendered once: the
// tally keeps this very value for the table and the report.
type classified struct {
	ev  *cloudtrail.Event
	f   sink.Finding
	ack *source.Ack
}

func (r *replay) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	events := make(chan source.Record, 4*r.workers)
	findings := make(chan classified, 4*r.workers)

	// The checkpoint is written as units of progress finish, and once more
	// when the run ends, however it ends.
	cpCtx, stopCheckpoint := context.WithCancel(context.WithoutCancel(ctx))
	cpDone := make(chan error, 1)
	go func() { cpDone <- r.checkpoint.Run(cpCtx) }()

	g.Go(func() error {
		defer close(events)
		return r.source.Run(ctx, func(ctx context.Context, rec source.Record) error {
			if ev := r.admit(rec); ev == nil || !r.filter.KeepEvent(ev) || !r.reconcile.missed(ev) {
				rec.Ack.Release()
				return nil
			}
			select {
			case events <- rec:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	workers, wctx := errgroup.WithContext(ctx)
	for range r.workers {
		workers.Go(func() error {
			for rec := range events {
				res, err := r.classify(wctx, rec.Event)
				if err != nil {
					return err
				}
				if err := r.reconcile.gap(rec.Event, res); err != nil {
					return err
				}
				if !r.filter.KeepResult(res) {
					rec.Ack.Release()
					continue
				}
				if !res.IsFinding() {
					r.sum.add(rec.Event, res, nil)
					rec.Ack.Release()
					continue
				}
				f := sink.NewFinding(rec.Event, res, sink.DetectorBackfill, r.now())
				r.sum.add(rec.Event, res, &f)
				select {
				case findings <- classified{rec.Event, f, rec.Ack}:
				case <-wctx.Done():
					return wctx.Err()
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
	err := g.Wait()
	stopCheckpoint()
	if cerr := <-cpDone; err == nil {
		err = cerr
	}
	return err
}

// admit counts one record and returns its event when it should be
// classified: decoded, accepted, in scope and inside the window.
func (r *replay) admit(rec source.Record) *cloudtrail.Event {
	r.sum.read.Add(1)
	switch err := rec.Err; {
	case errors.Is(err, cloudtrail.ErrOutOfScope):
		r.sum.outOfScope.Add(1)
		return nil
	case errors.Is(err, cloudtrail.ErrRejected):
		r.sum.rejected.Add(1)
		r.log.Warn().Err(err).Str("origin", rec.Origin).Int("record", rec.Pos).Msg("record rejected")
		return nil
	case err != nil || rec.Event == nil:
		r.sum.malformed.Add(1)
		r.log.Warn().Err(err).Str("origin", rec.Origin).Int("record", rec.Pos).Msg("record not decoded")
		return nil
	case rec.Event.Time.Before(r.since) || !rec.Event.Time.Before(r.until):
		r.sum.outsideWindow.Add(1)
		return nil
	}
	r.sum.inScope.Add(1)
	return rec.Event
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

// writeFindings batches findings to the sink; a finding's record is
// acknowledged once the sink accepted it.
func (r *replay) writeFindings(ctx context.Context, in <-chan classified) error {
	batch := make([]sink.Finding, 0, findingBatch)
	acks := make([]*source.Ack, 0, findingBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := r.deliver(ctx, batch); err != nil {
			return fmt.Errorf("write findings: %w", err)
		}
		for _, a := range acks {
			a.Release()
		}
		batch, acks = batch[:0], acks[:0]
		return nil
	}
	for c := range in {
		f := c.f
		batch = append(batch, f)
		acks = append(acks, c.ack)
		r.log.Info().Str("finding_id", f.FindingID).Str("category", string(f.Category)).
			Str("event_id", c.ev.ID).Str("source_identity", c.ev.SourceIdentity).Msg("finding")
		// Flush when the batch is full or no more findings are waiting.
		if len(batch) == findingBatch || len(in) == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// deliver writes batch to each sink in turn, counting in the summary what
// each accepted and refused; the error names every sink that refused some.
func (r *replay) deliver(ctx context.Context, batch []sink.Finding) error {
	var errs []error
	for _, sk := range r.sinks {
		err := sk.Write(ctx, batch)
		failed := 0
		var be *sink.BatchError
		switch {
		case err == nil:
		case errors.As(err, &be):
			failed = min(len(be.Failed), len(batch))
		default:
			failed = len(batch)
		}
		r.sum.addDelivery(sk.Name(), len(batch)-failed, failed)
		if err != nil {
			errs = append(errs, fmt.Errorf("sink %s refused %d of %d findings: %w", sk.Name(), failed, len(batch), err))
		}
	}
	return errors.Join(errs...)
}
