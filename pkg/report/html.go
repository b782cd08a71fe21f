package report

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// The page's template, style sheet and script are constants compiled into
// the binary. They are the only content marked safe (template.CSS and
// template.JS); everything that comes from events or findings is escaped
// by html/template.
var (
	//go:embed assets/report.html.tmpl
	pageTemplate string
	//go:embed assets/report.css
	pageCSS string
	//go:embed assets/report.js
	pageJS string

	page = template.Must(template.New("report").Funcs(template.FuncMap{"num": num}).Parse(pageTemplate))
	// pageCSP allows the page's own style sheet and script, by hash, and
	// nothing else: no network access, and no injected markup could run.
	pageCSP = "default-src 'none'; style-src " + cspHash(pageCSS) + "; script-src " + cspHash(pageJS) +
		"; img-src 'none'; base-uri 'none'; form-action 'none'"
)

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// HTMLOptions shape WriteHTML's page.
type HTMLOptions struct {
	// Title heads the page ("sessionwatch report" when empty).
	Title string
	// GeneratedAt is shown when set.
	GeneratedAt time.Time
	// MaxRows caps the rows of the findings table (DefaultMaxFindings when
	// 0, none when negative): past it the most severe, then most recent,
	// are shown, with a note. Totals and charts count every finding.
	MaxRows int
}

// maxAccountRegionRows caps the per account and region table.
const maxAccountRegionRows = 500

