package sessions

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func newTestCache(t *testing.T, reader SessionReader) (*Cache, *fakeClock) {
	t.Helper()
	c, err := NewCache(reader, CacheConfig{Capacity: 100})
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	c.now = clock.Now
	return c, clock
}

func TestCacheMaxAge(t *testing.T) {
	reader := newFakeReader()
	reader.byUser["bob"] = []Session{{ID: "s1", User: "bob"}}
	cache, clock := newTestCache(t, reader)
	ctx := context.Background()

	first, err := cache.ByUser(ctx, "bob", time.Minute)
	if err != nil || len(first.Sessions) != 1 || !first.FetchedAt.Equal(clock.Now()) {
		t.Fatalf("first read = %+v, %v", first, err)
	}
	clock.Advance(30 * time.Second)
	if _, err := cache.ByUser(ctx, "bob", time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := reader.callCount("user:bob"); got != 1 {
		t.Errorf("entry 30s old, maxAge 1m: %d queries, want 1 (a hit)", got)
	}
	if _, err := cache.ByUser(ctx, "bob", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := reader.callCount("user:bob"); got != 2 {
		t.Errorf("entry 30s old, maxAge 10s: %d queries, want 2 (refetched)", got)
	}
	if _, err := cache.ByUser(ctx, "bob", 0); err != nil {
		t.Fatal(err)
	}
	if got := reader.callCount("user:bob"); got != 3 {
		t.Errorf("maxAge 0: %d queries, want 3 (always queries)", got)
	}
	// Keys of the two reads do not collide.
	if e, err := cache.BySourceIdentity(ctx, "bob", time.Minute); err != nil || len(e.Sessions) != 0 {
		t.Errorf("BySourceIdentity(bob) = %+v, %v; want no sessions (not the user entry)", e, err)
	}
	want := CacheStats{Lookups: 5, Hits: 1, Misses: 4, Queries: 4}
	if got := cache.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	reader := newFakeReader()
	reader.err = errors.New("throttled")
	cache, _ := newTestCache(t, reader)
	ctx := context.Background()

	if _, err := cache.BySourceIdentity(ctx, "si", time.Minute); !errors.Is(err, reader.err) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	reader.set(func(f *fakeReader) {
		f.err = nil
		f.bySI["si"] = []Session{{ID: "s1"}}
	})
	e, err := cache.BySourceIdentity(ctx, "si", time.Minute)
	if err != nil || len(e.Sessions) != 1 {
		t.Fatalf("after recovery: %+v, %v; want the session", e, err)
	}
	if got := reader.callCount("si:si"); got != 2 {
		t.Errorf("%d queries, want 2 (the error was not cached)", got)
	}
	if got := cache.Stats(); got.Errors != 1 || got.Hits != 0 {
		t.Errorf("Stats = %+v, want 1 error and no hit", got)
	}
}

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	reader := newFakeReader()
	reader.bySI["si"] = []Session{{ID: "s1"}}
	reader.gate, reader.started = make(chan struct{}), make(chan struct{}, 1)
	cache, _ := newTestCache(t, reader)
	ctx := context.Background()

	const callers = 8
	var wg sync.WaitGroup
	results := make(chan error, callers)
	wg.Add(1)
	go func() { // the leader
		defer wg.Done()
		_, err := cache.BySourceIdentity(ctx, "si", time.Minute)
		results <- err
	}()
	<-reader.started // the leader's query is in flight
	for range callers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := cache.BySourceIdentity(ctx, "si", time.Minute)
			if err == nil && len(e.Sessions) != 1 {
				err = errors.New("no session")
			}
			results <- err
		}()
	}
	// Every follower has missed; give the last ones a moment to join the
	// flight (singleflight cannot say who waits) before it lands.
	waitFor(t, func() bool { return cache.Stats().Misses == callers })
	time.Sleep(20 * time.Millisecond)
	close(reader.gate)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Error(err)
		}
	}
	if got := reader.callCount("si:si"); got != 1 {
		t.Errorf("%d queries for %d concurrent lookups, want 1", got, callers)
	}
	st := cache.Stats()
	if st.Queries != 1 || st.Misses != callers || st.Coalesced != callers-1 {
		t.Errorf("Stats = %+v, want 1 query, %d misses, %d coalesced", st, callers, callers-1)
	}
}

func TestCacheFollowerOutlivesCancelledLeader(t *testing.T) {
	reader := newFakeReader()
	reader.bySI["si"] = []Session{{ID: "s1"}}
	reader.gate, reader.started = make(chan struct{}), make(chan struct{}, 2)
	cache, _ := newTestCache(t, reader)

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := cache.BySourceIdentity(leaderCtx, "si", time.Minute)
		leaderErr <- err
	}()
	<-reader.started
	followerDone := make(chan error, 1)
	go func() {
		e, err := cache.BySourceIdentity(context.Background(), "si", time.Minute)
		if err == nil && len(e.Sessions) != 1 {
			err = errors.New("no session")
		}
		followerDone <- err
	}()
	waitFor(t, func() bool { return cache.Stats().Lookups == 2 })
	cancelLeader()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader err = %v, want context.Canceled", err)
	}
	<-reader.started // the follower queries again under its own context
	close(reader.gate)
	if err := <-followerDone; err != nil {
		t.Errorf("follower: %v, want the session", err)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
