package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/htmlcheck"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

var corpusNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// add adds ev to acc as the backfill does: a finding rendered once, at
// corpusNow, as its sinks get it.
func add(acc *Accumulator, ev *cloudtrail.Event, r classify.Result) {
	if !r.IsFinding() {
		acc.Add(ev, r, nil)
		return
	}
	f := sink.NewFinding(ev, r, sink.DetectorBackfill, corpusNow)
	acc.Add(ev, r, &f)
}

// classified is a corpus event decoded, with the classification the
// corpus says the classifier must reach.
type classified struct {
	src corpus.Event
	ev  *cloudtrail.Event
	r   classify.Result
}

// expectedResults decodes a corpus and pairs each in-scope event with a
// Result carrying its expected verdict (and the session it was built
// around, for the profile), as the classifier would.
func expectedResults(t testing.TB, cfg corpus.Config) (*corpus.Corpus, []classified) {
	t.Helper()
	c, err := corpus.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*sessions.Session{}
	for i := range c.Sessions {
		byID[c.Sessions[i].ID] = &c.Sessions[i]
	}
	out := make([]classified, 0, len(c.Events))
	for _, src := range c.Events {
		ev, err := cloudtrail.DecodeRecord(src.Record)
		if err != nil {
			t.Fatalf("%s: %v", src.ID, err)
		}
		r := classify.Result{Verdict: src.Expected, Reason: "expected " + src.Case, Session: byID[src.SessionID]}
		if src.Expected.IsFinding() {
			r.Severity = src.Expected.DefaultSeverity()
			r.FindingID = classify.FindingID(ev.DedupKey(), src.Expected)
		}
		out = append(out, classified{src, ev, r})
	}
	return c, out
}

