package sessions_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// These tests run against the DynamoDB emulator, like integration_test.go.

// replicaKept is s as the replica keeps it: without the attributes that
// pkg/classify and pkg/sink never read.
func replicaKept(s sessions.Session) sessions.Session {
	s.ServerInstanceID, s.LastAccessAt, s.CreatedAt, s.TTL, s.Malformed = "", time.Time{}, time.Time{}, 0, nil
	return s
}

// sameResult reports whether the replica's answer equals the Query path's,
// sessions compared as the replica keeps them and in id order (the Query
// path lists them in gsi-user's created_at order, the replica by
// started_at; the classifier's verdict does not depend on the order).
func sameResult(replica, query sessions.Result, at time.Time, skew time.Duration) error {
	validAtQuery := func(s sessions.Session) bool { return s.Covers(at, skew) && s.Status != sessions.StatusRevoked }
	norm := func(r sessions.Result) sessions.Result {
		out := sessions.Result{Strategy: r.Strategy}
		for _, s := range r.Sessions {
			out.Sessions = append(out.Sessions, replicaKept(s))
		}
		slices.SortFunc(out.Sessions, func(a, b sessions.Session) int { return cmp.Compare(a.ID, b.ID) })
		return out
	}
	a, b := norm(replica), norm(query)
	if query.Strategy == sessions.StrategyUserTime && a.Strategy == b.Strategy && len(a.Sessions) < len(b.Sessions) {
		// The replica stops at the first session valid at the event
		// time: then it must have returned one, and only sessions the
		// Query path returned; the verdict is tracked either way.
		if !slices.ContainsFunc(a.Sessions, validAtQuery) || !slices.ContainsFunc(b.Sessions, validAtQuery) {
			return fmt.Errorf("replica answered\n  %+v\nthe Query path\n  %+v\n(fewer sessions, and not a valid one)", a, b)
		}
		for _, s := range a.Sessions {
			if !slices.ContainsFunc(b.Sessions, func(t sessions.Session) bool { return reflect.DeepEqual(s, t) }) {
				return fmt.Errorf("replica answered %+v, which the Query path did not (%+v)", s, b)
			}
		}
		return nil
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("replica answered\n  %+v\nthe Query path\n  %+v", a, b)
	}
	return nil
}

