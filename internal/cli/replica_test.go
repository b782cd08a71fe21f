package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/streamsfake"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

const testStreamARN = "arn:aws:dynamodb:us-east-1:111122223333:table/sentinel-sessions/stream/2026-12-06T20:00:00.000"

func parseReplica(args []string, env map[string]string, maxWait time.Duration) (*Replica, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	r := AddReplicaFlags(fs, maxWait)
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := Parse(fs, args, lookup); err != nil {
		return nil, err
	}
	return r, r.Validate()
}

func TestReplicaFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		maxWait time.Duration
		want    Replica
	}{
		{name: "defaults", maxWait: 10 * time.Second, want: Replica{Mode: ReplicaAuto, Refresh: 30 * time.Second,
			MaxSessions: 2_000_000, MaxWait: 10 * time.Second, ScanSegments: 4}},
		{name: "backfill default", want: Replica{Mode: ReplicaAuto, Refresh: 30 * time.Second, MaxSessions: 2_000_000, ScanSegments: 4}},
		{name: "flags", args: []string{"--session-replica", "on", "--replica-refresh", "5s", "--session-stream", testStreamARN,
			"--replica-max-sessions", "10", "--replica-max-wait", "2s", "--replica-scan-segments", "16"},
			want: Replica{Mode: ReplicaOn, Refresh: 5 * time.Second, StreamARN: testStreamARN, MaxSessions: 10, MaxWait: 2 * time.Second, ScanSegments: 16}},
		{name: "environment", env: map[string]string{"SESSIONWATCH_SESSION_REPLICA": "off", "SESSIONWATCH_REPLICA_REFRESH": "1m",
			"SESSIONWATCH_SESSION_STREAM": testStreamARN, "SESSIONWATCH_REPLICA_MAX_SESSIONS": "7",
			"SESSIONWATCH_REPLICA_MAX_WAIT": "3s", "SESSIONWATCH_REPLICA_SCAN_SEGMENTS": "2"},
			want: Replica{Mode: ReplicaOff, Refresh: time.Minute, StreamARN: testStreamARN, MaxSessions: 7, MaxWait: 3 * time.Second, ScanSegments: 2}},
		{name: "flag wins over variable", args: []string{"--session-replica", "on"}, env: map[string]string{"SESSIONWATCH_SESSION_REPLICA": "off"},
			want: Replica{Mode: ReplicaOn, Refresh: 30 * time.Second, MaxSessions: 2_000_000, ScanSegments: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseReplica(tt.args, tt.env, tt.maxWait)
			if err != nil {
				t.Fatal(err)
			}
			if *r != tt.want {
				t.Errorf("got %+v, want %+v", *r, tt.want)
			}
			if r.Enabled() != (tt.want.Mode != ReplicaOff) {
				t.Errorf("Enabled() = %v for mode %s", r.Enabled(), r.Mode)
			}
		})
	}
}

func TestReplicaFlagsRefused(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		names string // what the error must name
	}{
		{"mode", []string{"--session-replica", "yes"}, nil, "session-replica"},
		{"mode variable", nil, map[string]string{"SESSIONWATCH_SESSION_REPLICA": "maybe"}, "SESSIONWATCH_SESSION_REPLICA"},
		{"refresh zero", []string{"--replica-refresh", "0s"}, nil, "--replica-refresh"},
		{"refresh syntax", []string{"--replica-refresh", "soon"}, nil, "replica-refresh"},
		{"max sessions", []string{"--replica-max-sessions", "0"}, nil, "--replica-max-sessions"},
		{"max wait negative", []string{"--replica-max-wait", "-1s"}, nil, "--replica-max-wait"},
		{"segments zero", []string{"--replica-scan-segments", "0"}, nil, "--replica-scan-segments"},
		{"segments above DynamoDB's limit", []string{"--replica-scan-segments", "1000001"}, nil, "--replica-scan-segments"},
		{"stream not an ARN", []string{"--session-stream", "sentinel-sessions"}, nil, "--session-stream"},
		{"stream a table ARN", []string{"--session-stream", "arn:aws:dynamodb:us-east-1:111122223333:table/sentinel-sessions"}, nil, "--session-stream"},
		{"stream of another service", []string{"--session-stream", "arn:aws:kinesis:us-east-1:111122223333:table/t/stream/x"}, nil, "--session-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseReplica(tt.args, tt.env, 0)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("error %q does not name %s", err, tt.names)
			}
		})
	}
}

// scanTable is a session table of a few items for Replica.Open: Scan
// returns them in segment 0 (or fails with err); Query is never called.
type scanTable struct {
	items []map[string]dtypes.AttributeValue
	err   error
	scans atomic.Int64
}

