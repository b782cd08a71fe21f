package streamer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// fakeVerdictLog keeps what each Flush made durable; failing > 0 fails that
// many flushes, discarding what was added as the Writer does.
type fakeVerdictLog struct {
	mu      sync.Mutex
	buf     []verdictlog.Entry
	durable map[string][]verdictlog.Entry // by event id
	flushes int
	failing int
}

func (l *fakeVerdictLog) Add(_ context.Context, es ...verdictlog.Entry) error {
	for _, e := range es {
		if _, err := verdictlog.AppendLine(nil, e); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, es...)
	return nil
}

func (l *fakeVerdictLog) Flush(context.Context) (verdictlog.Object, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := l.buf
	l.buf = nil
	if len(buf) == 0 {
		return verdictlog.Object{}, nil
	}
	if l.failing > 0 {
		l.failing--
		return verdictlog.Object{}, errors.New("injected verdict log failure")
	}
	if l.durable == nil {
		l.durable = map[string][]verdictlog.Entry{}
	}
	for _, e := range buf {
		l.durable[e.EventID] = append(l.durable[e.EventID], e)
	}
	l.flushes++
	return verdictlog.Object{Key: fmt.Sprintf("part-%d", l.flushes), Entries: len(buf), Bytes: int64(100 * len(buf))}, nil
}

func (l *fakeVerdictLog) logged() map[string][]verdictlog.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]verdictlog.Entry, len(l.durable))
	for k, v := range l.durable {
		out[k] = append([]verdictlog.Entry(nil), v...)
	}
	return out
}

// loggedFirstQueue checks, at every delete, that the verdict log already
// holds the deleted message's event (when it is one the log must hold).
type loggedFirstQueue struct {
	*fakeQueue
	log *fakeVerdictLog

	mu         sync.Mutex
	violations []string
}

func (q *loggedFirstQueue) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	logged := q.log.logged()
	q.fakeQueue.mu.Lock()
	var bodies []string
	for _, e := range in.Entries {
		if m := q.fakeQueue.byHandle(aws.ToString(e.ReceiptHandle)); m != nil {
			bodies = append(bodies, m.body)
		}
	}
	q.fakeQueue.mu.Unlock()
	for _, b := range bodies {
		var rec struct{ EventID, EventName string }
		if err := json.Unmarshal([]byte(b), &rec); err != nil {
			return nil, err
		}
		if rec.EventName == "AssumeRole" && len(logged[rec.EventID]) == 0 {
			q.mu.Lock()
			q.violations = append(q.violations, rec.EventID)
			q.mu.Unlock()
		}
	}
	return q.fakeQueue.DeleteMessageBatch(ctx, in, o...)
}

func (q *loggedFirstQueue) deletedUnlogged() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.violations...)
}

