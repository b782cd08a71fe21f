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
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/source"
)

// summary is the one tally of a run: the driver's counters (records read,
// in scope, rejected, ...) beside one report.Accumulator that counts every
// classified event the filters kept (per verdict, severity, day, caller)
// and keeps the findings, as the sinks got them, for the table and the
// report. The stderr summary, --summary-json, the table and the report all
// render from it (report). Counters are atomic: workers update them.
type summary struct {
	source   string
	regions  []string
	accounts []string
	started  time.Time
	elapsed  time.Duration
	acc      *report.Accumulator

	read          atomic.Int64
	malformed     atomic.Int64
	rejected      atomic.Int64
	outOfScope    atomic.Int64
	outsideWindow atomic.Int64
	inScope       atomic.Int64
	storeErrors   atomic.Int64
	// filter counts what --account, --role, --principal and --profile
	// dropped; nil or empty when none is set.
	filter *report.Filter

	// findingsOnly: the run read a findings file (--source findings:).
	// read counts its findings, malformed the lines that are not one,
	// inScope the findings inside the window; tracked events are unknown.
	findingsOnly bool

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

	// coverage is the reconciliation against the verdict log, set at the
	// end of a --reconcile run; nil otherwise.
	coverage *report.Coverage
}

// gap reports whether a reconciliation found an event the log lacks.
func (s *summary) gap() bool { return s.coverage != nil && s.coverage.Missed() > 0 }

// newSummary starts the tally of a run over o's window (after a
// checkpoint's resume), or, for a findings file read whole, the span of
// its findings. Findings are kept for display only when the table or the
// report is asked for.
func newSummary(o options) *summary {
	cfg := report.Config{Sources: []string{o.source}, Filter: o.filter}
	if o.sourceKind != sourceFindings || o.windowSet {
		cfg.Window = [2]time.Time{o.since, o.until}
	}
	if o.view != viewTable && o.reportPath == "" {
		cfg.MaxFindings = -1
	}
	return &summary{source: o.source, regions: o.regions, accounts: o.accounts, started: time.Now(),
		acc: report.NewAccumulator(cfg), filter: o.filter, findingsOnly: o.sourceKind == sourceFindings, found: -1}
}

// add counts one classified event the filters kept; f is the finding the
// sinks get (nil when r is none). Safe for concurrent use.
func (s *summary) add(ev *cloudtrail.Event, r classify.Result, f *sink.Finding) { s.acc.Add(ev, r, f) }

// addFinding counts a finding of a findings file; it reports whether the
// finding was counted (not a redelivery, kept by the filters).
func (s *summary) addFinding(f sink.Finding) bool { return s.acc.AddFinding(f) }

