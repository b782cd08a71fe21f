package streamer

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// regionRecord is recordJSON in another region.
func regionRecord(id, region string, at time.Time) string {
	return strings.Replace(recordJSON(id, "ok:"+id, at), `"awsRegion":"us-east-1"`, fmt.Sprintf(`"awsRegion":%q`, region), 1)
}

// TestSilenceGaugeAndMetricMove feeds events through the queue and moves a
// fake clock: the last-event gauge follows the events, and the silent
// count grows as expected regions pass --silence-after and shrinks when one
// speaks again.
func TestSilenceGaugeAndMetricMove(t *testing.T) {
	const acct = "111122223333"
	t0 := time.Now().Truncate(time.Second)
	clock := &fakeClock{t: t0}
	q := newFakeQueue(0)
	cfg := testConfig()
	cfg.SilenceAfter = 6 * time.Hour
	cfg.ExpectRegions = []string{"us-east-1", "eu-west-1"}
	h := startHarnessDeps(t, cfg, Deps{Queue: q, Now: clock.now}, q, newFakeClassifier())

	q.send(regionRecord("e1", "us-east-1", t0.Add(-time.Hour)), regionRecord("e2", "ap-southeast-2", t0.Add(-time.Hour)),
		regionRecord("e3", "not a region", t0), regionRecord("e4", "us-east-1", t0.Add(-2*time.Hour)))
	h.waitDrained(t, 10*time.Second)
	last := func(region string) float64 { return testutil.ToFloat64(h.m.lastEvent.WithLabelValues(acct, region)) }
	if got, want := last("us-east-1"), float64(t0.Add(-time.Hour).Unix()); got != want {
		t.Errorf("last event us-east-1 = %v, want %v (the latest event, not the last received)", got, want)
	}
	if n := testutil.CollectAndCount(h.m.lastEvent); n != 2 {
		t.Errorf("%d last-event series, want 2 (a malformed region is not a label)", n)
	}

	steps := []struct {
		advance    time.Duration
		wantSilent []pair
	}{
		{0, nil},
		{5 * time.Hour, nil}, // us-east-1 at exactly 6h: not yet
		{time.Minute, []pair{{acct, "ap-southeast-2"}, {acct, "us-east-1"}}},
		{time.Hour, []pair{{acct, "ap-southeast-2"}, {acct, "eu-west-1"}, {acct, "us-east-1"}}}, // eu-west-1: never seen, 6h1m since start
	}
	for i, st := range steps {
		clock.advance(st.advance)
		got := h.s.silence.check()
		if fmt.Sprint(got) != fmt.Sprint(st.wantSilent) {
			t.Errorf("step %d (+%v): silent %v, want %v", i, clock.now().Sub(t0), got, st.wantSilent)
		}
		if g := testutil.ToFloat64(h.m.silentRegions); g != float64(len(st.wantSilent)) {
			t.Errorf("step %d: silent_regions = %v, want %d", i, g, len(st.wantSilent))
		}
	}

	// us-east-1 speaks again; a future-dated record counts as now.
	q.send(regionRecord("e5", "us-east-1", clock.now().Add(24*time.Hour)))
	h.waitDrained(t, 10*time.Second)
	if got := h.s.silence.check(); fmt.Sprint(got) != fmt.Sprint([]pair{{acct, "ap-southeast-2"}, {acct, "eu-west-1"}}) {
		t.Errorf("after us-east-1 spoke: silent %v", got)
	}
	if got, want := last("us-east-1"), float64(clock.now().Unix()); got != want {
		t.Errorf("last event us-east-1 = %v, want now %v (capped)", got, want)
	}
	if g := testutil.ToFloat64(h.m.silentRegions); g != 2 {
		t.Errorf("silent_regions = %v, want 2", g)
	}
	checkEMF(t, h.log.String(), clock.now(), 2)
	log := h.log.String()
	for _, want := range []string{`"region":"eu-west-1","silence_after":21600000,"last_event":"never"`, `"message":"silence: events again"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

// checkEMF: the last "silence metric" line is a CloudWatch embedded metric
// format record of SilentRegions = want at now, with the queue's name as
// its dimension.
func checkEMF(t *testing.T, log string, now time.Time, want int) {
	t.Helper()
	var last string
	for line := range strings.Lines(log) {
		if strings.Contains(line, `"message":"silence metric"`) {
			last = line
		}
	}
	var rec struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		QueueName     string
		SilentRegions *int
	}
	if err := json.Unmarshal([]byte(last), &rec); err != nil {
		t.Fatalf("EMF line %q: %v", last, err)
	}
	m := rec.AWS.CloudWatchMetrics
	if rec.AWS.Timestamp != now.UnixMilli() || len(m) != 1 || m[0].Namespace != EMFNamespace || fmt.Sprint(m[0].Dimensions) != "[[QueueName]]" ||
		len(m[0].Metrics) != 1 || m[0].Metrics[0].Name != "SilentRegions" || m[0].Metrics[0].Unit != "Count" ||
		rec.QueueName != "fake" || rec.SilentRegions == nil || *rec.SilentRegions != want {
		t.Errorf("EMF line %s: want SilentRegions %d at %d for queue fake", last, want, now.UnixMilli())
	}
}
