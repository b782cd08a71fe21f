package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// TestBackfillFindingsSource renders the findings a backfill wrote (as
// the streamer's file sink would: some delivered twice, a torn last line)
// without classifying again: no session table, no DynamoDB.
func TestBackfillFindingsSource(t *testing.T) {
	c, table, dir := filterCorpus(t, 37, 400)
	out := t.TempDir()
	findingsPath := filepath.Join(out, "findings.jsonl")
	res := runBackfill(t, append([]string{"--source", "file:" + dir, "--table", table, "--session-retention", "5d",
		"--sink", "file:" + findingsPath}, window(c)...)...)
	if res.code != exitFindings {
		t.Fatalf("backfill: exit %d; stderr:\n%s", res.code, res.stderr)
	}
	orig := readFindings(t, findingsPath)
	if len(orig) != len(c.Findings()) {
		t.Fatalf("%d findings written, want %d", len(orig), len(c.Findings()))
	}
	// Redeliveries of the first ten findings, and a line cut short.
	b, err := os.ReadFile(findingsPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	streamed := filepath.Join(out, "streamer.jsonl")
	withRepeats := append(bytes.Join(lines, nil), bytes.Join(lines[:10], nil)...)
	withRepeats = append(withRepeats, lines[10][:len(lines[10])/2]...)
	if err := os.WriteFile(streamed, withRepeats, 0o600); err != nil {
		t.Fatal(err)
	}
	// Nothing here may need DynamoDB.
	t.Setenv(testenv.EndpointEnv, "http://127.0.0.1:1")

	// What the file holds, line by line: every finding, then the first
	// ten again.
	lastDay := testNow.Add(-24 * time.Hour)
	all := append(append([]sink.Finding(nil), orig...), orig[:10]...)
	type want struct {
		findings, duplicates, outside int
		filtered                      map[string]int
		verdicts                      map[string]int64
	}
	expect := func(inWindow, keep func(sink.Finding) bool, filter string) want {
		w := want{filtered: map[string]int{}, verdicts: map[string]int64{}}
		for _, v := range classify.AllVerdicts() {
			w.verdicts[string(v)] = 0
		}
		seen := map[string]bool{}
		for _, f := range all {
			switch key := f.FindingID + "/" + f.Event.ID; {
			case !inWindow(f):
				w.outside++
			case seen[key]:
				w.duplicates++
			case !keep(f):
				seen[key] = true
				w.filtered[filter]++
			default:
				seen[key] = true
				w.findings++
				w.verdicts[string(f.Category)]++
			}
		}
		return w
	}
	every := func(sink.Finding) bool { return true }
	sentinel := func(f sink.Finding) bool { return strings.Contains(f.Target.RoleARN, ":role/Sentinel") }
	recent := func(f sink.Finding) bool { return !f.Event.Time.Before(lastDay) }
	// Only revoked and expired findings rest on a session, hence carry a
	// profile.
	prodProfile := func(f sink.Finding) bool { return f.Session != nil && strings.HasPrefix(f.Session.Profile, "prod-") }

	tests := []struct {
		name string
		args []string
		want want
	}{
		{name: "the whole file", want: expect(every, every, "")},
		{name: "role glob", args: []string{"--role", "*:role/Sentinel*"}, want: expect(every, sentinel, "role")},
		{name: "last day", args: []string{"--since", "1d"}, want: expect(recent, every, "")},
		{name: "profile glob", args: []string{"--profile", "prod-*"}, want: expect(every, prodProfile, "profile")},
	}
	for _, tt := range tests {
		if tt.want.findings == 0 || tt.want.findings == len(orig) && len(tt.args) > 0 {
			t.Fatalf("%s: %d of %d findings kept: the case proves nothing", tt.name, tt.want.findings, len(orig))
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reportPath, sumPath := filepath.Join(t.TempDir(), "r.html"), filepath.Join(t.TempDir(), "s.json")
			code, stdout, stderr := runRaw(nil, append([]string{"--source", "findings:" + streamed, "--report", reportPath,
				"--format", "table", "--summary-json", sumPath}, tt.args...)...)
			if code != exitFindings {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFindings, stderr)
			}
			s := readSummaryJSON(t, sumPath)
			w := tt.want
			if !s.FindingsOnly || s.Findings != int64(w.findings) || s.Malformed != 1 || s.Duplicates != int64(w.duplicates) ||
				s.OutsideWindow != int64(w.outside) || s.TrackedRate != nil || s.Classified != 0 {
				t.Errorf("summary: findings_only %v, findings %d (want %d), not findings %d (want 1), duplicates %d (want %d), outside %d (want %d), tracked rate %v, classified %d",
					s.FindingsOnly, s.Findings, w.findings, s.Malformed, s.Duplicates, w.duplicates, s.OutsideWindow, w.outside, s.TrackedRate, s.Classified)
			}
			delete(w.filtered, "")
			for name, n := range w.filtered {
				if s.FilteredOut[name] != n {
					t.Errorf("filtered_out %v, want %v", s.FilteredOut, w.filtered)
				}
			}
			for v, n := range w.verdicts {
				if s.Verdicts[v] != n {
					t.Errorf("verdict %s: %d, want %d", v, s.Verdicts[v], n)
				}
			}

			p := readReport(t, reportPath)
			if got := number(t, p.cards["Findings"]); got != w.findings {
				t.Errorf("report findings %d, want %d", got, w.findings)
			}
			if p.cards["Tracked rate"] != "n/a" || len(p.rateDays) != 0 {
				t.Errorf("report tracked rate %q with %d rate points: a findings file has no tracked events", p.cards["Tracked rate"], len(p.rateDays))
			}
			if w.duplicates > 0 && number(t, p.cards["Duplicates"]) != w.duplicates {
				t.Errorf("report duplicates %q, want %d", p.cards["Duplicates"], w.duplicates)
			}
			for v, n := range w.verdicts {
				if v != string(classify.Tracked) && number(t, p.verdicts[v]) != int(n) {
					t.Errorf("report verdict %s: %q, want %d", v, p.verdicts[v], n)
				}
			}
			rows := 0
			for line := range strings.Lines(stdout) {
				if len(line) > 20 && line[4] == '-' && line[10] == 'T' && line[19] == 'Z' {
					rows++
				}
			}
			if rows != w.findings || !strings.Contains(stdout, "tracked rate    n/a") {
				t.Errorf("table: %d rows, want %d, and a tracked rate of n/a:\n%s", rows, w.findings, stdout)
			}
			if !strings.Contains(stderr, "findings read   ") || !strings.Contains(stderr, "line is not a finding") {
				t.Errorf("stderr:\n%s", stderr)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"--report", filepath.Join(t.TempDir(), "r.html"), "--sink", "file:x"}, "--sink does not apply"},
			{[]string{"--report", filepath.Join(t.TempDir(), "r.html"), "--checkpoint", "x"}, "--checkpoint does not apply"},
			{nil, "give --report FILE.html or --format table"},
			{[]string{"--report", "/does/not/exist/r.html"}, "no such folder"},
		} {
			code, _, stderr := runRaw(nil, append([]string{"--source", "findings:" + streamed}, tt.args...)...)
			if code != exitError || !strings.Contains(stderr, tt.want) {
				t.Errorf("%q: exit %d; stderr:\n%s", tt.args, code, stderr)
			}
		}
		code, _, stderr := runRaw(nil, "--source", "findings:"+filepath.Join(out, "missing.jsonl"), "--format", "table")
		if code != exitError || !strings.Contains(stderr, "missing.jsonl") {
			t.Errorf("a missing file: exit %d; stderr:\n%s", code, stderr)
		}
	})
}

