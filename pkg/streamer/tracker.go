package streamer

import (
	"sync"
	"time"
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
