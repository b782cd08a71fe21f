package report

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// TableOptions shape WriteTable's output.
type TableOptions struct {
	// Color adds ANSI colours (see ColorEnabled); without it the output
	// holds no escape sequence at all.
	Color bool
	// Width, when positive, is the terminal's width: the reason column
	// takes what the others leave (at least 20 characters). Zero gives
	// every column its default cap.
	Width int
}

// ColorEnabled reports whether output to f should be coloured: f is a
// terminal, NO_COLOR is unset or empty (no-color.org) and TERM is not
// "dumb". lookupEnv is os.LookupEnv outside tests.
func ColorEnabled(f *os.File, lookupEnv func(string) (string, bool)) bool {
	if f == nil {
		return false
	}
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if v, ok := lookupEnv("NO_COLOR"); ok && v != "" {
		return false
	}
	if v, _ := lookupEnv("TERM"); v == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// ANSI styles.
const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
)

func severityStyle(sev string) string {
	switch sev {
	case "critical":
		return "\x1b[1;31m"
	case "high":
		return "\x1b[31m"
	case "medium":
		return "\x1b[33m"
	case "low":
		return "\x1b[36m"
	}
	return ""
}

type column struct {
	title string
	cap   int // most runes shown
	cut   func(s string, n int) string
	cell  func(f *sink.Finding) string
	// bySeverity: the cell takes the severity's colour.
	bySeverity bool
}

// TimeLayout is how the table and the report print times (UTC).
const TimeLayout = "2006-01-02T15:04:05Z"

var tableColumns = []column{
	{"TIME", 20, truncateEnd, func(f *sink.Finding) string { return f.Event.Time.UTC().Format(TimeLayout) }, false},
	{"DETECTED", 20, truncateEnd, func(f *sink.Finding) string { return detectedAt(f) }, false},
	{"VERDICT", 19, truncateEnd, func(f *sink.Finding) string { return string(f.Category) }, true},
	{"SEVERITY", 8, truncateEnd, func(f *sink.Finding) string { return f.Severity }, true},
	{"CALLER", 48, truncateARN, func(f *sink.Finding) string { return orDash(f.Principal.ARN, f.Principal.PrincipalID) }, false},
	{"TARGET ROLE", 48, truncateARN, func(f *sink.Finding) string { return orDash(f.Target.RoleARN) }, false},
	{"SOURCEIDENTITY", 40, truncateMiddle, func(f *sink.Finding) string { return orDash(f.SourceIdentity.Value) }, false},
	{"REASON", 72, truncateEnd, func(f *sink.Finding) string { return orDash(f.Reason) }, false},
}

// detectedAt is when the finding was detected, as its sinks received it
// ("-" when unknown).
func detectedAt(f *sink.Finding) string {
	if f.DetectedAt.IsZero() {
		return "-"
	}
	return f.DetectedAt.UTC().Format(TimeLayout)
}

func orDash(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return "-"
}

const columnGap = "  "

