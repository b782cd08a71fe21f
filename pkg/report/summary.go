package report

import (
	"cmp"
	"container/heap"
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// Defaults for Config.
const (
	// DefaultMaxFindings is how many findings an Accumulator keeps for the
	// table and the report; totals and charts always count every one.
	DefaultMaxFindings = 5000
	// DefaultTopN is the length of the top callers and top roles lists.
	DefaultTopN = 10
)

// VerdictOther counts findings (from a findings file) whose category is not
// a finding verdict this version knows (see known).
const VerdictOther classify.Verdict = "other"

// maxKeys bounds each per-key tally (callers, roles, account and region
// pairs, days): past it, new keys are counted under otherKey, so a hostile
// or huge input cannot grow memory without bound.
const (
	maxKeys  = 10_000
	otherKey = "(other)"
)

// maxFilledDays bounds the empty days Summary inserts between the first and
// the last day so that charts show gaps as gaps.
const maxFilledDays = 1000

// Summary is what a run saw, ready to render. Counts are exact whatever
// the number of findings kept for display.
type Summary struct {
	// Window is the run's [since, until); when the Config left it zero, the
	// span of the event times added.
	Window  [2]time.Time
	Sources []string
	// Filters are the filters set ("role=PATTERN"), Filtered what each
	// dropped (keys: FilterAccount, FilterRole, …).
	Filters  []string
	Filtered map[string]int

	// FindingsOnly is set when the summary was built from findings alone
	// (AddFinding): tracked events are then unknown, and so is every
	// tracked rate.
	FindingsOnly bool

	// Events (records read) and InScope (in-scope events inside the
	// window, before the filters) are the driver's counters: the
	// Accumulator never sees them, so the caller copies them in. Zero, and
	// not shown, when FindingsOnly.
	Events  int
	InScope int

	// Classified counts the events given a verdict and kept by the filters
	// (calls to Add); Tracked those whose verdict is tracked.
	Classified int
	Tracked    int
	// Findings counts findings (verdicts other than tracked). From a
	// findings file, Duplicates counts lines dropped as a repeat of a
	// finding already counted (the streamer delivers at least once).
	Findings   int
	Duplicates int
	// PerVerdict counts every verdict, tracked included; PerSeverity the
	// findings by severity name.
	PerVerdict  map[classify.Verdict]int
	PerSeverity map[string]int
	// PerDay holds one entry per UTC day from the first day to the last
	// (of the window and of the events), empty days included.
	PerDay []Day
	// TopCallers and TopRoles rank callers and target roles by findings.
	TopCallers []Count
	TopRoles   []Count
	// AccountRegions counts per recipient account and region, most
	// findings first.
	AccountRegions []AccountRegion
	// Coverage is set when the run reconciled the source against the
	// streamer's verdict log (the backfill's --reconcile); the driver
	// copies it in. The classified events are then the missed ones only.
	Coverage *Coverage
}

// TrackedRate is Tracked / Classified; ok is false when it is not known
// (FindingsOnly) or nothing was classified.
func (s Summary) TrackedRate() (rate float64, ok bool) {
	if s.FindingsOnly {
		return 0, false
	}
	return ratio(s.Tracked, s.Classified)
}

// FilteredTotal is the number of events (or findings) the filters dropped.
func (s Summary) FilteredTotal() int {
	n := 0
	for _, v := range s.Filtered {
		n += v
	}
	return n
}

// Day is one UTC day of a summary.
type Day struct {
	Date       time.Time // midnight UTC
	Events     int       // classified events (zero when FindingsOnly)
	Tracked    int
	Findings   int
	PerVerdict map[classify.Verdict]int
}

// TrackedRate is the day's Tracked / Events; ok is false when the day had
// no classified event (always so for a FindingsOnly summary).
func (d Day) TrackedRate() (rate float64, ok bool) { return ratio(d.Tracked, d.Events) }

// Count is a key (a caller, a role) and its number of findings.
type Count struct {
	Key      string
	Findings int
}

// AccountRegion counts one recipient account in one region.
type AccountRegion struct {
	Account, Region string
	Events          int // zero when FindingsOnly
	Tracked         int
	Findings        int
}

// TrackedRate is Tracked / Events; ok is false when no event was classified.
func (a AccountRegion) TrackedRate() (rate float64, ok bool) { return ratio(a.Tracked, a.Events) }

func ratio(n, d int) (float64, bool) {
	if d <= 0 {
		return 0, false
	}
	return float64(n) / float64(d), true
}

// Config configures an Accumulator. Zero fields take their defaults.
type Config struct {
	// Window is the run's window (--since, --until). Zero: the span of the
	// events added.
	Window [2]time.Time
	// Sources name where the events came from, as given (--source).
	Sources []string
	// Filter, when set, contributes its patterns and drop counts to the
	// summary. AddFinding applies it; Add does not (the backfill filters
	// before and after classification, see Filter).
	Filter *Filter
	// MaxFindings is how many findings are kept for display: the most
	// severe, then the most recent (DefaultMaxFindings when 0; none when
	// negative).
	MaxFindings int
	// TopN is the length of TopCallers and TopRoles (DefaultTopN when 0).
	TopN int
}

// Accumulator builds a Summary event by event. Its methods are safe for
// concurrent use: a backfill's classification workers call Add directly.
//
// Use Add (classified events: a backfill) or AddFinding (findings read
// back from a file), not both: a tracked rate needs the tracked events.
type Accumulator struct {
	cfg Config

	mu           sync.Mutex
	findingsOnly bool
	classified   int
	tracked      int
	findings     int
	duplicates   int
	first, last  time.Time
	perVerdict   map[classify.Verdict]int
	perSeverity  map[string]int
	days         map[int64]*Day
	overflowDay  Day // days past maxKeys
	callers      map[string]int
	roles        map[string]int
	accRegions   map[[2]string]*AccountRegion
	kept         keptHeap
	seed         maphash.Seed
	seen         map[uint64]struct{}
}

// NewAccumulator returns an empty Accumulator.
func NewAccumulator(cfg Config) *Accumulator {
	if cfg.MaxFindings == 0 {
		cfg.MaxFindings = DefaultMaxFindings
	}
	if cfg.TopN <= 0 {
		cfg.TopN = DefaultTopN
	}
	cfg.Sources = slices.Clone(cfg.Sources)
	return &Accumulator{
		cfg:         cfg,
		perVerdict:  map[classify.Verdict]int{},
		perSeverity: map[string]int{},
		days:        map[int64]*Day{},
		callers:     map[string]int{},
		roles:       map[string]int{},
		accRegions:  map[[2]string]*AccountRegion{},
		seed:        maphash.MakeSeed(),
		seen:        map[uint64]struct{}{},
		overflowDay: Day{PerVerdict: map[classify.Verdict]int{}},
	}
}

// Add counts one classified event, tracked or not, that the filters kept.
// f is the finding rendered from it for the sinks (sink.NewFinding), nil
// when r is no finding: the table and the report show that very finding,
// detected_at included, when it ranks among the MaxFindings most severe
// (then most recent). A finding verdict without f is counted, not shown.
func (a *Accumulator) Add(ev *cloudtrail.Event, r classify.Result, f *sink.Finding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.classified++
	a.span(ev.Time)
	d := a.day(ev.Time)
	d.Events++
	ar := a.accountRegion(ev.Account, ev.Region)
	ar.Events++
	v := r.Verdict
	if v != classify.Tracked && !known(v) {
		v = VerdictOther
	}
	a.perVerdict[v]++
	d.PerVerdict[v]++
	if v == classify.Tracked {
		a.tracked++
		d.Tracked++
		ar.Tracked++
		return
	}
	a.countFinding(d, ar, r.Severity.String(), callerKey(ev.Caller.ARN, ev.Caller.PrincipalID), roleKey(ev.TargetRoleARN))
	k := rank{sev: r.Severity, t: ev.Time, id: r.FindingID, event: ev.ID}
	if f != nil && a.wouldKeep(k) {
		a.keep(k, *f)
	}
}

// AddFinding counts a finding read back from a findings file and keeps it
// for display as Add does. A finding whose finding_id and event id were
// already seen is a redelivery (the streamer delivers at least once): it is
// counted in Duplicates only. Then Config.Filter applies (account, role,
// principal: Filter.KeepFinding). AddFinding reports whether the finding
// was counted. Tracked events are unknown from findings: the summary
// becomes FindingsOnly.
func (a *Accumulator) AddFinding(f sink.Finding) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.findingsOnly = true
	h := maphash.String(a.seed, f.FindingID+"\x00"+f.Event.ID)
	if _, dup := a.seen[h]; dup {
		a.duplicates++
		return false
	}
	a.seen[h] = struct{}{}
	if !a.cfg.Filter.KeepFinding(&f) {
		return false
	}
	a.span(f.Event.Time)
	d := a.day(f.Event.Time)
	ar := a.accountRegion(f.Event.Account, f.Event.Region)
	v := f.Category
	if !known(v) {
		v = VerdictOther
	}
	a.perVerdict[v]++
	d.PerVerdict[v]++
	a.countFinding(d, ar, f.Severity, callerKey(f.Principal.ARN, f.Principal.PrincipalID), roleKey(f.Target.RoleARN))
	sev, _ := classify.ParseSeverity(f.Severity)
	k := rank{sev: sev, t: f.Event.Time, id: f.FindingID, event: f.Event.ID}
	if a.wouldKeep(k) {
		a.keep(k, f)
	}
	return true
}