// checkSameAsQueryPath asks finder and the Query path (matcher reading the
// table now, Fresh) every query; every answer must come from the replica
// and equal the Query path's.
func checkSameAsQueryPath(t *testing.T, finder *sessions.ReplicaFinder, matcher *sessions.Matcher, queries []sessions.Query) {
	t.Helper()
	ctx := context.Background()
	for _, q := range queries {
		got, err := finder.Lookup(ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		want, err := matcher.Lookup(ctx, sessions.Query{SourceIdentity: q.SourceIdentity, User: q.User, At: q.At, Fresh: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := sameResult(got, want, q.At, sessions.DefaultClockSkew); err != nil {
			t.Errorf("%+v: %v", q, err)
		}
	}
	if fs := finder.Stats(); fs.FromReplica != uint64(len(queries)) || fs.Fallbacks != 0 || fs.NotFinal != 0 {
		t.Errorf("finder stats %+v, want all %d answers from the replica", fs, len(queries))
	}
}

// uncancelledScans lets every Scan finish although its context is
// cancelled: dynalite (Node's HTTP server) exits on a request aborted in
// flight, which is what cancelling Run mid-scan does, and the emulator is
// shared by the whole test run.
type uncancelledScans struct{ sessions.DynamoDBAPI }

func (c uncancelledScans) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return c.DynamoDBAPI.Scan(ctx, in, optFns...)
}

func newReplica(t *testing.T, client sessions.DynamoDBAPI, cfg sessions.ReplicaConfig) *sessions.Replica {
	t.Helper()
	r, err := sessions.NewReplica(uncancelledScans{client}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runReplica runs r until the test ends and checks Run returned ctx.Err().
func runReplica(t *testing.T, r *sessions.Replica) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

// waitWatermark waits until r's watermark passes t, for at most limit.
func waitWatermark(t *testing.T, r *sessions.Replica, at time.Time, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for r.Watermark().Before(at) {
		if time.Since(start) > limit {
			t.Fatalf("watermark %v still before %v after %v (stats %+v)", r.Watermark(), at, limit, r.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// replicaFixtureSessions covers what the Query path distinguishes: raw
// names that differ from the sanitised one, shared and missing
// SourceIdentities, revoked and expired sessions, an item without
// created_at (not in gsi-user), and a far expiry.
func replicaFixtureSessions() []sessions.Session {
	alice := session("r-alice", "alice", "sentinel:alice:direct:00000001", -time.Hour, time.Hour)
	raw := session("r-raw", "alice.smith@corp", "", -time.Hour, time.Hour)
	shared1 := session("r-shared1", "bob", "sentinel:bob:direct:shared", -3*time.Hour, -2*time.Hour)
	shared2 := session("r-shared2", "bob", "sentinel:bob:direct:shared", -30*time.Minute, 30*time.Minute)
	revoked := session("r-revoked", "carol", "sentinel:carol:direct:00000002", -time.Hour, time.Hour)
	revoked.Status, revoked.UpdatedAt, revoked.RevokedBy, revoked.RevokedReason = sessions.StatusRevoked, eventTime.Add(-time.Minute), "secops", "leak"
	expired := session("r-expired", "dave", "sentinel:dave:direct:00000003", -3*time.Hour, -2*time.Hour)
	noCreated := session("r-nocreated", "erin", "", -time.Hour, time.Hour)
	noCreated.CreatedAt = time.Time{}
	far := session("r-far", "frank", "", -time.Hour, time.Hour)
	far.ExpiresAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	return []sessions.Session{alice, raw, shared1, shared2, revoked, expired, noCreated, far}
}

func replicaFixtureQueries() []sessions.Query {
	var qs []sessions.Query
	for _, q := range []sessions.Query{
		{SourceIdentity: "sentinel:alice:direct:00000001", User: "alice"},
		{SourceIdentity: "sentinel:alicesmithcorp:direct:99", User: "alicesmithcorp"},
		{SourceIdentity: "sentinel:bob:direct:shared", User: "bob"},
		{SourceIdentity: "sentinel:carol:direct:00000002", User: "carol"},
		{SourceIdentity: "sentinel:dave:direct:00000003", User: "dave"},
		{SourceIdentity: "sentinel:erin:direct:1", User: "erin"},
		{SourceIdentity: "sentinel:frank:direct:1", User: "frank"},
		{SourceIdentity: "sentinel:nobody:direct:1", User: "nobody"},
	} {
		for _, at := range []time.Duration{-150 * time.Minute, 0, 5 * time.Minute} { // all final: eventTime is 10 minutes ago
			for _, fresh := range []bool{false, true} {
				q.At, q.Fresh = eventTime.Add(at), fresh
				qs = append(qs, q)
			}
		}
	}
	return qs
}

func TestIntegrationReplicaLoadAnswersLikeTheQueryPath(t *testing.T) {
	f := newFixture(t, replicaFixtureSessions()...)
	ctx := context.Background()
	// Small pages and three segments: the parallel scan pages through.
	storeCfg := sessions.StoreConfig{Table: f.table, PageSize: 2}
	before := time.Now()
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: storeCfg, ScanSegments: 3})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.Sessions != len(replicaFixtureSessions()) || st.Bytes <= 0 {
		t.Errorf("Stats = %+v, want %d sessions and some bytes", st, len(replicaFixtureSessions()))
	}
	if w := r.Watermark(); w.Before(before.Add(-sessions.DefaultReplicaClockMargin)) || w.After(time.Now()) {
		t.Errorf("watermark %v, want the load's start less the margin (load began %v)", w, before)
	}
	stack := newStack(t, f.client, storeCfg, sessions.MatcherConfig{})
	finder, err := sessions.NewReplicaFinder(r, stack.matcher, sessions.ReplicaFinderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	checkSameAsQueryPath(t, finder, stack.matcher, replicaFixtureQueries())
}

func TestIntegrationReplicaTooLarge(t *testing.T) {
	f := newFixture(t, replicaFixtureSessions()...)
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: f.table}, MaxSessions: 3})
	err := r.Load(context.Background())
	if !errors.Is(err, sessions.ErrReplicaTooLarge) {
		t.Fatalf("Load = %v, want ErrReplicaTooLarge", err)
	}
	if !r.Watermark().IsZero() {
		t.Errorf("watermark %v after a failed load, want zero", r.Watermark())
	}
}

func TestIntegrationReplicaRefreshSeesNewSessionAndRevocation(t *testing.T) {
	const refresh = 150 * time.Millisecond
	victim := session("v-1", "gina", "sentinel:gina:direct:00000001", -time.Hour, time.Hour)
	f := newFixture(t, victim)
	ctx := context.Background()
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: f.table}, Refresh: refresh})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runReplica(t, r)
	stack := newStack(t, f.client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{})
	finder, err := sessions.NewReplicaFinder(r, stack.matcher, sessions.ReplicaFinderConfig{})
	if err != nil {
		t.Fatal(err)
	}

	// A revocation and a new session, stamped as Sentinel does (updated_at
	// the write time, RFC 3339 with a fraction).
	revoked := victim
	revoked.Status, revoked.UpdatedAt, revoked.RevokedBy = sessions.StatusRevoked, time.Now().UTC(), "secops"
	added := session("v-2", "hank", "sentinel:hank:direct:00000002", -time.Hour, time.Hour)
	added.UpdatedAt = time.Now().UTC()
	f.put(t, revoked, added)
	written := time.Now()

	// Within one refresh: the watermark passes the writes at the end of
	// the first scan that starts after them.
	took := waitWatermark(t, r, written, 5*time.Second)
	t.Logf("watermark passed the writes %v after them (refresh %v)", took, refresh)
	if took > 2*refresh+time.Second {
		t.Errorf("took %v, want at most about one refresh (%v) and a scan", took, refresh)
	}
	for _, tt := range []struct {
		q    sessions.Query
		want sessions.Session
	}{
		{sessions.Query{SourceIdentity: victim.SourceIdentity, User: "gina", At: eventTime}, revoked},
		{sessions.Query{SourceIdentity: added.SourceIdentity, User: "hank", At: eventTime}, added},
	} {
		got, err := finder.Lookup(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Sessions) != 1 || !reflect.DeepEqual(got.Sessions[0], replicaKept(tt.want)) {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.q.SourceIdentity, got, replicaKept(tt.want))
		}
	}
	if st := r.Stats(); st.Refreshes == 0 || st.RefreshErrors != 0 || st.Sessions != 2 {
		t.Errorf("Stats = %+v, want refreshes without errors, 2 sessions", st)
	}
}

