package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeCachingReader answers each key from a queue of entries (the last one
// repeats) and records every read with its maxAge.
type fakeCachingReader struct {
	mu      sync.Mutex
	answers map[string][]Entry
	errs    map[string]error
	reads   []string  // "key@maxAge"
	now     time.Time // FetchedAt of keys without answers
}

func (f *fakeCachingReader) BySourceIdentity(_ context.Context, si string, maxAge time.Duration) (Entry, error) {
	return f.read("si:"+si, maxAge)
}

func (f *fakeCachingReader) ByUser(_ context.Context, user string, maxAge time.Duration) (Entry, error) {
	return f.read("user:"+user, maxAge)
}

func (f *fakeCachingReader) read(key string, maxAge time.Duration) (Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, fmt.Sprintf("%s@%v", key, maxAge))
	if err := f.errs[key]; err != nil {
		return Entry{}, err
	}
	q := f.answers[key]
	if len(q) == 0 {
		return Entry{FetchedAt: f.now}, nil
	}
	e := q[0]
	if len(q) > 1 {
		f.answers[key] = q[1:]
	}
	return e, nil
}

// fakeResolver maps users to raw names; Refresh swaps in next, once.
type fakeResolver struct {
	names      map[string][]string
	next       map[string][]string
	err        error
	refreshErr error
	refreshes  int
}

func (f *fakeResolver) RawNames(_ context.Context, user string) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.names[user], nil
}

func (f *fakeResolver) Refresh(context.Context) (bool, error) {
	f.refreshes++
	if f.refreshErr != nil {
		return false, f.refreshErr
	}
	if f.next == nil {
		return false, nil
	}
	f.names, f.next = f.next, nil
	return true, nil
}