// report is the run's summary for every rendering: the Accumulator's
// counts with the driver's counters, any account that could not be read,
// and the reconciliation.
func (s *summary) report() report.Summary {
	r := s.acc.Summary()
	if !s.findingsOnly {
		r.Events, r.InScope = int(s.read.Load()), int(s.inScope.Load())
	}
	for _, f := range s.failures {
		r.Sources = append(r.Sources, "NOT READ: "+failureWhere(f)+": "+f.Error)
	}
	r.Coverage = s.coverage
	return r
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

// findingsAtOrAbove counts findings of severity min or higher (a findings
// file's unknown severities are below any).
func (s *summary) findingsAtOrAbove(min classify.Severity) int64 {
	var n int64
	for name, c := range s.acc.Summary().PerSeverity {
		if sev, err := classify.ParseSeverity(name); err == nil && sev >= min {
			n += int64(c)
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

// trackedRate is the share of classified events that were tracked; -1 when
// none was classified or, from a findings file, it is unknown.
func trackedRate(r report.Summary) float64 {
	if rate, ok := r.TrackedRate(); ok {
		return rate
	}
	return -1
}

func (s *summary) write(w io.Writer) {
	r := s.report()
	fmt.Fprintf(w, "\nsessionwatch backfill summary\n")
	window := r.Window[0].Format(time.RFC3339) + " .. " + r.Window[1].Format(time.RFC3339)
	if r.Window[0].IsZero() && r.Window[1].IsZero() {
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
		fmt.Fprintf(w, "  duplicates      %d\n", r.Duplicates)
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
		fmt.Fprintf(w, "  classified      %d\n", r.Classified)
	}
	for _, v := range classify.AllVerdicts() {
		if s.findingsOnly && v == classify.Tracked {
			continue
		}
		fmt.Fprintf(w, "    %-20s %d\n", v, r.PerVerdict[v])
	}
	rate := "n/a"
	if tr := trackedRate(r); tr >= 0 {
		rate = fmt.Sprintf("%.1f%%", 100*tr)
	} else if s.findingsOnly {
		rate = "n/a (a findings file holds no tracked events)"
	}
	fmt.Fprintf(w, "  tracked rate    %s\n", rate)
	fmt.Fprintf(w, "  findings        %d\n", r.Findings)
	for _, d := range s.deliveryTally() {
		fmt.Fprintf(w, "    sink %s: %d delivered, %d failed\n", d.Sink, d.Delivered, d.Failed)
	}
	if !s.findingsOnly {
		fmt.Fprintf(w, "  pages/objects   %d\n", s.units)
		fmt.Fprintf(w, "  API calls       %d\n", s.apiCalls)
		fmt.Fprintf(w, "  throttles       %d\n", s.throttles)
	}
	s.writeCoverage(w)
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

// writeCoverage writes the reconciliation's lines: the log, the coverage
// rate, and each account, region and hour with a missed event.
func (s *summary) writeCoverage(w io.Writer) {
	c := s.coverage
	if c == nil {
		return
	}
	fmt.Fprintf(w, "  verdict log     %s (%d event ids in the window)\n", c.Log, c.Logged)
	if c.LogMalformed > 0 {
		fmt.Fprintf(w, "  log unreadable  %d lines or objects skipped (their events count as missed)\n", c.LogMalformed)
	}
	fmt.Fprintf(w, "  not settled     %d (at or after %s, younger than %s: not counted)\n", c.Unsettled,
		c.SettledBefore.UTC().Format(time.RFC3339), c.Settle)
	rate := "n/a (no settled event)"
	if r, ok := c.Rate(); ok {
		rate = fmt.Sprintf("%.1f%%", 100*r)
	}
	fmt.Fprintf(w, "  coverage        %s (%d of %d settled events logged)\n", rate, c.Covered, c.Expected)
	fmt.Fprintf(w, "  missed          %d\n", c.Missed())
	gaps := c.GapRows()
	for i, g := range gaps {
		if i == report.MaxGapRowsText { // --summary-json has every row
			fmt.Fprintf(w, "    ... %d more rows (--summary-json lists every one)\n", len(gaps)-i)
			break
		}
		r, _ := g.Rate()
		fmt.Fprintf(w, "    %-12s %-14s %s  missed %d of %d  coverage %.1f%%\n", g.Account, g.Region,
			g.Hour.UTC().Format("2006-01-02T15Z"), g.Missed(), g.Expected, 100*r)
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
	// Reconcile is set by --reconcile.
	Reconcile *reconcileJSON `json:"reconcile,omitempty"`
}

// reconcileJSON is the reconciliation in --summary-json.
type reconcileJSON struct {
	VerdictLog    string         `json:"verdict_log"`
	Logged        int            `json:"logged"`
	LogMalformed  int            `json:"log_malformed"`
	SettleSeconds float64        `json:"settle_seconds"`
	SettledBefore time.Time      `json:"settled_before"`
	Unsettled     int            `json:"unsettled"`
	Expected      int            `json:"expected"`
	Covered       int            `json:"covered"`
	Missed        int            `json:"missed"`
	CoverageRate  *float64       `json:"coverage_rate"`
	Rows          []coverageJSON `json:"rows"`
}

// coverageJSON is one account, region and hour of the reconciliation.
type coverageJSON struct {
	Account      string    `json:"account"`
	Region       string    `json:"region"`
	Hour         time.Time `json:"hour"`
	Expected     int       `json:"expected"`
	Covered      int       `json:"covered"`
	Missed       int       `json:"missed"`
	CoverageRate float64   `json:"coverage_rate"`
}

func newReconcileJSON(c *report.Coverage) *reconcileJSON {
	d := &reconcileJSON{VerdictLog: c.Log, Logged: c.Logged, LogMalformed: c.LogMalformed, SettleSeconds: c.Settle.Seconds(), SettledBefore: c.SettledBefore.UTC(),
		Unsettled: c.Unsettled, Expected: c.Expected, Covered: c.Covered, Missed: c.Missed(), Rows: []coverageJSON{}}
	if r, ok := c.Rate(); ok {
		d.CoverageRate = &r
	}
	for _, row := range c.Rows {
		r, _ := row.Rate()
		d.Rows = append(d.Rows, coverageJSON{Account: row.Account, Region: row.Region, Hour: row.Hour.UTC(),
			Expected: row.Expected, Covered: row.Covered, Missed: row.Missed(), CoverageRate: r})
	}
	return d
}

func (s *summary) document() summaryJSON {
	r := s.report()
	var d summaryJSON
	d.Window.Since, d.Window.Until = r.Window[0], r.Window[1]
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
	d.FindingsOnly, d.Duplicates = s.findingsOnly, int64(r.Duplicates)
	if !s.findingsOnly { // from findings alone, classified and tracked events are unknown
		d.Classified, d.Tracked = int64(r.Classified), int64(r.Tracked)
	}
	d.Verdicts = map[string]int64{}
	for _, v := range classify.AllVerdicts() {
		d.Verdicts[string(v)] = int64(r.PerVerdict[v])
	}
	if tr := trackedRate(r); tr >= 0 {
		d.TrackedRate = &tr
	}
	d.Findings, d.StoreRetries = int64(r.Findings), s.storeErrors.Load()
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
	if s.coverage != nil {
		d.Reconcile = newReconcileJSON(s.coverage)
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
