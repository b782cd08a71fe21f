package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/htmlcheck"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// page is what a test reads back from an HTML report.
type page struct {
	doc *html.Node
	// cards are the totals: label → value ("Classified" → "1,234").
	cards map[string]string
	// verdicts: the verdict table's count column.
	verdicts map[string]string
	// rateDays: the tracked rate chart's points, day → "61.2% tracked (30
	// of 49 events)".
	rateDays map[string]dayRate
	// findingsPerDay: the stacked bars, day → findings.
	findingsPerDay map[string]int
}

type dayRate struct {
	percent         string
	tracked, events int
}

func number(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func hasClass(n *html.Node, class string) bool {
	v, _ := htmlcheck.Attr(n, "class")
	return strings.Contains(" "+v+" ", " "+class+" ")
}

// readReport parses a report, fails on anything that is not
// self-contained, and reads its numbers.
func readReport(t *testing.T, path string) page {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := htmlcheck.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, p := range htmlcheck.Problems(doc) {
		t.Errorf("%s: %s", path, p)
	}
	rateTitle := regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}): ([\d.]+%) tracked \(([\d,]+) of ([\d,]+) events\)$`)
	findingsTitle := regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}) · ([a-z_]+): ([\d,]+)$`)
	p := page{doc: doc, cards: map[string]string{}, verdicts: map[string]string{}, rateDays: map[string]dayRate{}, findingsPerDay: map[string]int{}}
	htmlcheck.Walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch {
		case n.DataAtom == atom.Div && hasClass(n, "card"):
			var label, value string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				switch {
				case c.Type == html.ElementNode && hasClass(c, "l"):
					label = htmlcheck.Text(c)
				case c.Type == html.ElementNode && hasClass(c, "v"):
					value = htmlcheck.Text(c)
				}
			}
			p.cards[label] = value
		case n.DataAtom == atom.Tr && n.Parent != nil && n.Parent.DataAtom == atom.Tbody:
			var cells []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.DataAtom == atom.Td {
					cells = append(cells, htmlcheck.Text(c))
				}
			}
			if len(cells) == 4 { // the verdict table: verdict, severity, count, share
				p.verdicts[cells[0]] = cells[2]
			}
		case n.Namespace == "svg" && n.Data == "circle" && hasClass(n, "rate"):
			if m := rateTitle.FindStringSubmatch(htmlcheck.Text(n)); m != nil {
				p.rateDays[m[1]] = dayRate{percent: m[2], tracked: number(t, m[3]), events: number(t, m[4])}
			} else {
				t.Errorf("rate point title %q", htmlcheck.Text(n))
			}
		case n.Namespace == "svg" && n.Data == "rect":
			if m := findingsTitle.FindStringSubmatch(htmlcheck.Text(n)); m != nil {
				p.findingsPerDay[m[1]] += number(t, m[3])
			}
		}
	})
	return p
}

