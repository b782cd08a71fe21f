package report

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/sessionwatch/sessionwatch/internal/htmlcheck"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

var covHour = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

// covEvent is an event of account, region at hour h (plus m minutes).
func covEvent(account, region string, h, m int) *cloudtrail.Event {
	return &cloudtrail.Event{ID: fmt.Sprintf("%s-%s-%d-%d", account, region, h, m), Name: "AssumeRole", Account: account, Region: region,
		Time: covHour.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)}
}

// testCoverage counts, per account, region and hour offset, logged and
// missed events.
func testCoverage(cells []covCell) Coverage {
	cc := NewCoverageCounter()
	var gaps []Gap
	for _, c := range cells {
		for i := range c.logged + c.missed {
			ev := covEvent(c.account, c.region, c.hour, i)
			cc.Add(ev, i < c.logged)
			if i >= c.logged {
				gaps = append(gaps, NewGap(ev, classify.Result{Verdict: classify.Tracked}))
			}
		}
	}
	cc.AddUnsettled()
	cov := cc.Coverage()
	cov.Log, cov.Logged, cov.Settle, cov.SettledBefore, cov.Gaps = "file:/var/log/verdicts", cov.Covered, 15*time.Minute, covHour.Add(48*time.Hour), gaps
	return cov
}

type covCell struct {
	account, region string
	hour            int
	logged, missed  int
}

func TestCoverageCounter(t *testing.T) {
	tests := []struct {
		name                      string
		cells                     []covCell
		expected, covered, missed int
		rate                      float64
		gapRows, regionHours      int
	}{
		{"nothing", nil, 0, 0, 0, -1, 0, 0},
		{"all logged", []covCell{{"111122223333", "us-east-1", 0, 5, 0}, {"111122223333", "eu-west-1", 1, 3, 0}}, 8, 8, 0, 1, 0, 2},
		{"a region unseen", []covCell{{"111122223333", "us-east-1", 0, 9, 1}, {"111122223333", "eu-west-1", 0, 0, 10}}, 20, 9, 11, 0.45, 2, 2},
		{"two accounts, one region hour", []covCell{{"111122223333", "us-east-1", 2, 3, 1}, {"444455556666", "us-east-1", 2, 4, 0}}, 8, 7, 1, 0.875, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCoverage(tt.cells)
			if c.Expected != tt.expected || c.Covered != tt.covered || c.Missed() != tt.missed || c.Unsettled != 1 {
				t.Errorf("expected %d covered %d missed %d unsettled %d, want %d %d %d 1", c.Expected, c.Covered, c.Missed(), c.Unsettled,
					tt.expected, tt.covered, tt.missed)
			}
			r, ok := c.Rate()
			if ok != (tt.rate >= 0) || (ok && r != tt.rate) {
				t.Errorf("rate %v %v, want %v", r, ok, tt.rate)
			}
			if n := len(c.GapRows()); n != tt.gapRows {
				t.Errorf("%d gap rows, want %d", n, tt.gapRows)
			}
			rh := c.RegionHours()
			if len(rh) != tt.regionHours {
				t.Errorf("%d region hours, want %d", len(rh), tt.regionHours)
			}
			sum := 0
			for _, row := range rh {
				if row.Account != "" || !row.Hour.Equal(row.Hour.Truncate(time.Hour)) {
					t.Errorf("region hour row %+v: has an account or is not an hour", row)
				}
				sum += row.Expected
			}
			if sum != tt.expected {
				t.Errorf("region hours add up to %d, want %d", sum, tt.expected)
			}
		})
	}
}

// TestCoverageCounterBounded: distinct account, region and hour rows past
// maxKeys are counted under otherKey; no event is lost.
func TestCoverageCounterBounded(t *testing.T) {
	cc := NewCoverageCounter()
	const n = maxKeys + 500
	for i := range n {
		cc.Add(covEvent(fmt.Sprintf("%012d", i), "us-east-1", 0, 0), i%2 == 0)
	}
	c := cc.Coverage()
	if c.Expected != n || c.Covered != (n+1)/2 {
		t.Errorf("expected %d covered %d, want %d %d", c.Expected, c.Covered, n, (n+1)/2)
	}
	if len(c.Rows) != maxKeys+1 || c.Rows[0].Account != otherKey || c.Rows[0].Expected != 500 {
		t.Errorf("%d rows, first %+v: want %d, the first %s with 500 events", len(c.Rows), c.Rows[0], maxKeys+1, otherKey)
	}
}