func reportCorpusConfig() corpus.Config {
	return corpus.Config{Seed: 42, Events: 2400, Now: corpusNow, Window: 6 * 24 * time.Hour,
		Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-west-1", "ap-southeast-2"}}
}

// TestSummaryNumbersFromCorpus: totals, per verdict, per day (events,
// tracked, findings, per verdict, tracked rate), per account and region and
// the top callers equal what is computed here straight from the corpus.
func TestSummaryNumbersFromCorpus(t *testing.T) {
	c, evs := expectedResults(t, reportCorpusConfig())
	oldest, newest := c.Span()
	acc := NewAccumulator(Config{Window: [2]time.Time{oldest, newest.Add(time.Second)}, Sources: []string{"corpus"}, MaxFindings: -1})
	// Several workers, as in the backfill: the order must not matter.
	var wg sync.WaitGroup
	work := make(chan classified)
	for range 4 {
		wg.Go(func() {
			for x := range work {
				add(acc, x.ev, x.r)
			}
		})
	}
	for _, x := range evs {
		work <- x
	}
	close(work)
	wg.Wait()
	s := acc.Summary()

	// Independently: from the corpus's own fields (Time, Account, Region,
	// Expected) and, for callers, the raw JSON of each record.
	type tally struct{ events, tracked, findings int }
	perDay := map[string]*tally{}
	perDayVerdict := map[string]map[classify.Verdict]int{}
	perAR := map[[2]string]*tally{}
	callers := map[string]int{}
	tracked, findings := 0, 0
	for _, e := range c.Events {
		day := e.Time.UTC().Format("2006-01-02")
		if perDay[day] == nil {
			perDay[day], perDayVerdict[day] = &tally{}, map[classify.Verdict]int{}
		}
		ar := [2]string{e.Account, e.Region}
		if perAR[ar] == nil {
			perAR[ar] = &tally{}
		}
		perDay[day].events++
		perAR[ar].events++
		perDayVerdict[day][e.Expected]++
		if e.Expected == classify.Tracked {
			tracked++
			perDay[day].tracked++
			perAR[ar].tracked++
			continue
		}
		findings++
		perDay[day].findings++
		perAR[ar].findings++
		var rec struct {
			UserIdentity struct {
				ARN         string `json:"arn"`
				PrincipalID string `json:"principalId"`
			} `json:"userIdentity"`
		}
		if err := json.Unmarshal(e.Record, &rec); err != nil {
			t.Fatal(err)
		}
		caller := rec.UserIdentity.ARN
		if caller == "" {
			caller = rec.UserIdentity.PrincipalID
		}
		callers[caller]++
	}

	if s.Classified != len(c.Events) || s.Tracked != tracked || s.Findings != findings || s.FindingsOnly {
		t.Fatalf("classified %d tracked %d findings %d findingsOnly %v; want %d %d %d false",
			s.Classified, s.Tracked, s.Findings, s.FindingsOnly, len(c.Events), tracked, findings)
	}
	if !maps.Equal(s.PerVerdict, c.Counts()) {
		t.Errorf("PerVerdict = %v, want %v", s.PerVerdict, c.Counts())
	}
	if rate, ok := s.TrackedRate(); !ok || rate != float64(tracked)/float64(len(c.Events)) {
		t.Errorf("TrackedRate() = %v, %v; want %v", rate, ok, float64(tracked)/float64(len(c.Events)))
	}
	sev := map[string]int{}
	for _, e := range c.Findings() {
		sev[e.Expected.DefaultSeverity().String()]++
	}
	if !maps.Equal(s.PerSeverity, sev) {
		t.Errorf("PerSeverity = %v, want %v", s.PerSeverity, sev)
	}

	// Every day from the first to the last, in order, empty days included
	// (the corpus's unverifiable events lie days before the others).
	first := oldest.UTC().Truncate(24 * time.Hour)
	last := newest.UTC().Truncate(24 * time.Hour)
	if want := int(last.Sub(first)/(24*time.Hour)) + 1; len(s.PerDay) != want {
		t.Fatalf("%d days, want %d", len(s.PerDay), want)
	}
	seen := 0
	for i, d := range s.PerDay {
		if want := first.Add(time.Duration(i) * 24 * time.Hour); !d.Date.Equal(want) {
			t.Fatalf("day %d is %s, want %s", i, d.Date, want)
		}
		key := d.Date.Format("2006-01-02")
		want := perDay[key]
		if want == nil {
			if d.Events != 0 || d.Findings != 0 || len(d.PerVerdict) != 0 {
				t.Errorf("%s: %+v, want an empty day", key, d)
			}
			if _, ok := d.TrackedRate(); ok {
				t.Errorf("%s: an empty day has a tracked rate", key)
			}
			continue
		}
		seen++
		if d.Events != want.events || d.Tracked != want.tracked || d.Findings != want.findings {
			t.Errorf("%s: events %d tracked %d findings %d, want %d %d %d", key, d.Events, d.Tracked, d.Findings, want.events, want.tracked, want.findings)
		}
		if !maps.Equal(d.PerVerdict, perDayVerdict[key]) {
			t.Errorf("%s: per verdict %v, want %v", key, d.PerVerdict, perDayVerdict[key])
		}
		if rate, ok := d.TrackedRate(); !ok || rate != float64(want.tracked)/float64(want.events) {
			t.Errorf("%s: tracked rate %v, want %d/%d", key, rate, want.tracked, want.events)
		}
	}
	if seen != len(perDay) || seen < 5 {
		t.Errorf("%d days with events in the summary, %d in the corpus", seen, len(perDay))
	}

	if len(s.AccountRegions) != len(perAR) {
		t.Errorf("%d account/region pairs, want %d", len(s.AccountRegions), len(perAR))
	}
	for i, ar := range s.AccountRegions {
		want := perAR[[2]string{ar.Account, ar.Region}]
		if want == nil || ar.Events != want.events || ar.Tracked != want.tracked || ar.Findings != want.findings {
			t.Errorf("%s %s: %+v, want %+v", ar.Account, ar.Region, ar, want)
		}
		if i > 0 && ar.Findings > s.AccountRegions[i-1].Findings {
			t.Errorf("account/region pairs not ordered by findings")
		}
	}

	wantTop := top(callers, DefaultTopN)
	if !slices.Equal(s.TopCallers, wantTop) {
		t.Errorf("TopCallers = %v, want %v", s.TopCallers, wantTop)
	}
	if len(s.TopRoles) != DefaultTopN {
		t.Errorf("%d top roles", len(s.TopRoles))
	}
	if got := acc.Findings(); len(got) != 0 {
		t.Errorf("MaxFindings < 0 kept %d findings", len(got))
	}
}

// TestSummaryFilteredCorpus runs the backfill's sequence (filter events,
// classify, filter results, Add) and checks that every event is either
// counted or dropped by exactly one filter.
func TestSummaryFilteredCorpus(t *testing.T) {
	c, evs := expectedResults(t, reportCorpusConfig())
	f, err := NewFilter(FilterConfig{Accounts: []string{"111122223333"}, Roles: []string{"*:role/Sentinel*"}, Profiles: []string{"prod-*", "dev"}})
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAccumulator(Config{Filter: f})
	wantKept, wantAccount, wantRole, wantProfile := 0, 0, 0, 0
	for _, x := range evs {
		// Independently: plain string tests on the corpus's fields (its
		// roles have no path).
		switch role := x.ev.TargetRoleARN; {
		case x.src.Account != "111122223333":
			wantAccount++
		case !strings.Contains(role, ":role/Sentinel"):
			wantRole++
		case x.r.Session == nil || !(x.r.Session.Profile == "dev" || strings.HasPrefix(x.r.Session.Profile, "prod-")):
			wantProfile++
		default:
			wantKept++
		}
		if !f.KeepEvent(x.ev) || !f.KeepResult(x.r) {
			continue
		}
		add(acc, x.ev, x.r)
	}
	s := acc.Summary()
	if s.Classified != wantKept || s.Filtered[FilterAccount] != wantAccount || s.Filtered[FilterRole] != wantRole || s.Filtered[FilterProfile] != wantProfile {
		t.Errorf("classified %d, filtered %v; want %d, account %d role %d profile %d", s.Classified, s.Filtered, wantKept, wantAccount, wantRole, wantProfile)
	}
	if s.Classified+s.FilteredTotal() != len(c.Events) || wantKept == 0 || wantRole == 0 || wantProfile == 0 {
		t.Errorf("%d classified + %d filtered != %d events", s.Classified, s.FilteredTotal(), len(c.Events))
	}
	if len(s.Filters) != 4 {
		t.Errorf("Filters = %v", s.Filters)
	}
}

// TestAccumulatorKeepsMostSevere: past MaxFindings the kept findings are
// the most severe, then the most recent, whatever order they came in;
// totals still count everything.
func TestAccumulatorKeepsMostSevere(t *testing.T) {
	_, evs := expectedResults(t, reportCorpusConfig())
	const limit = 100
	var want []classified
	for _, x := range evs {
		if x.r.IsFinding() {
			want = append(want, x)
		}
	}
	slices.SortFunc(want, func(a, b classified) int {
		ra := rank{a.r.Severity, a.ev.Time, a.r.FindingID, a.ev.ID}
		rb := rank{b.r.Severity, b.ev.Time, b.r.FindingID, b.ev.ID}
		if ra.before(rb) {
			return -1
		}
		return 1
	})
	wantIDs := map[string]bool{}
	for _, x := range want[:limit] {
		wantIDs[x.ev.ID] = true
	}

	for _, order := range []string{"forward", "reverse"} {
		acc := NewAccumulator(Config{MaxFindings: limit})
		in := slices.Clone(evs)
		if order == "reverse" {
			slices.Reverse(in)
		}
		for _, x := range in {
			add(acc, x.ev, x.r)
		}
		got := acc.Findings()
		if len(got) != limit || acc.Summary().Findings != len(want) {
			t.Fatalf("%s: kept %d of %d findings", order, len(got), acc.Summary().Findings)
		}
		for i, f := range got {
			if !wantIDs[f.Event.ID] {
				t.Errorf("%s: kept %s (%s, %s), not among the %d most severe", order, f.Event.ID, f.Severity, f.Event.Time, limit)
			}
			if i > 0 && f.Event.Time.Before(got[i-1].Event.Time) {
				t.Errorf("%s: findings not in time order", order)
			}
			if f.Detector != sink.DetectorBackfill || !f.DetectedAt.Equal(corpusNow) {
				t.Errorf("%s: detector %s detected %s", order, f.Detector, f.DetectedAt)
			}
		}
	}
}

// TestAddFindingFromFile: from findings alone the tracked rate is unknown,
// redeliveries count once, and both copies of a cross-account call (same
// finding id, different events) count twice.
func TestAddFindingFromFile(t *testing.T) {
	_, evs := expectedResults(t, corpus.Config{Seed: 3, Events: 300, Now: corpusNow, Accounts: []string{"111122223333", "444455556666"}})
	acc := NewAccumulator(Config{Sources: []string{"findings:x.jsonl"}})
	n, ids := 0, map[string]int{}
	for _, x := range evs {
		if !x.r.IsFinding() {
			continue
		}
		f := sink.NewFinding(x.ev, x.r, sink.DetectorStreamer, x.ev.Time)
		if !acc.AddFinding(f) {
			t.Fatalf("first copy of %s dropped", f.FindingID)
		}
		if acc.AddFinding(f) { // a redelivery
			t.Fatalf("redelivery of %s counted", f.FindingID)
		}
		ids[f.FindingID]++
		n++
	}
	s := acc.Summary()
	if s.Findings != n || s.Duplicates != n || !s.FindingsOnly || s.Classified != 0 || s.Tracked != 0 {
		t.Fatalf("findings %d duplicates %d findingsOnly %v classified %d; want %d %d true 0", s.Findings, s.Duplicates, s.FindingsOnly, s.Classified, n, n)
	}
	shared := 0
	for _, k := range ids {
		if k > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("the corpus has no cross-account pair; the test lost its point")
	}
	if _, ok := s.TrackedRate(); ok {
		t.Error("a tracked rate from findings alone")
	}
	for _, d := range s.PerDay {
		if _, ok := d.TrackedRate(); ok || d.Events != 0 {
			t.Errorf("%s: events %d, a tracked rate from findings alone", d.Date, d.Events)
		}
	}
	if s.PerVerdict[classify.Tracked] != 0 {
		t.Error("tracked counted from findings")
	}
}

// TestAddFindingDedupesBeforeFiltering: a redelivery counts as a
// duplicate whether or not the filter would drop it, and the filter counts
// each finding once.
func TestAddFindingDedupesBeforeFiltering(t *testing.T) {
	flt, err := NewFilter(FilterConfig{Roles: []string{"*SentinelAdmin"}})
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAccumulator(Config{Filter: flt})
	for range 3 {
		for _, f := range tableFindings() {
			acc.AddFinding(f)
		}
	}
	s := acc.Summary()
	// Of the four, one targets SentinelAdmin; each arrives three times.
	if s.Findings != 1 || s.Duplicates != 8 || s.Filtered[FilterRole] != 3 {
		t.Errorf("findings %d duplicates %d filtered %v; want 1, 8, role 3", s.Findings, s.Duplicates, s.Filtered)
	}
	if got := acc.Findings(); len(got) != 1 || got[0].FindingID != "f3" {
		t.Errorf("kept %v", got)
	}
}

// TestAccumulatorHostileInputStaysBounded: unknown categories fold into
// "other", and per-key tallies stop growing at maxKeys.
func TestAccumulatorHostileInputStaysBounded(t *testing.T) {
	acc := NewAccumulator(Config{MaxFindings: 10})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxKeys + 50 {
		acc.AddFinding(sink.Finding{
			FindingID: fmt.Sprint("f", i), Category: classify.Verdict(fmt.Sprint("made-up-", i)), Severity: fmt.Sprint("sev", i),
			Event:     sink.EventInfo{ID: fmt.Sprint("e", i), Time: t0.Add(time.Duration(i) * time.Hour), Account: fmt.Sprint(i), Region: "r"},
			Principal: sink.PrincipalInfo{ARN: fmt.Sprint("caller-", i)}, Target: sink.TargetInfo{RoleARN: fmt.Sprint("role-", i)},
		})
	}
	s := acc.Summary()
	if s.Findings != maxKeys+50 || s.PerVerdict[VerdictOther] != maxKeys+50 || len(s.PerVerdict) != 1 {
		t.Errorf("findings %d, per verdict %d keys", s.Findings, len(s.PerVerdict))
	}
	if len(acc.callers) > maxKeys || len(acc.roles) > maxKeys || len(acc.accRegions) > maxKeys || len(acc.perSeverity) > maxKeys || len(acc.days) > maxKeys {
		t.Errorf("tallies grew past %d keys", maxKeys)
	}
	if acc.callers[otherKey] != 51 {
		t.Errorf("%d callers under %s, want 51", acc.callers[otherKey], otherKey)
	}
	if len(acc.Findings()) != 10 {
		t.Errorf("kept %d findings", len(acc.Findings()))
	}
}

// ExampleAccumulator is the backfill's use: filter, classify, filter,
// accumulate; then the driver's own counters, then render.
func ExampleAccumulator() {
	flt, _ := NewFilter(FilterConfig{Roles: []string{"arn:aws:iam::*:role/Sentinel*"}})
	acc := NewAccumulator(Config{Sources: []string{"file:./trail"}, Filter: flt})
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	events := []*cloudtrail.Event{
		{ID: "a", Time: t0, Account: "111122223333", TargetRoleARN: "arn:aws:iam::111122223333:role/SentinelAdmin"},
		{ID: "b", Time: t0.Add(time.Hour), Account: "111122223333", TargetRoleARN: "arn:aws:iam::111122223333:role/SentinelAdmin"},
		{ID: "c", Time: t0.Add(2 * time.Hour), Account: "111122223333", TargetRoleARN: "arn:aws:iam::111122223333:role/Other"},
	}
	verdicts := map[string]classify.Verdict{"a": classify.Tracked, "b": classify.NoSourceIdentity}
	for _, ev := range events {
		if !flt.KeepEvent(ev) { // before the session store is asked
			continue
		}
		r := classify.Result{Verdict: verdicts[ev.ID], Severity: verdicts[ev.ID].DefaultSeverity()} // classifier.Classify(ctx, ev)
		if !flt.KeepResult(r) {
			continue
		}
		var f *sink.Finding // what the sinks got: the report shows it as is
		if r.IsFinding() {
			rendered := sink.NewFinding(ev, r, sink.DetectorBackfill, t0.Add(3*time.Hour))
			f = &rendered
		}
		acc.Add(ev, r, f)
	}
	s := acc.Summary()
	s.Events, s.InScope = 3, 3 // the driver's counters
	rate, _ := s.TrackedRate()
	fmt.Printf("classified %d, tracked %d, findings %d, filtered %v, tracked rate %.0f%%\n", s.Classified, s.Tracked, s.Findings, s.Filtered, 100*rate)
	// Output: classified 2, tracked 1, findings 1, filtered map[role:1], tracked rate 50%
}

// TestAccumulatorKeepsTheFindingGiven: Add shows the finding it is given,
// as given (the sinks' detected_at, not a time of its own), and counts a
// finding verdict given no finding without showing it.
func TestAccumulatorKeepsTheFindingGiven(t *testing.T) {
	ev := &cloudtrail.Event{ID: "e1", Time: corpusNow.Add(-time.Hour), Account: "111122223333", Region: "eu-west-1"}
	r := classify.Result{Verdict: classify.NoSourceIdentity, Severity: classify.SeverityHigh, FindingID: "f1"}
	sunk := sink.NewFinding(ev, r, sink.DetectorBackfill, corpusNow.Add(-42*time.Minute))
	for _, tc := range []struct {
		name  string
		f     *sink.Finding
		shown int
	}{
		{"with the sinks' finding", &sunk, 1},
		{"without a finding", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := NewAccumulator(Config{})
			acc.Add(ev, r, tc.f)
			acc.Add(&cloudtrail.Event{ID: "e2", Time: ev.Time}, classify.Result{Verdict: classify.Tracked}, nil)
			s, got := acc.Summary(), acc.Findings()
			if s.Classified != 2 || s.Tracked != 1 || s.Findings != 1 || s.PerSeverity["high"] != 1 {
				t.Errorf("summary %+v, want 2 classified, 1 tracked, 1 high finding", s)
			}
			if len(got) != tc.shown {
				t.Fatalf("%d findings shown, want %d", len(got), tc.shown)
			}
			if tc.shown > 0 && (!got[0].DetectedAt.Equal(sunk.DetectedAt) || got[0].FindingID != sunk.FindingID) {
				t.Errorf("shown %s detected %s, want the sinks' %s detected %s", got[0].FindingID, got[0].DetectedAt, sunk.FindingID, sunk.DetectedAt)
			}
		})
	}
}

