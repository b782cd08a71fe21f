package streamer

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler holds deliveries until a given time (an orphan's grace, a
// retry's back-off) on a min-heap with one timer, then hands them back to the
// workers. Holding costs no goroutine and blocks no other work.
type scheduler struct {
	mu       sync.Mutex
	h        wakeHeap
	draining bool
	poke     chan struct{}
	onChange func(n int) // held-messages gauge, called under mu
	// release gets every delivery held (or added) once draining.
	release func(*delivery)
}

func newScheduler(onChange func(int), release func(*delivery)) *scheduler {
	return &scheduler{poke: make(chan struct{}, 1), onChange: onChange, release: release}
}

// add holds d until at. Once the streamer is draining, d is released at
// once instead.
func (sc *scheduler) add(d *delivery, at time.Time) {
	sc.mu.Lock()
	if sc.draining {
		sc.mu.Unlock()
		sc.release(d)
		return
	}
	d.wake = at
	heap.Push(&sc.h, d)
	first := sc.h[0] == d
	sc.onChange(len(sc.h))
	sc.mu.Unlock()
	if first {
		sc.wakeUp()
	}
}

// drain releases every held delivery, and every later one as it is added.
func (sc *scheduler) drain() {
	sc.mu.Lock()
	sc.draining = true
	held := make([]*delivery, len(sc.h))
	copy(held, sc.h)
	for _, d := range held {
		d.index = -1
	}
	sc.h = sc.h[:0]
	sc.onChange(0)
	sc.mu.Unlock()
	for _, d := range held {
		sc.release(d)
	}
}

func (sc *scheduler) wakeUp() {
	select {
	case sc.poke <- struct{}{}:
	default:
	}
}

// run hands due deliveries to out until ctx ends. out has room for every
// delivery in flight, so the send never waits for long.
func (sc *scheduler) run(ctx context.Context, out chan<- *delivery) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		sc.mu.Lock()
		now := time.Now()
		var due []*delivery
		for len(sc.h) > 0 && !sc.h[0].wake.After(now) {
			due = append(due, heap.Pop(&sc.h).(*delivery))
		}
		next := time.Hour
		if len(sc.h) > 0 {
			next = sc.h[0].wake.Sub(now)
		}
		if len(due) > 0 {
			sc.onChange(len(sc.h))
		}
		sc.mu.Unlock()
		for _, d := range due {
			select {
			case out <- d:
			case <-ctx.Done():
				return nil // d stays tracked: shutdown releases it
			}
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return nil
		case <-sc.poke:
		case <-timer.C:
		}
	}
}

// wakeHeap orders deliveries by wake time.
type wakeHeap []*delivery

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].wake.Before(h[j].wake) }
func (h wakeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *wakeHeap) Push(x any) {
	d := x.(*delivery)
	d.index = len(*h)
	*h = append(*h, d)
}
func (h *wakeHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	d.index = -1
	*h = old[:len(old)-1]
	return d
}
