package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/sqstest"
	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// TestReconcileStreamerVerdictLog is issue 14's first acceptance test,
// end to end: one corpus goes into local SQS and into the LookupEvents
// fake; the real streamer (built binary, --verdict-log file:) consumes the
// queue; then `backfill --source lookup --reconcile` compares.
//   - nothing dropped: exit 0, coverage 100 %, no missed event.
//   - 3 % of the messages removed from the queue before the streamer sees
//     them (received and deleted behind its back), and one region's events
//     never sent: the backfill lists exactly those events, exits 1, and its
//     findings for them carry the finding_ids the streamer gives the same
//     events once they are delivered to it; after that the log is whole and
//     a second reconciliation exits 0 at 100 %.
func TestReconcileStreamerVerdictLog(t *testing.T) {
	streamer := filepath.Join(t.TempDir(), "streamer")
	if out, err := exec.Command("go", "build", "-o", streamer, "../streamer").CombinedOutput(); err != nil {
		t.Fatalf("build the streamer: %v\n%s", err, out)
	}
	regions := []string{"us-east-1", "eu-west-1", "ap-south-1"}
	tests := []struct {
		name       string
		dropEvery  int    // remove every dropEvery-th message of the queue; 0: none
		blindSpot  string // a region whose events never reach the queue
		wantMissed bool
	}{
		{name: "nothing dropped"},
		{name: "3 percent removed and a region unseen", dropEvery: 33, blindSpot: "ap-south-1", wantMissed: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, table := loadCorpus(t, corpus.Config{Seed: int64(60 + i), Events: 600, Now: time.Now().UTC().Truncate(time.Second),
				Window: 6 * time.Hour, MinAge: time.Hour, Retention: 30 * 24 * time.Hour, Regions: regions, OutOfScope: 30})
			startFakes(t, c) // every record, out-of-scope ones included, into LookupEvents
			q := sqstest.CreateTestQueue(t, sqstest.Client(t), sqstest.Options{MaxReceiveCount: 1000})

			var bodies [][]byte
			for _, ev := range c.All() {
				if ev.Region != tt.blindSpot {
					bodies = append(bodies, corpus.EventBridgeEnvelope(ev))
				}
			}
			if err := q.Send(ctx, bodies); err != nil {
				t.Fatal(err)
			}
			removed := removeMessages(t, q, tt.dropEvery)

			// The events the log must lack: in scope, and removed or
			// never sent.
			want := map[string]corpus.Event{}
			for _, ev := range c.Events {
				if removed[ev.ID] || ev.Region == tt.blindSpot {
					want[ev.ID] = ev
				}
			}
			if tt.wantMissed != (len(want) > 0) {
				t.Fatalf("%d events to miss; the case wants some: %v", len(want), tt.wantMissed)
			}
			if tt.dropEvery > 0 {
				dropped := len(want) - countRegion(c.Events, tt.blindSpot)
				t.Logf("%d messages sent, %d removed (%d in scope), %d events of %s never sent", len(bodies), len(removed), dropped,
					countRegion(c.Events, tt.blindSpot), tt.blindSpot)
				if dropped == 0 {
					t.Fatal("no in-scope message removed")
				}
			}

			dir := t.TempDir()
			logURI := "file:" + filepath.Join(dir, "verdicts")
			streamFindings := filepath.Join(dir, "streamer.jsonl")
			runStreamer(t, streamer, table, q, logURI, streamFindings)

			oldest, newest := c.Span()
			args := []string{"--source", "lookup", "--regions", strings.Join(regions, ","), "--table", table, "--quiet",
				"--session-retention", "30d", "--reconcile", logURI,
				"--since", oldest.Add(-time.Minute).Format(time.RFC3339), "--until", newest.Add(time.Minute).Format(time.RFC3339)}
			bfFindings := filepath.Join(dir, "backfill.jsonl")
			summary := filepath.Join(dir, "summary.json")
			code, stdout, stderr := runReal(append(args, "--sink", "file:"+bfFindings, "--summary-json", summary)...)
			wantExit := exitClean
			if tt.wantMissed {
				wantExit = exitFindings
			}
			if code != wantExit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, wantExit, stderr)
			}
			gaps := readGaps(t, stdout)
			var got []string
			for _, g := range gaps {
				got = append(got, g.EventID)
			}
			if wantIDs := slices.Sorted(maps.Keys(want)); !slices.Equal(slices.Sorted(slices.Values(got)), wantIDs) {
				t.Errorf("listed %d events, want exactly the %d the streamer never saw\n got %v\nwant %v", len(got), len(want), got, wantIDs)
			}
			rc := readSummaryJSON(t, summary).Reconcile
			if rc == nil || rc.Expected != len(c.Events) || rc.Missed != len(want) || rc.Unsettled != 0 {
				t.Fatalf("reconcile %+v, want %d expected, %d missed, none unsettled", rc, len(c.Events), len(want))
			}
			t.Logf("coverage %.4f: %d of %d logged, %d missed", *rc.CoverageRate, rc.Covered, rc.Expected, rc.Missed)
			if !tt.wantMissed {
				if *rc.CoverageRate != 1 || !strings.Contains(stderr, "coverage        100.0%") || stdout != "" {
					t.Errorf("nothing dropped: coverage %v, stdout %q; stderr:\n%s", *rc.CoverageRate, stdout, stderr)
				}
				return
			}
			for _, row := range rc.Rows {
				if row.Region == tt.blindSpot && (row.Covered != 0 || row.CoverageRate != 0) {
					t.Errorf("row %+v: the unseen region shows coverage", row)
				}
			}

			// Deliver the missed events to the streamer: its finding_ids
			// for them are the backfill's.
			var missedBodies [][]byte
			for _, ev := range want {
				missedBodies = append(missedBodies, corpus.EventBridgeEnvelope(ev))
			}
			if err := q.Send(ctx, missedBodies); err != nil {
				t.Fatal(err)
			}
			runStreamer(t, streamer, table, q, logURI, streamFindings)
			streamerIDs := findingIDs(t, streamFindings, want)
			backfillIDs := findingIDs(t, bfFindings, want)
			wantFindings := 0
			for _, ev := range want {
				if ev.Expected != classify.Tracked {
					wantFindings++
				}
			}
			if wantFindings == 0 {
				t.Fatal("no missed event is a finding: nothing to compare")
			}
			t.Logf("%d findings among the missed events, finding_ids compared with the streamer's", wantFindings)
			if len(backfillIDs) != wantFindings || len(streamerIDs) != wantFindings {
				t.Errorf("%d backfill and %d streamer findings for the missed events, want %d", len(backfillIDs), len(streamerIDs), wantFindings)
			}
			for id, fid := range backfillIDs {
				if streamerIDs[id] != fid {
					t.Errorf("event %s: backfill finding_id %s, streamer's %s", id, fid, streamerIDs[id])
				}
			}
			for _, g := range gaps {
				if g.FindingID != backfillIDs[g.EventID] {
					t.Errorf("gap %s: finding_id %q, the sink got %q", g.EventID, g.FindingID, backfillIDs[g.EventID])
				}
			}

			code, stdout, stderr = runReal(append(args, "--summary-json", summary)...)
			rc = readSummaryJSON(t, summary).Reconcile
			if code != exitClean || stdout != "" || rc == nil || rc.CoverageRate == nil || *rc.CoverageRate != 1 {
				t.Errorf("after the catch-up: exit %d, reconcile %+v, stdout %q; want 0 at 100 %%\nstderr:\n%s", code, rc, stdout, stderr)
			}
		})
	}
}