// TestBackfillAWSProfile: --aws-profile selects the shared-config profile:
// its credentials (chosen over the environment's, as the SDK does for a
// profile named explicitly) and its region (what the lookup source reads
// when --regions is not given). A profile that does not exist is an error.
func TestBackfillAWSProfile(t *testing.T) {
	c, table := lookupCorpus(t, 43, 60, nil, nil)
	startFakes(t, c)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgPath, []byte("[profile audit]\nregion = eu-north-1\naws_access_key_id = test\naws_secret_access_key = test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgPath)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_REGION", "")         // the profile's region must win
	t.Setenv("AWS_DEFAULT_REGION", "") // likewise

	tests := []struct {
		name string
		args []string
		vars map[string]string
		code int
		want string
	}{
		// The corpus has no event in the profile's region: the run reads
		// nothing there and says so (exit 2), in the region it was given.
		{"flag", []string{"--aws-profile", "audit"}, nil, exitError, "regions         eu-north-1\n"},
		{"variable", nil, map[string]string{"SESSIONWATCH_AWS_PROFILE": "audit"}, exitError, "regions         eu-north-1\n"},
		{"missing profile", []string{"--aws-profile", "nope"}, nil, exitError, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runBackfillEnv(t, tt.vars, append([]string{"--table", table, "--quiet"}, append(window(c), tt.args...)...)...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", res.code, tt.code, tt.want, res.stderr)
			}
		})
	}
}