// TestBackfillReportMatchesSummary: the report's totals equal the
// backfill's summary, and its per-day tracked rates equal those computed
// from the generated corpus, exactly, with and without filters.
func TestBackfillReportMatchesSummary(t *testing.T) {
	c, table, dir := filterCorpus(t, 29, 900)
	tests := []struct {
		name string
		args []string
		// keep is the test's own statement of the filter; nil when it
		// cannot be stated from the corpus (--profile: the session the
		// classifier matched).
		keep func(*cloudtrail.Event) bool
	}{
		{name: "every event", keep: func(*cloudtrail.Event) bool { return true }},
		{name: "role glob", args: []string{"--role", "*:role/Sentinel*"},
			keep: func(e *cloudtrail.Event) bool { return strings.HasPrefix(roleName(e.TargetRoleARN), "Sentinel") }},
		{name: "profile", args: []string{"--profile", "prod-*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			reportPath, sumPath := filepath.Join(out, "report.html"), filepath.Join(out, "summary.json")
			args := append([]string{"--source", "file:" + dir, "--table", table, "--session-retention", "5d",
				"--report", reportPath, "--summary-json", sumPath, "--sink", "file:" + filepath.Join(out, "findings.jsonl")}, window(c)...)
			res := runBackfill(t, append(args, tt.args...)...)
			if res.code != exitFindings {
				t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
			}
			s := readSummaryJSON(t, sumPath)
			p := readReport(t, reportPath)

			filtered := 0
			for _, n := range s.FilteredOut {
				filtered += n
			}
			rate := "n/a"
			if s.TrackedRate != nil {
				rate = fmt.Sprintf("%.1f%%", 100**s.TrackedRate)
			}
			wantCards := map[string]int{"Events read": int(s.EventsScanned), "In scope": int(s.InScope), "Classified": int(s.Classified),
				"Tracked": int(s.Tracked), "Findings": int(s.Findings)}
			if len(tt.args) > 0 {
				wantCards["Filtered out"] = filtered
			}
			for label, want := range wantCards {
				if got, ok := p.cards[label]; !ok || number(t, got) != want {
					t.Errorf("report %s = %q, summary %d", label, got, want)
				}
			}
			if p.cards["Tracked rate"] != rate {
				t.Errorf("report tracked rate %q, summary %s", p.cards["Tracked rate"], rate)
			}
			for v, n := range s.Verdicts {
				if got := p.verdicts[v]; got == "" || number(t, got) != int(n) {
					t.Errorf("report verdict %s = %q, summary %d", v, got, n)
				}
			}

			// Per day: the chart's points add up to the summary ...
			tracked, events, findings := 0, 0, 0
			for _, d := range p.rateDays {
				tracked, events = tracked+d.tracked, events+d.events
				if want := fmt.Sprintf("%.1f%%", 100*float64(d.tracked)/float64(d.events)); d.percent != want {
					t.Errorf("rate point %s for %d of %d", d.percent, d.tracked, d.events)
				}
			}
			for _, n := range p.findingsPerDay {
				findings += n
			}
			if tracked != int(s.Tracked) || events != int(s.Classified) || findings != int(s.Findings) {
				t.Errorf("per day: %d tracked, %d classified, %d findings; summary %d, %d, %d",
					tracked, events, findings, s.Tracked, s.Classified, s.Findings)
			}
			if tt.keep == nil {
				return
			}
			// ... and equal the corpus's, day by day.
			want := map[string]dayRate{}
			for _, ev := range c.Events {
				if !tt.keep(decode(t, ev)) {
					continue
				}
				day := ev.Time.UTC().Format(time.DateOnly)
				d := want[day]
				d.events++
				if ev.Expected == classify.Tracked {
					d.tracked++
				}
				want[day] = d
			}
			if len(want) < 5 {
				t.Fatalf("the corpus spans %d days: the case proves little", len(want))
			}
			for day, w := range want {
				got := p.rateDays[day]
				if got.tracked != w.tracked || got.events != w.events {
					t.Errorf("%s: report %d of %d tracked, corpus %d of %d", day, got.tracked, got.events, w.tracked, w.events)
				}
			}
			for day := range p.rateDays {
				if _, ok := want[day]; !ok {
					t.Errorf("%s: a rate point on a day without events", day)
				}
			}
		})
	}
}

// TestBackfillReportIsSelfContained: the page the backfill writes parses
// and references nothing outside itself (no http(s) src or href, no
// @import or url(), no font, no element that loads anything), and its
// policy allows only its own style sheet and script.
func TestBackfillReportIsSelfContained(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 31, Events: 150, Now: testNow, Accounts: twoAccounts})
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, corpus.JSONLines(c.All()), 0o600); err != nil {
		t.Fatal(err)
	}
	reportPath := filepath.Join(t.TempDir(), "report.html")
	res := runBackfill(t, append([]string{"--source", "file:" + path, "--table", table, "--report", reportPath}, window(c)...)...)
	if res.code != exitFindings {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	b, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := htmlcheck.Parse(b)
	if err != nil {
		t.Fatalf("the report does not parse: %v", err)
	}
	if problems := htmlcheck.Problems(doc); len(problems) > 0 {
		t.Errorf("the report is not self-contained:\n%s", strings.Join(problems, "\n"))
	}
	lower := strings.ToLower(string(b))
	for _, bad := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "@import", "url(", "@font-face", "<link"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the report holds %q", bad)
		}
	}
	if len(res.findings) == 0 || !strings.Contains(string(b), res.findings[0].FindingID) {
		t.Error("the report does not list the findings")
	}
}
