package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
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