// WriteTable writes findings as a table for people, ordered by event time,
// then the summary with the tracked rate. Wide cells are cut ("…"; ARNs in
// the middle, so the account and the name stay). Control and bidi
// characters in the data are shown as '?': a SourceIdentity cannot drive
// the terminal.
func WriteTable(w io.Writer, findings []sink.Finding, s Summary, opts TableOptions) error {
	bw := bufio.NewWriter(w)
	rows := slices.Clone(findings)
	sortByTime(rows)

	// Cells are cut to their column's cap; a column is as wide as its
	// widest cell (or title). With a Width, the last column (the reason)
	// gets what the others leave.
	last := len(tableColumns) - 1
	cells := make([][]string, len(rows))
	widths := make([]int, len(tableColumns))
	for i, c := range tableColumns {
		widths[i] = utf8.RuneCountInString(c.title)
	}
	for r := range rows {
		cells[r] = make([]string, len(tableColumns))
		for i, c := range tableColumns[:last] {
			v := c.cut(printable(c.cell(&rows[r])), c.cap)
			cells[r][i] = v
			widths[i] = max(widths[i], utf8.RuneCountInString(v))
		}
	}
	reasonCap := tableColumns[last].cap
	if opts.Width > 0 {
		used := 0
		for _, w := range widths[:last] {
			used += w + len(columnGap)
		}
		reasonCap = max(20, opts.Width-used)
	}
	for r := range rows {
		cells[r][last] = tableColumns[last].cut(printable(tableColumns[last].cell(&rows[r])), reasonCap)
	}

	paint := func(style, s string) string {
		if !opts.Color || style == "" {
			return s
		}
		return style + s + ansiReset
	}
	line := func(vals []string, style func(i int) string) {
		for i, v := range vals {
			if i > 0 {
				bw.WriteString(columnGap)
			}
			pad := ""
			if i < last {
				pad = strings.Repeat(" ", widths[i]-utf8.RuneCountInString(v))
			}
			bw.WriteString(paint(style(i), v))
			bw.WriteString(pad)
		}
		bw.WriteByte('\n')
	}

	if len(rows) == 0 {
		fmt.Fprintln(bw, "no findings")
	} else {
		titles := make([]string, len(tableColumns))
		for i, c := range tableColumns {
			titles[i] = c.title
		}
		line(titles, func(int) string { return ansiBold })
		for r := range rows {
			sev := severityStyle(rows[r].Severity)
			line(cells[r], func(i int) string {
				if tableColumns[i].bySeverity {
					return sev
				}
				return ""
			})
		}
	}
	bw.WriteByte('\n')
	if s.Coverage != nil {
		writeGapTable(bw, *s.Coverage)
	}
	writeSummaryText(bw, s, len(rows), paint)
	return bw.Flush()
}

// writeGapTable lists the events a reconciliation found missing from the
// verdict log (tracked ones included: the stream did not see them
// either), in event time order.
func writeGapTable(w *bufio.Writer, c Coverage) {
	if len(c.Gaps) == 0 {
		fmt.Fprintln(w, "no event missing from the verdict log")
		w.WriteByte('\n')
		return
	}
	fmt.Fprintf(w, "missing from the verdict log: %s\n", thousands(c.Missed()))
	titles := []string{"TIME", "ACCOUNT", "REGION", "EVENT", "VERDICT", "FINDING ID", "EVENT ID"}
	rows := [][]string{titles}
	for _, g := range c.Gaps {
		rows = append(rows, []string{g.EventTime.UTC().Format(TimeLayout), truncateEnd(printable(g.Account), 14),
			truncateEnd(printable(g.Region), 16), truncateEnd(printable(g.EventName), 26), truncateEnd(printable(g.Verdict), 19),
			orDash(g.FindingID), truncateMiddle(printable(g.EventID), 40)})
	}
	widths := make([]int, len(titles))
	for _, r := range rows {
		for i, v := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(v))
		}
	}
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				w.WriteString(columnGap)
			}
			w.WriteString(v)
			if i < len(r)-1 {
				w.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(v)))
			}
		}
		w.WriteByte('\n')
	}
	if shown := len(c.Gaps); shown < c.Missed() {
		fmt.Fprintf(w, "(%s of %s shown, the first found; the JSON lines list every one)\n", thousands(shown), thousands(c.Missed()))
	}
	w.WriteByte('\n')
}

