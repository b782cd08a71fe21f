package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/source"
)

// summary counts a run. Counters are atomic: workers update them; the maps
// are filled once, before any worker starts.
type summary struct {
	window        [2]time.Time
	source        string
	regions       []string
	accounts      []string
	started       time.Time
	elapsed       time.Duration
	read          atomic.Int64
	malformed     atomic.Int64
	rejected      atomic.Int64
	outOfScope    atomic.Int64
	outsideWindow atomic.Int64
	inScope       atomic.Int64
	storeErrors   atomic.Int64
	verdicts      map[classify.Verdict]*atomic.Int64
	bySeverity    map[classify.Severity]*atomic.Int64
	findingCount  atomic.Int64
	// filter counts what --account, --role, --principal and --profile
	// dropped; nil or empty when none is set.
	filter *report.Filter

	// findingsOnly: the run read a findings file (--source findings:).
	// read counts its findings, malformed the lines that are not one,
	// inScope the findings inside the window; tracked events are unknown.
	findingsOnly bool
	duplicates   int64 // findings file: redeliveries counted once

	// Set by finish, from the source.
	apiCalls, throttles, units int64
	failures                   []source.Failure
	unreadable                 []source.Unreadable
	// found is the number of log files a file source listed; -1 for the
	// other sources.
	found int
	// deliveries are what each sink accepted and refused, in --sink order
	// (none when findings went to no sink).
	mu         sync.Mutex
	deliveries []sinkDelivery
	// problems are what made the run fail although it got to its end
	// (nothing read), for the summary.
	problems []string
}

func newSummary(o options) *summary {
	s := &summary{window: [2]time.Time{o.since, o.until}, source: o.source, regions: o.regions, accounts: o.accounts,
		started: time.Now(), verdicts: map[classify.Verdict]*atomic.Int64{}, bySeverity: map[classify.Severity]*atomic.Int64{},
		filter: o.filter, findingsOnly: o.sourceKind == sourceFindings, found: -1}
	for _, v := range classify.AllVerdicts() {
		s.verdicts[v] = new(atomic.Int64)
	}
	for sev := classify.SeverityLow; sev <= classify.SeverityCritical; sev++ {
		s.bySeverity[sev] = new(atomic.Int64)
	}
	return s
}

func (s *summary) addVerdict(r classify.Result) { s.addCategory(r.Verdict) }

func (s *summary) addCategory(v classify.Verdict) {
	if c, ok := s.verdicts[v]; ok {
		c.Add(1)
	}
}

func (s *summary) addFinding(sev classify.Severity) {
	s.findingCount.Add(1)
	if c, ok := s.bySeverity[sev]; ok {
		c.Add(1)
	}
}

// sinkDelivery is one sink's tally of findings.
type sinkDelivery struct {
	Sink      string `json:"sink"`
	Delivered int    `json:"delivered"`
	Failed    int    `json:"failed"`
}

func (s *summary) addDelivery(name string, delivered, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.deliveries {
		if s.deliveries[i].Sink == name {
			s.deliveries[i].Delivered += delivered
			s.deliveries[i].Failed += failed
			return
		}
	}
	s.deliveries = append(s.deliveries, sinkDelivery{Sink: name, Delivered: delivered, Failed: failed})
}

func (s *summary) deliveryTally() []sinkDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkDelivery{}, s.deliveries...)
}

func (s *summary) findings() int64 { return s.findingCount.Load() }

// findingsAtOrAbove counts findings of severity min or higher.
func (s *summary) findingsAtOrAbove(min classify.Severity) int64 {
	var n int64
	for sev, c := range s.bySeverity {
		if sev >= min {
			n += c.Load()
		}
	}
	return n
}

// finish takes the source's totals; elapsed is wall-clock time (the
// command's clock, env.now, may be a test's fixed instant).
func (s *summary) finish(st *source.Stats) {
	s.elapsed = time.Since(s.started)
	if st != nil {
		s.apiCalls, s.throttles, s.units = st.APICalls.Load(), st.Throttles.Load(), st.Units.Load()
		s.failures = st.Failures()
		s.unreadable = st.Unreadable()
	}
}

// readNothing says why no record could be read, or "" when some was. A
// window with no event at all counts: a quiet trail and a blind one look
// alike, and only the operator can tell them apart.
func (s *summary) readNothing() string {
	read, malformed := s.read.Load(), s.malformed.Load()
	switch {
	case s.findingsOnly && read == 0 && malformed > 0:
		return fmt.Sprintf("none of the %d lines is a finding", malformed)
	case s.findingsOnly:
		return "" // an empty findings file: the streamer found nothing
	case read == 0 && s.found == 0:
		return "no log file (.json, .json.gz, .jsonl, .jsonl.gz, .ndjson) under " + strings.TrimPrefix(s.source, "file:")
	case read == 0 && len(s.unreadable) > 0:
		return "no file could be read"
	case read == 0:
		return "the source held no record in the window"
	case read == malformed:
		return fmt.Sprintf("every record (%d) was malformed", read)
	}
	return ""
}

