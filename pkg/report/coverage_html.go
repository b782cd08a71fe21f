package report

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// The coverage section of the HTML report: a heatmap of the coverage per
// region and UTC hour, the region and hour rows with a missed event, and
// the missed events themselves.

const (
	// maxHeatmapHours bounds the heatmap's columns: past it the last
	// hours are drawn, with a note; the rows below list every gap.
	maxHeatmapHours = 31 * 24
	// maxCoverageRows caps the region and hour rows and the missed
	// events listed in the page.
	maxCoverageRows = 500
	heatRowHeight   = 22
	heatLeft        = 120 // room for the region names
)

type coverageView struct {
	Log, Rate, Note string
	Settled         string
	Heatmap         *chart
	HeatmapNote     string
	Rows            []regionHourView
	RowsNote        string
	Gaps            []gapView
	GapsNote        string
}

type regionHourView struct{ Region, Hour, Expected, Covered, Missed, Rate string }

type gapView struct{ Time, Account, Region, Event, Verdict, FindingID, EventID string }

func newCoverageView(c *Coverage) *coverageView {
	if c == nil {
		return nil
	}
	r, ok := c.Rate()
	v := &coverageView{
		Log:     printable(c.Log),
		Rate:    percent(r, ok),
		Note:    fmt.Sprintf("%s of %s settled events are in the verdict log; %s missed", thousands(c.Covered), thousands(c.Expected), thousands(c.Missed())),
		Settled: fmt.Sprintf("%s events at or after %s not counted (younger than %s)", thousands(c.Unsettled), c.SettledBefore.UTC().Format(TimeLayout), c.Settle),
	}
	if c.LogMalformed > 0 {
		v.Note += fmt.Sprintf("; %s lines or objects of the log could not be read (their events count as missed)", thousands(c.LogMalformed))
	}
	hours := c.RegionHours()
	v.Heatmap, v.HeatmapNote = coverageHeatmap(hours)
	var gapRows []CoverageRow
	for _, h := range hours {
		if h.Missed() > 0 {
			gapRows = append(gapRows, h)
		}
	}
	for i, h := range gapRows {
		if i == maxCoverageRows {
			v.RowsNote = fmt.Sprintf("Showing %d of %s region and hour rows with a missed event.", maxCoverageRows, thousands(len(gapRows)))
			break
		}
		hr, hok := h.Rate()
		v.Rows = append(v.Rows, regionHourView{Region: printable(orDash(h.Region)), Hour: h.Hour.UTC().Format("2006-01-02 15:00"),
			Expected: thousands(h.Expected), Covered: thousands(h.Covered), Missed: thousands(h.Missed()), Rate: percent(hr, hok)})
	}
	for i, g := range c.Gaps {
		if i == maxCoverageRows {
			break
		}
		v.Gaps = append(v.Gaps, gapView{Time: g.EventTime.UTC().Format(TimeLayout), Account: printable(orDash(g.Account)),
			Region: printable(orDash(g.Region)), Event: printable(g.EventName), Verdict: printable(g.Verdict),
			FindingID: orDash(g.FindingID), EventID: printable(g.EventID)})
	}
	if len(v.Gaps) < c.Missed() {
		v.GapsNote = fmt.Sprintf("Showing %s of %s missed events (the first found); the backfill's JSON lines list every one.",
			thousands(len(v.Gaps)), thousands(c.Missed()))
	}
	return v
}

// coverageClass is a heatmap cell's colour class.
func coverageClass(r CoverageRow) string {
	rate, _ := r.Rate()
	switch {
	case r.Missed() == 0:
		return "cov-full"
	case rate >= 0.9:
		return "cov-part"
	case rate > 0:
		return "cov-low"
	}
	return "cov-none"
}

// coverageHeatmap draws one row per region and one column per UTC hour,
// from the first hour with a settled event to the last (at most
// maxHeatmapHours, the last ones); an hour without an event is left blank.
func coverageHeatmap(rows []CoverageRow) (*chart, string) {
	if len(rows) == 0 {
		return nil, ""
	}
	var regions []string
	first, last := rows[0].Hour, rows[0].Hour
	for _, r := range rows {
		if !slices.Contains(regions, r.Region) {
			regions = append(regions, r.Region)
		}
		if r.Hour.Before(first) {
			first = r.Hour
		}
		if r.Hour.After(last) {
			last = r.Hour
		}
	}
	slices.Sort(regions)
	n := int(last.Sub(first)/time.Hour) + 1
	note := ""
	if n > maxHeatmapHours {
		note = fmt.Sprintf("The heatmap shows the last %d of %s hours; the table below lists every hour with a missed event.", maxHeatmapHours, thousands(n))
		first, n = last.Add(-time.Duration(maxHeatmapHours-1)*time.Hour), maxHeatmapHours
	}
	f := frame{left: heatLeft, top: 8, width: wideChartWidth - heatLeft - 16, height: float64(len(regions) * heatRowHeight)}
	c := &chart{Width: wideChartWidth, Height: int(f.bottom()) + 44,
		Label: fmt.Sprintf("Coverage per region and UTC hour, %d regions by %d hours", len(regions), n)}
	cellW := f.width / float64(n)
	for i, region := range regions {
		y := f.top + float64(i*heatRowHeight)
		c.Texts = append(c.Texts, svgText{X: f.left - 8, Y: y + heatRowHeight/2 + 4, Anchor: "end", Class: "tick",
			Text: truncateMiddle(printable(orDash(region)), 16)})
	}
	for _, r := range rows {
		col := int(r.Hour.Sub(first) / time.Hour)
		if col < 0 {
			continue
		}
		y := f.top + float64(slices.Index(regions, r.Region)*heatRowHeight)
		rate, ok := r.Rate()
		c.Rects = append(c.Rects, svgRect{X: f.left + float64(col)*cellW, Y: y + 1, W: math.Max(cellW-0.5, 0.5), H: heatRowHeight - 2,
			Class: coverageClass(r), Title: fmt.Sprintf("%s %s: %s of %s logged (%s)", printable(orDash(r.Region)),
				r.Hour.UTC().Format("2006-01-02 15:00"), thousands(r.Covered), thousands(r.Expected), percent(rate, ok))})
	}
	step := max(1, int(math.Ceil(float64(n)/12)))
	for i := 0; i < n; i += step {
		x := f.left + (float64(i)+0.5)*cellW
		c.Lines = append(c.Lines, svgLine{X1: x, Y1: f.bottom(), X2: x, Y2: f.bottom() + 5, Class: "axis"})
		c.Texts = append(c.Texts, svgText{X: x, Y: f.bottom() + 20, Anchor: "middle", Class: "tick",
			Text: first.Add(time.Duration(i) * time.Hour).UTC().Format("Jan 2 15h")})
	}
	c.Texts = append(c.Texts, svgText{X: f.left + f.width/2, Y: f.bottom() + 36, Anchor: "middle", Class: "axis-title", Text: "hour (UTC)"})
	return c, note
}