// known reports whether v is a finding verdict: an STS call's, or
// pipeline_tampered, which the streamer gives the pipeline's own calls (and
// so its findings file carries).
func known(v classify.Verdict) bool {
	return v == classify.PipelineTampered || v != classify.Tracked && slices.Contains(classify.AllVerdicts(), v)
}

func (a *Accumulator) countFinding(d *Day, ar *AccountRegion, severity, caller, role string) {
	a.findings++
	d.Findings++
	ar.Findings++
	a.perSeverity[boundedKey(a.perSeverity, severity)]++
	a.callers[boundedKey(a.callers, caller)]++
	a.roles[boundedKey(a.roles, role)]++
}

func callerKey(arn, principalID string) string {
	switch {
	case arn != "":
		return arn
	case principalID != "":
		return principalID
	default:
		return "(unknown caller)"
	}
}

func roleKey(arn string) string {
	if arn == "" {
		return "(no target role)"
	}
	return arn
}

// boundedKey returns key, or otherKey when m is full (otherKey included)
// and lacks key.
func boundedKey[V any](m map[string]V, key string) string {
	if _, ok := m[key]; !ok && len(m) >= maxKeys-1 {
		return otherKey
	}
	return key
}

func (a *Accumulator) span(t time.Time) {
	if a.first.IsZero() || t.Before(a.first) {
		a.first = t
	}
	if a.last.IsZero() || t.After(a.last) {
		a.last = t
	}
}

