package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/golden"
	"github.com/sessionwatch/sessionwatch/internal/htmlcheck"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name (go test -update rewrites it).
func checkGolden(t *testing.T, name string, got []byte) { golden.Check(t, name, got, *update) }

// tableCorpus is a small corpus with every verdict, in one file; the
// table's golden file is its rendering.
func tableCorpus(t *testing.T) (*corpus.Corpus, string, string) {
	t.Helper()
	c, table := loadCorpus(t, corpus.Config{Seed: 13, Events: 40, Now: testNow, Window: 48 * time.Hour,
		Retention: 3 * 24 * time.Hour, Accounts: twoAccounts, OutOfScope: 4})
	path := filepath.Join(t.TempDir(), "trail.json")
	if err := os.WriteFile(path, corpus.LogFile(c.All(), false), 0o600); err != nil {
		t.Fatal(err)
	}
	return c, table, path
}

// TestBackfillTable: --format table prints the findings sorted by time
// with the summary and tracked rate under it, and no JSON; without a
// terminal there is no colour, NO_COLOR or not.
func TestBackfillTable(t *testing.T) {
	c, table, path := tableCorpus(t)
	base := append([]string{"--source", "file:" + path, "--table", table, "--session-retention", "3d"}, window(c)...)
	args := append(slices.Clone(base), "--format", "table")
	for _, tt := range []struct {
		name string
		args []string
		vars map[string]string
	}{
		{"not a terminal", args, nil},
		{"not a terminal, NO_COLOR", args, map[string]string{"NO_COLOR": "1"}},
		{"from SESSIONWATCH_FORMAT", base, map[string]string{"SESSIONWATCH_FORMAT": "table"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runRaw(tt.vars, tt.args...)
			if code != exitFindings {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			if strings.Contains(stdout, "\x1b") {
				t.Error("colour on a stdout that is not a terminal")
			}
			if strings.Contains(stdout, `"schema"`) {
				t.Error("JSON findings on stdout with --format table")
			}
			// The source's path is a temporary folder: the golden file
			// says TRAIL instead.
			checkGolden(t, "table.golden", []byte(strings.ReplaceAll(stdout, path, "TRAIL")))
			checkTableRows(t, c, stdout)
			if !strings.Contains(stderr, "sessionwatch backfill summary") {
				t.Errorf("no summary on stderr:\n%s", stderr)
			}
		})
	}
	t.Run("with a file sink", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "findings.jsonl")
		code, stdout, stderr := runRaw(nil, append(args, "--sink", "file:"+out)...)
		if code != exitFindings {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		checkGolden(t, "table.golden", []byte(strings.ReplaceAll(stdout, path, "TRAIL")))
		if got := readFindings(t, out); len(got) != len(c.Findings()) {
			t.Errorf("%d findings in the file sink, want %d", len(got), len(c.Findings()))
		}
	})
	t.Run("stdout sink refused", func(t *testing.T) {
		code, _, stderr := runRaw(nil, append(args, "--sink", "stdout")...)
		if code != exitError || !strings.Contains(stderr, "--format table writes to stdout") {
			t.Errorf("exit %d; stderr:\n%s", code, stderr)
		}
	})
}