func (f *scanTable) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.scans.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	if in.Segment != nil && *in.Segment != 0 {
		return &dynamodb.ScanOutput{}, nil
	}
	return &dynamodb.ScanOutput{Items: f.items}, nil
}

func (f *scanTable) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errors.New("the replica does not query")
}

func TestReplicaOpen(t *testing.T) {
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var items []map[string]dtypes.AttributeValue
	for i := range 3 {
		items = append(items, sessions.MarshalItem(sessions.Session{ID: fmt.Sprintf("s%d", i), User: "alice", Status: sessions.StatusActive,
			SourceIdentity: fmt.Sprintf("sentinel:alice:direct:%08x", i), StartedAt: start, ExpiresAt: start.Add(time.Hour),
			CreatedAt: start, UpdatedAt: start}))
	}
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: dynamodb:Scan"}
	throttled := &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}
	tests := []struct {
		name        string
		mode        string
		maxSessions int
		scanErr     error
		wantReplica bool
		wantErr     bool
		wantLog     string
	}{
		{name: "off reads nothing", mode: ReplicaOff},
		{name: "auto loads", mode: ReplicaAuto, maxSessions: 10, wantReplica: true},
		{name: "on loads", mode: ReplicaOn, maxSessions: 10, wantReplica: true},
		{name: "auto, table too large: the cache", mode: ReplicaAuto, maxSessions: 2, wantLog: "replica not used"},
		{name: "on, table too large: an error", mode: ReplicaOn, maxSessions: 2, wantErr: true},
		{name: "auto, no Scan permission: the cache", mode: ReplicaAuto, maxSessions: 10, scanErr: denied, wantLog: "AccessDeniedException"},
		{name: "on, no Scan permission: an error", mode: ReplicaOn, maxSessions: 10, scanErr: denied, wantErr: true},
		{name: "auto, another failure: an error", mode: ReplicaAuto, maxSessions: 10, scanErr: throttled, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := &scanTable{items: items, err: tt.scanErr}
			r := Replica{Mode: tt.mode, Refresh: time.Minute, MaxSessions: tt.maxSessions, ScanSegments: 2}
			var logs bytes.Buffer
			rep, err := r.Open(context.Background(), table, sessions.StoreConfig{Table: "sessions"}, zerolog.New(&logs))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--session-replica") {
				t.Errorf("error %q does not name --session-replica", err)
			}
			if (rep != nil) != tt.wantReplica {
				t.Fatalf("replica %v, want one: %v", rep, tt.wantReplica)
			}
			if rep != nil && rep.Stats().Sessions != len(items) {
				t.Errorf("replica holds %d sessions, want %d", rep.Stats().Sessions, len(items))
			}
			if tt.mode == ReplicaOff && table.scans.Load() != 0 {
				t.Errorf("off: %d scans", table.scans.Load())
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q lacks %q", logs.String(), tt.wantLog)
			}
		})
	}
}

// countingFinder is the Query path: it counts its lookups.
type countingFinder struct{ lookups atomic.Int64 }

func (f *countingFinder) Lookup(context.Context, sessions.Query) (sessions.Result, error) {
	f.lookups.Add(1)
	return sessions.Result{}, nil
}

