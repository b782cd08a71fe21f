package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

var testNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// loadCorpus generates a corpus, loads its sessions into a fresh table and
// returns the table name.
func loadCorpus(t testing.TB, cfg corpus.Config) (*corpus.Corpus, string) {
	t.Helper()
	c, err := corpus.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	if err := testenv.PutSessions(ctx, client, table, c.Sessions); err != nil {
		t.Fatal(err)
	}
	return c, table
}

type result struct {
	code     int
	findings []sink.Finding
	stderr   string
}

func runBackfill(t *testing.T, args ...string) result {
	t.Helper()
	return runBackfillEnv(t, nil, args...)
}

// runBackfillEnv runs the command with vars as its environment.
func runBackfillEnv(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	code, stdout, stderr := runRaw(vars, args...)
	var findings []sink.Finding
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var f sink.Finding
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("stdout line is not a finding: %v: %s", err, sc.Text())
		}
		findings = append(findings, f)
	}
	return result{code: code, findings: findings, stderr: stderr}
}

// runRaw runs the command with vars as its environment and returns its
// exit code, stdout and stderr.
func runRaw(vars map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	code = run(context.Background(), args, env{stdout: &out, stderr: &errOut, lookupEnv: lookup,
		now: func() time.Time { return testNow }})
	return code, out.String(), errOut.String()
}

// window returns --since and --until covering every event of c.
func window(c *corpus.Corpus) []string {
	oldest, newest := c.Span()
	return []string{"--since", oldest.Add(-time.Hour).Format(time.RFC3339), "--until", newest.Add(time.Hour).Format(time.RFC3339)}
}

// TestBackfillReproducesCorpusVerdicts runs the backfill over a generated
// trail archive and checks every expected finding appears, exactly once,
// and nothing else.
func TestBackfillReproducesCorpusVerdicts(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 7, Events: 600, Now: testNow, Window: 72 * time.Hour,
		Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-west-1"}, OutOfScope: 40})
	dir := t.TempDir()
	if _, err := corpus.WriteArchive(dir, c, 50); err != nil {
		t.Fatal(err)
	}
	res := runBackfill(t, append([]string{"--source", "file:" + dir, "--table", table}, window(c)...)...)
	if res.code != exitFindings {
		t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, exitFindings, res.stderr)
	}

	want := map[string]classify.Verdict{}
	for _, ev := range c.Findings() {
		want[ev.ID] = ev.Expected
	}
	got := map[string]classify.Verdict{}
	for _, f := range res.findings {
		if _, dup := got[f.Event.ID]; dup {
			t.Errorf("event %s reported twice", f.Event.ID)
		}
		got[f.Event.ID] = f.Category
		if f.Detector != sink.DetectorBackfill || f.Schema != sink.Schema || f.FindingID == "" {
			t.Errorf("finding %+v lacks schema, id or detector", f)
		}
	}
	for id, v := range want {
		if got[id] != v {
			t.Errorf("event %s: got %q, want %q", id, got[id], v)
		}
	}
	for id, v := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("event %s: unexpected finding %q", id, v)
		}
	}
	counts := c.Counts()
	for _, line := range []string{
		"in scope        " + strconv.Itoa(len(c.Events)),
		"out of scope    " + strconv.Itoa(len(c.Ignored)),
		"tracked              " + strconv.Itoa(counts[classify.Tracked]),
		"findings        " + strconv.Itoa(len(want)),
	} {
		if !strings.Contains(res.stderr, line) {
			t.Errorf("summary lacks %q:\n%s", line, res.stderr)
		}
	}
	// The cross-account pair: two events, one finding id.
	ids := map[string][]string{}
	for _, f := range res.findings {
		ids[f.FindingID] = append(ids[f.FindingID], f.Event.Account)
	}
	shared := 0
	for _, accounts := range ids {
		if len(accounts) == 2 && accounts[0] != accounts[1] {
			shared++
		}
	}
	if shared != 1 {
		t.Errorf("%d finding ids shared across accounts, want the one cross-account pair", shared)
	}
}

func TestBackfillJSONLinesAndWindow(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 11, Events: 120, Now: testNow, Window: 48 * time.Hour})
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, corpus.JSONLines(c.All()), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only the last 24 hours: older events are counted as outside the window.
	since := testNow.Add(-24 * time.Hour)
	res := runBackfill(t, "--source", "file:"+path, "--table", table, "--since", "1d")
	want := 0
	for _, ev := range c.Findings() {
		if !ev.Time.Before(since) {
			want++
		}
	}
	if len(res.findings) != want {
		t.Errorf("%d findings, want %d in the last day", len(res.findings), want)
	}
	for _, f := range res.findings {
		if f.Event.Time.Before(since) {
			t.Errorf("finding outside the window: %s at %s", f.Event.ID, f.Event.Time)
		}
	}
	if !strings.Contains(res.stderr, "outside window") {
		t.Errorf("summary lacks the window count:\n%s", res.stderr)
	}
}