func TestIntegrationReplicaFullResyncDropsDeletedItems(t *testing.T) {
	keep, gone := session("d-keep", "ivan", "", -time.Hour, time.Hour), session("d-gone", "ivan", "", -time.Hour, time.Hour)
	f := newFixture(t, keep, gone)
	ctx := context.Background()
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: f.table},
		Refresh: 100 * time.Millisecond, FullResync: 300 * time.Millisecond})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.table),
		Key: map[string]types.AttributeValue{sessions.AttrID: &types.AttributeValueMemberS{Value: gone.ID}}}); err != nil {
		t.Fatal(err)
	}
	runReplica(t, r)
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Sessions != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v, want the deleted session gone after a full resync", r.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := r.Stats(); st.FullResyncs == 0 {
		t.Errorf("Stats = %+v, want a full resync counted", st)
	}
}

// An incremental re-scan cannot return a deleted item, but the replica's
// watermark says every write before it is applied: a delete included. The
// refresh counts the table's items, finds one fewer than it holds and reads
// everything at once, well before the hourly full re-scan; an item written
// with an updated_at older than the filter is found the same way. Once a
// full re-scan finds nothing more deleted, refreshes are incremental again.
func TestIntegrationReplicaRefreshSeesDeletesAndOldStamps(t *testing.T) {
	keep := session("x-keep", "lena", "sentinel:lena:direct:00000001", -time.Hour, time.Hour)
	gone := session("x-gone", "lena", "sentinel:lena:direct:00000002", -time.Hour, time.Hour)
	f := newFixture(t, keep, gone)
	ctx := context.Background()
	storeCfg := sessions.StoreConfig{Table: f.table}
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: storeCfg, Refresh: 50 * time.Millisecond})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runReplica(t, r)
	stack := newStack(t, f.client, storeCfg, sessions.MatcherConfig{})
	finder, err := sessions.NewReplicaFinder(r, stack.matcher, sessions.ReplicaFinderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(si string) sessions.Result {
		t.Helper()
		got, err := finder.Lookup(ctx, sessions.Query{SourceIdentity: si, User: "lena", At: eventTime})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	if _, err := f.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.table),
		Key: map[string]types.AttributeValue{sessions.AttrID: &types.AttributeValueMemberS{Value: gone.ID}}}); err != nil {
		t.Fatal(err)
	}
	waitWatermark(t, r, time.Now(), 5*time.Second)
	if got := lookup(gone.SourceIdentity); got.Strategy == sessions.StrategyExact {
		t.Errorf("after the watermark passed the delete, Lookup(%s) = %+v, want no exact match", gone.SourceIdentity, got)
	}
	if st := r.Stats(); st.Sessions != 1 || st.FullResyncs == 0 {
		t.Errorf("Stats = %+v, want the deleted session gone by a full re-scan", st)
	}

	// Written now, stamped a day ago: below the incremental filter.
	old := session("x-old", "lena", "sentinel:lena:direct:00000003", -time.Hour, time.Hour)
	old.UpdatedAt = time.Now().Add(-24 * time.Hour)
	f.put(t, old)
	waitWatermark(t, r, time.Now(), 5*time.Second)
	if got := lookup(old.SourceIdentity); len(got.Sessions) != 1 || got.Sessions[0].ID != old.ID {
		t.Errorf("after the watermark passed the write, Lookup(%s) = %+v, want %s", old.SourceIdentity, got, old.ID)
	}

	// Nothing more deleted: back to incremental re-scans.
	full := r.Stats().FullResyncs
	refreshes := r.Stats().Refreshes
	for r.Stats().Refreshes < refreshes+5 {
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.Stats(); st.FullResyncs > full+1 {
		t.Errorf("Stats = %+v: %d more full re-scans in 5 refreshes with nothing deleted, want at most the one that finds that", st, st.FullResyncs-full)
	}
}