// checkTableRows: one row per expected finding, in time order.
func checkTableRows(t *testing.T, c *corpus.Corpus, stdout string) {
	t.Helper()
	row := regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)  \S+ +([a-z_]+) `)
	var times []string
	verdicts := map[classify.Verdict]int{}
	for line := range strings.Lines(stdout) {
		if m := row.FindStringSubmatch(line); m != nil {
			times = append(times, m[1])
			verdicts[classify.Verdict(m[2])]++
		}
	}
	want := map[classify.Verdict]int{}
	for _, ev := range c.Findings() {
		want[ev.Expected]++
	}
	if len(times) != len(c.Findings()) {
		t.Errorf("%d rows, want %d findings", len(times), len(c.Findings()))
	}
	for v, n := range want {
		if verdicts[v] != n {
			t.Errorf("%d %s rows, want %d", verdicts[v], v, n)
		}
	}
	for i := 1; i < len(times); i++ {
		if times[i] < times[i-1] {
			t.Errorf("row %d (%s) is before row %d (%s)", i+1, times[i], i, times[i-1])
		}
	}
	if !strings.Contains(stdout, "  tracked rate    ") || !strings.Contains(stdout, "TIME  ") {
		t.Errorf("no header or no tracked rate:\n%s", stdout)
	}
}

// TestBackfillTableColour runs the table on a terminal (a pseudo-terminal):
// coloured, unless NO_COLOR is set (any value but empty) or TERM is dumb;
// without the colour codes it is the same table.
func TestBackfillTableColour(t *testing.T) {
	c, table, path := tableCorpus(t)
	args := append([]string{"--source", "file:" + path, "--table", table, "--session-retention", "3d", "--format", "table"}, window(c)...)
	plain, err := os.ReadFile(filepath.Join("testdata", "table.golden"))
	if err != nil {
		t.Fatal(err)
	}
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	for _, tt := range []struct {
		name   string
		vars   map[string]string
		colour bool
	}{
		{"terminal", map[string]string{"TERM": "xterm-256color"}, true},
		{"terminal, NO_COLOR", map[string]string{"TERM": "xterm-256color", "NO_COLOR": "1"}, false},
		{"terminal, empty NO_COLOR", map[string]string{"TERM": "xterm-256color", "NO_COLOR": ""}, true},
		{"terminal, TERM=dumb", map[string]string{"TERM": "dumb"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tty := openPTY(t)
			var stderr bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := tt.vars[k]; return v, ok }
			code := run(context.Background(), args, env{stdout: tty.slave, stderr: &stderr, lookupEnv: lookup, now: func() time.Time { return testNow }})
			out := tty.output(t)
			if code != exitFindings {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
			}
			if got := strings.Contains(out, "\x1b["); got != tt.colour {
				t.Errorf("colour %v, want %v", got, tt.colour)
			}
			// The terminal turns \n into \r\n.
			text := strings.ReplaceAll(ansi.ReplaceAllString(out, ""), "\r\n", "\n")
			if text != strings.ReplaceAll(string(plain), "TRAIL", path) {
				t.Errorf("without its colours the table differs from testdata/table.golden:\n%s", text)
			}
		})
	}
}

// TestBackfillDetectedAtIsTheSinks: one run with a file sink, --format table
// and --report shows each finding as its sink received it: detected_at in
// the table and in the report is the sink's. The run's clock moves a second
// at each call, so a finding rendered twice would show another time.
func TestBackfillDetectedAtIsTheSinks(t *testing.T) {
	// One account: no cross-account pair, two findings at one time.
	c, table := loadCorpus(t, corpus.Config{Seed: 13, Events: 40, Now: testNow, Window: 48 * time.Hour,
		Retention: 3 * 24 * time.Hour, OutOfScope: 4})
	dir := t.TempDir()
	path := filepath.Join(dir, "trail.json")
	if err := os.WriteFile(path, corpus.LogFile(c.All(), false), 0o600); err != nil {
		t.Fatal(err)
	}
	out, reportPath := filepath.Join(dir, "findings.jsonl"), filepath.Join(dir, "report.html")
	var calls atomic.Int64
	clock := func() time.Time { return testNow.Add(time.Duration(calls.Add(1)) * time.Second) }
	args := append([]string{"--source", "file:" + path, "--table", table, "--session-retention", "3d", "--format", "table",
		"--sink", "file:" + out, "--report", reportPath}, window(c)...)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, env{stdout: &stdout, stderr: &stderr, lookupEnv: func(string) (string, bool) { return "", false }, now: clock})
	if code != exitFindings {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}

	// The sink's findings, by event time (the table's key) and finding id
	// (the report's).
	sunk := readFindings(t, out)
	if len(sunk) != len(c.Findings()) {
		t.Fatalf("%d findings in the sink, want %d", len(sunk), len(c.Findings()))
	}
	byTime, byID := map[string]string{}, map[string]string{}
	for _, f := range sunk {
		at, detected := f.Event.Time.UTC().Format(report.TimeLayout), f.DetectedAt.UTC().Format(report.TimeLayout)
		if _, dup := byTime[at]; dup {
			t.Fatalf("two findings at %s: the table cannot tell them apart", at)
		}
		byTime[at], byID[f.FindingID] = detected, detected
	}

	row := regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)  (\S+) +[a-z_]+ `)
	rows := 0
	for line := range strings.Lines(stdout.String()) {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		if want, ok := byTime[m[1]]; !ok || m[2] != want {
			t.Errorf("table: the finding at %s detected %s, the sink got %q", m[1], m[2], want)
		}
	}
	if rows != len(sunk) {
		t.Errorf("table: %d rows, want %d:\n%s", rows, len(sunk), stdout.String())
	}

	shown := 0
	for _, d := range reportDetails(t, reportPath) {
		shown++
		if want, ok := byID[d["finding id"]]; !ok || d["detected"] != want {
			t.Errorf("report: finding %s detected %q, the sink got %q", d["finding id"], d["detected"], want)
		}
	}
	if shown != len(sunk) {
		t.Errorf("report: %d findings shown, want %d", shown, len(sunk))
	}
}

// reportDetails reads the details (label → value) of each finding row of a
// report: the lists that name a finding id.
func reportDetails(t *testing.T, path string) []map[string]string {
	t.Helper()
	var out []map[string]string
	htmlcheck.Walk(readReport(t, path).doc, func(n *html.Node) {
		if n.Type != html.ElementNode || n.DataAtom != atom.Dl {
			return
		}
		d, label := map[string]string{}, ""
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch c.DataAtom {
			case atom.Dt:
				label = htmlcheck.Text(c)
			case atom.Dd:
				d[label] = htmlcheck.Text(c)
			}
		}
		if _, ok := d["finding id"]; ok {
			out = append(out, d)
		}
	})
	return out
}
