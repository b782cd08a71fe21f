package sessions

import (
	"slices"
	"time"
)

// entryIndex makes the two questions the Matcher asks of a cached answer
// cheap, however many sessions a user has: which sessions carry this
// SourceIdentity, and which cover this time. It is built once per store
// read (Cache.query) and shared, read-only, by every lookup of the entry.
type entryIndex struct {
	// bySourceIdentity holds positions in Entry.Sessions.
	bySourceIdentity map[string][]int32
	// byStart holds the positions of sessions with both times set, ordered
	// by StartedAt; maxSpan is the longest ExpiresAt - StartedAt among them,
	// which bounds how far back a covering session can have started.
	// unbounded says a span was too long for a time.Duration (an expiry in
	// year 9999, say): then every session that started in time is checked.
	byStart   []int32
	maxSpan   time.Duration
	unbounded bool
}

// longestSpan is the span beyond which a session makes the index check
// every earlier start; time.Time.Sub saturates at about 292 years.
const longestSpan = 100 * 365 * 24 * time.Hour

// newEntry returns an Entry with its index built.
func newEntry(sessions []Session, fetchedAt time.Time) Entry {
	idx := &entryIndex{}
	for i, s := range sessions {
		if s.SourceIdentity != "" {
			if idx.bySourceIdentity == nil {
				idx.bySourceIdentity = map[string][]int32{}
			}
			idx.bySourceIdentity[s.SourceIdentity] = append(idx.bySourceIdentity[s.SourceIdentity], int32(i))
		}
		if s.StartedAt.IsZero() || s.ExpiresAt.IsZero() {
			continue // covers nothing (Session.Covers)
		}
		idx.byStart = append(idx.byStart, int32(i))
		switch span := s.ExpiresAt.Sub(s.StartedAt); {
		case span > longestSpan:
			idx.unbounded = true
		case span > idx.maxSpan:
			idx.maxSpan = span
		}
	}
	slices.SortStableFunc(idx.byStart, func(a, b int32) int {
		return sessions[a].StartedAt.Compare(sessions[b].StartedAt)
	})
	return Entry{Sessions: sessions, FetchedAt: fetchedAt, index: idx}
}

// all returns the entry's sessions, in a new slice.
func (e Entry) all() []Session {
	if e.view != nil {
		return e.view.all()
	}
	return slices.Clone(e.Sessions)
}

// withSourceIdentity returns the entry's sessions recorded with exactly si,
// in a new slice.
func (e Entry) withSourceIdentity(si string) []Session {
	if e.view != nil {
		return e.view.withSourceIdentity(si)
	}
	if e.index == nil {
		return keep(e.Sessions, func(s Session) bool { return s.SourceIdentity == si })
	}
	pos := e.index.bySourceIdentity[si]
	if len(pos) == 0 {
		return nil
	}
	out := make([]Session, len(pos))
	for i, p := range pos {
		out[i] = e.Sessions[p]
	}
	return out
}

// covering returns the entry's sessions whose [StartedAt - skew,
// ExpiresAt + skew] holds at, in a new slice, in the order they were read.
func (e Entry) covering(at time.Time, skew time.Duration) []Session {
	if e.view != nil {
		return e.view.covering(at, skew)
	}
	if e.index == nil {
		return keep(e.Sessions, func(s Session) bool { return s.Covers(at, skew) })
	}
	idx := e.index
	// A covering session started in [at - skew - maxSpan, at + skew]. Two
	// Adds: skew+maxSpan could overflow a Duration.
	lo, latest := 0, at.Add(skew)
	if !idx.unbounded {
		earliest := at.Add(-skew).Add(-idx.maxSpan)
		lo, _ = slices.BinarySearchFunc(idx.byStart, earliest, func(p int32, t time.Time) int {
			return e.Sessions[p].StartedAt.Compare(t)
		})
	}
	var pos []int32
	for _, p := range idx.byStart[lo:] {
		s := &e.Sessions[p]
		if s.StartedAt.After(latest) {
			break
		}
		if s.Covers(at, skew) {
			pos = append(pos, p)
		}
	}
	if len(pos) == 0 {
		return nil
	}
	slices.Sort(pos) // the order of the store's answer, as without an index
	out := make([]Session, len(pos))
	for i, p := range pos {
		out[i] = e.Sessions[p]
	}
	return out
}