// dayOf is t's UTC day as a key: the Unix time of its midnight.
func dayOf(t time.Time) int64 { return t.UTC().Truncate(24 * time.Hour).Unix() }

func (a *Accumulator) day(t time.Time) *Day {
	k := dayOf(t)
	d, ok := a.days[k]
	if !ok {
		if len(a.days) >= maxKeys {
			// 27 years of days: the input is hostile or broken. Such
			// days count in the totals only.
			return &a.overflowDay
		}
		d = &Day{Date: time.Unix(k, 0).UTC(), PerVerdict: map[classify.Verdict]int{}}
		a.days[k] = d
	}
	return d
}

func (a *Accumulator) accountRegion(account, region string) *AccountRegion {
	k := [2]string{account, region}
	ar, ok := a.accRegions[k]
	if !ok {
		if len(a.accRegions) >= maxKeys-1 {
			k = [2]string{otherKey, otherKey}
			if ar, ok = a.accRegions[k]; ok {
				return ar
			}
		}
		ar = &AccountRegion{Account: k[0], Region: k[1]}
		a.accRegions[k] = ar
	}
	return ar
}

// Summary returns the summary so far; the Accumulator can go on.
func (a *Accumulator) Summary() Summary {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Summary{
		Window:       a.cfg.Window,
		Sources:      slices.Clone(a.cfg.Sources),
		Filters:      a.cfg.Filter.Describe(),
		Filtered:     a.cfg.Filter.Dropped(),
		FindingsOnly: a.findingsOnly,
		Classified:   a.classified,
		Tracked:      a.tracked,
		Findings:     a.findings,
		Duplicates:   a.duplicates,
		PerVerdict:   maps.Clone(a.perVerdict),
		PerSeverity:  maps.Clone(a.perSeverity),
	}
	if s.Window[0].IsZero() && s.Window[1].IsZero() {
		s.Window = [2]time.Time{a.first, a.last}
	}
	s.PerDay = a.perDay(s.Window)
	s.TopCallers = top(a.callers, a.cfg.TopN)
	s.TopRoles = top(a.roles, a.cfg.TopN)
	for _, ar := range a.accRegions {
		s.AccountRegions = append(s.AccountRegions, *ar)
	}
	slices.SortFunc(s.AccountRegions, func(x, y AccountRegion) int {
		return cmp.Or(cmp.Compare(y.Findings, x.Findings), cmp.Compare(y.Events, x.Events),
			cmp.Compare(x.Account, y.Account), cmp.Compare(x.Region, y.Region))
	})
	return s
}

