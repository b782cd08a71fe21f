package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/htmlcheck"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// writeVerdictLog writes events to a file: verdict log with verdictlog's
// Writer, as the streamer would have logged them (verdict and finding id
// included), one object per call, named by the clock at.
func writeVerdictLog(t *testing.T, dir string, at time.Time, events []corpus.Event) {
	t.Helper()
	writeVerdictLogTo(t, "file:"+dir, nil, at, events)
}

// writeVerdictLogTo is writeVerdictLog to any log URI; client writes an
// s3:// one.
func writeVerdictLogTo(t *testing.T, uri string, client verdictlog.PutAPI, at time.Time, events []corpus.Event) {
	t.Helper()
	ctx := context.Background()
	w, err := verdictlog.OpenWriter(ctx, uri, verdictlog.WriterOptions{StreamerID: "test-streamer", S3: client, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		e := verdictlog.Entry{EventID: ev.ID, EventTime: ev.Time, Account: ev.Account, Region: ev.Region, EventName: ev.Name,
			Verdict: string(ev.Expected)}
		if ev.Expected != classify.Tracked {
			e.FindingID = classify.FindingID(decode(t, ev).DedupKey(), ev.Expected)
		}
		if err := w.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// readGaps decodes the missed events a run listed on stdout.
func readGaps(t *testing.T, stdout string) []report.Gap {
	t.Helper()
	var out []report.Gap
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var g report.Gap
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil || g.Schema != report.GapSchema {
			t.Fatalf("stdout line is not a %s line (%v): %s", report.GapSchema, err, sc.Text())
		}
		out = append(out, g)
	}
	return out
}

type coverageCell struct {
	account, region string
	hour            time.Time
}

// TestBackfillReconcile runs --reconcile over a file source against a
// file: verdict log written by verdictlog's Writer: every settled event the
// log lacks is listed once (JSON lines), classified with the finding_id the
// streamer gives it, sent to the sink, counted per account, region and
// hour; a gap exits 1; a log that holds everything exits 0 at 100 %.
func TestBackfillReconcile(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 41, Events: 200, Now: testNow, Window: 6 * time.Hour, Retention: 30 * 24 * time.Hour,
		Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-west-1", "ap-south-1"}})
	trail := filepath.Join(t.TempDir(), "trail.json.gz")
	if err := os.WriteFile(trail, corpus.LogFile(c.All(), true), 0o600); err != nil {
		t.Fatal(err)
	}
	oldest, newest := c.Span()
	logAt := newest.Add(time.Minute) // the streamer logs an event soon after it happened

	everyThirtieth := func(i int, _ corpus.Event) bool { return i%30 == 7 }
	tests := []struct {
		name string
		// drop says which events the log lacks; logTwice logs the others
		// twice (a redelivered message).
		drop     func(i int, ev corpus.Event) bool
		logTwice bool
		// settle is --reconcile-settle; events at or after testNow-settle
		// are not counted.
		settle   time.Duration
		wantExit int
	}{
		{name: "nothing dropped", drop: func(int, corpus.Event) bool { return false }, wantExit: exitClean},
		{name: "logged twice", drop: func(int, corpus.Event) bool { return false }, logTwice: true, wantExit: exitClean},
		{name: "3 percent dropped", drop: everyThirtieth, wantExit: exitFindings},
		{name: "one region never seen", drop: func(_ int, ev corpus.Event) bool { return ev.Region == "ap-south-1" }, wantExit: exitFindings},
		{name: "dropped and a region", drop: func(i int, ev corpus.Event) bool { return everyThirtieth(i, ev) || ev.Region == "eu-west-1" },
			wantExit: exitFindings},
		{name: "young gaps not counted", drop: func(_ int, ev corpus.Event) bool { return ev.Time.After(newest.Add(-time.Hour)) },
			settle: testNow.Sub(newest) + 2*time.Hour, wantExit: exitClean},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			settle := tt.settle
			if settle == 0 {
				settle = time.Minute // every corpus event is older than MinAge
			}
			settledBefore := testNow.Add(-settle)
			var logged []corpus.Event
			missed := map[string]corpus.Event{}
			cells := map[coverageCell][2]int{} // expected, missed
			unsettled := 0
			for i, ev := range c.Events {
				if tt.drop(i, ev) {
					if !ev.Time.Before(settledBefore) {
						unsettled++
						continue
					}
					missed[ev.ID] = ev
				} else {
					logged = append(logged, ev)
					if !ev.Time.Before(settledBefore) {
						unsettled++
						continue
					}
				}
				k := coverageCell{ev.Account, ev.Region, ev.Time.UTC().Truncate(time.Hour)}
				n := cells[k]
				n[0]++
				if tt.drop(i, ev) {
					n[1]++
				}
				cells[k] = n
			}
			if tt.wantExit == exitFindings && len(missed) == 0 {
				t.Fatal("the case drops nothing that counts")
			}
			logDir := t.TempDir()
			writeVerdictLog(t, logDir, logAt, logged)
			if tt.logTwice {
				writeVerdictLog(t, logDir, logAt, logged)
			}
			sinkFile := filepath.Join(t.TempDir(), "findings.jsonl")
			summary := filepath.Join(t.TempDir(), "summary.json")
			code, stdout, stderr := runRaw(nil, "--source", "file:"+trail, "--table", table, "--quiet",
				"--since", oldest.Add(-time.Hour).Format(time.RFC3339), "--until", newest.Add(time.Hour).Format(time.RFC3339),
				"--session-retention", "30d", "--reconcile", "file:"+logDir, "--reconcile-settle", settle.String(), "--sink", "file:"+sinkFile, "--summary-json", summary)
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantExit, stderr)
			}

			// Exactly the missed events, once each, with the streamer's
			// verdict and finding id.
			gaps := readGaps(t, stdout)
			got := map[string]bool{}
			for _, g := range gaps {
				ev, ok := missed[g.EventID]
				if !ok {
					t.Errorf("listed %s, which the log has or which is not settled", g.EventID)
					continue
				}
				if got[g.EventID] {
					t.Errorf("listed %s twice", g.EventID)
				}
				got[g.EventID] = true
				if g.Verdict != string(ev.Expected) || g.Account != ev.Account || g.Region != ev.Region || !g.EventTime.Equal(ev.Time) {
					t.Errorf("gap %+v, want verdict %s account %s region %s time %s", g, ev.Expected, ev.Account, ev.Region, ev.Time)
				}
				wantID := ""
				if ev.Expected != classify.Tracked {
					wantID = classify.FindingID(decode(t, ev).DedupKey(), ev.Expected)
				}
				if g.FindingID != wantID {
					t.Errorf("gap %s: finding_id %q, want the streamer's %q", g.EventID, g.FindingID, wantID)
				}
			}
			if len(got) != len(missed) {
				t.Errorf("listed %d events, want the %d the log lacks", len(got), len(missed))
			}

			// The sink gets the missed events' findings, nothing else.
			wantFindings := map[string]string{}
			for _, ev := range missed {
				if ev.Expected != classify.Tracked {
					wantFindings[ev.ID] = classify.FindingID(decode(t, ev).DedupKey(), ev.Expected)
				}
			}
			gotFindings := map[string]string{}
			if len(wantFindings) > 0 || fileExists(sinkFile) {
				for _, f := range readFindings(t, sinkFile) {
					gotFindings[f.Event.ID] = f.FindingID
				}
			}
			if !maps.Equal(gotFindings, wantFindings) {
				t.Errorf("sink findings (event id: finding id)\n got %v\nwant %v", gotFindings, wantFindings)
			}

			s := readSummaryJSON(t, summary)
			rc := s.Reconcile
			if rc == nil {
				t.Fatal("summary JSON has no reconcile")
			}
			expected := len(c.Events) - unsettled
			if rc.Expected != expected || rc.Missed != len(missed) || rc.Covered != expected-len(missed) || rc.Unsettled != unsettled {
				t.Errorf("reconcile expected %d covered %d missed %d unsettled %d, want %d %d %d %d", rc.Expected, rc.Covered,
					rc.Missed, rc.Unsettled, expected, expected-len(missed), len(missed), unsettled)
			}
			if rc.Logged != len(logged) {
				t.Errorf("logged %d distinct ids, want %d", rc.Logged, len(logged))
			}
			if rc.CoverageRate == nil || *rc.CoverageRate != float64(expected-len(missed))/float64(expected) {
				t.Errorf("coverage rate %v, want %d/%d", rc.CoverageRate, expected-len(missed), expected)
			}
			if !rc.SettledBefore.Equal(settledBefore) {
				t.Errorf("settled before %s, want now minus the settle time %s", rc.SettledBefore, settledBefore)
			}
			gotCells := map[coverageCell][2]int{}
			for _, row := range rc.Rows {
				gotCells[coverageCell{row.Account, row.Region, row.Hour}] = [2]int{row.Expected, row.Missed}
			}
			if !maps.Equal(gotCells, cells) {
				t.Errorf("rows (account region hour: expected, missed)\n got %v\nwant %v", gotCells, cells)
			}
			wantRate := "coverage        100.0%"
			if len(missed) > 0 {
				wantRate = "missed          " + strconv.Itoa(len(missed))
			}
			if !strings.Contains(stderr, wantRate) {
				t.Errorf("stderr does not say %q:\n%s", wantRate, stderr)
			}
		})
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestBackfillReconcileLogErrors: a verdict log that cannot be read fails
// the run (exit 2, the log named), never a silent 100 % nor a gap; a line
// that cannot be decoded is skipped and its event counts as missed.
func TestBackfillReconcileLogErrors(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 42, Events: 30, Now: testNow, Window: 3 * time.Hour, Retention: 30 * 24 * time.Hour})
	trail := filepath.Join(t.TempDir(), "trail.json.gz")
	if err := os.WriteFile(trail, corpus.LogFile(c.All(), true), 0o600); err != nil {
		t.Fatal(err)
	}
	_, newest := c.Span()
	logAt := newest.Add(time.Minute)
	tests := []struct {
		name     string
		setup    func(t *testing.T) string // returns the --reconcile URI
		wantExit int
		want     []string // in stderr
	}{
		{"missing log folder", func(t *testing.T) string { return "file:" + filepath.Join(t.TempDir(), "nowhere") },
			exitError, []string{"--reconcile: the verdict log file:", "nowhere"}},
		{"empty log folder", func(t *testing.T) string { return "file:" + t.TempDir() },
			exitError, []string{"--reconcile: file:", "holds no verdict log object at all"}},
		{"log of another window", func(t *testing.T) string { // a log, but nothing for this window: every settled event is a gap
			dir := t.TempDir()
			writeVerdictLog(t, dir, logAt.Add(-90*24*time.Hour), c.Events[:1])
			return "file:" + dir
		}, exitFindings, []string{"(0 event ids in the window)", "coverage        0.0%"}},
		{"hour folder unreadable", func(t *testing.T) string {
			dir := t.TempDir()
			writeVerdictLog(t, dir, logAt, c.Events)
			hour := filepath.Join(dir, logAt.UTC().Format("2006/01/02/15"))
			if err := os.RemoveAll(hour); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(hour, []byte("not a folder"), 0o600); err != nil { // ReadDir fails: not a directory
				t.Fatal(err)
			}
			return "file:" + dir
		}, exitError, []string{"read the verdict log file:", "not a directory"}},
		{"malformed line", func(t *testing.T) string {
			dir := t.TempDir()
			writeVerdictLog(t, dir, logAt, c.Events[1:])
			writeRawLogObject(t, dir, logAt.Add(time.Minute), "{\"schema\":\"sessionwatch.verdicts/v9\",\"event_id\":\""+c.Events[0].ID+"\"}\n")
			return "file:" + dir
		}, exitFindings, []string{"log unreadable  1 lines or objects skipped", "missed          1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runRaw(nil, append([]string{"--source", "file:" + trail, "--table", table, "--quiet",
				"--session-retention", "30d", "--reconcile", tt.setup(t), "--reconcile-settle", "1m"}, window(c)...)...)
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantExit, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			if tt.wantExit == exitError && (stdout != "" || strings.Contains(stderr, "coverage ")) {
				t.Errorf("a failed read reported coverage or gaps: stdout %q\nstderr:\n%s", stdout, stderr)
			}
			if tt.wantExit == exitFindings {
				gaps := readGaps(t, stdout)
				if tt.name == "log of another window" {
					if settled := len(c.Events) - 1; len(gaps) != settled { // the newest is younger than the settle time
						t.Errorf("%d gaps, want every settled event's %d", len(gaps), settled)
					}
				} else if len(gaps) != 1 || gaps[0].EventID != c.Events[0].ID {
					t.Errorf("gaps %+v, want only %s", gaps, c.Events[0].ID)
				}
			}
		})
	}
}