// TestWriteHTMLCoverage: with a reconciliation the report has its coverage
// card, a heatmap cell per region and hour with an event (coloured by
// coverage, titled with its counts), the hours with a missed event and the
// missed events; it stays self-contained. Without one it has none of it.
func TestWriteHTMLCoverage(t *testing.T) {
	cov := testCoverage([]covCell{
		{"111122223333", "us-east-1", 0, 10, 0}, {"111122223333", "us-east-1", 1, 9, 1}, {"111122223333", "eu-west-1", 0, 0, 4},
		{"111122223333", "eu-west-1", 3, 2, 0}, {"444455556666", "us-east-1", 1, 5, 0}, {"111122223333", "ap-south-1", 2, 1, 1},
	})
	s, fs := corpusReport(t, 0)
	s.Coverage = &cov
	_, doc := render(t, s, fs, HTMLOptions{})
	checkSelfContained(t, doc)
	sec := htmlcheck.ByID(doc, "coverage")
	if sec == nil {
		t.Fatal("no coverage section")
	}
	text := htmlcheck.Text(sec)
	for _, want := range []string{"81.8%", "27 of 33 settled events", "6 missed", "file:/var/log/verdicts", "1 events at or after 2026-11-03T06:00:00Z"} {
		if !strings.Contains(text, want) {
			t.Errorf("the coverage section lacks %q:\n%s", want, text)
		}
	}
	cells := map[string]string{} // title: class
	htmlcheck.Walk(sec, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Namespace == "svg" && n.Data == "rect" {
			class, _ := htmlcheck.Attr(n, "class")
			cells[htmlcheck.Text(n)] = class
		}
	})
	want := map[string]string{
		"us-east-1 2026-11-01 06:00: 10 of 10 logged (100.0%)": "cov-full",
		"us-east-1 2026-11-01 07:00: 14 of 15 logged (93.3%)":  "cov-part",
		"eu-west-1 2026-11-01 06:00: 0 of 4 logged (0.0%)":     "cov-none",
		"eu-west-1 2026-11-01 09:00: 2 of 2 logged (100.0%)":   "cov-full",
		"ap-south-1 2026-11-01 08:00: 1 of 2 logged (50.0%)":   "cov-low",
	}
	if len(cells) != len(want) {
		t.Errorf("%d heatmap cells, want %d: %v", len(cells), len(want), cells)
	}
	for title, class := range want {
		if cells[title] != class {
			t.Errorf("cell %q: class %q, want %q", title, cells[title], class)
		}
	}
	if rows := tableRows(t, doc, "coverage-gaps"); len(rows) != 3 {
		t.Errorf("%d region and hour rows with a gap, want 3", len(rows))
	}
	if rows := tableRows(t, doc, "missed"); len(rows) != len(cov.Gaps) || !strings.Contains(htmlcheck.Text(rows[0]), cov.Gaps[0].EventID) {
		t.Errorf("%d missed event rows, want %d, the first naming %s", len(rows), len(cov.Gaps), cov.Gaps[0].EventID)
	}
	if !strings.Contains(htmlcheck.Text(doc), "Coverage") {
		t.Error("no coverage card")
	}

	s.Coverage = nil
	_, doc = render(t, s, fs, HTMLOptions{})
	if htmlcheck.ByID(doc, "coverage") != nil {
		t.Error("a coverage section without a reconciliation")
	}
}

// TestCoverageHeatmapCapsHours: a window longer than maxHeatmapHours draws
// its last hours and says so.
func TestCoverageHeatmapCapsHours(t *testing.T) {
	rows := []CoverageRow{
		{Region: "us-east-1", Hour: covHour, Expected: 1, Covered: 1},
		{Region: "us-east-1", Hour: covHour.Add(maxHeatmapHours * time.Hour), Expected: 2, Covered: 1},
	}
	c, note := coverageHeatmap(rows)
	if len(c.Rects) != 1 || !strings.Contains(note, fmt.Sprintf("last %d of %d hours", maxHeatmapHours, maxHeatmapHours+1)) {
		t.Errorf("%d cells, note %q: want the last hour only and a note", len(c.Rects), note)
	}
}

func tableRows(t *testing.T, doc *html.Node, id string) []*html.Node {
	t.Helper()
	table := htmlcheck.ByID(doc, id)
	if table == nil {
		t.Fatalf("no table %s", id)
	}
	var rows []*html.Node
	htmlcheck.Walk(table, func(n *html.Node) {
		if n.DataAtom == atom.Tr && n.Parent != nil && n.Parent.DataAtom == atom.Tbody {
			rows = append(rows, n)
		}
	})
	return rows
}

// TestTableCoverage: the table lists the missed events and the coverage
// per account, region and hour with a gap, capped at MaxGapRowsText.
func TestTableCoverage(t *testing.T) {
	cells := []covCell{{"111122223333", "us-east-1", 0, 3, 1}}
	for h := range MaxGapRowsText + 2 {
		cells = append(cells, covCell{"111122223333", "eu-west-1", h, 1, 1})
	}
	cov := testCoverage(cells)
	var buf bytes.Buffer
	if err := WriteTable(&buf, nil, Summary{Coverage: &cov}, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"missing from the verdict log: 53",
		"coverage        50.9% (55 of 108 settled events logged, 53 missed)",
		"111122223333   eu-west-1        2026-11-01T06Z  missed 1 of 2 (50.0%)",
		"... 3 more rows",
		cov.Gaps[0].EventID,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	gapLines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "AssumeRole  tracked") {
			gapLines++
		}
	}
	if gapLines != cov.Missed() {
		t.Errorf("%d missed event lines, want %d", gapLines, cov.Missed())
	}
}