// TestPipelineTamperedIsAKnownVerdict: a pipeline_tampered finding (the
// streamer's findings file carries them) counts under its own verdict, with
// its severity, in the summary, the table and the HTML report; not as an
// unknown category ("other", "as recorded").
func TestPipelineTamperedIsAKnownVerdict(t *testing.T) {
	acc := NewAccumulator(Config{Sources: []string{"findings:streamer.jsonl"}})
	for i, v := range []classify.Verdict{classify.PipelineTampered, classify.Revoked, "from_a_newer_version"} {
		f := sink.Finding{Schema: sink.Schema, FindingID: fmt.Sprintf("f%d", i), Category: v, Severity: v.DefaultSeverity().String(),
			Event: sink.EventInfo{ID: fmt.Sprintf("e%d", i), Time: corpusNow}}
		if !acc.AddFinding(f) {
			t.Fatalf("%s not counted", v)
		}
	}
	s := acc.Summary()
	if s.PerVerdict[classify.PipelineTampered] != 1 || s.PerVerdict[VerdictOther] != 1 || s.PerVerdict[classify.Revoked] != 1 {
		t.Fatalf("per verdict %v, want pipeline_tampered 1, revoked 1, other 1 (the unknown category)", s.PerVerdict)
	}
	if got := verdictOrder(s.PerVerdict); !slices.Equal(got[len(got)-2:], []classify.Verdict{classify.PipelineTampered, VerdictOther}) {
		t.Errorf("verdict order %v, want pipeline_tampered after the contract's verdicts, before other", got)
	}
	if got := verdictOrder(map[classify.Verdict]int{classify.Revoked: 1}); slices.Contains(got, classify.PipelineTampered) {
		t.Errorf("verdict order %v lists pipeline_tampered with none counted", got)
	}

	var table strings.Builder
	if err := WriteTable(&table, acc.Findings(), s, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "pipeline_tampered    1") {
		t.Errorf("the table lacks a pipeline_tampered line:\n%s", table.String())
	}
	_, doc := render(t, s, acc.Findings(), HTMLOptions{Title: "t", GeneratedAt: corpusNow})
	var row string
	htmlcheck.Walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			if text := htmlcheck.Text(n); strings.HasPrefix(strings.TrimSpace(text), "pipeline_tampered") {
				row = text
			}
		}
	})
	if !strings.Contains(row, "high") || strings.Contains(row, "as recorded") {
		t.Errorf("the HTML verdict table's pipeline_tampered row is %q, want severity high", row)
	}
}
