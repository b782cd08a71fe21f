package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// TestReplicaFlags: the backfill takes the replica flags the streamer takes
// (internal/cli registers them for both), never waits by default, and
// refuses a bad value naming the flag.
func TestReplicaFlags(t *testing.T) {
	e := env{stderr: io.Discard, lookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"SESSIONWATCH_REPLICA_REFRESH": "1m"}[k]
		return v, ok
	}, now: func() time.Time { return testNow }}
	o, err := parseOptions([]string{"--table", "t", "--session-replica", "off", "--replica-scan-segments", "2"}, e)
	if err != nil {
		t.Fatal(err)
	}
	want := cli.Replica{Mode: cli.ReplicaOff, Refresh: time.Minute, MaxSessions: cli.DefaultReplicaMaxSessions, ScanSegments: 2}
	if o.replica != want {
		t.Errorf("replica options %+v, want %+v", o.replica, want)
	}
	for flag, value := range map[string]string{"--session-replica": "always", "--replica-max-sessions": "0",
		"--replica-max-wait": "-1s", "--session-stream": "arn:aws:s3:::bucket"} {
		_, err := parseOptions([]string{"--table", "t", flag, value}, e)
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(flag, "--")) {
			t.Errorf("%s %s: error %v, want one naming the flag", flag, value, err)
		}
	}
}

// emptyTable is a session table with no session.
type emptyTable struct{}

func (emptyTable) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return &dynamodb.ScanOutput{}, nil
}

func (emptyTable) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return &dynamodb.QueryOutput{}, nil
}

// TestSessionStreamAcceptedNotRead: the backfill takes --session-stream
// (one configuration for both commands) but never reads the stream: its
// replica is loaded once and never refreshed.
func TestSessionStreamAcceptedNotRead(t *testing.T) {
	e := env{stderr: io.Discard, lookupEnv: func(string) (string, bool) { return "", false }, now: func() time.Time { return testNow }}
	o, err := parseOptions([]string{"--table", "t", "--session-replica", "on", "--session-stream",
		"arn:aws:dynamodb:us-east-1:111122223333:table/t/stream/2026-12-06T20:00:00.000"}, e)
	if err != nil {
		t.Fatal(err)
	}
	finder, err := sessions.Open(emptyTable{}, sessions.Config{Store: sessions.StoreConfig{Table: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := openSessions(o, emptyTable{}, finder, zerolog.New(&logs))
	if _, err := s.Finder.Lookup(context.Background(), sessions.Query{SourceIdentity: "sentinel:alice:direct:a1b2c3d4", User: "alice", At: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatalf("Lookup: %v (the backfill must not need a stream client)", err)
	}
	if !strings.Contains(logs.String(), "--session-stream not read") {
		t.Errorf("log %q does not say the stream is not read", logs.String())
	}
}
