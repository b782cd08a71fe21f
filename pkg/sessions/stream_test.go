package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"

	"github.com/sessionwatch/sessionwatch/internal/streamsfake"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// These tests run the replica against dynalite (its Scan) and the DynamoDB
// Streams fake (its stream), both through the real SDK clients: each write
// goes to the table, then to the stream, as DynamoDB does.

// Fast cadences keep the tests short; the logic is the defaults'.
const (
	testPoll     = 50 * time.Millisecond
	testDescribe = 100 * time.Millisecond
)

type streamFixture struct {
	fixture
	srv     *streamsfake.Server
	stream  *streamsfake.Stream
	streams *dynamodbstreams.Client
	scans   *countingScans
}

// countingScans counts the Scans that reach the table (each full load).
type countingScans struct {
	sessions.DynamoDBAPI
	n atomic.Int64
}

func (c *countingScans) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.n.Add(1)
	return c.DynamoDBAPI.Scan(ctx, in, optFns...)
}

func newStreamFixture(t *testing.T, shards int, ss ...sessions.Session) streamFixture {
	t.Helper()
	f := streamFixture{fixture: newFixture(t, ss...), srv: streamsfake.New(streamsfake.Config{})}
	t.Cleanup(f.srv.Close)
	f.stream = f.srv.AddStream(streamsfake.StreamConfig{Table: f.table, Shards: shards})
	cfg := testenv.FakeAWSConfig(t, f.srv.Env())
	cfg.Retryer = testenv.ConnectionRetryOnly
	f.streams = dynamodbstreams.NewFromConfig(cfg)
	f.scans = &countingScans{DynamoDBAPI: f.client}
	return f
}

// write puts the sessions in the table, then in the stream.
func (f streamFixture) write(t *testing.T, ss ...sessions.Session) {
	t.Helper()
	f.put(t, ss...)
	for _, s := range ss {
		f.stream.Put(sessions.MarshalItem(s))
	}
}

// remove deletes the session from the table, then writes the REMOVE.
func (f streamFixture) remove(t *testing.T, id string) {
	t.Helper()
	key := map[string]types.AttributeValue{sessions.AttrID: &types.AttributeValueMemberS{Value: id}}
	if _, err := f.client.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(f.table), Key: key}); err != nil {
		t.Fatal(err)
	}
	f.stream.Delete(key)
}