// runReal runs the backfill in-process on the real clock (the streamer's).
func runReal(args ...string) (code int, stdout, stderr string) {
	var out, errOut testkit.LockedBuffer
	code = run(context.Background(), args, env{stdout: &out, stderr: &errOut, lookupEnv: func(string) (string, bool) { return "", false },
		now: time.Now})
	return code, out.String(), errOut.String()
}

// removeMessages receives every message on q and deletes every n-th one
// (by the order received), as a lost delivery would; the others are made
// visible again. It returns the event ids deleted.
func removeMessages(t *testing.T, q *sqstest.Queue, n int) map[string]bool {
	t.Helper()
	removed := map[string]bool{}
	if n == 0 {
		return removed
	}
	ctx := context.Background()
	msgs, err := q.ReceiveAll(ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msgs); i += 10 {
		batch := msgs[i:min(i+10, len(msgs))]
		var del []types.DeleteMessageBatchRequestEntry
		var keep []types.ChangeMessageVisibilityBatchRequestEntry
		for j, m := range batch {
			id := fmt.Sprint(i + j)
			if (i+j)%n == n/2 {
				del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(id), ReceiptHandle: m.ReceiptHandle})
				removed[envelopeEventID(t, m)] = true
			} else {
				keep = append(keep, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(id), ReceiptHandle: m.ReceiptHandle})
			}
		}
		if len(del) > 0 {
			if out, err := q.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: del}); err != nil || len(out.Failed) > 0 {
				t.Fatalf("delete: %v %v", err, out)
			}
		}
		if len(keep) > 0 {
			out, err := q.Client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.URL), Entries: keep})
			if err != nil || len(out.Failed) > 0 {
				t.Fatalf("change visibility: %v %v", err, out)
			}
		}
	}
	return removed
}

