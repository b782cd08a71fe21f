package main

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/sqstest"
	"github.com/sessionwatch/sessionwatch/internal/streamsfake"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// TestProcessFollowsSessionStream runs the streamer binary with
// --session-stream: the replica loads the table from dynalite and follows
// the stream fake (reached through AWS_ENDPOINT_URL_DYNAMODB_STREAMS, as
// the SDK reads it). Its shards are resharded while it runs (one rolled
// over, one split), then sessions are revoked in the table and the stream:
// events after the revocations are revoked, answered by the replica, with
// no table read after the load: no write in a new shard was missed.
func TestProcessFollowsSessionStream(t *testing.T) {
	ctx := context.Background()
	dyn := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, dyn, table); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var users []sessions.Session
	for i := range 8 {
		user := fmt.Sprint("user", i)
		users = append(users, sessions.Session{ID: "sess-" + user, User: user, Profile: "prod", Status: sessions.StatusActive,
			SourceIdentity: fmt.Sprintf("sentinel:%s:direct:a1b2c3d%d", user, i),
			StartedAt:      now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)})
	}
	if err := testenv.PutSessions(ctx, dyn, table, users); err != nil {
		t.Fatal(err)
	}
	srv := streamsfake.New(streamsfake.Config{})
	t.Cleanup(srv.Close)
	stream := srv.AddStream(streamsfake.StreamConfig{Table: table, ViewType: "NEW_IMAGE", Shards: 2})
	for k, v := range srv.Env() {
		t.Setenv(k, v) // the child process inherits it
	}
	q := sqstest.CreateTestQueue(t, sqstest.Client(t), sqstest.Options{MaxReceiveCount: 1000})
	findings := filepath.Join(t.TempDir(), "findings.jsonl")
	const skew = time.Second
	p := startProcess(t, table, append([]string{"--queue-url", q.URL, "--sink", "file:" + findings, "--session-stream", stream.ARN(),
		"--clock-skew", skew.String()}, processArgs...)...)
	testkit.Eventually(t, 15*time.Second, "both shards followed", func() bool { return p.metric(t, "sessionwatch_replica_stream_shards") == 2 })

	shards := stream.OpenShards()
	stream.Rollover(shards[0])
	stream.Split(shards[1])
	revokedAt := time.Now().UTC()
	var msgs [][]byte
	after := revokedAt.Add(skew + time.Second).Truncate(time.Second) // the first whole second after the revocations and the skew
	for i, s := range users {
		s.Status, s.UpdatedAt, s.RevokedBy, s.RevokedReason = sessions.StatusRevoked, revokedAt, "secops", "leak"
		if err := testenv.PutSessions(ctx, dyn, table, []sessions.Session{s}); err != nil {
			t.Fatal(err)
		}
		stream.Put(sessions.MarshalItem(s))
		msgs = append(msgs, []byte(envelope(cloudtrail.EnvelopeSource, stsRecord(fmt.Sprint("ev-", i), "AssumeRole", s.SourceIdentity, after))))
	}
	time.Sleep(time.Until(after))
	if err := q.Send(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	byEvent := map[string][]string{}
	testkit.Eventually(t, 45*time.Second, "a finding for every event", func() bool {
		clear(byEvent)
		for _, f := range readFindings(t, findings) {
			byEvent[f.Event.ID] = append(byEvent[f.Event.ID], string(f.Category)+" "+f.FindingID)
		}
		return len(byEvent) == len(users)
	})
	// local-aws-sqs may hand a message to more than one long poll
	// (at-least-once): every copy must be the same finding.
	for id, fs := range byEvent {
		for _, f := range fs {
			if f != fs[0] || f[:len(classify.Revoked)] != string(classify.Revoked) {
				t.Errorf("%s: findings %v, want revoked, one finding_id", id, fs)
			}
		}
	}
	for name, want := range map[string]float64{
		`sessionwatch_replica_lookups_total{answer="fallback"}`: 0, // never the Query path
		`sessionwatch_store_queries_total`:                      0,
		`sessionwatch_replica_stream_shards`:                    3, // the rolled-over child and the split's two
		`sessionwatch_replica_stream_records_total`:             float64(len(users)),
		`sessionwatch_replica_stream_errors_total`:              0,
		`sessionwatch_replica_refreshes_total`:                  0, // no re-scan: the stream
	} {
		if v := p.metric(t, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if lag := p.metric(t, "sessionwatch_replica_stream_lag_seconds"); !(lag > 0 && lag < 10) {
		t.Errorf("stream lag %v s, want a few seconds", lag)
	}
	if _, code := p.signal(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}
