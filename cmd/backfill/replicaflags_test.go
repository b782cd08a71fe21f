package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/cli"
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
