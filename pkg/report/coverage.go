package report

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// Coverage is what a reconciliation of CloudTrail against the streamer's
// verdict log found over a window: of the settled in-scope events the
// source holds, how many the log has (by event id), per recipient account,
// region and UTC hour.
type Coverage struct {
	// Log names the verdict log read; Logged counts its distinct event ids
	// inside the window.
	Log    string
	Logged int
	// LogMalformed counts the log's lines (or objects) that could not be
	// decoded and were skipped: their events count as missed.
	LogMalformed int
	// Settle is how old an event had to be, at SettledBefore (the run's
	// clock minus Settle), to be counted; Unsettled counts the younger
	// ones, left out of every other figure.
	Settle        time.Duration
	SettledBefore time.Time
	Unsettled     int
	// Expected counts the settled in-scope events of the source, Covered
	// those the log has.
	Expected int
	Covered  int
	// Rows holds one row per account, region and hour that had an
	// expected event, in that order. Past maxKeys distinct rows, new ones
	// are counted under the account otherKey.
	Rows []CoverageRow
	// Gaps lists missed events for the table and the report, at most the
	// driver's cap (the JSON lines list every one), in event time order.
	Gaps []Gap
}

// MaxGapRowsText bounds the account, region and hour rows with a missed
// event that a text summary lists.
const MaxGapRowsText = 50

// Missed counts the settled events the log lacks.
func (c Coverage) Missed() int { return c.Expected - c.Covered }

// Rate is Covered / Expected; ok is false when nothing was expected.
func (c Coverage) Rate() (rate float64, ok bool) { return ratio(c.Covered, c.Expected) }

// CoverageRow is one account, region and hour of a Coverage. A row of
// RegionHours has no account.
type CoverageRow struct {
	Account  string
	Region   string
	Hour     time.Time // the hour's start, UTC
	Expected int
	Covered  int
}

// Missed counts the row's settled events the log lacks.
func (r CoverageRow) Missed() int { return r.Expected - r.Covered }

// Rate is Covered / Expected; ok is false when nothing was expected.
func (r CoverageRow) Rate() (rate float64, ok bool) { return ratio(r.Covered, r.Expected) }

// GapRows returns the rows with a missed event.
func (c Coverage) GapRows() []CoverageRow {
	var out []CoverageRow
	for _, r := range c.Rows {
		if r.Missed() > 0 {
			out = append(out, r)
		}
	}
	return out
}

// RegionHours sums the rows over accounts: one row per region and hour,
// in that order.
func (c Coverage) RegionHours() []CoverageRow {
	sums := map[coverageKey]*CoverageRow{}
	for _, r := range c.Rows {
		k := coverageKey{region: r.Region, hour: r.Hour.Unix()}
		s := sums[k]
		if s == nil {
			s = &CoverageRow{Region: r.Region, Hour: r.Hour}
			sums[k] = s
		}
		s.Expected += r.Expected
		s.Covered += r.Covered
	}
	return sortedRows(sums)
}

type coverageKey struct {
	account, region string
	hour            int64 // Unix seconds of the hour's start
}

// CoverageCounter accumulates a Coverage; safe for concurrent use. Its
// memory grows with the distinct accounts, regions and hours seen (bounded
// by maxKeys rows), not with the events.
type CoverageCounter struct {
	mu        sync.Mutex
	rows      map[coverageKey]*CoverageRow
	unsettled int
}

// NewCoverageCounter returns an empty counter.
func NewCoverageCounter() *CoverageCounter {
	return &CoverageCounter{rows: map[coverageKey]*CoverageRow{}}
}

// Add counts one settled in-scope event; logged says whether the verdict
// log has it.
func (c *CoverageCounter) Add(ev *cloudtrail.Event, logged bool) {
	hour := ev.Time.UTC().Truncate(time.Hour)
	k := coverageKey{account: ev.Account, region: ev.Region, hour: hour.Unix()}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[k]
	if r == nil {
		if len(c.rows) >= maxKeys {
			k.account = otherKey
			r = c.rows[k]
		}
		if r == nil {
			r = &CoverageRow{Account: k.account, Region: k.region, Hour: hour}
			c.rows[k] = r
		}
	}
	r.Expected++
	if logged {
		r.Covered++
	}
}

// AddUnsettled counts an event too young to be counted.
func (c *CoverageCounter) AddUnsettled() {
	c.mu.Lock()
	c.unsettled++
	c.mu.Unlock()
}

// Coverage returns the counts so far; the caller sets Log, Logged, LogMalformed, Settle
// and SettledBefore.
func (c *CoverageCounter) Coverage() Coverage {
	c.mu.Lock()
	defer c.mu.Unlock()
	cov := Coverage{Unsettled: c.unsettled, Rows: sortedRows(c.rows)}
	for _, r := range cov.Rows {
		cov.Expected += r.Expected
		cov.Covered += r.Covered
	}
	return cov
}

func sortedRows(m map[coverageKey]*CoverageRow) []CoverageRow {
	out := make([]CoverageRow, 0, len(m))
	for _, r := range m {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b CoverageRow) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region), a.Hour.Compare(b.Hour))
	})
	return out
}