func (s *summary) classified() int64 {
	var n int64
	for _, c := range s.verdicts {
		n += c.Load()
	}
	return n
}

// trackedRate is the share of classified events that were tracked; -1 when
// none was classified or, from a findings file, it is unknown.
func (s *summary) trackedRate() float64 {
	n := s.classified()
	if n == 0 || s.findingsOnly {
		return -1
	}
	return float64(s.verdicts[classify.Tracked].Load()) / float64(n)
}

func (s *summary) write(w io.Writer) {
	fmt.Fprintf(w, "\nsessionwatch backfill summary\n")
	window := s.window[0].Format(time.RFC3339) + " .. " + s.window[1].Format(time.RFC3339)
	if s.window[0].IsZero() && s.window[1].IsZero() {
		window = "n/a (nothing counted)"
	}
	fmt.Fprintf(w, "  window          %s\n", window)
	fmt.Fprintf(w, "  source          %s\n", s.source)
	if len(s.regions) > 0 {
		fmt.Fprintf(w, "  regions         %s\n", strings.Join(s.regions, ","))
	}
	if len(s.accounts) > 0 {
		fmt.Fprintf(w, "  accounts        %d\n", len(s.accounts))
	}
	if f := s.filter.Describe(); len(f) > 0 {
		fmt.Fprintf(w, "  filters         %s\n", strings.Join(f, " "))
	}
	if s.findingsOnly {
		fmt.Fprintf(w, "  findings read   %d\n", s.read.Load())
		fmt.Fprintf(w, "  not findings    %d\n", s.malformed.Load())
		fmt.Fprintf(w, "  outside window  %d\n", s.outsideWindow.Load())
		fmt.Fprintf(w, "  in window       %d\n", s.inScope.Load())
		fmt.Fprintf(w, "  duplicates      %d\n", s.duplicates)
	} else {
		fmt.Fprintf(w, "  events scanned  %d\n", s.read.Load())
		fmt.Fprintf(w, "  in scope        %d\n", s.inScope.Load())
		fmt.Fprintf(w, "  outside window  %d\n", s.outsideWindow.Load())
		fmt.Fprintf(w, "  out of scope    %d\n", s.outOfScope.Load())
		fmt.Fprintf(w, "  rejected        %d\n", s.rejected.Load())
		fmt.Fprintf(w, "  malformed       %d\n", s.malformed.Load())
		fmt.Fprintf(w, "  store retries   %d\n", s.storeErrors.Load())
	}
	if !s.filter.Empty() {
		fmt.Fprintf(w, "  filtered out    %s\n", s.filteredText())
	}
	if s.findingsOnly {
		fmt.Fprintf(w, "  classified      n/a (a findings file holds findings only)\n")
	} else {
		fmt.Fprintf(w, "  classified      %d\n", s.classified())
	}
	for _, v := range classify.AllVerdicts() {
		if s.findingsOnly && v == classify.Tracked {
			continue
		}
		fmt.Fprintf(w, "    %-20s %d\n", v, s.verdicts[v].Load())
	}
	rate := "n/a"
	if r := s.trackedRate(); r >= 0 {
		rate = fmt.Sprintf("%.1f%%", 100*r)
	} else if s.findingsOnly {
		rate = "n/a (a findings file holds no tracked events)"
	}
	fmt.Fprintf(w, "  tracked rate    %s\n", rate)
	fmt.Fprintf(w, "  findings        %d\n", s.findings())
	for _, d := range s.deliveryTally() {
		fmt.Fprintf(w, "    sink %s: %d delivered, %d failed\n", d.Sink, d.Delivered, d.Failed)
	}
	if !s.findingsOnly {
		fmt.Fprintf(w, "  pages/objects   %d\n", s.units)
		fmt.Fprintf(w, "  API calls       %d\n", s.apiCalls)
		fmt.Fprintf(w, "  throttles       %d\n", s.throttles)
	}
	fmt.Fprintf(w, "  elapsed         %s\n", s.elapsed.Round(time.Millisecond))
	if len(s.failures) > 0 {
		fmt.Fprintf(w, "  failed          %d\n", len(s.failures))
		for _, f := range s.failures {
			fmt.Fprintf(w, "    %s: %s\n", failureWhere(f), f.Error)
		}
	}
	if len(s.unreadable) > 0 {
		fmt.Fprintf(w, "  unreadable      %d\n", len(s.unreadable))
		for _, u := range s.unreadable {
			fmt.Fprintf(w, "    %s\n", u.Error)
		}
	}
	for _, p := range s.problems {
		fmt.Fprintf(w, "  problem         %s\n", p)
	}
}