func TestBackfillExitCodes(t *testing.T) {
	clean, cleanTable := loadCorpus(t, corpus.Config{Seed: 3, Events: 50, Now: testNow, Mix: map[classify.Verdict]int{classify.Tracked: 1}})
	cleanFile := filepath.Join(t.TempDir(), "clean.json.gz")
	if err := os.WriteFile(cleanFile, corpus.LogFile(clean.Events, true), 0o600); err != nil {
		t.Fatal(err)
	}
	findingsOut := filepath.Join(t.TempDir(), "findings.jsonl")

	t.Run("clean window exits 0", func(t *testing.T) {
		res := runBackfill(t, append([]string{"--source", "file:" + cleanFile, "--table", cleanTable, "--sink", "file:" + findingsOut}, window(clean)...)...)
		if res.code != exitClean || len(res.findings) != 0 {
			t.Fatalf("exit %d with %d findings; stderr:\n%s", res.code, len(res.findings), res.stderr)
		}
		if !strings.Contains(res.stderr, "tracked rate    100.0%") {
			t.Errorf("summary:\n%s", res.stderr)
		}
	})
	t.Run("flags from SESSIONWATCH_ variables", func(t *testing.T) {
		oldest, newest := clean.Span()
		res := runBackfillEnv(t, map[string]string{
			"SESSIONWATCH_SOURCE": "file:" + cleanFile,
			"SESSIONWATCH_TABLE":  cleanTable,
			"SESSIONWATCH_SINCE":  oldest.Add(-time.Hour).Format(time.RFC3339),
			"SESSIONWATCH_UNTIL":  newest.Add(time.Hour).Format(time.RFC3339),
			"SESSIONWATCH_MATCH":  "user-time",
		})
		if res.code != exitClean || !strings.Contains(res.stderr, "in scope        "+strconv.Itoa(len(clean.Events))) {
			t.Errorf("exit %d; stderr:\n%s", res.code, res.stderr)
		}
		res = runBackfillEnv(t, map[string]string{"SESSIONWATCH_SOURCE": "file:" + cleanFile, "SESSIONWATCH_TABLE": cleanTable,
			"SESSIONWATCH_SESSION_RETENTION": "forever"})
		if res.code != exitError || !strings.Contains(res.stderr, "SESSIONWATCH_SESSION_RETENTION") {
			t.Errorf("a bad variable: exit %d; stderr:\n%s", res.code, res.stderr)
		}
	})
	t.Run("missing source exits 2", func(t *testing.T) {
		res := runBackfill(t, "--source", "file:/does/not/exist", "--table", cleanTable)
		if res.code != exitError || !strings.Contains(res.stderr, "source not found") {
			t.Errorf("exit %d; stderr:\n%s", res.code, res.stderr)
		}
	})
	t.Run("bad flags exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"--source", "file:" + cleanFile},                                                   // no table
			{"--source", "ftp://bucket", "--table", "t"},                                        // unknown source
			{"--source", "file:" + cleanFile, "--table", "t", "--since", "soon"},                // bad time
			{"--source", "file:" + cleanFile, "--table", "t", "--match", "fuzzy"},               // bad strategy
			{"--source", "file:" + cleanFile, "--table", "t", "--since", "1d", "--until", "2d"}, // empty window
		} {
			if res := runBackfill(t, args...); res.code != exitError {
				t.Errorf("%v: exit %d", args, res.code)
			}
		}
	})
	t.Run("help exits 0", func(t *testing.T) {
		if res := runBackfill(t, "--help"); res.code != exitClean || !strings.Contains(res.stderr, "Examples:") {
			t.Errorf("exit %d; stderr:\n%s", res.code, res.stderr)
		}
	})
}

// TestBackfillStoreFailureGivesNoFinding points the backfill at a session
// table that cannot be read: the run fails with exit 2, and the only findings
// are those that need no lookup (no or unparsable SourceIdentity), never an
// orphaned event made up from the failure.
func TestBackfillStoreFailureGivesNoFinding(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 5, Events: 30, Now: testNow})
	path := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(path, corpus.LogFile(c.Events, false), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("missing table", func(t *testing.T) {
		res := runBackfill(t, append([]string{"--source", "file:" + path, "--table", table + "-missing"}, window(c)...)...)
		assertStoreFailure(t, c, res)
	})
	t.Run("store unreachable", func(t *testing.T) {
		endpoint, stop := testenv.StartDynalite(t)
		stop()
		t.Setenv(testenv.EndpointEnv, endpoint)
		res := runBackfill(t, append([]string{"--source", "file:" + path, "--table", table}, window(c)...)...)
		assertStoreFailure(t, c, res)
	})
}

func assertStoreFailure(t *testing.T, c *corpus.Corpus, res result) {
	t.Helper()
	if res.code != exitError {
		t.Errorf("exit %d, want %d", res.code, exitError)
	}
	expected := c.Expected()
	for _, f := range res.findings {
		if f.SourceIdentity.User != "" {
			t.Errorf("finding %s (%s) rests on a session lookup that failed", f.Event.ID, f.Category)
		}
		if expected[f.Event.ID] != f.Category {
			t.Errorf("finding %s is %s, want %s", f.Event.ID, f.Category, expected[f.Event.ID])
		}
	}
	if !strings.Contains(res.stderr, "session store") {
		t.Errorf("stderr does not name the store failure:\n%s", res.stderr)
	}
}