// perDay lists the days with data and, when the span allows, the empty
// days between the first and the last (of the window and the data).
func (a *Accumulator) perDay(window [2]time.Time) []Day {
	keys := slices.Collect(maps.Keys(a.days))
	lo, hi := int64(0), int64(0)
	if len(keys) > 0 {
		lo, hi = slices.Min(keys), slices.Max(keys)
	}
	if !window[0].IsZero() && !window[1].IsZero() && window[0].Before(window[1]) {
		wlo, whi := dayOf(window[0]), dayOf(window[1].Add(-time.Nanosecond))
		if len(keys) == 0 {
			lo, hi = wlo, whi
		} else {
			lo, hi = min(lo, wlo), max(hi, whi)
		}
	} else if len(keys) == 0 {
		return nil
	}
	const day = int64(24 * time.Hour / time.Second)
	var out []Day
	if (hi-lo)/day <= maxFilledDays {
		for k := lo; k <= hi; k += day {
			out = append(out, a.dayCopy(k))
		}
		return out
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, a.dayCopy(k))
	}
	return out
}

func (a *Accumulator) dayCopy(k int64) Day {
	if d, ok := a.days[k]; ok {
		c := *d
		c.PerVerdict = maps.Clone(d.PerVerdict)
		return c
	}
	return Day{Date: time.Unix(k, 0).UTC(), PerVerdict: map[classify.Verdict]int{}}
}

func top(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Key: k, Findings: v})
	}
	slices.SortFunc(out, func(x, y Count) int { return cmp.Or(cmp.Compare(y.Findings, x.Findings), cmp.Compare(x.Key, y.Key)) })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Findings returns the findings kept for display, ordered by event time
// (then finding id). There are at most MaxFindings of them: when
// Summary().Findings is larger, the rest were the least severe, then oldest.
func (a *Accumulator) Findings() []sink.Finding {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]sink.Finding, len(a.kept))
	for i, k := range a.kept {
		out[i] = k.f
	}
	sortByTime(out)
	return out
}

func sortByTime(fs []sink.Finding) {
	slices.SortStableFunc(fs, func(x, y sink.Finding) int {
		return cmp.Or(x.Event.Time.Compare(y.Event.Time), cmp.Compare(x.FindingID, y.FindingID), cmp.Compare(x.Event.ID, y.Event.ID))
	})
}

// rank orders findings for display: a higher severity first, then a more
// recent event; finding and event ids make the order total, so which
// findings are kept never depends on the order workers added them in.
type rank struct {
	sev       classify.Severity
	t         time.Time
	id, event string
}

// before reports whether x ranks above y (is kept in preference to y).
func (x rank) before(y rank) bool {
	return cmp.Or(cmp.Compare(x.sev, y.sev), x.t.Compare(y.t), cmp.Compare(x.id, y.id), cmp.Compare(x.event, y.event)) > 0
}

func rankOf(f *sink.Finding) rank {
	sev, _ := classify.ParseSeverity(f.Severity)
	return rank{sev: sev, t: f.Event.Time, id: f.FindingID, event: f.Event.ID}
}

type keptFinding struct {
	r rank
	f sink.Finding
}

// keptHeap is a min-heap on rank: its root is the kept finding that goes
// first when a better one arrives.
type keptHeap []keptFinding

func (h keptHeap) Len() int           { return len(h) }
func (h keptHeap) Less(i, j int) bool { return h[j].r.before(h[i].r) }
func (h keptHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keptHeap) Push(x any)        { *h = append(*h, x.(keptFinding)) }
func (h *keptHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (a *Accumulator) wouldKeep(k rank) bool {
	if a.cfg.MaxFindings < 0 {
		return false
	}
	return len(a.kept) < a.cfg.MaxFindings || k.before(a.kept[0].r)
}

func (a *Accumulator) keep(k rank, f sink.Finding) {
	if len(a.kept) < a.cfg.MaxFindings {
		heap.Push(&a.kept, keptFinding{k, f})
		return
	}
	a.kept[0] = keptFinding{k, f}
	heap.Fix(&a.kept, 0)
}

// selectRows returns at most limit findings, the best ranked, in time order.
func selectRows(fs []sink.Finding, limit int) []sink.Finding {
	out := slices.Clone(fs)
	if limit >= 0 && len(out) > limit {
		slices.SortFunc(out, func(x, y sink.Finding) int {
			rx, ry := rankOf(&x), rankOf(&y)
			switch {
			case rx.before(ry):
				return -1
			case ry.before(rx):
				return 1
			}
			return 0
		})
		out = out[:limit]
	}
	sortByTime(out)
	return out
}
