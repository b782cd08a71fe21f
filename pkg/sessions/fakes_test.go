package sessions

import (
	"context"
	"sync"
	"time"
)

// fakeClock is a settable clock shared by the types under test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeReader is a SessionReader over maps, counting calls per key. When
// gate is set, every read first signals started and then waits for gate.
type fakeReader struct {
	mu      sync.Mutex
	bySI    map[string][]Session
	byUser  map[string][]Session
	err     error
	calls   map[string]int
	gate    chan struct{}
	started chan struct{}
}

func newFakeReader() *fakeReader {
	return &fakeReader{bySI: map[string][]Session{}, byUser: map[string][]Session{}, calls: map[string]int{}}
}

func (f *fakeReader) BySourceIdentity(ctx context.Context, si string) ([]Session, error) {
	return f.read(ctx, "si:"+si, func() []Session { return f.bySI[si] })
}

func (f *fakeReader) ByUser(ctx context.Context, user string) ([]Session, error) {
	return f.read(ctx, "user:"+user, func() []Session { return f.byUser[user] })
}

func (f *fakeReader) read(ctx context.Context, key string, get func() []Session) ([]Session, error) {
	f.mu.Lock()
	f.calls[key]++
	gate, started := f.gate, f.started
	f.mu.Unlock()
	if gate != nil {
		started <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return get(), nil
}

func (f *fakeReader) set(fn func(f *fakeReader)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeReader) callCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

// fakeLister is a UserNameLister returning names or err, counting calls.
type fakeLister struct {
	mu    sync.Mutex
	names []string
	err   error
	calls int
}

func (f *fakeLister) UserNames(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return append([]string(nil), f.names...), nil
}

func (f *fakeLister) set(names []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names, f.err = names, err
}

func (f *fakeLister) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