// failingScans fails every Scan while failing is set.
type failingScans struct {
	sessions.DynamoDBAPI
	failing atomic.Bool
	scans   atomic.Int64
}

func (f *failingScans) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.scans.Add(1)
	if f.failing.Load() {
		return nil, errors.New("throttled (test)")
	}
	return f.DynamoDBAPI.Scan(ctx, in, optFns...)
}

func TestIntegrationReplicaRefreshFailureHoldsTheWatermark(t *testing.T) {
	f := newFixture(t, session("e-1", "judy", "", -time.Hour, time.Hour))
	ctx := context.Background()
	client := &failingScans{DynamoDBAPI: f.client}
	r := newReplica(t, client, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: f.table}, Refresh: 50 * time.Millisecond})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	client.failing.Store(true)
	held := r.Watermark()
	runReplica(t, r)
	for r.Stats().RefreshErrors < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	if w := r.Watermark(); !w.Equal(held) {
		t.Errorf("watermark moved from %v to %v while every refresh failed", held, w)
	}
	client.failing.Store(false)
	waitWatermark(t, r, time.Now(), 5*time.Second)
}

// TestIntegrationReplicaMatchesQueryPathUnderConcurrentWrites is the
// property: on generated histories, once the watermark has passed the
// writes, the ReplicaFinder and the Query path give the same Result for
// every event, although the writes ran while the replica was refreshing.
func TestIntegrationReplicaMatchesQueryPathUnderConcurrentWrites(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			testReplicaMatchesQueryPath(t, seed)
		})
	}
}

