package streamer

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// tracker knows every message in flight and its visibility deadline, so the
// heartbeat can extend the ones running out and shutdown can release them.
type tracker struct {
	mu sync.Mutex
	m  map[*delivery]struct{}
	// onChange reports the count (the in-flight gauge), under the lock so
	// that the last report is the current count.
	onChange func(n int)
}

func newTracker(capacity int, onChange func(int)) *tracker {
	return &tracker{m: make(map[*delivery]struct{}, capacity), onChange: onChange}
}

func (t *tracker) add(d *delivery, deadline time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d.deadline, d.tracked = deadline, true
	t.m[d] = struct{}{}
	t.onChange(len(t.m))
}

// remove stops tracking d and reports whether it was tracked: only one of
// ack, release and forget resolves a delivery.
func (t *tracker) remove(d *delivery) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !d.tracked {
		return false
	}
	d.tracked = false
	delete(t.m, d)
	t.onChange(len(t.m))
	return true
}

func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// due returns the tracked deliveries with less than margin left before their
// deadline, and moves their deadline to newDeadline (the extension about to
// be asked for).
func (t *tracker) due(now time.Time, margin time.Duration, newDeadline time.Time) []extension {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []extension
	for d := range t.m {
		if d.deadline.Sub(now) < margin {
			out = append(out, extension{d: d, id: d.id, handle: d.handle, old: d.deadline})
			d.deadline = newDeadline
		}
	}
	return out
}

// failed puts the deadline of deliveries whose extension call failed back
// to the one they had, so the next tick tries again.
func (t *tracker) failed(batch []extension) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range batch {
		if e.d.tracked {
			e.d.deadline = e.old
		}
	}
}

// all returns every tracked delivery, untracking them.
func (t *tracker) drainAll() []*delivery {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*delivery, 0, len(t.m))
	for d := range t.m {
		d.tracked = false
		out = append(out, d)
	}
	clear(t.m)
	t.onChange(0)
	return out
}

// extension is one message due for a visibility extension: its id and
// handle as of the snapshot, and its deadline before.
type extension struct {
	d          *delivery
	id, handle string
	old        time.Time
}

// heartbeat extends the visibility of messages in flight once less than half
// of their visibility timeout is left, until ctx ends.
func (s *Streamer) heartbeat(ctx context.Context) error {
	vis := s.cfg.VisibilityTimeout
	tick := max(vis/4, 100*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		// Ask for a full timeout from now; count the deadline from now
		// too (the call takes a moment, so the real deadline is later).
		due := s.track.due(now, vis/2+tick, now.Add(vis))
		for start := 0; start < len(due); start += MaxBatch {
			s.extend(ctx, due[start:min(start+MaxBatch, len(due))])
		}
	}
}

func (s *Streamer) extend(ctx context.Context, batch []extension) {
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
	for i, e := range batch {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			ReceiptHandle:     aws.String(e.handle),
			VisibilityTimeout: s.cfg.visibilitySeconds(),
		}
	}
	out, err := s.queue.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: entries})
	if err != nil {
		if ctx.Err() == nil {
			s.track.failed(batch)
			s.m.extendFailures.Add(float64(len(batch)))
			s.log.Warn().Err(err).Int("messages", len(batch)).Msg("visibility extension failed; retrying at the next tick")
		}
		return
	}
	s.m.extended.Add(float64(len(out.Successful)))
	for _, f := range out.Failed {
		s.m.extendFailures.Inc()
		i, _ := strconv.Atoi(aws.ToString(f.Id))
		if i < 0 || i >= len(batch) {
			continue
		}
		s.log.Warn().Str("message_id", batch[i].id).Str("code", aws.ToString(f.Code)).Str("error", aws.ToString(f.Message)).
			Msg("visibility extension failed for a message in flight")
	}
}
