package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/cloudtrailfake"
	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
)

var (
	threeRegions = []string{"us-east-1", "eu-west-1", "ap-southeast-2"}
	twoAccounts  = []string{"111122223333", "444455556666"}
)

// startFakes serves the corpus's records through the LookupEvents fake (its
// limits enforced, its clock at c's Now) and points the SDK at it.
func startFakes(t *testing.T, c *corpus.Corpus) *cloudtrailfake.Server {
	t.Helper()
	now := c.Config.Now
	srv := cloudtrailfake.New(cloudtrailfake.Config{Now: func() time.Time { return now }})
	t.Cleanup(srv.Close)
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	var recs [][]byte
	for _, ev := range c.All() {
		recs = append(recs, ev.Record)
	}
	if err := srv.CloudTrail.Add(recs...); err != nil {
		t.Fatal(err)
	}
	return srv
}

// lookupCorpus is a corpus LookupEvents can serve whole: its unverifiable
// events (placed past the session retention) stay within the 90-day
// horizon because retention is 30 days.
func lookupCorpus(t *testing.T, seed int64, events int, accounts, regions []string) (*corpus.Corpus, string) {
	t.Helper()
	return loadCorpus(t, corpus.Config{Seed: seed, Events: events, Now: testNow, Window: 72 * time.Hour,
		Retention: 30 * 24 * time.Hour, Accounts: accounts, Regions: regions, OutOfScope: 30})
}

// assertFindings checks that res holds exactly the expected findings of the
// corpus events keep selects, each once.
func assertFindings(t testing.TB, c *corpus.Corpus, res result, keep func(corpus.Event) bool) {
	t.Helper()
	want := map[string]classify.Verdict{}
	for _, ev := range c.Findings() {
		if keep == nil || keep(ev) {
			want[ev.ID] = ev.Expected
		}
	}
	got := map[string]classify.Verdict{}
	for _, f := range res.findings {
		if _, dup := got[f.Event.ID]; dup {
			t.Errorf("event %s reported twice", f.Event.ID)
		}
		got[f.Event.ID] = f.Category
	}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("event %s: got %q, want %q", id, got[id], v)
		}
	}
	for id, v := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("event %s: unexpected finding %q", id, v)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", res.stderr)
	}
}

func eventNamesOf(c *corpus.Corpus) map[string]int {
	names := map[string]int{}
	for _, ev := range c.Events {
		names[ev.Name]++
	}
	return names
}

// TestLookupReproducesCorpus reads a corpus spread over three regions and
// the three event names through the LookupEvents fake, with its limits, and
// finds exactly the expected findings; the limit is never exceeded.
func TestLookupReproducesCorpus(t *testing.T) {
	c, table := lookupCorpus(t, 21, 450, nil, threeRegions)
	if names := eventNamesOf(c); len(names) != 3 {
		t.Fatalf("corpus covers event names %v, want all three", names)
	}
	srv := startFakes(t, c)
	summaryPath := filepath.Join(t.TempDir(), "summary.json")
	res := runBackfill(t, append([]string{"--table", table, "--regions", strings.Join(threeRegions, ","),
		"--session-retention", "30d", "--summary-json", summaryPath}, window(c)...)...)
	if res.code != exitFindings {
		t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, exitFindings, res.stderr)
	}
	assertFindings(t, c, res, nil)

	total := srv.CloudTrail.TotalStats()
	if total.Throttled != 0 {
		t.Errorf("fake throttled %d calls", total.Throttled)
	}
	for _, r := range threeRegions {
		// Paced at 2 calls a second: the accepted calls span at least
		// half a second each, less 100 ms of delivery jitter.
		st := srv.CloudTrail.Stats(cloudtrailfake.DefaultAccount, r)
		minSpan := time.Duration(st.Accepted-1)*500*time.Millisecond - 100*time.Millisecond
		if st.Pages == 0 || st.Last.Sub(st.First) < minSpan {
			t.Errorf("region %s: %d calls in %s (%.2f calls/s; limit 2)", r, st.Accepted, st.Last.Sub(st.First), st.Rate())
		}
	}
	var sum summaryJSON
	b, err := os.ReadFile(summaryPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.InScope != int64(len(c.Events)) || sum.Findings != int64(len(c.Findings())) || sum.APICalls < sum.Units ||
		sum.Throttles != 0 || len(sum.Regions) != 3 || sum.TrackedRate == nil || sum.Source != "lookup" {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(res.stderr, "throttles       0") || !strings.Contains(res.stderr, "regions         us-east-1,eu-west-1,ap-southeast-2") {
		t.Errorf("summary:\n%s", res.stderr)
	}
}

// TestLookupAccountsThroughSTS reads two accounts by assuming a role in
// each through the STS fake (and the organization's account list, and each
// account's enabled regions); an account whose role cannot be assumed is
// reported and the others are still read.
func TestLookupAccountsThroughSTS(t *testing.T) {
	regions := []string{"us-east-1", "eu-west-1"}
	c, table := lookupCorpus(t, 22, 300, twoAccounts, regions)
	srv := startFakes(t, c)
	for _, a := range twoAccounts {
		srv.STS.AllowRole(a, "sessionwatch-audit")
		srv.Account.SetRegions(a, [2]string{"us-east-1", "ENABLED_BY_DEFAULT"}, [2]string{"eu-west-1", "ENABLED_BY_DEFAULT"},
			[2]string{"af-south-1", "DISABLED"})
	}
	base := append([]string{"--table", table, "--session-retention", "30d", "--assume-role-name", "sessionwatch-audit"}, window(c)...)

	t.Run("listed accounts", func(t *testing.T) {
		res := runBackfill(t, append(base, "--accounts", strings.Join(twoAccounts, ","), "--regions", strings.Join(regions, ","))...)
		if res.code != exitFindings {
			t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
		}
		assertFindings(t, c, res, nil)
		for _, a := range twoAccounts {
			if srv.STS.Calls(a) == 0 {
				t.Errorf("no role assumed in %s", a)
			}
		}
	})
	t.Run("organization and enabled regions", func(t *testing.T) {
		for _, a := range twoAccounts {
			srv.Organizations.AddAccount(a, "ACTIVE")
		}
		srv.Organizations.AddAccount("999900001111", "SUSPENDED")
		res := runBackfill(t, append(base, "--accounts", "org", "--regions", "all")...)
		if res.code != exitFindings {
			t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
		}
		assertFindings(t, c, res, nil)
	})
	t.Run("a failing account", func(t *testing.T) {
		const denied = "777788889999" // no role to assume there
		res := runBackfill(t, append(base, "--accounts", strings.Join(append([]string{denied}, twoAccounts...), ","),
			"--regions", strings.Join(regions, ","))...)
		if res.code != exitError {
			t.Errorf("exit %d, want %d", res.code, exitError)
		}
		assertFindings(t, c, res, nil) // the other accounts are complete
		if !strings.Contains(res.stderr, "failed          1") || !strings.Contains(res.stderr, denied+": assume arn:aws:iam::"+denied+":role/sessionwatch-audit") ||
			!strings.Contains(res.stderr, "AccessDenied") {
			t.Errorf("summary does not report the failed account:\n%s", res.stderr)
		}
	})
}

// TestFailOn: only findings below --fail-on exit 0; at or above, 1.
func TestFailOn(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 9, Events: 60, Now: testNow,
		Mix: map[classify.Verdict]int{classify.Tracked: 2, classify.Unverifiable: 1, classify.DeniedAttempt: 1}})
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(path, corpus.LogFile(c.All(), false), 0o600); err != nil {
		t.Fatal(err)
	}
	for failOn, want := range map[string]int{"high": exitClean, "critical": exitClean, "medium": exitFindings, "low": exitFindings} {
		res := runBackfill(t, append([]string{"--source", "file:" + path, "--table", table, "--fail-on", failOn}, window(c)...)...)
		if res.code != want || len(res.findings) == 0 {
			t.Errorf("--fail-on %s: exit %d with %d findings, want exit %d", failOn, res.code, len(res.findings), want)
		}
	}
}

func TestBadBackfillFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--table", "t", "--fail-on", "severe"},
		{"--table", "t", "--regions", "all,us-east-1"},
		{"--table", "t", "--accounts", "org,111122223333"},
		{"--table", "t", "--accounts", "111122223333,444455556666"}, // several accounts, no role to assume
		{"--table", "t", "--accounts", "org"},
		{"--table", "t", "--source", "s3://b", "--assume-role-name", "audit"},
		{"--table", "t", "--source", "s3:/b"},
		{"--table", "t", "--format", "xml"},
		{"--table", "t", "--event-names", ","},
		{"--table", "t", "--cache-entries", "0"},
	} {
		if res := runBackfill(t, args...); res.code != exitError {
			t.Errorf("%v: exit %d, want %d", args, res.code, exitError)
		}
	}
}

// TestLookupBacksOffWhenThrottled: another caller takes half of the
// account's LookupEvents limit (the fake allows 1 call a second): the
// backfill is throttled, backs off, and still reads everything.
func TestLookupBacksOffWhenThrottled(t *testing.T) {
	c, table := lookupCorpus(t, 23, 120, nil, []string{"eu-west-1"})
	now := c.Config.Now
	srv := cloudtrailfake.New(cloudtrailfake.Config{Now: func() time.Time { return now }, LookupRate: 1, LookupBurst: 1})
	t.Cleanup(srv.Close)
	for k, v := range srv.Env() {
		t.Setenv(k, v)
	}
	var recs [][]byte
	for _, ev := range c.All() {
		recs = append(recs, ev.Record)
	}
	if err := srv.CloudTrail.Add(recs...); err != nil {
		t.Fatal(err)
	}
	summaryPath := filepath.Join(t.TempDir(), "summary.json")
	res := runBackfill(t, append([]string{"--table", table, "--regions", "eu-west-1", "--session-retention", "30d", "--summary-json", summaryPath}, window(c)...)...)
	if res.code != exitFindings {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	assertFindings(t, c, res, nil)
	var sum summaryJSON
	if b, err := os.ReadFile(summaryPath); err != nil || json.Unmarshal(b, &sum) != nil {
		t.Fatalf("summary: %v", err)
	}
	// Outcomes, not exact counts: the SDK may retry a call the fake
	// already answered.
	if fake := srv.CloudTrail.TotalStats(); fake.Throttled == 0 || sum.Throttles == 0 || sum.APICalls < sum.Units+sum.Throttles {
		t.Errorf("summary: %d calls, %d throttles, %d pages; the fake throttled %d", sum.APICalls, sum.Throttles, sum.Units, fake.Throttled)
	}
}