func testReplicaMatchesQueryPath(t *testing.T, seed int64) {
	ctx := context.Background()
	c := generateCorpus(t, seed, 300)
	// Sentinel stamps updated_at when it writes (the incremental re-scan
	// relies on it), so the sessions written while the replica runs are
	// those without one (new sessions) and revocations stamped now; the
	// sessions with an updated_at in the past are in the table from the
	// start.
	var initial, later []sessions.Session
	for i, s := range c.Sessions {
		if s.UpdatedAt.IsZero() && i%2 == 0 {
			later = append(later, s)
		} else {
			initial = append(initial, s)
		}
	}
	f := newFixture(t, initial...)
	storeCfg := sessions.StoreConfig{Table: f.table}
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: storeCfg, Refresh: 50 * time.Millisecond, ScanSegments: 2})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runReplica(t, r)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for len(later) > 0 {
			n := min(7, len(later))
			if err := testenv.PutSessions(ctx, f.client, f.table, later[:n]); err != nil {
				t.Error(err)
				return
			}
			later = later[n:]
		}
		for i := 0; i < len(initial); i += 5 {
			s := initial[i]
			s.Status, s.UpdatedAt = sessions.StatusRevoked, time.Now().UTC()
			s.RevokedBy, s.RevokedReason = "property-test", "revoked while the replica refreshes"
			if err := testenv.PutSessions(ctx, f.client, f.table, []sessions.Session{s}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	waitWatermark(t, r, time.Now(), 10*time.Second)

	stack := newStack(t, f.client, storeCfg, sessions.MatcherConfig{})
	finder, err := sessions.NewReplicaFinder(r, stack.matcher, sessions.ReplicaFinderConfig{OrphanGrace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checkSameAsQueryPath(t, finder, stack.matcher, corpusQueries(t, c))
}

// generateCorpus returns a generated history of events events, the latest
// five minutes ago (so that every answer about them is final).
func generateCorpus(t *testing.T, seed int64, events int) *corpus.Corpus {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second).Add(-5 * time.Minute)
	c, err := corpus.Generate(corpus.Config{Seed: seed, Events: events, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// corpusQueries returns the queries the classifier makes for c's events
// (those with a Sentinel SourceIdentity), each also as a Fresh re-check.
func corpusQueries(t *testing.T, c *corpus.Corpus) []sessions.Query {
	t.Helper()
	parser, err := classify.NewParser("")
	if err != nil {
		t.Fatal(err)
	}
	var qs []sessions.Query
	for _, ev := range c.Events {
		parsed, err := parser.Parse(ev.SourceIdentity)
		if ev.SourceIdentity == "" || err != nil {
			continue
		}
		q := sessions.Query{SourceIdentity: ev.SourceIdentity, User: parsed.User, At: ev.Time}
		qs = append(qs, q)
		q.Fresh = true
		qs = append(qs, q)
	}
	if len(qs) < 100 {
		t.Fatalf("only %d queries from %d events", len(qs), len(c.Events))
	}
	return qs
}

// recordingFinder is a fallback that records the queries it is asked.
type recordingFinder struct {
	mu      sync.Mutex
	queries []sessions.Query
}

func (f *recordingFinder) Lookup(_ context.Context, q sessions.Query) (sessions.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	return sessions.Result{Strategy: "fallback"}, nil
}

func TestIntegrationReplicaFinderNotFinalOrFallback(t *testing.T) {
	const si = "sentinel:kate:direct:00000001"
	f := newFixture(t, session("n-1", "kate", si, -time.Hour, time.Hour))
	t0 := time.Now().UTC()
	var offset atomic.Int64 // the test's clock: t0 + offset
	now := func() time.Time { return t0.Add(time.Duration(offset.Load())) }
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: f.table}, Now: now})
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Watermark t0 - 1s; the next refresh is due at t0 + 30s, and the
	// watermark passes a time u at the end of the first refresh that starts
	// at or after u + 1s (the load took no time on this clock).
	tests := []struct {
		name           string
		at             time.Duration // event time - t0
		fresh          bool
		maxWait, clock time.Duration
		wantFrom       string // "replica", "fallback" or "not-final"
		wantUntil      time.Duration
		wantRetry      time.Duration
	}{
		{name: "final", at: -2 * time.Minute, maxWait: time.Minute, wantFrom: "replica"},
		{name: "never wait (backfill)", at: 0, maxWait: 0, wantFrom: "fallback"},
		{name: "waits for the watermark", at: 0, maxWait: 5 * time.Minute, wantFrom: "not-final",
			wantUntil: time.Minute, wantRetry: 90 * time.Second},
		{name: "fresh needs the orphan grace too", at: -30 * time.Second, fresh: true, maxWait: 5 * time.Minute, wantFrom: "not-final",
			wantUntil: 40 * time.Second, wantRetry: 60 * time.Second},
		{name: "wait longer than MaxWait", at: 0, maxWait: time.Minute, wantFrom: "fallback"},
		{name: "stale replica", at: 0, maxWait: 5 * time.Minute, clock: 2 * time.Minute, wantFrom: "fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offset.Store(int64(tt.clock))
			fallback := &recordingFinder{}
			finder, err := sessions.NewReplicaFinder(r, fallback, sessions.ReplicaFinderConfig{OrphanGrace: 10 * time.Second, MaxWait: tt.maxWait})
			if err != nil {
				t.Fatal(err)
			}
			q := sessions.Query{SourceIdentity: si, User: "kate", At: t0.Add(tt.at), Fresh: tt.fresh}
			got, err := finder.Lookup(context.Background(), q)
			var nf *sessions.NotFinalError
			switch tt.wantFrom {
			case "replica":
				if err != nil || len(got.Sessions) != 1 || len(fallback.queries) != 0 {
					t.Errorf("Lookup = %+v, %v (fallback asked %d times), want n-1 from the replica", got, err, len(fallback.queries))
				}
			case "fallback":
				want := q
				want.Fresh = true // past the fallback's cache
				if err != nil || got.Strategy != "fallback" || len(fallback.queries) != 1 || fallback.queries[0] != want {
					t.Errorf("Lookup = %+v, %v (fallback asked %v), want the fallback's answer to q, read fresh", got, err, fallback.queries)
				}
			case "not-final":
				if !errors.As(err, &nf) || len(fallback.queries) != 0 {
					t.Fatalf("Lookup = %+v, %v, want a NotFinalError without asking the fallback", got, err)
				}
				if !nf.Until.Equal(t0.Add(tt.wantUntil)) || nf.RetryAfter != tt.wantRetry {
					t.Errorf("NotFinalError{Until: t0%+v, RetryAfter: %v}, want t0+%v, %v", nf.Until.Sub(t0), nf.RetryAfter, tt.wantUntil, tt.wantRetry)
				}
			}
			st := finder.Stats()
			if st.FromReplica+st.NotFinal+st.Fallbacks != 1 {
				t.Errorf("stats %+v, want one answer counted", st)
			}
		})
	}
}