func (f streamFixture) replica(t *testing.T, cfg sessions.ReplicaConfig) *sessions.Replica {
	t.Helper()
	cfg.Store = sessions.StoreConfig{Table: f.table}
	cfg.StreamARN, cfg.Streams = f.stream.ARN(), f.streams
	cfg.ScanSegments = 1 // a load is one Scan (f.scans)
	if cfg.ClockMargin == 0 && cfg.StreamSettle == 0 {
		cfg.ClockMargin, cfg.StreamSettle = 100*time.Millisecond, 100*time.Millisecond
	}
	if cfg.StreamPoll == 0 {
		cfg.StreamPoll = testPoll
	}
	if cfg.StreamDescribe == 0 {
		cfg.StreamDescribe = testDescribe
	}
	r := newReplica(t, f.scans, cfg)
	if err := r.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// lookupSI asks the replica (only: no fallback answer is accepted) for the
// sessions carrying si.
func lookupSI(t *testing.T, finder *sessions.ReplicaFinder, s sessions.Session) []sessions.Session {
	t.Helper()
	before := finder.Stats().FromReplica
	got, err := finder.Lookup(context.Background(), sessions.Query{SourceIdentity: s.SourceIdentity, User: s.User, At: eventTime})
	if err != nil {
		t.Fatal(err)
	}
	if finder.Stats().FromReplica != before+1 {
		t.Fatalf("lookup of %s not answered from the replica (%+v)", s.SourceIdentity, finder.Stats())
	}
	return got.Sessions
}

// failingFinder is a fallback that must not be asked.
type failingFinder struct{}

func (failingFinder) Lookup(context.Context, sessions.Query) (sessions.Result, error) {
	return sessions.Result{}, errors.New("fallback asked")
}

func newFinder(t *testing.T, r *sessions.Replica) *sessions.ReplicaFinder {
	t.Helper()
	finder, err := sessions.NewReplicaFinder(r, failingFinder{}, sessions.ReplicaFinderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return finder
}

// checkHolds checks that the replica holds exactly want for each session
// (a nil want: not held).
type holds struct {
	q    sessions.Session
	want *sessions.Session
}

func checkHolds(t *testing.T, finder *sessions.ReplicaFinder, want []holds) {
	t.Helper()
	for _, h := range want {
		q, w := h.q, h.want
		got := lookupSI(t, finder, q)
		switch {
		case w == nil && len(got) != 0:
			t.Errorf("%s: %+v, want none", q.ID, got)
		case w != nil && (len(got) != 1 || !reflect.DeepEqual(got[0], replicaKept(*w))):
			t.Errorf("%s: %+v, want %+v", q.ID, got, replicaKept(*w))
		}
	}
}

func TestIntegrationStreamRevocationSeenWithinSeconds(t *testing.T) {
	victim := session("st-1", "gina", "sentinel:gina:direct:00000001", -time.Hour, time.Hour)
	gone := session("st-2", "gino", "sentinel:gino:direct:00000002", -time.Hour, time.Hour)
	f := newStreamFixture(t, 1, victim, gone)
	r := f.replica(t, sessions.ReplicaConfig{StreamPoll: sessions.DefaultStreamPoll,
		ClockMargin: sessions.DefaultReplicaClockMargin, StreamSettle: sessions.DefaultStreamSettle})
	if w := r.Watermark(); !w.IsZero() {
		t.Errorf("watermark %v after Load, want none until every shard is read to its tip", w)
	}
	runReplica(t, r)
	finder := newFinder(t, r)
	waitWatermark(t, r, eventTime.Add(sessions.DefaultClockSkew), 5*time.Second)

	revoked := victim
	revoked.Status, revoked.UpdatedAt, revoked.RevokedBy = sessions.StatusRevoked, time.Now().UTC(), "secops"
	added := session("st-3", "hank", "sentinel:hank:direct:00000003", -time.Hour, time.Hour)
	f.write(t, revoked, added)
	f.remove(t, gone.ID)
	written := time.Now()

	// With the default poll (1 s) and settle (1 s) and margin (1 s): about
	// 3 s, and at most a few.
	took := waitWatermark(t, r, written, 8*time.Second)
	t.Logf("watermark passed the writes %v after them", took)
	checkHolds(t, finder, []holds{{victim, &revoked}, {added, &added}, {gone, nil}})
	got, err := finder.Lookup(context.Background(), sessions.Query{SourceIdentity: victim.SourceIdentity, User: "gina", At: written.Add(-sessions.DefaultClockSkew - time.Second)})
	if err != nil || len(got.Sessions) != 1 || got.Sessions[0].Status != sessions.StatusRevoked {
		t.Errorf("lookup at the revocation: %+v, %v; want the revoked session", got, err)
	}
	st := r.Stats()
	if st.StreamRecords != 3 || st.StreamShards != 1 || st.StreamErrors != 0 || st.Sessions != 2 || st.FullResyncs != 0 || st.StreamLag <= 0 {
		t.Errorf("Stats = %+v, want 3 records applied from 1 shard, no error, 2 sessions, some lag", st)
	}
	if n := f.scans.n.Load(); n != 1 {
		t.Errorf("%d Scans, want the load's alone", n)
	}
}

func TestIntegrationStreamReshardingMissesNoWrite(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(map[bool]string{false: "rollover", true: "split"}[split], func(t *testing.T) {
			f := newStreamFixture(t, 2)
			r := f.replica(t, sessions.ReplicaConfig{})
			runReplica(t, r)
			finder := newFinder(t, r)
			var before []sessions.Session
			for i := range 20 {
				before = append(before, session(fmt.Sprint("rs-a", i), "ivan", fmt.Sprintf("sentinel:ivan:direct:a%07d", i), -time.Hour, time.Hour))
			}
			f.write(t, before...)
			waitWatermark(t, r, time.Now(), 5*time.Second)

			// The children cannot be found (DescribeStream fails) once
			// the parent ends: the watermark must stop where the parent
			// was last read to its tip.
			f.srv.FailNext("DescribeStream", "InternalServerError", 1_000_000)
			parent := f.stream.OpenShards()[0]
			resharded := time.Now()
			if split {
				f.stream.Split(parent)
			} else {
				f.stream.Rollover(parent)
			}
			var after []sessions.Session
			for i := range 40 {
				after = append(after, session(fmt.Sprint("rs-b", i), "ivan", fmt.Sprintf("sentinel:ivan:direct:b%07d", i), -time.Hour, time.Hour))
			}
			f.write(t, after...)
			deadline := time.Now().Add(5 * time.Second)
			for r.Stats().StreamShards != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("the parent never ended: %+v", r.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
			// The other shard may still catch up to the parent's last tip
			// (the least tip rises to it), then nothing moves.
			time.Sleep(20 * testPoll)
			held := r.Watermark()
			time.Sleep(20 * testPoll)
			if w := r.Watermark(); !w.Equal(held) || !w.Before(resharded) {
				t.Errorf("watermark %v (held at %v) moved or is not before the resharding at %v while the children were unknown", w, held, resharded)
			}

			f.srv.ClearFaults()
			waitWatermark(t, r, time.Now(), 5*time.Second)
			var want []holds
			for _, s := range append(before, after...) {
				want = append(want, holds{s, &s})
			}
			checkHolds(t, finder, want)
			children := 1
			if split {
				children = 2
			}
			if st := r.Stats(); st.StreamShards != 1+children || st.StreamRecords != 60 || st.FullResyncs != 0 {
				t.Errorf("Stats = %+v, want %d shards followed, 60 records, no re-load", st, 1+children)
			}
		})
	}
}

func TestIntegrationStreamExpiredIterator(t *testing.T) {
	tests := []struct {
		name string
		// writeFirst: a record is applied before the iterators expire, so
		// the follower resumes after it; without one (a shard followed from
		// the load's LATEST iterator) it must re-load.
		writeFirst bool
		reloads    uint64
	}{
		{"resumes after the last record", true, 0},
		{"re-loads without a record", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s1 := session("ex-1", "judy", "sentinel:judy:direct:00000001", -time.Hour, time.Hour)
			s2 := session("ex-2", "judy", "sentinel:judy:direct:00000002", -time.Hour, time.Hour)
			f := newStreamFixture(t, 1)
			r := f.replica(t, sessions.ReplicaConfig{})
			runReplica(t, r)
			finder := newFinder(t, r)
			records := uint64(0)
			if tt.writeFirst {
				f.write(t, s1)
				records++
			}
			waitWatermark(t, r, time.Now(), 5*time.Second)
			f.srv.ExpireIterators()
			revoked := s1
			revoked.Status, revoked.UpdatedAt = sessions.StatusRevoked, time.Now().UTC()
			f.write(t, revoked, s2)
			records += 2
			waitWatermark(t, r, time.Now(), 5*time.Second)
			checkHolds(t, finder, []holds{{s1, &revoked}, {s2, &s2}})
			st := r.Stats()
			if st.StreamErrors == 0 || st.FullResyncs != tt.reloads {
				t.Errorf("Stats = %+v, want an expired iterator counted and %d re-loads", st, tt.reloads)
			}
			if tt.reloads == 0 && st.StreamRecords != records {
				t.Errorf("%d records applied, want %d: each once", st.StreamRecords, records)
			}
		})
	}
}

func TestIntegrationStreamTrimmedDataReloads(t *testing.T) {
	s1 := session("tr-1", "kim", "sentinel:kim:direct:00000001", -time.Hour, time.Hour)
	f := newStreamFixture(t, 1, s1)
	r := f.replica(t, sessions.ReplicaConfig{})
	runReplica(t, r)
	finder := newFinder(t, r)
	waitWatermark(t, r, time.Now(), 5*time.Second)

	// The follower falls behind (its reads fail), and the records it has
	// not read are trimmed: only a re-load can find that write.
	f.srv.FailNext("GetRecords", "InternalServerError", 3)
	held := r.Watermark()
	revoked := s1
	revoked.Status, revoked.UpdatedAt = sessions.StatusRevoked, time.Now().UTC()
	f.write(t, revoked)
	f.stream.Trim()
	if w := r.Watermark(); !w.Equal(held) {
		t.Errorf("watermark moved from %v to %v while the reads failed", held, w)
	}
	waitWatermark(t, r, time.Now(), 10*time.Second)
	checkHolds(t, finder, []holds{{s1, &revoked}})
	if st := r.Stats(); st.FullResyncs != 1 || st.StreamErrors < 4 || st.StreamRecords != 0 {
		t.Errorf("Stats = %+v, want 1 re-load after 3 failed reads and a trimmed one, no record applied", st)
	}
	if n := f.scans.n.Load(); n != 2 {
		t.Errorf("%d Scans, want the load's and the re-load's", n)
	}
}

func TestIntegrationStreamGoneReloadsWhenBack(t *testing.T) {
	s1 := session("sg-1", "lee", "sentinel:lee:direct:00000001", -time.Hour, time.Hour)
	f := newStreamFixture(t, 1, s1)
	r := f.replica(t, sessions.ReplicaConfig{})
	runReplica(t, r)
	waitWatermark(t, r, time.Now(), 5*time.Second)
	f.srv.RemoveStream(f.stream.ARN())
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().RefreshErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed re-load while the stream is gone: %+v", r.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	held := r.Watermark()
	time.Sleep(5 * testPoll)
	if w := r.Watermark(); !w.Equal(held) {
		t.Errorf("watermark moved from %v to %v while the stream was gone", held, w)
	}
}

func TestIntegrationStreamThrottledReadsHoldTheWatermark(t *testing.T) {
	s1 := session("th-1", "ned", "sentinel:ned:direct:00000001", -time.Hour, time.Hour)
	f := newStreamFixture(t, 1)
	r := f.replica(t, sessions.ReplicaConfig{})
	runReplica(t, r)
	finder := newFinder(t, r)
	waitWatermark(t, r, time.Now(), 5*time.Second)
	f.srv.FailNext("GetRecords", "LimitExceededException", 5)
	f.write(t, s1)
	waitErrors := func(n uint64) time.Time {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for r.Stats().StreamErrors < n {
			if time.Now().After(deadline) {
				t.Fatalf("Stats = %+v, want %d stream errors", r.Stats(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return r.Watermark()
	}
	first, fourth := waitErrors(1), waitErrors(4)
	if !fourth.Equal(first) {
		t.Errorf("watermark moved from %v to %v while reads were throttled", first, fourth)
	}
	waitWatermark(t, r, time.Now(), 10*time.Second)
	checkHolds(t, finder, []holds{{s1, &s1}})
	if st := r.Stats(); st.StreamErrors != 5 || st.FullResyncs != 0 || st.StreamRecords != 1 {
		t.Errorf("Stats = %+v, want 5 throttles retried in place: no re-load, the record applied once", st)
	}
}

func TestIntegrationStreamSafetyNetReload(t *testing.T) {
	keep, gone := session("sn-1", "mia", "", -time.Hour, time.Hour), session("sn-2", "mia", "", -time.Hour, time.Hour)
	f := newStreamFixture(t, 1, keep, gone)
	r := f.replica(t, sessions.ReplicaConfig{FullResync: 500 * time.Millisecond})
	runReplica(t, r)
	waitWatermark(t, r, time.Now(), 5*time.Second)
	// A delete the stream never shows (a REMOVE older than the stream's
	// retention, say): only the periodic full re-load finds it.
	if _, err := f.client.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(f.table),
		Key: map[string]types.AttributeValue{sessions.AttrID: &types.AttributeValueMemberS{Value: gone.ID}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Sessions != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v, want the deleted session gone after a re-load", r.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.Stats(); st.FullResyncs == 0 || st.StreamErrors != 0 {
		t.Errorf("Stats = %+v, want a re-load counted and no stream error", st)
	}
	waitWatermark(t, r, time.Now(), 5*time.Second)
}

// noTable is a session table that must not be read.
type noTable struct{ sessions.DynamoDBAPI }

func (noTable) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errors.New("scanned")
}

func TestStreamRefusedAtLoad(t *testing.T) {
	tests := []struct {
		name   string
		cfg    streamsfake.StreamConfig
		status streamtypes.StreamStatus
		arn    func(string) string
		want   error
		code   string
	}{
		{name: "keys only", cfg: streamsfake.StreamConfig{Table: "t", ViewType: streamtypes.StreamViewTypeKeysOnly}, want: sessions.ErrStreamUnusable},
		{name: "old image", cfg: streamsfake.StreamConfig{Table: "t", ViewType: streamtypes.StreamViewTypeOldImage}, want: sessions.ErrStreamUnusable},
		{name: "disabled", cfg: streamsfake.StreamConfig{Table: "t"}, status: streamtypes.StreamStatusDisabled, want: sessions.ErrStreamUnusable},
		{name: "another table's", cfg: streamsfake.StreamConfig{Table: "other"}, want: sessions.ErrStreamUnusable},
		{name: "no such stream", cfg: streamsfake.StreamConfig{Table: "t"}, arn: func(a string) string { return a + "0" }, code: "ResourceNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := streamsfake.New(streamsfake.Config{})
			t.Cleanup(srv.Close)
			st := srv.AddStream(tt.cfg)
			if tt.status != "" {
				st.SetStatus(tt.status)
			}
			arn := st.ARN()
			if tt.arn != nil {
				arn = tt.arn(arn)
			}
			cfg := testenv.FakeAWSConfig(t, srv.Env())
			cfg.Retryer = testenv.ConnectionRetryOnly
			r, err := sessions.NewReplica(noTable{}, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: "t"}, StreamARN: arn,
				Streams: dynamodbstreams.NewFromConfig(cfg)})
			if err != nil {
				t.Fatal(err)
			}
			err = r.Load(context.Background())
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Load = %v, want %v", err, tt.want)
			}
			var apiErr smithy.APIError
			if tt.code != "" && (errors.Is(err, sessions.ErrStreamUnusable) || !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.code) {
				t.Errorf("Load = %v, want %s (a failure, not an unusable stream)", err, tt.code)
			}
			if err == nil {
				t.Error("Load succeeded")
			}
			if err := r.Run(context.Background()); err == nil {
				t.Error("Run after a failed Load succeeded")
			}
		})
	}
	if _, err := sessions.NewReplica(noTable{}, sessions.ReplicaConfig{Store: sessions.StoreConfig{Table: "t"}, StreamARN: "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}); err == nil {
		t.Error("NewReplica accepted a stream without a Streams client")
	}
}
