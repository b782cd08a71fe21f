package main

import (
	"context"
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
// the SDK reads it); a session revoked in the table and its stream while
// the streamer runs gives revoked for an event after the revocation, from
// the replica, with no table read after the load.
func TestProcessFollowsSessionStream(t *testing.T) {
	ctx := context.Background()
	dyn := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, dyn, table); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	si := "sentinel:alice:direct:a1b2c3d4"
	sess := sessions.Session{ID: "sess-alice", User: "alice", Profile: "prod", Status: sessions.StatusActive, SourceIdentity: si,
		StartedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
	if err := testenv.PutSessions(ctx, dyn, table, []sessions.Session{sess}); err != nil {
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

	revokedAt := time.Now().UTC()
	revoked := sess
	revoked.Status, revoked.UpdatedAt, revoked.RevokedBy, revoked.RevokedReason = sessions.StatusRevoked, revokedAt, "secops", "leak"
	if err := testenv.PutSessions(ctx, dyn, table, []sessions.Session{revoked}); err != nil {
		t.Fatal(err)
	}
	stream.Put(sessions.MarshalItem(revoked))
	// The first whole second after the revocation plus the skew.
	after := revokedAt.Add(skew + time.Second).Truncate(time.Second)
	time.Sleep(time.Until(after))
	if err := q.Send(ctx, [][]byte{[]byte(envelope(cloudtrail.EnvelopeSource, stsRecord("ev-after", "AssumeRole", si, after)))}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the revoked finding", func() bool { return len(readFindings(t, findings)) > 0 })
	// local-aws-sqs may hand the message to more than one long poll
	// (at-least-once): every copy must be the same finding.
	got := readFindings(t, findings)
	for _, f := range got {
		if f.Event.ID != "ev-after" || f.Category != classify.Revoked || f.FindingID != got[0].FindingID {
			t.Fatalf("finding %s %s %s, want ev-after revoked %s", f.Event.ID, f.Category, f.FindingID, got[0].FindingID)
		}
	}
	// The emulator's long poll delays delivery by up to 20 s: the
	// replica's own latency is measured in pkg/sessions.
	t.Logf("revoked emitted %v after its event (skew %v)", got[0].DetectedAt.Sub(after).Round(10*time.Millisecond), skew)
	for name, want := range map[string]float64{
		`sessionwatch_replica_lookups_total{answer="fallback"}`: 0, // never the Query path
		`sessionwatch_store_queries_total`:                      0,
		`sessionwatch_replica_stream_records_total`:             1,
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
