package app

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/streamsfake"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// classification returns the classification flags' defaults with
// --session-retention, checked, as a command has them after parsing.
func classification(t *testing.T, retention time.Duration) cli.Classification {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c := cli.AddClassificationFlags(fs)
	if err := fs.Parse([]string{"--session-retention", retention.String()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	return *c
}

// TestBuildClassifiesFromTheTable: what Build wires, with the replica on
// (loaded in Build), lazy (loaded at the first lookup) and off (the Query
// path alone), gives every corpus event the verdict the corpus expects from
// the session table in DynamoDB, and its sinks accept the findings.
func TestBuildClassifiesFromTheTable(t *testing.T) {
	ctx := context.Background()
	db := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	c, err := corpus.Generate(corpus.Config{Seed: 15, Events: 60, Now: now, MinAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.PutSessions(ctx, db, table, c.Sessions); err != nil {
		t.Fatal(err)
	}
	awsCfg, err := LoadAWS(ctx, AWSOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		mode        string
		lazy        bool
		wantReplica bool // loaded by Build
	}{
		{"replica on", cli.ReplicaOn, false, true},
		{"replica on, lazy", cli.ReplicaOn, true, false},
		{"replica off", cli.ReplicaOff, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "findings.jsonl")
			a, err := Build(ctx, awsCfg, Options{
				Table: table, Classification: classification(t, c.Config.Retention), EventNames: corpus.DefaultEventNames(),
				Replica:     cli.Replica{Mode: tc.mode, Refresh: time.Minute, MaxSessions: 1000, ScanSegments: 2},
				LazyReplica: tc.lazy, Now: func() time.Time { return now },
				Sinks: []string{"file:" + path}, Log: zerolog.Nop(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Sessions.Replica != nil; got != tc.wantReplica {
				t.Errorf("replica loaded by Build: %v, want %v", got, tc.wantReplica)
			}
			if len(a.Sinks) != 1 || a.Finder == nil || a.Table == nil {
				t.Fatalf("Build: %d sinks, finder %v, table %v", len(a.Sinks), a.Finder, a.Table)
			}
			var findings []sink.Finding
			for _, ev := range c.Events {
				msg, err := a.Decoder.DecodeMessage(ev.Record)
				if err != nil {
					t.Fatalf("%s: decode: %v", ev.Case, err)
				}
				r, err := a.Classifier.Classify(ctx, msg.Event)
				if err != nil {
					t.Fatalf("%s: classify: %v", ev.Case, err)
				}
				if r.Verdict != ev.Expected {
					t.Errorf("%s: verdict %s, want %s", ev.Case, r.Verdict, ev.Expected)
				}
				if r.IsFinding() {
					findings = append(findings, sink.NewFinding(msg.Event, r, sink.DetectorBackfill, now))
				}
			}
			if err := a.Sinks[0].Write(ctx, findings); err != nil {
				t.Fatal(err)
			}
			if err := a.CloseSinks(ctx); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(string(b), "\n"); got != len(findings) || got == 0 {
				t.Errorf("file sink holds %d lines, want the %d findings", got, len(findings))
			}
		})
	}
}

// TestBuildRefusesBadSetupAsUsage: a sink that cannot open and an unknown
// AWS profile are usage errors naming what is wrong, found before any
// table is read (the table here does not exist).
func TestBuildRefusesBadSetupAsUsage(t *testing.T) {
	ctx := context.Background()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	if _, err := LoadAWS(ctx, AWSOptions{Profile: "no-such-profile", Log: zerolog.Nop()}); !errors.As(err, new(UsageError)) ||
		!strings.Contains(err.Error(), "no-such-profile") {
		t.Errorf("LoadAWS with an unknown profile: %v, want a UsageError naming it", err)
	}
	awsCfg, err := LoadAWS(ctx, AWSOptions{Region: "us-east-1", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if awsCfg.Region != "us-east-1" {
		t.Errorf("region %q, want us-east-1", awsCfg.Region)
	}
	for _, tc := range []struct {
		name, uri, want string
	}{
		{"webhook without a key", "webhook:https://siem.example/in", "--sink: webhook sink signing key"},
		{"hec without a token", "hec:https://splunk.example:8088", "--sink: hec sink token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := filepath.Join(t.TempDir(), "first.jsonl")
			_, err := Build(ctx, awsCfg, Options{Table: "t", Classification: classification(t, 24*time.Hour),
				Sinks: []string{"file:" + first, tc.uri}, LookupEnv: func(string) (string, bool) { return "", false }, Log: zerolog.Nop()})
			if !errors.As(err, new(UsageError)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build: %v, want a UsageError with %q", err, tc.want)
			}
		})
	}
}

// TestBuildSessionStream: with --session-stream, Build's replica follows
// the stream through the client built from awsCfg (the stream fake, at
// AWS_ENDPOINT_URL_DYNAMODB_STREAMS); a lazy replica (the backfill's),
// loaded once and never refreshed, does not read it and says so.
func TestBuildSessionStream(t *testing.T) {
	ctx := context.Background()
	db := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	srv := streamsfake.New(streamsfake.Config{})
	t.Cleanup(srv.Close)
	stream := srv.AddStream(streamsfake.StreamConfig{Table: table})
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	awsCfg, err := LoadAWS(ctx, AWSOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, lazy := range []bool{false, true} {
		t.Run(fmt.Sprint("lazy ", lazy), func(t *testing.T) {
			var logs bytes.Buffer
			iterators := srv.Calls("GetShardIterator")
			a, err := Build(ctx, awsCfg, Options{
				Table: table, Classification: classification(t, 90*24*time.Hour), EventNames: corpus.DefaultEventNames(),
				Replica:     cli.Replica{Mode: cli.ReplicaOn, Refresh: time.Minute, MaxSessions: 1000, ScanSegments: 1, StreamARN: stream.ARN()},
				LazyReplica: lazy, Log: zerolog.New(&logs),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Sessions.Finder.Lookup(ctx, sessions.Query{SourceIdentity: "sentinel:alice:direct:a1b2c3d4", User: "alice", At: time.Now().Add(-time.Hour)}); err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			read := srv.Calls("GetShardIterator") > iterators
			if read == lazy {
				t.Errorf("stream iterators taken: %v, want %v", read, !lazy)
			}
			if said := strings.Contains(logs.String(), "--session-stream not read"); said != lazy {
				t.Errorf("log %q: says the stream is not read: %v, want %v", logs.String(), said, lazy)
			}
		})
	}
}
