package sessions_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// These tests run against the DynamoDB emulator (scripts/emulators.sh), each
// on its own table.

// eventTime is when the events under test happened; sessions are laid out
// around it. Recent, so nothing here depends on retention.
var eventTime = time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)

type fixture struct {
	client *dynamodb.Client
	table  string
}

func newFixture(t *testing.T, sessionsToPut ...sessions.Session) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{client: testenv.DynamoClient(t), table: testenv.UniqueTableName(t)}
	if err := testenv.CreateSessionTable(ctx, f.client, f.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = f.client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(f.table)})
	})
	f.put(t, sessionsToPut...)
	return f
}

func (f fixture) put(t *testing.T, ss ...sessions.Session) {
	t.Helper()
	if err := testenv.PutSessions(context.Background(), f.client, f.table, ss); err != nil {
		t.Fatal(err)
	}
}

type stack struct {
	store     *sessions.Store
	cache     *sessions.Cache
	directory *sessions.Directory
	matcher   *sessions.Matcher
}

// newStack wires Store -> Cache/Directory -> Matcher as the streamer does.
func newStack(t *testing.T, client sessions.DynamoDBAPI, storeCfg sessions.StoreConfig, matcherCfg sessions.MatcherConfig) stack {
	t.Helper()
	var s stack
	var err error
	if s.store, err = sessions.NewStore(client, storeCfg); err != nil {
		t.Fatal(err)
	}
	if s.cache, err = sessions.NewCache(s.store, sessions.CacheConfig{}); err != nil {
		t.Fatal(err)
	}
	if s.directory, err = sessions.NewDirectory(s.store, sessions.DirectoryConfig{}); err != nil {
		t.Fatal(err)
	}
	if s.matcher, err = sessions.NewMatcher(s.cache, s.directory, matcherCfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// session returns a session of user valid over [eventTime+from, eventTime+to].
func session(id, user, sourceIdentity string, from, to time.Duration) sessions.Session {
	start := eventTime.Add(from).Add(123456789 * time.Nanosecond) // session times have fractions
	return sessions.Session{
		ID:               id,
		User:             user,
		Profile:          "prod-admin",
		ServerInstanceID: "srv-" + id,
		Status:           sessions.StatusActive,
		SourceIdentity:   sourceIdentity,
		StartedAt:        start,
		LastAccessAt:     start.Add(time.Minute),
		ExpiresAt:        eventTime.Add(to),
		CreatedAt:        start,
		UpdatedAt:        start.Add(time.Minute),
		TTL:              eventTime.Add(to).Add(time.Hour).Unix(),
	}
}

func ids(ss []sessions.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	slices.Sort(out)
	return out
}

func TestIntegrationExactMatch(t *testing.T) {
	const si = "sentinel:alice:direct:a1b2c3d4"
	want := session("s-exact", "alice", si, -time.Hour, time.Hour)
	other := session("s-other", "alice", "sentinel:alice:direct:ffffffff", -time.Hour, time.Hour)
	f := newFixture(t, want, other)
	st := newStack(t, f.client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{})

	got, err := st.matcher.Lookup(context.Background(), sessions.Query{SourceIdentity: si, User: "alice", At: eventTime})
	if err != nil {
		t.Fatal(err)
	}
	if got.Strategy != sessions.StrategyExact || len(got.Sessions) != 1 {
		t.Fatalf("Lookup = %+v, want exactly s-exact by exact match", got)
	}
	if !reflect.DeepEqual(got.Sessions[0], want) {
		t.Errorf("session read back:\n got %+v\nwant %+v", got.Sessions[0], want)
	}
}

func TestIntegrationUserTimeMatch(t *testing.T) {
	// Sentinel may leave source_identity empty; then only user and time match.
	tests := []struct {
		name, rawUser, sanitised string
	}{
		{"raw name is the sanitised name", "bob", "bob"},
		{"raw name differs from the sanitised name", "alice.smith@corp", "alicesmithcorp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			covering := session("s-cover", tt.rawUser, "", -time.Hour, time.Hour)
			earlier := session("s-earlier", tt.rawUser, "", -5*time.Hour, -4*time.Hour)
			later := session("s-later", tt.rawUser, "", time.Hour, 2*time.Hour)
			f := newFixture(t, covering, earlier, later)
			st := newStack(t, f.client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{})

			q := sessions.Query{SourceIdentity: "sentinel:" + tt.sanitised + ":direct:a1b2c3d4", User: tt.sanitised, At: eventTime}
			got, err := st.matcher.Lookup(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Strategy != sessions.StrategyUserTime || !slices.Equal(ids(got.Sessions), []string{"s-cover"}) {
				t.Fatalf("Lookup = %+v, want s-cover by user-time", got)
			}
			if !reflect.DeepEqual(got.Sessions[0], covering) {
				t.Errorf("session read back:\n got %+v\nwant %+v", got.Sessions[0], covering)
			}
		})
	}
}

func TestIntegrationRevokedSession(t *testing.T) {
	// The Matcher returns a revoked session either way; the classifier
	// compares the revocation time (updated_at) with the event.
	tests := []struct {
		name      string
		revokedAt time.Time
		before    bool
	}{
		{"revoked before the event", eventTime.Add(-10 * time.Minute), true},
		{"revoked after the event", eventTime.Add(10 * time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const si = "sentinel:carol:direct:0badc0de"
			s := session("s-revoked", "carol", si, -time.Hour, time.Hour)
			s.Status, s.UpdatedAt = sessions.StatusRevoked, tt.revokedAt
			s.RevokedBy, s.RevokedReason = "secops", "credential leak"
			f := newFixture(t, s)
			st := newStack(t, f.client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{})

			got, err := st.matcher.Lookup(context.Background(), sessions.Query{SourceIdentity: si, User: "carol", At: eventTime})
			if err != nil {
				t.Fatal(err)
			}
			if got.Strategy != sessions.StrategyExact || len(got.Sessions) != 1 {
				t.Fatalf("Lookup = %+v, want the revoked session", got)
			}
			g := got.Sessions[0]
			at, revoked := g.Revoked()
			if !revoked || !at.Equal(tt.revokedAt) || at.Before(eventTime) != tt.before {
				t.Errorf("Revoked() = %v, %v; want %v, true", at, revoked, tt.revokedAt)
			}
			if g.RevokedBy != "secops" || g.RevokedReason != "credential leak" {
				t.Errorf("revoked by %q for %q, want secops / credential leak", g.RevokedBy, g.RevokedReason)
			}
		})
	}
}

func TestIntegrationExpiredSession(t *testing.T) {
	const si = "sentinel:dave:direct:a1b2c3d4"
	expired := session("s-expired", "dave", si, -3*time.Hour, -2*time.Hour)
	f := newFixture(t, expired)
	st := newStack(t, f.client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{})
	ctx := context.Background()

	// Exact: returned whatever its times, for the classifier to judge.
	got, err := st.matcher.Lookup(ctx, sessions.Query{SourceIdentity: si, User: "dave", At: eventTime})
	if err != nil {
		t.Fatal(err)
	}
	if got.Strategy != sessions.StrategyExact || len(got.Sessions) != 1 || !got.Sessions[0].ExpiresAt.Equal(expired.ExpiresAt) {
		t.Fatalf("exact Lookup = %+v, want the expired session with its expires_at", got)
	}
	if !got.Sessions[0].ExpiresAt.Before(eventTime) {
		t.Errorf("expires_at %v is not before the event %v", got.Sessions[0].ExpiresAt, eventTime)
	}
	// User and time: an expired session does not cover the event.
	got, err = st.matcher.Lookup(ctx, sessions.Query{SourceIdentity: "sentinel:dave:direct:00000000", User: "dave", At: eventTime})
	if err != nil || len(got.Sessions) != 0 {
		t.Errorf("user-time Lookup = %+v, %v; want nothing", got, err)
	}
}

func TestIntegrationNotFound(t *testing.T) {
	f := newFixture(t, session("s-1", "erin", "sentinel:erin:direct:a1b2c3d4", -time.Hour, time.Hour))
	st := newStack(t, f.client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{})

	got, err := st.matcher.Lookup(context.Background(), sessions.Query{SourceIdentity: "sentinel:frank:direct:a1b2c3d4", User: "frank", At: eventTime})
	if err != nil {
		t.Fatalf("err = %v, want nil for not found", err)
	}
	if len(got.Sessions) != 0 || got.Strategy != "" {
		t.Errorf("Lookup = %+v, want Result{}", got)
	}
}

func TestIntegrationCacheHit(t *testing.T) {
	const si = "sentinel:gina:direct:a1b2c3d4"
	f := newFixture(t, session("s-1", "gina", si, -time.Hour, time.Hour))
	st := newStack(t, f.client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{PositiveTTL: time.Minute})
	ctx := context.Background()
	q := sessions.Query{SourceIdentity: si, User: "gina", At: eventTime}

	if got, err := st.matcher.Lookup(ctx, q); err != nil || len(got.Sessions) != 1 {
		t.Fatalf("first Lookup = %+v, %v", got, err)
	}
	before := st.cache.Stats()
	if got, err := st.matcher.Lookup(ctx, q); err != nil || len(got.Sessions) != 1 {
		t.Fatalf("second Lookup = %+v, %v", got, err)
	}
	after := st.cache.Stats()
	if after.Queries != before.Queries || after.Hits != before.Hits+1 {
		t.Errorf("second Lookup: stats %+v -> %+v, want one more hit and no query", before, after)
	}
	// Fresh bypasses the cache.
	if _, err := st.matcher.Lookup(ctx, sessions.Query{SourceIdentity: si, User: "gina", At: eventTime, Fresh: true}); err != nil {
		t.Fatal(err)
	}
	if got := st.cache.Stats().Queries; got != after.Queries+1 {
		t.Errorf("fresh Lookup: %d queries, want %d", got, after.Queries+1)
	}
}

func TestIntegrationNegativeCache(t *testing.T) {
	const si = "sentinel:hank:direct:a1b2c3d4"
	const negativeTTL = 300 * time.Millisecond
	f := newFixture(t)
	st := newStack(t, f.client, sessions.StoreConfig{Table: f.table},
		sessions.MatcherConfig{Strategies: []sessions.Strategy{sessions.StrategyExact}, PositiveTTL: time.Minute, NegativeTTL: negativeTTL})
	ctx := context.Background()
	q := sessions.Query{SourceIdentity: si, User: "hank", At: eventTime}

	if got, err := st.matcher.Lookup(ctx, q); err != nil || len(got.Sessions) != 0 {
		t.Fatalf("before the session exists: %+v, %v; want nothing", got, err)
	}
	negativeAt := time.Now()
	f.put(t, session("s-late", "hank", si, -time.Hour, time.Hour))

	got, err := st.matcher.Lookup(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(negativeAt) < negativeTTL && len(got.Sessions) != 0 {
		t.Errorf("within NegativeTTL: %+v, want the cached negative", got)
	}
	time.Sleep(negativeTTL - time.Since(negativeAt) + 50*time.Millisecond)
	got, err = st.matcher.Lookup(ctx, q)
	if err != nil || !slices.Equal(ids(got.Sessions), []string{"s-late"}) {
		t.Errorf("after NegativeTTL: %+v, %v; want s-late", got, err)
	}
	if st := st.cache.Stats(); st.Queries != 2 {
		t.Errorf("%d queries, want 2 (the negative served once from the cache)", st.Queries)
	}
}

// gatedClient holds every Query until release is closed and counts them.
type gatedClient struct {
	sessions.DynamoDBAPI
	queries atomic.Int64
	release chan struct{}
}

func (c *gatedClient) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries.Add(1)
	select {
	case <-c.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.DynamoDBAPI.Query(ctx, in, optFns...)
}

func TestIntegrationCoalescedMisses(t *testing.T) {
	const si = "sentinel:ivan:direct:a1b2c3d4"
	const callers = 16
	f := newFixture(t, session("s-1", "ivan", si, -time.Hour, time.Hour))
	client := &gatedClient{DynamoDBAPI: f.client, release: make(chan struct{})}
	st := newStack(t, client, sessions.StoreConfig{Table: f.table}, sessions.MatcherConfig{})

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := st.matcher.Lookup(context.Background(), sessions.Query{SourceIdentity: si, User: "ivan", At: eventTime})
			if err == nil && !slices.Equal(ids(got.Sessions), []string{"s-1"}) {
				err = errors.New("s-1 not found")
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.cache.Stats().Misses < callers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the last to miss join the flight
	close(client.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := client.queries.Load(); got != 1 {
		t.Errorf("%d DynamoDB queries for %d concurrent lookups, want 1", got, callers)
	}
	if got := st.cache.Stats(); got.Queries != 1 || got.Coalesced != callers-1 {
		t.Errorf("stats %+v, want 1 query and %d coalesced", got, callers-1)
	}
}

// countingClient counts the pages DynamoDB returns.
type countingClient struct {
	sessions.DynamoDBAPI
	queries, scans atomic.Int64
}

func (c *countingClient) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries.Add(1)
	return c.DynamoDBAPI.Query(ctx, in, optFns...)
}

func (c *countingClient) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.scans.Add(1)
	return c.DynamoDBAPI.Scan(ctx, in, optFns...)
}

func TestIntegrationPagination(t *testing.T) {
	const pageSize = 3
	const si = "sentinel:judy:direct:a1b2c3d4"
	var all []sessions.Session
	for i := range 10 { // judy: 10 sessions, 7 sharing one SourceIdentity
		sourceIdentity := si
		if i >= 7 {
			sourceIdentity = "sentinel:judy:direct:0000000" + strconv.Itoa(i)
		}
		all = append(all, session("judy-"+strconv.Itoa(i), "judy", sourceIdentity, -time.Hour, time.Hour))
	}
	var users []string
	for i := range 8 {
		user := "user" + strconv.Itoa(i) + "@corp"
		users = append(users, user)
		all = append(all, session("u-"+strconv.Itoa(i), user, "", -time.Hour, time.Hour))
	}
	users = append(users, "judy")
	slices.Sort(users)
	f := newFixture(t, all...)
	client := &countingClient{DynamoDBAPI: f.client}
	store, err := sessions.NewStore(client, sessions.StoreConfig{Table: f.table, PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	bySI, err := store.BySourceIdentity(ctx, si)
	if err != nil || len(bySI) != 7 {
		t.Errorf("BySourceIdentity: %d sessions, %v; want 7", len(bySI), err)
	}
	byUser, err := store.ByUser(ctx, "judy")
	if err != nil || len(byUser) != 10 {
		t.Errorf("ByUser: %d sessions, %v; want 10", len(byUser), err)
	}
	if got := client.queries.Load(); got < 3+4 {
		t.Errorf("%d Query pages for 7 and 10 items at %d a page, want at least 7", got, pageSize)
	}
	names, err := store.UserNames(ctx)
	if err != nil || !slices.Equal(names, users) {
		t.Errorf("UserNames = %v, %v; want %v", names, err, users)
	}
	if got := client.scans.Load(); got < 6 {
		t.Errorf("%d Scan pages for 18 items at %d a page, want at least 6", got, pageSize)
	}
}

func TestIntegrationStoreUnreachable(t *testing.T) {
	endpoint, stop := testenv.StartDynalite(t)
	t.Setenv(testenv.EndpointEnv, endpoint)
	// One attempt: the SDK would otherwise retry the refused connection.
	client := testenv.DynamoClient(t, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	const si = "sentinel:kim:direct:a1b2c3d4"
	if err := testenv.PutSessions(ctx, client, table, []sessions.Session{session("s-1", "kim", si, -time.Hour, time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st := newStack(t, client, sessions.StoreConfig{Table: table}, sessions.MatcherConfig{})
	q := sessions.Query{SourceIdentity: si, User: "kim", At: eventTime}
	if got, err := st.matcher.Lookup(ctx, q); err != nil || len(got.Sessions) != 1 {
		t.Fatalf("while the store is up: %+v, %v", got, err)
	}

	stop()
	for _, q := range []sessions.Query{
		{SourceIdentity: si, User: "kim", At: eventTime, Fresh: true},
		{SourceIdentity: "sentinel:lee:direct:a1b2c3d4", User: "lee", At: eventTime},
	} {
		got, err := st.matcher.Lookup(ctx, q)
		if err == nil {
			t.Errorf("Lookup(%s) with the store down = %+v, nil; want an error, not a verdict", q.SourceIdentity, got)
		}
		if len(got.Sessions) != 0 {
			t.Errorf("Lookup(%s) returned sessions with an error", q.SourceIdentity)
		}
	}
}

func TestIntegrationMissingTable(t *testing.T) {
	client := testenv.DynamoClient(t)
	st := newStack(t, client, sessions.StoreConfig{Table: testenv.UniqueTableName(t)}, sessions.MatcherConfig{})
	ctx := context.Background()

	_, err := st.matcher.Lookup(ctx, sessions.Query{SourceIdentity: "sentinel:max:direct:a1b2c3d4", User: "max", At: eventTime})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("Lookup on a missing table: err = %v, want a ResourceNotFoundException", err)
	}
	if _, err := st.store.UserNames(ctx); !errors.As(err, &notFound) {
		t.Errorf("UserNames on a missing table: err = %v, want a ResourceNotFoundException", err)
	}
	if st.cache.Stats().Errors == 0 {
		t.Error("cache counted no error")
	}
}
