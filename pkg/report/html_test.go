package report

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/sessionwatch/sessionwatch/internal/htmlcheck"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

func render(t *testing.T, s Summary, fs []sink.Finding, opts HTMLOptions) ([]byte, *html.Node) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, s, fs, opts); err != nil {
		t.Fatal(err)
	}
	doc, err := htmlcheck.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("the report does not parse: %v", err)
	}
	return buf.Bytes(), doc
}

// checkSelfContained fails on anything that would make the page fetch or
// run something not in the file.
func checkSelfContained(t *testing.T, doc *html.Node) {
	t.Helper()
	for _, p := range htmlcheck.Problems(doc) {
		t.Error(p)
	}
}

func countSVG(doc *html.Node, name string) int {
	n := 0
	htmlcheck.Walk(doc, func(c *html.Node) {
		if c.Type == html.ElementNode && c.Namespace == "svg" && c.Data == name {
			n++
		}
	})
	return n
}

func findingRows(t *testing.T, doc *html.Node) []*html.Node {
	t.Helper()
	return tableRows(t, doc, "findings")
}

func corpusReport(t *testing.T, maxFindings int) (Summary, []sink.Finding) {
	t.Helper()
	_, evs := expectedResults(t, reportCorpusConfig())
	acc := NewAccumulator(Config{Sources: []string{"file:./trail"}, MaxFindings: maxFindings})
	for _, x := range evs {
		add(acc, x.ev, x.r)
	}
	s := acc.Summary()
	s.Events, s.InScope = len(evs)+10, len(evs)
	return s, acc.Findings()
}

// TestWriteHTML: the report parses, references nothing outside itself,
// has its four charts and a row, with its finding id, for every finding.
func TestWriteHTML(t *testing.T) {
	s, fs := corpusReport(t, 0)
	if len(fs) != s.Findings || len(fs) < 500 {
		t.Fatalf("%d findings kept of %d", len(fs), s.Findings)
	}
	out, doc := render(t, s, fs, HTMLOptions{Title: "Weekly report", GeneratedAt: corpusNow})
	checkSelfContained(t, doc)

	if n := countSVG(doc, "svg"); n != 4 {
		t.Errorf("%d charts, want 4 (tracked rate, findings per day, callers, roles)", n)
	}
	if countSVG(doc, "polyline") == 0 || countSVG(doc, "circle") == 0 || countSVG(doc, "rect") < 20 || countSVG(doc, "line") < 20 {
		t.Error("the charts lack lines, points, bars or axes")
	}
	rows := findingRows(t, doc)
	if len(rows) != len(fs) {
		t.Fatalf("%d rows, want %d", len(rows), len(fs))
	}
	for i, f := range fs {
		if !strings.Contains(htmlcheck.Text(rows[i]), f.FindingID) {
			t.Fatalf("row %d lacks finding id %s", i, f.FindingID)
		}
		if v, _ := htmlcheck.Attr(rows[i], "data-verdict"); v != string(f.Category) {
			t.Fatalf("row %d: data-verdict %q, want %q", i, v, f.Category)
		}
	}
	text := htmlcheck.Text(doc)
	rate, _ := s.TrackedRate()
	for _, want := range []string{"Weekly report", "file:./trail", percent(rate, true), thousands(s.Findings), thousands(s.Classified),
		s.TopCallers[0].Key, s.TopRoles[0].Key, s.AccountRegions[0].Account, "Tracked rate per day", "Per account and region"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if strings.Contains(text, "Showing") {
		t.Error("a capped-rows note without a cap")
	}
	// The verdict select offers each verdict in the table.
	sel := htmlcheck.ByID(doc, "verdict")
	if sel == nil || !strings.Contains(htmlcheck.Text(sel), "revoked") || strings.Contains(htmlcheck.Text(sel), "tracked") {
		t.Error("the verdict filter lacks revoked or offers tracked")
	}
	if bytes.Contains(out, []byte("{{")) {
		t.Error("template residue in the output")
	}
}

// TestWriteHTMLCapsRows: past MaxRows the table keeps the most severe,
// then the most recent, says so, and the totals do not change.
func TestWriteHTMLCapsRows(t *testing.T) {
	s, fs := corpusReport(t, 0)
	const limit = 50
	_, doc := render(t, s, fs, HTMLOptions{MaxRows: limit})
	checkSelfContained(t, doc)
	rows := findingRows(t, doc)
	if len(rows) != limit {
		t.Fatalf("%d rows, want %d", len(rows), limit)
	}
	// The same selection as an Accumulator capped at the limit.
	_, capped := corpusReport(t, limit)
	for i, f := range capped {
		if !strings.Contains(htmlcheck.Text(rows[i]), f.FindingID) {
			t.Errorf("row %d lacks %s", i, f.FindingID)
		}
	}
	text := htmlcheck.Text(doc)
	if want := fmt.Sprintf("Showing %d of %s findings", limit, thousands(s.Findings)); !strings.Contains(text, want) {
		t.Errorf("no note %q", want)
	}
	if !strings.Contains(text, thousands(s.Findings)) {
		t.Error("the total changed with the cap")
	}
}

// TestWriteHTMLEscapesHostileInput: attacker-controlled fields come out as
// text, never as markup, in every place they are rendered.
func TestWriteHTMLEscapesHostileInput(t *testing.T) {
	const (
		si     = `<script>alert(1)</script>`
		agent  = `</script><img src=x onerror=alert(2)>`
		caller = `arn:aws:iam::111122223333:user/"><svg onload=alert(3)>`
		role   = `javascript:alert(4)//</title><b>bold</b>`
	)
	ev := sink.Finding{Schema: sink.Schema, FindingID: "hostile-1", Category: classify.NonSentinel, Severity: "high",
		Reason:    `SourceIdentity "` + si + `" is not in the expected format`,
		Event:     sink.EventInfo{ID: "e1", Name: "AssumeRole", Time: t0, Account: "<i>111122223333</i>", Region: "eu-west-1", UserAgent: agent, SourceIP: `"'><x>`},
		Principal: sink.PrincipalInfo{ARN: caller}, Target: sink.TargetInfo{RoleARN: role}, SourceIdentity: sink.SourceIdentityInfo{Value: si}}
	odd := ev
	odd.FindingID, odd.Event.ID, odd.Category, odd.Severity = "hostile-2", "e2", `"><script>alert(5)</script>`, `<u>x</u>`

	acc := NewAccumulator(Config{Sources: []string{"findings:<script>alert(6)</script>"}})
	acc.AddFinding(ev)
	acc.AddFinding(odd)
	out, doc := render(t, acc.Summary(), acc.Findings(), HTMLOptions{Title: "<i>title</i>"})
	checkSelfContained(t, doc)
	htmlcheck.Walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "img", "b", "i", "u", "x":
				t.Errorf("injected element <%s>", n.Data)
			}
			if n.Namespace == "svg" && n.Data == "svg" {
				if _, ok := htmlcheck.Attr(n, "onload"); ok {
					t.Error("injected onload")
				}
			}
		}
	})
	if !bytes.Contains(out, []byte(`&lt;script&gt;alert(1)&lt;/script&gt;`)) {
		t.Error("the SourceIdentity is not escaped as text")
	}
	text := htmlcheck.Text(doc)
	for _, want := range []string{si, agent, caller, role, "<i>title</i>", `"><script>alert(5)</script>`} {
		if !strings.Contains(text, want) {
			t.Errorf("%q is not shown as text", want)
		}
	}
	if n := countSVG(doc, "svg"); n != 3 {
		t.Errorf("%d charts from findings alone, want 3 (no tracked rate)", n)
	}
	if !strings.Contains(text, "n/a: a findings file holds no tracked events") {
		t.Error("a findings-only report does not say the tracked rate is unknown")
	}
	if !slices.ContainsFunc(findingRows(t, doc), func(n *html.Node) bool { v, _ := htmlcheck.Attr(n, "data-verdict"); return v == string(odd.Category) }) {
		t.Error("the unknown category lost its row")
	}
}