// writeSummaryText writes the summary block under the table.
func writeSummaryText(w *bufio.Writer, s Summary, shown int, paint func(style, s string) string) {
	row := func(label, value string) { fmt.Fprintf(w, "  %-16s%s\n", label, value) }
	fmt.Fprintln(w, paint(ansiBold, "sessionwatch summary"))
	row("window", windowText(s.Window))
	if len(s.Sources) > 0 {
		row("sources", printable(strings.Join(s.Sources, ", ")))
	}
	if len(s.Filters) > 0 {
		row("filters", printable(strings.Join(s.Filters, " ")))
	}
	if !s.FindingsOnly {
		row("events read", thousands(s.Events))
		row("in scope", thousands(s.InScope))
	}
	if len(s.Filtered) > 0 {
		row("filtered out", filteredText(s))
	}
	if s.FindingsOnly {
		row("classified", "n/a (findings file: only findings are known)")
	} else {
		row("classified", thousands(s.Classified))
	}
	for _, v := range verdictOrder(s.PerVerdict) {
		if s.FindingsOnly && v == classify.Tracked {
			continue
		}
		fmt.Fprintf(w, "    %-21s%s\n", v, thousands(s.PerVerdict[v]))
	}
	findings := thousands(s.Findings)
	if sev := severityText(s.PerSeverity); sev != "" {
		findings += " (" + sev + ")"
	}
	row("findings", findings)
	if s.Duplicates > 0 {
		row("duplicates", thousands(s.Duplicates)+" (redelivered findings, counted once)")
	}
	if shown < s.Findings {
		row("shown", fmt.Sprintf("%s of %s (the most severe, then the most recent)", thousands(shown), thousands(s.Findings)))
	}
	rate := "n/a: a findings file holds no tracked events, so the rate is unknown"
	if r, ok := s.TrackedRate(); ok {
		rate = fmt.Sprintf("%s (%s of %s)", percent(r, ok), thousands(s.Tracked), thousands(s.Classified))
	} else if !s.FindingsOnly {
		rate = "n/a (nothing classified)"
	}
	row("tracked rate", paint(ansiBold, rate))
	if s.Coverage != nil {
		writeCoverageText(w, *s.Coverage, row, paint)
	}
}

// writeCoverageText writes a reconciliation's lines of the summary.
func writeCoverageText(w *bufio.Writer, c Coverage, row func(label, value string), paint func(style, s string) string) {
	row("verdict log", fmt.Sprintf("%s (%s event ids)", printable(c.Log), thousands(c.Logged)))
	if c.LogMalformed > 0 {
		row("log unreadable", thousands(c.LogMalformed)+" lines or objects skipped (their events count as missed)")
	}
	row("not settled", fmt.Sprintf("%s (at or after %s: not counted)", thousands(c.Unsettled), c.SettledBefore.UTC().Format(TimeLayout)))
	r, ok := c.Rate()
	row("coverage", paint(ansiBold, fmt.Sprintf("%s (%s of %s settled events logged, %s missed)", percent(r, ok),
		thousands(c.Covered), thousands(c.Expected), thousands(c.Missed()))))
	gaps := c.GapRows()
	for i, g := range gaps {
		if i == MaxGapRowsText {
			fmt.Fprintf(w, "    ... %s more rows\n", thousands(len(gaps)-i))
			break
		}
		gr, gok := g.Rate()
		fmt.Fprintf(w, "    %-14s %-16s %s  missed %s of %s (%s)\n", printable(g.Account), printable(g.Region),
			g.Hour.UTC().Format("2006-01-02T15Z"), thousands(g.Missed()), thousands(g.Expected), percent(gr, gok))
	}
}

func windowText(w [2]time.Time) string {
	if w[0].IsZero() && w[1].IsZero() {
		return "n/a"
	}
	return w[0].UTC().Format(TimeLayout) + " .. " + w[1].UTC().Format(TimeLayout)
}

func filteredText(s Summary) string {
	var parts []string
	for _, name := range FilterNames() {
		if n, ok := s.Filtered[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", name, thousands(n)))
		}
	}
	return fmt.Sprintf("%s (%s)", thousands(s.FilteredTotal()), strings.Join(parts, ", "))
}

// verdictOrder lists the verdicts of a tally: the contract's order,
// pipeline_tampered when the tally has it, then any other key.
func verdictOrder(m map[classify.Verdict]int) []classify.Verdict {
	out := classify.AllVerdicts()
	if _, ok := m[classify.PipelineTampered]; ok {
		out = append(out, classify.PipelineTampered)
	}
	var extra []classify.Verdict
	for v := range m {
		if !slices.Contains(out, v) {
			extra = append(extra, v)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

func severityText(m map[string]int) string {
	var parts []string
	for _, sev := range []string{"critical", "high", "medium", "low"} {
		if n := m[sev]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", sev, thousands(n)))
		}
	}
	var extra []string
	for k, n := range m {
		if !slices.Contains([]string{"critical", "high", "medium", "low"}, k) && n > 0 {
			extra = append(extra, fmt.Sprintf("%s %s", printable(truncateEnd(k, 20)), thousands(n)))
		}
	}
	slices.Sort(extra)
	return strings.Join(append(parts, extra...), ", ")
}