// WriteHTML writes the report as one self-contained HTML page: no script,
// style sheet, font or image is fetched (a Content-Security-Policy forbids
// it), so it opens offline and from a mail attachment. Charts are inline
// SVG; colours follow the reader's light or dark preference. The findings
// table filters in the page by text and by verdict.
//
// findings are the rows of the table (typically Accumulator.Findings); s
// gives every total, so both should come from the same run.
func WriteHTML(w io.Writer, s Summary, findings []sink.Finding, opts HTMLOptions) error {
	if opts.Title == "" {
		opts.Title = "sessionwatch report"
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = DefaultMaxFindings
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := page.Execute(bw, newView(s, findings, opts)); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

type view struct {
	Title, GeneratedAt string
	CSP                string
	CSS                template.CSS
	JS                 template.JS
	Window, WindowFull string
	Sources, Filters   []string
	Totals             []stat
	FindingsOnly       bool
	Verdicts, Legend   []verdictView
	RateChart          *chart
	FindingsChart      *chart
	CallersChart       *chart
	RolesChart         *chart
	AccountRegions     []accountRegionView
	AccountRegionsNote string
	Coverage           *coverageView
	Rows               []rowView
	RowsNote, Shown    string
	VerdictOptions     []string
}

type stat struct {
	Label, Value, Note string
	Rate               bool
}

type verdictView struct{ Name, Class, Severity, Count, Share string }

type accountRegionView struct{ Account, Region, Events, Tracked, Findings, Rate string }

type rowView struct {
	Time, Verdict, Class, Severity, Account, Region string
	Caller, Role, SourceIdentity, Reason            string
	Details                                         []detail
}

type detail struct{ Label, Value string }

func newView(s Summary, findings []sink.Finding, opts HTMLOptions) view {
	v := view{
		Title:        printable(opts.Title),
		CSP:          pageCSP,
		CSS:          template.CSS(pageCSS), // a constant of this package, never input
		JS:           template.JS(pageJS),   // likewise
		Window:       windowShort(s.Window),
		WindowFull:   windowText(s.Window),
		FindingsOnly: s.FindingsOnly,
	}
	if !opts.GeneratedAt.IsZero() {
		v.GeneratedAt = opts.GeneratedAt.UTC().Format(TimeLayout)
	}
	for _, src := range s.Sources {
		v.Sources = append(v.Sources, printable(src))
	}
	for _, f := range s.Filters {
		v.Filters = append(v.Filters, printable(f))
	}
	v.Totals = totals(s)
	v.Coverage = newCoverageView(s.Coverage)

	verdicts := verdictOrder(s.PerVerdict)
	for _, vd := range verdicts {
		n := s.PerVerdict[vd]
		if vd == VerdictOther && n == 0 {
			continue
		}
		row := verdictView{Name: string(vd), Class: verdictClass(vd), Severity: vd.DefaultSeverity().String(), Count: thousands(n), Share: "n/a"}
		if vd == VerdictOther {
			row.Severity = "(as recorded)"
		}
		if s.FindingsOnly {
			if vd == classify.Tracked {
				row.Count = "n/a"
			} else {
				row.Share = percent(ratio(n, s.Findings)) + " of findings"
			}
		} else {
			row.Share = percent(ratio(n, s.Classified))
		}
		v.Verdicts = append(v.Verdicts, row)
		if vd != classify.Tracked {
			v.Legend = append(v.Legend, row)
		}
	}
	var findingVerdicts []classify.Verdict
	for _, vd := range verdicts {
		if vd != classify.Tracked {
			findingVerdicts = append(findingVerdicts, vd)
		}
	}

	if !s.FindingsOnly {
		v.RateChart = rateChart(s.PerDay)
	}
	v.FindingsChart = findingsChart(s.PerDay, findingVerdicts)
	v.CallersChart = barChart("Top callers by findings", s.TopCallers)
	v.RolesChart = barChart("Top target roles by findings", s.TopRoles)

	for i, ar := range s.AccountRegions {
		if i == maxAccountRegionRows {
			v.AccountRegionsNote = fmt.Sprintf("Showing %d of %s account and region pairs, most findings first.", maxAccountRegionRows, thousands(len(s.AccountRegions)))
			break
		}
		row := accountRegionView{Account: printable(orDash(ar.Account)), Region: printable(orDash(ar.Region)),
			Events: thousands(ar.Events), Tracked: thousands(ar.Tracked), Findings: thousands(ar.Findings), Rate: percent(ar.TrackedRate())}
		if s.FindingsOnly {
			row.Events, row.Tracked = "n/a", "n/a"
		}
		v.AccountRegions = append(v.AccountRegions, row)
	}

	rows := selectRows(findings, opts.MaxRows)
	total := max(s.Findings, len(findings))
	if len(rows) < total {
		v.RowsNote = fmt.Sprintf("Showing %s of %s findings: the most severe, then the most recent. Totals and charts count all of them.",
			thousands(len(rows)), thousands(total))
	}
	v.Shown = thousands(len(rows))
	present := map[string]bool{}
	for i := range rows {
		r := newRow(&rows[i])
		present[r.Verdict] = true
		v.Rows = append(v.Rows, r)
	}
	for _, vd := range verdictOrder(nil) {
		if present[string(vd)] {
			v.VerdictOptions = append(v.VerdictOptions, string(vd))
			delete(present, string(vd))
		}
	}
	v.VerdictOptions = append(v.VerdictOptions, slices.Sorted(func(yield func(string) bool) {
		for k := range present {
			if !yield(k) {
				return
			}
		}
	})...)
	return v
}

func totals(s Summary) []stat {
	var out []stat
	add := func(label, value, note string) { out = append(out, stat{Label: label, Value: value, Note: note}) }
	if !s.FindingsOnly {
		add("Events read", thousands(s.Events), "")
		add("In scope", thousands(s.InScope), "STS calls in the window")
	}
	if len(s.Filtered) > 0 {
		add("Filtered out", thousands(s.FilteredTotal()), filteredNote(s.Filtered))
	}
	if !s.FindingsOnly {
		add("Classified", thousands(s.Classified), "")
		add("Tracked", thousands(s.Tracked), "")
	}
	add("Findings", thousands(s.Findings), severityText(s.PerSeverity))
	if s.Duplicates > 0 {
		add("Duplicates", thousands(s.Duplicates), "redelivered, counted once")
	}
	rate, ok := s.TrackedRate()
	note := fmt.Sprintf("%s of %s classified", thousands(s.Tracked), thousands(s.Classified))
	switch {
	case s.FindingsOnly:
		note = "findings only: tracked events unknown"
	case !ok:
		note = "nothing classified"
	}
	out = append(out, stat{Label: "Tracked rate", Value: percent(rate, ok), Note: note, Rate: ok})
	if c := s.Coverage; c != nil {
		r, ok := c.Rate()
		out = append(out, stat{Label: "Coverage", Value: percent(r, ok), Rate: ok,
			Note: fmt.Sprintf("%s of %s settled events in the verdict log", thousands(c.Covered), thousands(c.Expected))})
	}
	return out
}

func filteredNote(m map[string]int) string {
	var parts []string
	for _, name := range FilterNames() {
		if n, ok := m[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", name, thousands(n)))
		}
	}
	return strings.Join(parts, ", ")
}

func newRow(f *sink.Finding) rowView {
	r := rowView{
		Time:           f.Event.Time.UTC().Format(TimeLayout),
		Verdict:        printable(string(f.Category)),
		Class:          verdictClass(f.Category),
		Severity:       printable(f.Severity),
		Account:        printable(orDash(f.Event.Account)),
		Region:         printable(orDash(f.Event.Region)),
		Caller:         printable(orDash(f.Principal.ARN, f.Principal.PrincipalID)),
		Role:           printable(orDash(f.Target.RoleARN)),
		SourceIdentity: printable(orDash(f.SourceIdentity.Value)),
		Reason:         printable(f.Reason),
	}
	add := func(label, value string) {
		if value != "" {
			r.Details = append(r.Details, detail{Label: label, Value: printable(value)})
		}
	}
	add("finding id", f.FindingID)
	add("event", f.Event.Name)
	add("event id", f.Event.ID)
	add("request id", f.Event.RequestID)
	add("error", f.Event.ErrorCode)
	add("source IP", f.Event.SourceIP)
	add("user agent", f.Event.UserAgent)
	add("caller type", f.Principal.Type)
	add("principal id", f.Principal.PrincipalID)
	add("caller's role", f.Principal.SessionIssuerARN)
	add("session name", f.Target.RoleSessionName)
	add("assumed role", f.Target.AssumedRoleARN)
	add("SI origin", string(f.SourceIdentity.Origin))
	if f.Session != nil {
		add("session", f.Session.ID+" ("+f.Session.Status+", user "+f.Session.User+")")
	}
	add("detector", string(f.Detector))
	if !f.DetectedAt.IsZero() {
		add("detected", detectedAt(f))
	}
	return r
}

// windowShort is the window for the page's subtitle: dates and length.
func windowShort(w [2]time.Time) string {
	if w[0].IsZero() && w[1].IsZero() {
		return "no events"
	}
	d := w[1].Sub(w[0])
	length := fmt.Sprintf("%.1f days", d.Hours()/24)
	if d < 48*time.Hour {
		length = fmt.Sprintf("%.0f hours", d.Hours())
	}
	return fmt.Sprintf("%s → %s (%s)", w[0].UTC().Format("2006-01-02 15:04"), w[1].UTC().Format("2006-01-02 15:04 UTC"), length)
}