// outOfScopeJSON is a record of an event name that is not classified.
func outOfScopeJSON(id string, at time.Time) string {
	return fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"eventTime":%q,"eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/x"}}`,
		id, at.UTC().Format(time.RFC3339))
}

func TestVerdictLogWrittenBeforeDelete(t *testing.T) {
	tests := []struct {
		name          string
		failFlushes   int
		wantFailures  float64
		wantFlushesGE int
	}{
		{name: "log answers", wantFlushesGE: 1},
		{name: "log fails twice, messages wait", failFlushes: 2, wantFailures: 2, wantFlushesGE: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			vlog := &fakeVerdictLog{failing: tc.failFlushes}
			q := &loggedFirstQueue{fakeQueue: newFakeQueue(0), log: vlog}
			wantVerdict := map[string]classify.Verdict{}
			for i := range 30 {
				id := fmt.Sprintf("ev-%02d", i)
				si, v := "ok:"+id, classify.Tracked
				if i%3 == 0 {
					si, v = "", classify.NoSourceIdentity
				}
				wantVerdict[id] = v
				q.send(recordJSON(id, si, now.Add(-time.Hour)))
			}
			q.send(outOfScopeJSON("ev-other", now.Add(-time.Hour)))
			cfg := testConfig()
			cfg.VerdictLogInterval = time.Second
			out := memory.NewSink("capture")
			h := startHarnessDeps(t, cfg, Deps{Queue: q, VerdictLog: vlog}, q.fakeQueue, newFakeClassifier(), out)
			if tc.failFlushes > 0 {
				testkit.Eventually(t, 10*time.Second, "a failed flush", func() bool { return testutil.ToFloat64(h.m.verdictLogFailures) >= 1 })
				if n := testutil.ToFloat64(h.m.deleted); n != 1 {
					t.Errorf("deleted %v messages while the log failed, want only the out-of-scope one", n)
				}
			}
			h.waitDrained(t, 15*time.Second)

			if v := q.deletedUnlogged(); len(v) > 0 {
				t.Errorf("deleted before the verdict log held them: %v", v)
			}
			findingIDs := map[string]string{}
			for _, f := range out.Findings() {
				findingIDs[f.Event.ID] = f.FindingID
			}
			logged := vlog.logged()
			if len(logged) != len(wantVerdict) {
				t.Errorf("verdict log holds %d events, want %d", len(logged), len(wantVerdict))
			}
			for id, v := range wantVerdict {
				es := logged[id]
				if len(es) != 1 {
					t.Errorf("event %s logged %d times, want once", id, len(es))
					continue
				}
				e := es[0]
				if e.Verdict != string(v) || e.FindingID != findingIDs[id] || e.EventName != "AssumeRole" ||
					e.Account != "111122223333" || e.Region != "us-east-1" || !e.EventTime.Equal(now.Add(-time.Hour).Truncate(time.Second)) {
					t.Errorf("event %s logged as %+v, want verdict %s finding_id %q", id, e, v, findingIDs[id])
				}
				if (v == classify.Tracked) != (e.FindingID == "") {
					t.Errorf("event %s: finding_id %q for verdict %s", id, e.FindingID, v)
				}
			}
			if got := testutil.ToFloat64(h.m.verdictLogFailures); got != tc.wantFailures {
				t.Errorf("verdict_log_failures_total = %v, want %v", got, tc.wantFailures)
			}
			if got := testutil.ToFloat64(h.m.verdictLogEntries); got != float64(len(wantVerdict)) {
				t.Errorf("verdict_log_entries_total = %v, want %d", got, len(wantVerdict))
			}
			if vlog.flushes < tc.wantFlushesGE || testutil.ToFloat64(h.m.verdictLogObjects) != float64(vlog.flushes) {
				t.Errorf("%d flushes, objects counted %v", vlog.flushes, testutil.ToFloat64(h.m.verdictLogObjects))
			}
		})
	}
}

func TestVerdictLogFlushesEarlyAtHalfTheInFlightCap(t *testing.T) {
	now := time.Now()
	vlog := &fakeVerdictLog{}
	q := newFakeQueue(0)
	for i := range 20 {
		q.send(recordJSON(fmt.Sprintf("ev-%02d", i), "ok:x", now.Add(-time.Hour)))
	}
	cfg := testConfig()
	cfg.MaxInFlight = 10 // a flush once 5 wait
	cfg.VerdictLogInterval = 10 * time.Minute
	h := startHarnessDeps(t, cfg, Deps{Queue: q, VerdictLog: vlog}, q, newFakeClassifier())
	h.waitDrained(t, 10*time.Second)
	if n := len(vlog.logged()); n != 20 {
		t.Errorf("logged %d events, want 20", n)
	}
}

func TestVerdictLogAtShutdown(t *testing.T) {
	tests := []struct {
		name        string
		failing     int
		wantDeleted float64
		wantLogged  int
	}{
		{name: "last flush deletes what waits", wantDeleted: 5, wantLogged: 5},
		{name: "what cannot be logged is released", failing: 100, wantDeleted: 0, wantLogged: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			vlog := &fakeVerdictLog{failing: tc.failing}
			q := newFakeQueue(0)
			for i := range 5 {
				q.send(recordJSON(fmt.Sprintf("ev-%02d", i), "", now.Add(-time.Hour)))
			}
			cfg := testConfig()
			cfg.VerdictLogInterval = 10 * time.Minute
			h := startHarnessDeps(t, cfg, Deps{Queue: q, VerdictLog: vlog}, q, newFakeClassifier())
			testkit.Eventually(t, 10*time.Second, "5 messages waiting for the log", func() bool { return testutil.ToFloat64(h.m.verdictLogWaiting) == 5 })
			if n := testutil.ToFloat64(h.m.deleted); n != 0 {
				t.Fatalf("%v deleted before the log was written", n)
			}
			h.stop(t)
			if got := testutil.ToFloat64(h.m.deleted); got != tc.wantDeleted {
				t.Errorf("deleted %v, want %v", got, tc.wantDeleted)
			}
			if got := len(vlog.logged()); got != tc.wantLogged {
				t.Errorf("logged %d, want %d", got, tc.wantLogged)
			}
			left, _ := q.left()
			if len(left) != 5-int(tc.wantDeleted) {
				t.Errorf("%d messages left on the queue, want %d", len(left), 5-int(tc.wantDeleted))
			}
		})
	}
}