// writeRawLogObject writes body as one gzip object of the log, the way
// the writer names them, without its encoder.
func writeRawLogObject(t *testing.T, dir string, at time.Time, body string) {
	t.Helper()
	name := filepath.Join(dir, at.UTC().Format("2006/01/02/15"), "raw-"+at.UTC().Format("20060102T1504")+"Z-0000.jsonl.gz")
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestBackfillReconcileFlags: what --reconcile refuses, given as flags or
// as SESSIONWATCH_ variables.
func TestBackfillReconcileFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"bad uri", []string{"--reconcile", "http://x"}, nil, "want s3://BUCKET[/PREFIX] or file:DIR"},
		{"empty file", []string{"--reconcile", "file:"}, nil, "file: needs a directory"},
		{"negative settle", []string{"--reconcile", "file:/tmp/x", "--reconcile-settle", "-1m"}, nil, "--reconcile-settle"},
		{"negative margin", []string{"--reconcile", "file:/tmp/x", "--reconcile-margin", "-1h"}, nil, "--reconcile-margin"},
		{"settle from the environment", nil, map[string]string{"SESSIONWATCH_RECONCILE": "file:/tmp/x", "SESSIONWATCH_RECONCILE_SETTLE": "-1m"},
			"--reconcile-settle -1m"},
		{"checkpoint", []string{"--reconcile", "file:/tmp/x", "--checkpoint", "/tmp/cp.json"}, nil, "does not combine with --checkpoint"},
		{"stdout sink", []string{"--reconcile", "file:/tmp/x", "--sink", "stdout"}, nil, "cannot share it with --sink stdout"},
		{"findings source", []string{"--reconcile", "file:/tmp/x", "--source", "findings:/tmp/f.jsonl", "--report", "/tmp/r.html"}, nil,
			"does not apply to a findings file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runRaw(tt.vars, append([]string{"--table", "t", "--source", "file:/tmp"}, tt.args...)...)
			if code != exitError || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestBackfillReconcileS3Table reconciles the S3 archive against an s3://
// verdict log (gofakes3, the real SDK client on both sides) and shows the
// missed events in --format table; a log that cannot be listed (no such
// bucket) is exit 2 naming the log.
func TestBackfillReconcileS3Table(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 43, Events: 120, Now: testNow, Window: 6 * time.Hour, Retention: 30 * 24 * time.Hour,
		Regions: []string{"us-east-1", "eu-west-1"}})
	startS3(t, corpus.Archive(c, 40), func(k string) string { return "trail/" + k })
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(os.Getenv("AWS_ENDPOINT_URL_S3")), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	var logged []corpus.Event
	var missed []string
	for i, ev := range c.Events {
		if i%10 == 3 {
			missed = append(missed, ev.ID)
			continue
		}
		logged = append(logged, ev)
	}
	_, newest := c.Span()
	logURI := "s3://" + testBucket + "/verdicts"
	writeVerdictLogTo(t, logURI, client, newest.Add(time.Minute), logged)

	reportPath := filepath.Join(t.TempDir(), "report.html")
	args := append([]string{"--source", "s3://" + testBucket + "/trail", "--s3-path-style", "--table", table, "--quiet",
		"--session-retention", "30d", "--reconcile-settle", "0s", "--format", "table", "--report", reportPath}, window(c)...)
	code, stdout, stderr := runRaw(nil, append(args, "--reconcile", logURI)...)
	if code != exitFindings {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	// The report (self-contained: readReport checks) has the coverage card
	// and a missed-event row per missed event.
	rep := readReport(t, reportPath)
	wantCard := fmt.Sprintf("%.1f%%", 100*float64(len(c.Events)-len(missed))/float64(len(c.Events)))
	if rep.cards["Coverage"] != wantCard {
		t.Errorf("report coverage card %q, want %q", rep.cards["Coverage"], wantCard)
	}
	if tbl := htmlcheck.ByID(rep.doc, "missed"); tbl == nil {
		t.Error("the report lists no missed events")
	} else {
		for _, id := range missed {
			if !strings.Contains(htmlcheck.Text(tbl), id) {
				t.Errorf("the report's missed events lack %s", id)
			}
		}
	}
	if want := "missing from the verdict log: " + strconv.Itoa(len(missed)); !strings.Contains(stdout, want) {
		t.Errorf("table does not say %q:\n%s", want, stdout)
	}
	listed := 0
	for _, line := range strings.Split(stdout, "\n") {
		for _, id := range missed {
			if strings.HasSuffix(line, id) {
				listed++
			}
		}
	}
	if listed != len(missed) {
		t.Errorf("table lists %d of the %d missed events:\n%s", listed, len(missed), stdout)
	}
	expected := len(c.Events)
	wantRate := fmt.Sprintf("coverage        %.1f%% (%d of %d settled events logged, %d missed)",
		100*float64(expected-len(missed))/float64(expected), expected-len(missed), expected, len(missed))
	if !strings.Contains(stdout, wantRate) || !strings.Contains(stderr, "missed          "+strconv.Itoa(len(missed))) {
		t.Errorf("table or stderr lacks the coverage %q:\n%s\nstderr:\n%s", wantRate, stdout, stderr)
	}

	code, stdout, stderr = runRaw(nil, append(args, "--reconcile", "s3://"+testBucket+"/verdicts-elsewhere")...)
	if code != exitError || !strings.Contains(stderr, "s3://"+testBucket+"/verdicts-elsewhere holds no verdict log object at all") || strings.Contains(stdout, "coverage") {
		t.Errorf("wrong prefix: exit %d, want 2 naming the log; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runRaw(nil, append(args, "--reconcile", "s3://no-such-bucket/verdicts")...)
	if code != exitError || !strings.Contains(stderr, "read the verdict log s3://no-such-bucket/verdicts") || strings.Contains(stdout, "coverage") {
		t.Errorf("missing bucket: exit %d, want 2 naming the log; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// BenchmarkIDSet loads a million event ids into the reconciliation's set
// and looks each up: B/op over a million is the set's bytes per logged
// event while it loads (append growth included); ns/op covers loading and
// the lookups.
func BenchmarkIDSet(b *testing.B) {
	const n = 1_000_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0ff1-48ab-b521-%012x", i, i*7919)
	}
	b.ReportAllocs()
	for b.Loop() {
		var s idSet
		for _, id := range ids {
			s.add(id)
		}
		if got := s.seal(); got != n {
			b.Fatalf("%d distinct ids, want %d", got, n)
		}
		for _, id := range ids[:1000] {
			if !s.has(id) {
				b.Fatalf("%s not found", id)
			}
		}
		if s.has("not-an-id") {
			b.Fatal("found an id never added")
		}
		b.ReportMetric(float64(len(s.keys)*len(s.keys[0]))/n, "held-B/id")
	}
}
