package streamer

import (
	"context"
	"sync"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// VerdictLog is where the streamer records every event it classified
// (*verdictlog.Writer): Add buffers, Flush makes what was added durable
// and, when it fails, discards it.
type VerdictLog interface {
	Add(ctx context.Context, entries ...verdictlog.Entry) error
	Flush(ctx context.Context) (verdictlog.Object, error)
}

// verdictEntry is the verdict log line of an event classified r; ok is
// false for an event the log cannot name (no eventID or eventTime: no
// CloudTrail record lacks them, a hand-sent message can).
func verdictEntry(ev *cloudtrail.Event, r classify.Result, findingID string) (verdictlog.Entry, bool) {
	if ev.ID == "" || ev.Time.IsZero() {
		return verdictlog.Entry{}, false
	}
	return verdictlog.Entry{
		EventID: ev.ID, EventTime: ev.Time, Account: ev.Account, Region: ev.Region,
		EventName: ev.Name, Verdict: string(r.Verdict), FindingID: findingID,
	}, true
}

// verdictBatcher holds the deliveries whose findings are safe until the
// verdict log holds their entries: a flush (every interval, or once limit
// deliveries wait) makes them durable, and only then are the messages
// deleted. The deliveries stay tracked meanwhile, so the heartbeat keeps
// their visibility, and shutdown releases those it could not log.
type verdictBatcher struct {
	s        *Streamer
	w        VerdictLog
	interval time.Duration
	limit    int
	full     chan struct{}

	// mu is held from Add to the end of Flush, so that the entries a
	// Flush writes (or, failing, discards) are exactly those of waiting.
	mu      sync.Mutex
	waiting []*delivery
}

func newVerdictBatcher(s *Streamer, w VerdictLog) *verdictBatcher {
	return &verdictBatcher{
		s: s, w: w, interval: s.cfg.VerdictLogInterval,
		// Half the in-flight cap, so that receiving goes on while a batch
		// waits; and before the waiting leave a poller less than a batch
		// of free slots, when receiving would stop until the next tick.
		limit: max(1, min(s.cfg.MaxInFlight/2, s.cfg.MaxInFlight-s.cfg.batchSize()+1)),
		full:  make(chan struct{}, 1),
	}
}

// add queues d, whose findings every sink accepted, for the next flush.
func (b *verdictBatcher) add(ctx context.Context, d *delivery) {
	b.mu.Lock()
	err := b.w.Add(ctx, d.entries...)
	if err == nil {
		b.waiting = append(b.waiting, d)
		b.s.m.verdictLogWaiting.Set(float64(len(b.waiting)))
	}
	n := len(b.waiting)
	b.mu.Unlock()
	if err != nil {
		// verdictEntry keeps out what Add refuses: a bug, not a message
		// fault. Hand the message back rather than delete it unlogged.
		b.s.m.verdictLogFailures.Inc()
		b.s.log.Error().Str("message_id", d.id).Err(err).Msg("verdict log refused an entry; message released")
		b.s.release(d, b.s.cfg.RetryMax, reasonRetry)
		return
	}
	if n >= b.limit {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

// run flushes every interval, and early when a batch is full, until ctx
// ends. After a failed flush it waits for the next tick.
func (b *verdictBatcher) run(ctx context.Context) {
	t := time.NewTicker(b.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.full:
			if failing {
				continue
			}
		}
		failing = !b.flush(ctx)
	}
}

// flush writes the waiting deliveries' entries and queues their deletes;
// on failure they wait for the next flush (their entries added again).
func (b *verdictBatcher) flush(ctx context.Context) bool {
	b.mu.Lock()
	batch := b.waiting
	if len(batch) == 0 {
		b.mu.Unlock()
		return true
	}
	start := time.Now()
	obj, err := b.w.Flush(ctx)
	if err != nil {
		// The writer dropped what it held, which is exactly batch's: take
		// it again for the next flush. Add took these entries once, so it
		// takes them again; a refusal would be a writer bug, and its
		// message is then released rather than deleted unlogged.
		kept := batch[:0]
		for _, d := range batch {
			if aerr := b.w.Add(ctx, d.entries...); aerr != nil {
				b.s.log.Error().Str("message_id", d.id).Err(aerr).Msg("verdict log refused entries it took before; message released")
				b.s.release(d, b.s.cfg.RetryMax, reasonRetry)
				continue
			}
			kept = append(kept, d)
		}
		b.waiting = kept
		b.s.m.verdictLogWaiting.Set(float64(len(kept)))
		b.mu.Unlock()
		b.s.m.verdictLogFailures.Inc()
		b.s.log.Error().Err(err).Int("messages", len(batch)).Msg("verdict log flush failed; the messages wait (not deleted) and the flush is retried")
		return false
	}
	b.waiting = nil
	b.s.m.verdictLogWaiting.Set(0)
	b.mu.Unlock()
	b.s.m.verdictLogObjects.Inc()
	b.s.m.verdictLogEntries.Add(float64(obj.Entries))
	b.s.m.verdictLogBytes.Add(float64(obj.Bytes))
	b.s.log.Debug().Str("object", obj.Key).Int("entries", obj.Entries).Int64("bytes", obj.Bytes).
		Dur("took", time.Since(start)).Msg("verdict log written")
	for _, d := range batch {
		b.s.ack(d)
	}
	return true
}