// TestReplicaSessions: off classifies through the Query path alone; on
// answers an event the watermark has passed from memory, an event it has
// not from the Query path (the backfill never waits), and Run ends without
// an error when its context does.
func TestReplicaSessions(t *testing.T) {
	start := time.Now().Add(-2 * time.Hour).UTC()
	table := &scanTable{items: []map[string]dtypes.AttributeValue{sessions.MarshalItem(sessions.Session{ID: "s1", User: "alice",
		Status: sessions.StatusActive, SourceIdentity: "sentinel:alice:direct:0000aaaa", StartedAt: start,
		ExpiresAt: start.Add(3 * time.Hour), CreatedAt: start, UpdatedAt: start})}}
	tests := []struct {
		name          string
		mode          string
		at            time.Time
		wantReplica   bool
		wantSessions  int
		wantFallbacks int64
	}{
		{name: "off", mode: ReplicaOff, at: start.Add(time.Hour), wantFallbacks: 1},
		{name: "on, past event", mode: ReplicaOn, at: start.Add(time.Hour), wantReplica: true, wantSessions: 1},
		{name: "on, event after the watermark", mode: ReplicaOn, at: time.Now(), wantReplica: true, wantFallbacks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Replica{Mode: tt.mode, Refresh: time.Minute, MaxSessions: 10, ScanSegments: 1}
			fallback := &countingFinder{}
			s, err := r.Sessions(context.Background(), table, sessions.StoreConfig{Table: "sessions"}, sessions.MatcherConfig{},
				time.Minute, fallback, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if (s.Replica != nil) != tt.wantReplica || (s.ReplicaFinder != nil) != tt.wantReplica {
				t.Fatalf("replica %v, finder %v, want them: %v", s.Replica, s.ReplicaFinder, tt.wantReplica)
			}
			res, err := s.Finder.Lookup(context.Background(), sessions.Query{SourceIdentity: "sentinel:alice:direct:0000aaaa", User: "alice", At: tt.at})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Sessions) != tt.wantSessions || fallback.lookups.Load() != tt.wantFallbacks {
				t.Errorf("%d sessions, %d fallback lookups; want %d, %d", len(res.Sessions), fallback.lookups.Load(), tt.wantSessions, tt.wantFallbacks)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v after its context ended, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
}

// TestReplicaLazySessions: nothing is read before the first lookup; one
// load serves every later lookup; a failed load fails that lookup (not as a
// verdict) and the next lookup loads again.
func TestReplicaLazySessions(t *testing.T) {
	start := time.Now().Add(-2 * time.Hour).UTC()
	table := &scanTable{items: []map[string]dtypes.AttributeValue{sessions.MarshalItem(sessions.Session{ID: "s1", User: "alice",
		Status: sessions.StatusActive, SourceIdentity: "sentinel:alice:direct:0000aaaa", StartedAt: start,
		ExpiresAt: start.Add(3 * time.Hour), CreatedAt: start, UpdatedAt: start})},
		err: &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}}
	r := Replica{Mode: ReplicaAuto, Refresh: time.Minute, MaxSessions: 10, ScanSegments: 1}
	fallback := &countingFinder{}
	s := r.LazySessions(table, sessions.StoreConfig{Table: "sessions"}, sessions.MatcherConfig{}, 0, fallback, zerolog.Nop())
	if n := table.scans.Load(); n != 0 {
		t.Fatalf("%d scans before any lookup", n)
	}
	q := sessions.Query{SourceIdentity: "sentinel:alice:direct:0000aaaa", User: "alice", At: start.Add(time.Hour)}
	if _, err := s.Finder.Lookup(context.Background(), q); err == nil || !strings.Contains(err.Error(), "ProvisionedThroughputExceeded") {
		t.Fatalf("lookup while the load fails: %v, want its error", err)
	}
	table.err = nil
	for range 3 {
		res, err := s.Finder.Lookup(context.Background(), q)
		if err != nil || len(res.Sessions) != 1 {
			t.Fatalf("lookup: %v, %v; want the session", res, err)
		}
	}
	if n := table.scans.Load(); n != 2 {
		t.Errorf("%d scans, want 2 (one failed load, one load)", n)
	}
	if n := fallback.lookups.Load(); n != 0 {
		t.Errorf("%d lookups of the Query path, want 0", n)
	}
}

// TestReplicaOpenWithStream: --session-stream needs the client UseStreams
// builds from the command's AWS configuration (its endpoint from
// AWS_ENDPOINT_URL_DYNAMODB_STREAMS); the loaded replica follows the
// stream, and one the replica cannot use is an error naming the flag.
func TestReplicaOpenWithStream(t *testing.T) {
	srv := streamsfake.New(streamsfake.Config{})
	t.Cleanup(srv.Close)
	cfg := testenv.FakeAWSConfig(t, srv.Env())
	tests := []struct {
		name    string
		view    streamtypes.StreamViewType
		use     bool
		wantErr string
	}{
		{name: "new image", view: streamtypes.StreamViewTypeNewImage, use: true},
		{name: "without UseStreams", view: streamtypes.StreamViewTypeNewImage, wantErr: "Streams client"},
		{name: "keys only", view: streamtypes.StreamViewTypeKeysOnly, use: true, wantErr: "KEYS_ONLY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := srv.AddStream(streamsfake.StreamConfig{Table: "sessions", ViewType: tt.view})
			r := Replica{Mode: ReplicaOn, Refresh: time.Minute, MaxSessions: 10, ScanSegments: 1, StreamARN: st.ARN()}
			if tt.use {
				r.UseStreams(cfg)
			}
			var logs bytes.Buffer
			rep, err := r.Open(context.Background(), &scanTable{}, sessions.StoreConfig{Table: "sessions"}, zerolog.New(&logs))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--session-replica") {
					t.Fatalf("error %v, want one naming --session-replica and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || rep == nil {
				t.Fatalf("Open = %v, %v", rep, err)
			}
			if !strings.Contains(logs.String(), st.ARN()) || srv.Calls("GetShardIterator") == 0 {
				t.Errorf("log %q lacks the stream, or no iterator taken (%d)", logs.String(), srv.Calls("GetShardIterator"))
			}
		})
	}
	var none Replica
	none.UseStreams(cfg)
	if none.streams != nil {
		t.Error("UseStreams built a client without --session-stream")
	}
}
