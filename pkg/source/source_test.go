package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/sessionwatch/sessionwatch/internal/cloudtrailfake"
	ct "github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

var (
	t0    = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	since = t0.Add(-24 * time.Hour)
)

func TestSequenceCommitsInOrder(t *testing.T) {
	s := newSequence[string]()
	a, b, c := s.start(), s.start(), s.start()
	if got, pending := s.finish(c, "c"); len(got) != 0 || !slices.Equal(pending, []string{"c"}) {
		t.Fatalf("c first: committed %v pending %v", got, pending)
	}
	if got, _ := s.finish(b, "b"); len(got) != 0 {
		t.Fatalf("b before a: committed %v", got)
	}
	if got, pending := s.finish(a, "a"); !slices.Equal(got, []string{"a", "b", "c"}) || len(pending) != 0 {
		t.Fatalf("a last: committed %v pending %v", got, pending)
	}
}

func TestAckCallsDoneOnce(t *testing.T) {
	n := 0
	a := NewAck(func() { n++ })
	for range 3 {
		a.Hold()
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(a.Release)
	}
	wg.Wait()
	if n != 0 {
		t.Fatal("done before the source closed the unit")
	}
	a.Close()
	if n != 1 {
		t.Fatalf("done called %d times", n)
	}
}

func TestCheckpointResumeAndComplete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.json")
	cp, err := OpenCheckpoint(path, "lookup", "", since, t0)
	if err != nil || cp.Resumed() {
		t.Fatalf("new checkpoint: %v resumed=%v", err, cp.Resumed())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()
	pos := LookupPosition{Oldest: t0.Add(-time.Hour), IDsAtOldest: []string{"a", "b"}, Pages: 3, Events: 120}
	if err := cp.Persist(cp.SetLookup("default/us-east-1/AssumeRole", pos)); err != nil {
		t.Fatal(err)
	}
	if err := cp.Persist(cp.SetKeys("k2", []string{"k5", "k4"})); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A rerun with another window resumes the stopped run's window.
	again, err := OpenCheckpoint(path, "lookup", "", since.Add(time.Hour), t0.Add(time.Hour))
	if err != nil || !again.Resumed() {
		t.Fatalf("reopen: %v resumed=%v", err, again.Resumed())
	}
	if s, u := again.Window(); !s.Equal(since) || !u.Equal(t0) {
		t.Errorf("window %s..%s, want the first run's", s, u)
	}
	if got := again.Lookup("default/us-east-1/AssumeRole"); !got.Oldest.Equal(pos.Oldest) || !slices.Equal(got.IDsAtOldest, pos.IDsAtOldest) || got.Pages != 3 {
		t.Errorf("position %+v, want %+v", got, pos)
	}
	if through, done := again.Keys(); through != "k2" || !done["k4"] || !done["k5"] {
		t.Errorf("keys %q %v", through, done)
	}
	if _, err := OpenCheckpoint(path, "s3://bucket", "", since, t0); !errors.Is(err, ErrCheckpointMismatch) {
		t.Errorf("another source: %v", err)
	}
	// Another scope (here more regions) would skip what the first run
	// left out of its scope: refused.
	if _, err := OpenCheckpoint(path, "lookup", "regions=eu-west-1,us-east-1", since, t0); !errors.Is(err, ErrCheckpointMismatch) {
		t.Errorf("another scope: %v", err)
	}

	// A finished run's checkpoint starts a new run.
	if err := again.Complete(); err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenCheckpoint(path, "lookup", "", since.Add(time.Hour), t0.Add(time.Hour))
	if err != nil || fresh.Resumed() || fresh.Lookup("default/us-east-1/AssumeRole").Pages != 0 {
		t.Errorf("after completion: %v resumed=%v", err, fresh.Resumed())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestKeyTrackerKeepsEarlierKeys(t *testing.T) {
	cp, err := OpenCheckpoint(filepath.Join(t.TempDir(), "c"), "s3://b", "", since, t0)
	if err != nil {
		t.Fatal(err)
	}
	// The run resumed had finished k1 and k4 (k2, k3 not).
	resumedDone := map[string]bool{"k4": true}
	kt := newKeyTracker(cp, "k1", resumedDone)
	k2, k3 := objectKey{"k2", kt.seq.start()}, objectKey{"k3", kt.seq.start()}
	kt.finish(k3)
	if through, done := cp.Keys(); through != "k1" || !done["k3"] || !done["k4"] {
		t.Fatalf("after k3: %q %v", through, done)
	}
	kt.finish(k2)
	if through, done := cp.Keys(); through != "k3" || len(done) != 1 || !done["k4"] {
		t.Fatalf("after k2: %q %v", through, done)
	}
	// The lister reads the map it passed while keys finish on other
	// goroutines: the tracker must prune a copy, never the caller's map.
	kt.finish(objectKey{"k5", kt.seq.start()})
	if !resumedDone["k4"] || len(resumedDone) != 1 {
		t.Errorf("the caller's done map changed: %v", resumedDone)
	}
}

func TestDeliveryTimeAndURIs(t *testing.T) {
	key := "p/AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/2026/11/01/111122223333_CloudTrail_eu-west-1_20261101T1205Z_AbCdEfGh12345678.json.gz"
	if got, ok := deliveryTime(key); !ok || !got.Equal(time.Date(2026, 11, 1, 12, 5, 0, 0, time.UTC)) {
		t.Errorf("delivery time %v %v", got, ok)
	}
	if _, ok := deliveryTime("AWSLogs/x/notes.json"); ok {
		t.Error("a name without a time parsed")
	}
	for uri, want := range map[string][2]string{"s3://b": {"b", ""}, "s3://b/p/q/": {"b", "p/q/"}} {
		b, p, err := ParseS3URI(uri)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("%s: %q %q %v", uri, b, p, err)
		}
	}
	for _, bad := range []string{"s3:/b", "http://b/p", "s3:///p"} {
		if _, _, err := ParseS3URI(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if got := RoleARN(Partition("cn-north-1"), "111122223333", "audit"); got != "arn:aws-cn:iam::111122223333:role/audit" {
		t.Errorf("role ARN %s", got)
	}
}

// TestLookupResumesAtTheSecond resumes a stream whose last finished page
// ended in the middle of a second: the events of that second already read
// are skipped, the others are read.
func TestLookupResumesAtTheSecond(t *testing.T) {
	srv := cloudtrailfake.New(cloudtrailfake.Config{Now: func() time.Time { return t0 }, LookupRate: 1000, LookupBurst: 1000})
	t.Cleanup(srv.Close)
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	boundary := t0.Add(-2 * time.Hour)
	var all []string
	for i := range 6 { // e0..e5, e2..e4 in the same second
		at := t0.Add(-time.Duration(i) * time.Hour)
		if i >= 2 && i <= 4 {
			at = boundary
		}
		id := fmt.Sprintf("e%d", i)
		all = append(all, id)
		rec := fmt.Appendf(nil, `{"eventID":%q,"eventName":"AssumeRole","eventSource":"sts.amazonaws.com","eventTime":%q,"awsRegion":"us-east-1","recipientAccountId":"111122223333","requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/x"}}`,
			id, at.Format(time.RFC3339))
		if err := srv.CloudTrail.Add(rec); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := OpenCheckpoint(filepath.Join(t.TempDir(), "c"), "lookup", "", since, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// The run stopped after a page that ended with e0, e1 and two events
	// of the boundary second.
	ids := slices.Clone(all[2:5])
	slices.Sort(ids)
	cp.SetLookup(StreamKey("", "us-east-1", "AssumeRole"), LookupPosition{Oldest: boundary, IDsAtOldest: ids[1:], Pages: 1, Events: 4})
	skipped := ids[1:]

	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewLookup(LookupConfig{AWS: cfg, EventNames: []string{"AssumeRole"}, Since: since, Until: t0.Add(time.Second),
		Decoder: ct.NewDecoder(ct.Config{}), Checkpoint: cp})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = src.Run(context.Background(), func(_ context.Context, r Record) error {
		got = append(got, r.Event.ID)
		r.Ack.Release()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ids[0], "e5"}
	if !slices.Equal(got, want) {
		t.Errorf("resumed run read %v, want %v (skipping %v)", got, want, skipped)
	}
	if pos := cp.Lookup(StreamKey("", "us-east-1", "AssumeRole")); !pos.Done || pos.Events != 6 {
		t.Errorf("final position %+v", pos)
	}
	if src.Stats().APICalls.Load() == 0 {
		t.Error("no call counted")
	}
}

// FuzzOpenCheckpoint: a checkpoint file of any content is either refused
// or opened with a window that reads something; the accessors never panic.
func FuzzOpenCheckpoint(f *testing.F) {
	f.Add([]byte(`{"version":1,"source":"lookup","since":"2026-11-01T00:00:00Z","until":"2026-11-02T00:00:00Z","lookups":{"111122223333/us-east-1/AssumeRole":{"oldest":"2026-11-01T12:00:00Z","ids_at_oldest":["a"]}},"keys":{"done_through":"k","done":["z"]}}`))
	f.Add([]byte(`{"version":1,"source":"lookup","since":"2026-11-02T00:00:00Z","until":"2026-11-01T00:00:00Z"}`))
	f.Add([]byte(`{"version":1,"source":"lookup","lookups":{"x":null},"keys":null}`))
	f.Add([]byte(`not json`))
	since, until := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "checkpoint.json")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		cp, err := OpenCheckpoint(path, "lookup", "", since, until)
		if err != nil {
			return
		}
		s, u := cp.Window()
		if s.IsZero() || !s.Before(u) {
			t.Fatalf("opened with window %v to %v", s, u)
		}
		_ = cp.Lookup("111122223333/us-east-1/AssumeRole")
		_, _ = cp.Keys()
		cp.SetLookup("x", LookupPosition{})
		cp.SetKeys("k", []string{"b", "a"})
	})
}