func TestMatcherPolicy(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	at := now.Add(-time.Minute)
	const si = "sentinel:alice:direct:a1b2c3d4"
	covering := Session{ID: "cover", User: "alice", StartedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Hour)}
	old := Session{ID: "old", User: "alice", StartedAt: at.Add(-5 * time.Hour), ExpiresAt: at.Add(-4 * time.Hour)}
	revoked := Session{ID: "rev", User: "alice", SourceIdentity: si, Status: StatusRevoked,
		StartedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Hour), UpdatedAt: at.Add(-time.Minute)}
	exactValid := Session{ID: "exact", User: "alice", SourceIdentity: si, Status: StatusActive,
		StartedAt: at.Add(-time.Minute), ExpiresAt: at.Add(time.Hour)}
	fresh := func(ss ...Session) Entry { return Entry{Sessions: ss, FetchedAt: now} }
	aged := func(age time.Duration, ss ...Session) Entry { return Entry{Sessions: ss, FetchedAt: now.Add(-age)} }
	boom := errors.New("throttled")

	cfg := MatcherConfig{ClockSkew: time.Minute, PositiveTTL: 30 * time.Second, NegativeTTL: 5 * time.Second}
	tests := []struct {
		name      string
		cfg       MatcherConfig
		query     Query
		answers   map[string][]Entry
		errs      map[string]error
		resolver  fakeResolver
		want      Result
		wantErr   error
		wantReads []string
		refreshes int
	}{
		{
			name:      "exact match stops the search, whatever the session's state",
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			answers:   map[string][]Entry{"si:" + si: {fresh(revoked)}},
			want:      Result{Sessions: []Session{revoked}, Strategy: StrategyExact},
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s"},
		},
		{
			name:      "a valid exact match in the user's cached list: the source-identity index is not read",
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			answers:   map[string][]Entry{"user:alice": {fresh(old, exactValid, covering)}},
			want:      Result{Sessions: []Session{exactValid}, Strategy: StrategyExact},
			wantReads: []string{"user:alice@30s"},
		},
		{
			name:    "a valid exact match in a raw name's list",
			query:   Query{SourceIdentity: si, User: "alicesmithcorp", At: at},
			answers: map[string][]Entry{"user:alice.smith@corp": {fresh(covering, exactValid)}},
			resolver: fakeResolver{names: map[string][]string{
				"alicesmithcorp": {"alice.smith@corp", "alicesmithcorp"},
			}},
			want:      Result{Sessions: []Session{exactValid}, Strategy: StrategyExact},
			wantReads: []string{"user:alicesmithcorp@30s", "user:alice.smith@corp@30s"},
		},
		{
			name:      "an indexed user list answers like a scanned one",
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			answers:   map[string][]Entry{"user:alice": {newEntry([]Session{old, exactValid, covering}, now)}},
			want:      Result{Sessions: []Session{exactValid}, Strategy: StrategyExact},
			wantReads: []string{"user:alice@30s"},
		},
		{
			// A list read before a newer session with the same
			// SourceIdentity was written must not make the event revoked.
			name:  "a list holding only a revoked exact match: the index answers, newer sessions included",
			query: Query{SourceIdentity: si, User: "alice", At: at},
			answers: map[string][]Entry{
				"user:alice": {fresh(revoked)},
				"si:" + si:   {fresh(revoked, exactValid)},
			},
			want:      Result{Sessions: []Session{revoked, exactValid}, Strategy: StrategyExact},
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s"},
		},
		{
			name:      "a store error on the user list gives way to the index",
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			answers:   map[string][]Entry{"si:" + si: {fresh(exactValid)}},
			errs:      map[string]error{"user:alice": boom},
			want:      Result{Sessions: []Session{exactValid}, Strategy: StrategyExact},
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s"},
		},
		{
			name:      "a directory error gives way to the index",
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			answers:   map[string][]Entry{"si:" + si: {fresh(exactValid)}},
			resolver:  fakeResolver{err: boom},
			want:      Result{Sessions: []Session{exactValid}, Strategy: StrategyExact},
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s"},
		},
		{
			name:    "user-time after an exact miss, keeping only covering sessions",
			query:   Query{SourceIdentity: si, User: "alice", At: at},
			answers: map[string][]Entry{"user:alice": {fresh(old, covering)}},
			want:    Result{Sessions: []Session{covering}, Strategy: StrategyUserTime},
			// The user list lacks the SourceIdentity, so the index is read;
			// its miss is fresh (age 0 < NegativeTTL), so it is trusted.
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s", "user:alice@30s"},
		},
		{
			name:    "raw names from the directory",
			query:   Query{SourceIdentity: si, User: "alicesmithcorp", At: at},
			answers: map[string][]Entry{"user:alice.smith@corp": {fresh(covering)}},
			resolver: fakeResolver{names: map[string][]string{
				"alicesmithcorp": {"alice.smith@corp", "alicesmithcorp"},
			}},
			want:      Result{Sessions: []Session{covering}, Strategy: StrategyUserTime},
			wantReads: []string{"user:alicesmithcorp@30s", "user:alice.smith@corp@30s", "si:" + si + "@30s", "user:alicesmithcorp@30s", "user:alice.smith@corp@30s"},
		},
		{
			name:  "a negative older than NegativeTTL is read again with NegativeTTL",
			query: Query{SourceIdentity: si, User: "alice", At: at},
			answers: map[string][]Entry{
				"si:" + si: {aged(10 * time.Second), fresh(revoked)},
			},
			want:      Result{Sessions: []Session{revoked}, Strategy: StrategyExact},
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s", "si:" + si + "@5s"},
		},
		{
			name:  "a positive younger than PositiveTTL is trusted",
			query: Query{User: "alice", At: at},
			answers: map[string][]Entry{
				"user:alice": {aged(20*time.Second, covering)},
			},
			want:      Result{Sessions: []Session{covering}, Strategy: StrategyUserTime},
			wantReads: []string{"user:alice@30s"},
		},
		{
			name:  "user sessions none of which cover the event count as a negative",
			query: Query{User: "alice", At: at},
			answers: map[string][]Entry{
				"user:alice": {aged(10*time.Second, old), fresh(old, covering)},
			},
			want:      Result{Sessions: []Session{covering}, Strategy: StrategyUserTime},
			wantReads: []string{"user:alice@30s", "user:alice@5s"},
		},
		{
			name:      "fresh always reads with maxAge 0",
			query:     Query{SourceIdentity: si, User: "alice", At: at, Fresh: true},
			answers:   map[string][]Entry{"user:alice": {fresh(covering)}},
			want:      Result{Sessions: []Session{covering}, Strategy: StrategyUserTime},
			wantReads: []string{"si:" + si + "@0s", "user:alice@0s"},
		},
		{
			name:      "nothing anywhere: empty result, nil error, one directory refresh",
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			want:      Result{},
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s", "user:alice@30s"},
			refreshes: 1,
		},
		{
			name:  "a refreshed directory is tried once more",
			query: Query{User: "alicesmithcorp", At: at},
			answers: map[string][]Entry{
				"user:alice.smith@corp": {fresh(covering)},
			},
			resolver: fakeResolver{
				names: map[string][]string{},
				next:  map[string][]string{"alicesmithcorp": {"alicesmithcorp", "alice.smith@corp"}},
			},
			want:      Result{Sessions: []Session{covering}, Strategy: StrategyUserTime},
			wantReads: []string{"user:alicesmithcorp@30s", "user:alice.smith@corp@30s"},
			refreshes: 1,
		},
		{
			name:      "strategies in the configured order",
			cfg:       MatcherConfig{Strategies: []Strategy{StrategyUserTime, StrategyExact}},
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			answers:   map[string][]Entry{"user:alice": {fresh(covering)}, "si:" + si: {fresh(revoked)}},
			want:      Result{Sessions: []Session{covering}, Strategy: StrategyUserTime},
			wantReads: []string{"user:alice@30s"},
		},
		{
			name:      "exact only never reads by user",
			cfg:       MatcherConfig{Strategies: []Strategy{StrategyExact}},
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			answers:   map[string][]Entry{"user:alice": {fresh(covering)}},
			want:      Result{},
			wantReads: []string{"si:" + si + "@30s"},
		},
		{
			name:      "no user: user-time is skipped",
			query:     Query{SourceIdentity: si, At: at},
			want:      Result{},
			wantReads: []string{"si:" + si + "@30s"},
		},
		{
			name:      "a store error is an error, not a miss",
			query:     Query{SourceIdentity: si, User: "alice", At: at},
			errs:      map[string]error{"si:" + si: boom},
			wantErr:   boom,
			wantReads: []string{"user:alice@30s", "si:" + si + "@30s"},
		},
		{
			name:      "a store error on a raw name is an error",
			query:     Query{User: "alicesmithcorp", At: at},
			answers:   map[string][]Entry{"user:alicesmithcorp": {fresh(covering)}},
			errs:      map[string]error{"user:alice.smith@corp": boom},
			resolver:  fakeResolver{names: map[string][]string{"alicesmithcorp": {"alice.smith@corp"}}},
			wantErr:   boom,
			wantReads: []string{"user:alicesmithcorp@30s", "user:alice.smith@corp@30s"},
		},
		{
			name:      "a directory error is an error",
			query:     Query{User: "alice", At: at},
			resolver:  fakeResolver{err: boom},
			wantErr:   boom,
			wantReads: []string{"user:alice@30s"},
		},
		{
			name:      "a failed refresh after a miss is an error",
			query:     Query{User: "alice", At: at},
			resolver:  fakeResolver{refreshErr: boom},
			wantErr:   boom,
			wantReads: []string{"user:alice@30s"},
			refreshes: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader := &fakeCachingReader{answers: tt.answers, errs: tt.errs, now: now}
			if reader.answers == nil {
				reader.answers = map[string][]Entry{}
			}
			resolver := tt.resolver
			c := tt.cfg
			if c.Strategies == nil {
				c.Strategies = cfg.Strategies
			}
			c.ClockSkew, c.PositiveTTL, c.NegativeTTL = cfg.ClockSkew, cfg.PositiveTTL, cfg.NegativeTTL
			m, err := NewMatcher(reader, &resolver, c)
			if err != nil {
				t.Fatal(err)
			}
			m.now = clock.Now

			got, err := m.Lookup(context.Background(), tt.query)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if len(got.Sessions) != 0 || got.Strategy != "" {
					t.Errorf("result with an error = %+v, want empty", got)
				}
			} else {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got.Strategy != tt.want.Strategy || !slices.EqualFunc(got.Sessions, tt.want.Sessions,
					func(a, b Session) bool { return a.ID == b.ID }) {
					t.Errorf("result = %+v, want %+v", got, tt.want)
				}
			}
			if !slices.Equal(reader.reads, tt.wantReads) {
				t.Errorf("reads = %q, want %q", reader.reads, tt.wantReads)
			}
			if resolver.refreshes != tt.refreshes {
				t.Errorf("directory refreshes = %d, want %d", resolver.refreshes, tt.refreshes)
			}
		})
	}
}

func TestMatcherConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  MatcherConfig
		ok   bool
	}{
		{"defaults", MatcherConfig{}, true},
		{"unknown strategy", MatcherConfig{Strategies: []Strategy{"fuzzy"}}, false},
		{"negative skew", MatcherConfig{ClockSkew: -time.Second}, false},
		{"negative TTL above positive", MatcherConfig{PositiveTTL: time.Second, NegativeTTL: 2 * time.Second}, false},
		{"negative TTL above default positive", MatcherConfig{NegativeTTL: time.Minute}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
