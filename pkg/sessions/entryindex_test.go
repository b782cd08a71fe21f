package sessions

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestEntryIndexAnswersLikeAScan checks the index against the plain scan it
// replaces, on generated session lists with the awkward cases: equal start
// times, zero times, one very long session, skews of zero and more.
func TestEntryIndexAnswersLikeAScan(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ids := func(ss []Session) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s.ID
		}
		return out
	}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := rng.IntN(300)
		sessions := make([]Session, n)
		for i := range sessions {
			start := base.Add(time.Duration(rng.IntN(7*24*60)) * time.Minute)
			s := Session{
				ID:             fmt.Sprint("s", i),
				StartedAt:      start,
				ExpiresAt:      start.Add(time.Duration(1+rng.IntN(12*60)) * time.Minute),
				SourceIdentity: fmt.Sprintf("sentinel:u:p:%d", rng.IntN(n/3+1)),
			}
			switch rng.IntN(24) {
			case 0:
				s.StartedAt = time.Time{}
			case 1:
				s.ExpiresAt = time.Time{}
			case 2:
				s.ExpiresAt = start.Add(30 * 24 * time.Hour) // a long-lived server session
			case 5:
				s.ExpiresAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) // "never": a span past time.Duration
			case 6:
				s.ExpiresAt = start.Add(-time.Hour) // expires before it starts: covers nothing
			case 7:
				s.StartedAt = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC) // started in year 1
			case 3:
				s.SourceIdentity = ""
			case 4:
				if i > 0 {
					s.StartedAt = sessions[i-1].StartedAt // equal starts
				}
			}
			sessions[i] = s
		}
		indexed, scanned := newEntry(sessions, base), Entry{Sessions: sessions, FetchedAt: base}
		for range 200 {
			at := base.Add(time.Duration(rng.IntN(8*24*60*60)-24*60*60) * time.Second)
			skew := []time.Duration{0, time.Second, time.Minute, 10 * time.Minute}[rng.IntN(4)]
			got, want := ids(indexed.covering(at, skew)), ids(scanned.covering(at, skew))
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d: covering(%v, %v) = %v, want %v", seed, at, skew, got, want)
			}
			si := fmt.Sprintf("sentinel:u:p:%d", rng.IntN(n/3+2))
			if got, want := ids(indexed.withSourceIdentity(si)), ids(scanned.withSourceIdentity(si)); !slices.Equal(got, want) {
				t.Fatalf("seed %d: withSourceIdentity(%q) = %v, want %v", seed, si, got, want)
			}
		}
	}
}

// BenchmarkCovering is the user-time match over one user's cached list of
// 300 sessions spread over a week, with and without the index.
func BenchmarkCovering(b *testing.B) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	sessions := make([]Session, 300)
	for i := range sessions {
		start := base.Add(time.Duration(rng.IntN(7*24*60)) * time.Minute)
		sessions[i] = Session{ID: fmt.Sprint(i), StartedAt: start, ExpiresAt: start.Add(time.Hour)}
	}
	at := base.Add(84 * time.Hour)
	for name, e := range map[string]Entry{"indexed": newEntry(sessions, base), "scan": {Sessions: sessions}} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				e.covering(at, time.Minute)
			}
		})
	}
}