// filteredText is "12 (role 9, principal 3)": what each filter set dropped.
func (s *summary) filteredText() string {
	dropped := s.filter.Dropped()
	total := 0
	var parts []string
	for _, name := range report.FilterNames() {
		if n, ok := dropped[name]; ok {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func failureWhere(f source.Failure) string {
	where := f.Account
	if f.Region != "" {
		where += " " + f.Region
	}
	return where
}

// summaryJSON is the --summary-json document; its field names are stable.
type summaryJSON struct {
	Window struct {
		Since time.Time `json:"since"`
		Until time.Time `json:"until"`
	} `json:"window"`
	Source         string           `json:"source"`
	Regions        []string         `json:"regions"`
	Accounts       []string         `json:"accounts"`
	EventsScanned  int64            `json:"events_scanned"`
	InScope        int64            `json:"in_scope"`
	OutsideWindow  int64            `json:"outside_window"`
	OutOfScope     int64            `json:"out_of_scope"`
	Rejected       int64            `json:"rejected"`
	Malformed      int64            `json:"malformed"`
	Filters        []string         `json:"filters"`
	FilteredOut    map[string]int   `json:"filtered_out"`
	FindingsOnly   bool             `json:"findings_only"`
	Duplicates     int64            `json:"duplicates"`
	Classified     int64            `json:"classified"`
	Tracked        int64            `json:"tracked"`
	Verdicts       map[string]int64 `json:"verdicts"`
	TrackedRate    *float64         `json:"tracked_rate"`
	Findings       int64            `json:"findings"`
	StoreRetries   int64            `json:"store_retries"`
	Units          int64            `json:"pages_or_objects"`
	APICalls       int64            `json:"api_calls"`
	Throttles      int64            `json:"throttles"`
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	FailedAccounts []source.Failure `json:"failed_accounts"`
	// UnreadableFiles are files or folders of a file source that could not
	// be read (the others were); the run exits 2.
	UnreadableFiles []source.Unreadable `json:"unreadable_files"`
	// Problems say why a run that got to its end failed, e.g. "read no
	// record: ...".
	Problems []string `json:"problems"`
	// Deliveries are the findings each sink accepted (delivered) and
	// refused (failed); a refusal makes the run exit 2.
	Deliveries []sinkDelivery `json:"deliveries"`
}

func (s *summary) document() summaryJSON {
	var d summaryJSON
	d.Window.Since, d.Window.Until = s.window[0], s.window[1]
	d.Source, d.Regions, d.Accounts = s.source, s.regions, s.accounts
	if d.Regions == nil {
		d.Regions = []string{}
	}
	if d.Accounts == nil {
		d.Accounts = []string{}
	}
	d.Deliveries = s.deliveryTally()
	d.EventsScanned, d.InScope, d.OutsideWindow = s.read.Load(), s.inScope.Load(), s.outsideWindow.Load()
	d.OutOfScope, d.Rejected, d.Malformed = s.outOfScope.Load(), s.rejected.Load(), s.malformed.Load()
	d.Filters, d.FilteredOut = s.filter.Describe(), s.filter.Dropped()
	if d.Filters == nil {
		d.Filters = []string{}
	}
	d.FindingsOnly, d.Duplicates = s.findingsOnly, s.duplicates
	if !s.findingsOnly { // from findings alone, classified and tracked events are unknown
		d.Classified, d.Tracked = s.classified(), s.verdicts[classify.Tracked].Load()
	}
	d.Verdicts = map[string]int64{}
	for _, v := range classify.AllVerdicts() {
		d.Verdicts[string(v)] = s.verdicts[v].Load()
	}
	if r := s.trackedRate(); r >= 0 {
		d.TrackedRate = &r
	}
	d.Findings, d.StoreRetries = s.findings(), s.storeErrors.Load()
	d.Units, d.APICalls, d.Throttles = s.units, s.apiCalls, s.throttles
	d.ElapsedSeconds = s.elapsed.Seconds()
	d.FailedAccounts = s.failures
	if d.FailedAccounts == nil {
		d.FailedAccounts = []source.Failure{}
	}
	d.UnreadableFiles, d.Problems = s.unreadable, s.problems
	if d.UnreadableFiles == nil {
		d.UnreadableFiles = []source.Unreadable{}
	}
	if d.Problems == nil {
		d.Problems = []string{}
	}
	return d
}

func (s *summary) writeJSON(path string) error {
	b, err := json.MarshalIndent(s.document(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--summary-json: %w", err)
	}
	return nil
}