// TestWriteHTMLEmpty: a run without events still renders a valid page.
func TestWriteHTMLEmpty(t *testing.T) {
	_, doc := render(t, Summary{}, nil, HTMLOptions{})
	checkSelfContained(t, doc)
	if rows := findingRows(t, doc); len(rows) != 0 {
		t.Errorf("%d rows", len(rows))
	}
	if !strings.Contains(htmlcheck.Text(doc), "sessionwatch report") {
		t.Error("no default title")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tt := range []struct {
		most int
		top  float64
		n    int
	}{{0, 1, 2}, {1, 1, 2}, {4, 4, 5}, {7, 8, 5}, {10, 10, 6}, {37, 40, 5}, {99, 100, 6}, {101, 150, 4}, {12345, 15000, 4}} {
		top, ticks := niceTicks(tt.most)
		if top != tt.top || len(ticks) != tt.n || ticks[0] != 0 || ticks[len(ticks)-1] != top {
			t.Errorf("niceTicks(%d) = %v %v, want top %v with %d ticks", tt.most, top, ticks, tt.top, tt.n)
		}
	}
}

// TestVerdictColours: every verdict a report shows, pipeline_tampered
// included, has a colour of its own, in the charts and the swatches, and an
// unknown category the shared one.
func TestVerdictColours(t *testing.T) {
	seen := map[string]classify.Verdict{}
	for _, v := range append(classify.AllVerdicts(), classify.PipelineTampered) {
		c := verdictClass(v)
		if other, dup := seen[c]; dup || c == "vx" {
			t.Errorf("%s has class %q, as %q does", v, c, other)
		}
		seen[c] = v
		for rule, n := range map[string]int{
			"--" + c + ": #":                                  2, // light and dark
			"." + c + " { fill: var(--" + c + "); }":          1,
			".sw." + c + " { background: var(--" + c + "); }": 1,
		} {
			if got := strings.Count(pageCSS, rule); got != n {
				t.Errorf("%s: report.css has %q %d times, want %d", v, rule, got, n)
			}
		}
	}
	if c := verdictClass("from_a_newer_version"); c != "vx" {
		t.Errorf("an unknown category has class %q, want vx", c)
	}
}