func envelopeEventID(t *testing.T, m types.Message) string {
	t.Helper()
	var body struct {
		Detail struct {
			EventID string `json:"eventID"`
		} `json:"detail"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &body); err != nil || body.Detail.EventID == "" {
		t.Fatalf("message is not an EventBridge envelope (%v): %s", err, aws.ToString(m.Body))
	}
	return body.Detail.EventID
}

// runStreamer runs the streamer binary until q is empty, then stops it
// with SIGTERM (it flushes the verdict log) and checks it exited 0.
func runStreamer(t *testing.T, binary, table string, q *sqstest.Queue, logURI, findings string) {
	t.Helper()
	cmd := exec.Command(binary, "--queue-url", q.URL, "--table", table, "--sink", "file:"+findings, "--metrics-addr", "",
		"--verdict-log", logURI, "--verdict-log-interval", "1s", "--verdict-log-id", "itest", "--session-retention", "30d",
		"--visibility-timeout", "5s", "--shutdown-timeout", "5s")
	cmd.Env = os.Environ()
	var stderr testkit.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			log := stderr.String()
			t.Logf("streamer stderr (last 4000 bytes):\n%s", log[max(0, len(log)-4000):])
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := q.WaitEmpty(ctx); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("queue not drained: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("streamer: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("streamer still running 30 s after SIGTERM")
	}
}

// findingIDs reads a findings file: event id to finding_id for the events
// of want.
func findingIDs(t *testing.T, path string, want map[string]corpus.Event) map[string]string {
	t.Helper()
	out := map[string]string{}
	var fs []sink.Finding
	if fileExists(path) {
		fs = readFindings(t, path)
	}
	for _, f := range fs {
		if _, ok := want[f.Event.ID]; !ok {
			continue
		}
		if prev, dup := out[f.Event.ID]; dup && prev != f.FindingID {
			t.Errorf("event %s: two finding_ids %s and %s", f.Event.ID, prev, f.FindingID)
		}
		out[f.Event.ID] = f.FindingID
	}
	return out
}

func countRegion(events []corpus.Event, region string) int {
	n := 0
	for _, ev := range events {
		if ev.Region == region {
			n++
		}
	}
	return n
}
