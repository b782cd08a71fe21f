package sessions

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func newTestDirectory(t *testing.T, lister UserNameLister) (*Directory, *fakeClock) {
	t.Helper()
	d, err := NewDirectory(lister, DirectoryConfig{RefreshInterval: 10 * time.Minute, MinRefreshInterval: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	d.now = clock.Now
	return d, clock
}

func TestDirectoryMapsSanitisedToRawNames(t *testing.T) {
	lister := &fakeLister{names: []string{"alice.smith@corp", "alice_smith@corp", "bob", "@@"}}
	d, _ := newTestDirectory(t, lister)
	ctx := context.Background()

	tests := []struct {
		user string
		want []string
	}{
		{"alicesmithcorp", []string{"alice.smith@corp", "alice_smith@corp"}},
		{"bob", []string{"bob"}},
		{"carol", nil},
	}
	for _, tt := range tests {
		got, err := d.RawNames(ctx, tt.user)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("RawNames(%q) = %v, %v; want %v", tt.user, got, err, tt.want)
		}
	}
	// The first lookup loaded; the miss on carol came within
	// MinRefreshInterval, so it did not read again.
	if got := lister.callCount(); got != 1 {
		t.Errorf("%d reads of the user names, want 1", got)
	}
	if st := d.Stats(); st.Users != 2 || st.Refreshes != 1 || st.RateLimited != 1 {
		t.Errorf("Stats = %+v, want 2 users, 1 refresh, 1 rate-limited", st)
	}
}

func TestDirectoryRefreshesOnMissAndWhenStale(t *testing.T) {
	lister := &fakeLister{names: []string{"bob"}}
	d, clock := newTestDirectory(t, lister)
	ctx := context.Background()

	if _, err := d.RawNames(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	lister.set([]string{"bob", "carol.x"}, nil)
	clock.Advance(31 * time.Second)
	if got, err := d.RawNames(ctx, "carolx"); err != nil || !slices.Equal(got, []string{"carol.x"}) {
		t.Errorf("after a miss past MinRefreshInterval: %v, %v; want [carol.x]", got, err)
	}
	if got := lister.callCount(); got != 2 {
		t.Errorf("%d reads, want 2 (one for the miss)", got)
	}
	// A known name is served from the directory until it is stale.
	clock.Advance(5 * time.Minute)
	if _, err := d.RawNames(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := lister.callCount(); got != 2 {
		t.Errorf("%d reads, want 2 (bob known, directory fresh)", got)
	}
	clock.Advance(6 * time.Minute)
	if _, err := d.RawNames(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := lister.callCount(); got != 3 {
		t.Errorf("%d reads, want 3 (directory older than RefreshInterval)", got)
	}
}

func TestDirectoryRefreshFailure(t *testing.T) {
	lister := &fakeLister{names: []string{"bob"}}
	d, clock := newTestDirectory(t, lister)
	ctx := context.Background()
	if _, err := d.RawNames(ctx, "bob"); err != nil {
		t.Fatal(err)
	}

	outage := errors.New("throttled")
	lister.set(nil, outage)
	clock.Advance(11 * time.Minute) // stale: every lookup wants a refresh

	// A name the old directory has is still served.
	if got, err := d.RawNames(ctx, "bob"); err != nil || !slices.Equal(got, []string{"bob"}) {
		t.Errorf("known name during an outage: %v, %v; want [bob], nil", got, err)
	}
	// A name it lacks is an error, not "none" — also while rate-limited.
	for _, when := range []string{"refresh failing", "rate-limited after the failure"} {
		if got, err := d.RawNames(ctx, "carol"); !errors.Is(err, outage) {
			t.Errorf("%s: RawNames(carol) = %v, %v; want the outage error", when, got, err)
		}
	}
	if refreshed, err := d.Refresh(ctx); refreshed || !errors.Is(err, outage) {
		t.Errorf("Refresh while rate-limited after a failure = %v, %v; want false and the outage", refreshed, err)
	}
	if got := lister.callCount(); got != 2 {
		t.Errorf("%d reads, want 2 (rate limit holds during the outage)", got)
	}

	lister.set([]string{"bob", "carol"}, nil)
	clock.Advance(31 * time.Second)
	if got, err := d.RawNames(ctx, "carol"); err != nil || !slices.Equal(got, []string{"carol"}) {
		t.Errorf("after recovery: %v, %v; want [carol]", got, err)
	}
	if st := d.Stats(); st.RefreshErrors != 1 {
		t.Errorf("Stats = %+v, want 1 refresh error", st)
	}
}

func TestDirectoryCancelledRefreshIsNotRemembered(t *testing.T) {
	lister := &fakeLister{err: context.Canceled}
	d, _ := newTestDirectory(t, lister)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.RawNames(ctx, "bob"); err == nil {
		t.Fatal("RawNames with a cancelled context succeeded")
	}
	lister.set([]string{"bob"}, nil)
	if got, err := d.RawNames(context.Background(), "bob"); err != nil || !slices.Equal(got, []string{"bob"}) {
		t.Errorf("after a cancelled caller: %v, %v; want [bob] (no rate limit, no replayed error)", got, err)
	}
}
