package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
)

// filterCorpus spreads events over two accounts, two regions, every event
// name and every verdict, within a week (retention 5 days: unverifiable
// events are a day or two older).
func filterCorpus(t *testing.T, seed int64, events int) (*corpus.Corpus, string, string) {
	t.Helper()
	c, table := loadCorpus(t, corpus.Config{Seed: seed, Events: events, Now: testNow, Window: 4 * 24 * time.Hour,
		Retention: 5 * 24 * time.Hour, Accounts: twoAccounts, Regions: []string{"us-east-1", "eu-west-1"}, OutOfScope: 20})
	dir := t.TempDir()
	if _, err := corpus.WriteArchive(dir, c, 50); err != nil {
		t.Fatal(err)
	}
	return c, table, dir
}

// decode is the event the backfill classifies for a corpus record.
func decode(t *testing.T, ev corpus.Event) *cloudtrail.Event {
	t.Helper()
	e, err := cloudtrail.DecodeRecord(ev.Record)
	if err != nil {
		t.Fatalf("event %s: %v", ev.ID, err)
	}
	return e
}

func readSummaryJSON(t *testing.T, path string) summaryJSON {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s summaryJSON
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

func roleName(arn string) string {
	_, name, _ := strings.Cut(arn, ":role/")
	return name
}

// oracle is one filter as the test states it, independently of
// report.Glob: which filter it is, and whether an event passes it.
type oracle struct {
	filter string
	keep   func(*cloudtrail.Event) bool
}

// TestBackfillFilters runs the backfill with each filter, globs and
// repeated patterns included: the findings are exactly those of the events
// the filter keeps, nothing dropped is classified, and the summary (stderr
// and --summary-json) counts what each filter dropped.
func TestBackfillFilters(t *testing.T) {
	c, table, dir := filterCorpus(t, 17, 500)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		oracles []oracle // in the order the backfill applies them: account, role, principal
	}{
		{name: "account", args: []string{"--account", "444455556666"},
			oracles: []oracle{{report.FilterAccount, func(e *cloudtrail.Event) bool { return e.Account == "444455556666" }}}},
		{name: "account glob", args: []string{"--account", "1111*"},
			oracles: []oracle{{report.FilterAccount, func(e *cloudtrail.Event) bool { return strings.HasPrefix(e.Account, "1111") }}}},
		{name: "role glob across the account", args: []string{"--role", "arn:aws:iam::*:role/Sentinel*"},
			oracles: []oracle{{report.FilterRole, func(e *cloudtrail.Event) bool {
				return strings.HasPrefix(e.TargetRoleARN, "arn:aws:iam::") && strings.HasPrefix(roleName(e.TargetRoleARN), "Sentinel")
			}}}},
		{name: "role, two patterns, any case", args: []string{"--role", "*:role/deploypipeline", "--role", "*:ROLE/BillingViewer"},
			oracles: []oracle{{report.FilterRole, func(e *cloudtrail.Event) bool {
				return slices.Contains([]string{"DeployPipeline", "BillingViewer"}, roleName(e.TargetRoleARN))
			}}}},
		{name: "role from the environment", env: map[string]string{"SESSIONWATCH_ROLE": "*:role/SentinelAdmin, *:role/SecurityAudit"},
			oracles: []oracle{{report.FilterRole, func(e *cloudtrail.Event) bool {
				return slices.Contains([]string{"SentinelAdmin", "SecurityAudit"}, roleName(e.TargetRoleARN))
			}}}},
		{name: "principal ARN glob", args: []string{"--principal", "*:user/*"},
			oracles: []oracle{{report.FilterPrincipal, func(e *cloudtrail.Event) bool { return strings.Contains(e.Caller.ARN, ":user/") }}}},
		{name: "principal id glob", args: []string{"--principal", "AROA*"},
			oracles: []oracle{{report.FilterPrincipal, func(e *cloudtrail.Event) bool { return strings.HasPrefix(e.Caller.PrincipalID, "AROA") }}}},
		{name: "account and role", args: []string{"--account", "111122223333", "--role", "*Sentinel*"},
			oracles: []oracle{
				{report.FilterAccount, func(e *cloudtrail.Event) bool { return e.Account == "111122223333" }},
				{report.FilterRole, func(e *cloudtrail.Event) bool { return strings.Contains(e.TargetRoleARN, "Sentinel") }},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sumPath := filepath.Join(t.TempDir(), "summary.json")
			args := append([]string{"--source", "file:" + dir, "--table", table, "--session-retention", "5d", "--summary-json", sumPath}, window(c)...)
			res := runBackfillEnv(t, tt.env, append(args, tt.args...)...)
			if res.code == exitError {
				t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
			}
			// Each event is dropped by the first filter it fails.
			dropped := map[string]int{}
			kept := map[string]bool{}
			tracked := 0
			for _, ev := range c.Events {
				e := decode(t, ev)
				pass := true
				for _, o := range tt.oracles {
					if !o.keep(e) {
						dropped[o.filter]++
						pass = false
						break
					}
				}
				if pass {
					kept[ev.ID] = true
					if ev.Expected == classify.Tracked {
						tracked++
					}
				}
			}
			for _, o := range tt.oracles {
				if dropped[o.filter] == 0 || dropped[o.filter] == len(c.Events) {
					t.Fatalf("filter %s drops %d of %d events: the case proves nothing", o.filter, dropped[o.filter], len(c.Events))
				}
				if _, ok := dropped[o.filter]; !ok {
					dropped[o.filter] = 0
				}
			}
			assertFindings(t, c, res, func(ev corpus.Event) bool { return kept[ev.ID] })

			s := readSummaryJSON(t, sumPath)
			if !maps.Equal(s.FilteredOut, dropped) {
				t.Errorf("summary filtered_out %v, want %v", s.FilteredOut, dropped)
			}
			if s.InScope != int64(len(c.Events)) || s.Classified != int64(len(kept)) || s.Tracked != int64(tracked) {
				t.Errorf("summary: in scope %d, classified %d, tracked %d; want %d, %d, %d",
					s.InScope, s.Classified, s.Tracked, len(c.Events), len(kept), tracked)
			}
			if len(s.Filters) == 0 {
				t.Error("summary lists no filter")
			}
			total := 0
			for _, n := range dropped {
				total += n
			}
			if !strings.Contains(res.stderr, "  filtered out    ") || !strings.Contains(res.stderr, "filtered out    "+strconv.Itoa(total)+" (") {
				t.Errorf("stderr summary lacks \"filtered out    %d (\":\n%s", total, res.stderr)
			}
		})
	}
}

// TestBackfillProfileFilter: --profile applies after the session lookup,
// to the session the verdict rests on. Every finding left rests on a
// session of a matching profile (none on no session at all), and the
// events dropped are counted as filtered out, not classified.
func TestBackfillProfileFilter(t *testing.T) {
	c, table, dir := filterCorpus(t, 19, 500)
	profileOf := map[string]string{}
	for _, s := range c.Sessions {
		profileOf[s.ID] = s.Profile
	}
	sumPath := filepath.Join(t.TempDir(), "summary.json")
	res := runBackfill(t, append([]string{"--source", "file:" + dir, "--table", table, "--session-retention", "5d",
		"--summary-json", sumPath, "--profile", "prod-*", "--profile", "BILLING"}, window(c)...)...)
	if res.code == exitError {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	if len(res.findings) == 0 {
		t.Fatal("no finding rests on a prod or billing session: the case proves nothing")
	}
	for _, f := range res.findings {
		if f.Session == nil {
			t.Errorf("finding %s (%s) matched no session, yet passed --profile", f.Event.ID, f.Category)
			continue
		}
		if p := profileOf[f.Session.ID]; !strings.HasPrefix(p, "prod-") && p != "billing" {
			t.Errorf("finding %s rests on session %s of profile %q", f.Event.ID, f.Session.ID, p)
		}
	}
	s := readSummaryJSON(t, sumPath)
	n := s.FilteredOut[report.FilterProfile]
	if len(s.FilteredOut) != 1 || n == 0 {
		t.Fatalf("filtered_out %v, want a profile count", s.FilteredOut)
	}
	if s.Classified+int64(n) != s.InScope || s.InScope != int64(len(c.Events)) {
		t.Errorf("classified %d + filtered %d != in scope %d (%d events)", s.Classified, n, s.InScope, len(c.Events))
	}
}

// TestBackfillFilterFlags: a bad pattern is refused before anything runs.
func TestBackfillFilterFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--table", "t", "--source", "file:/nope", "--role", ""},
		{"--table", "t", "--source", "file:/nope", "--principal", "a\tb"},
		{"--table", "t", "--source", "file:/nope", "--account", strings.Repeat("1", report.MaxGlobLen+1)},
	} {
		res := runBackfill(t, args...)
		if res.code != exitError || !strings.Contains(res.stderr, "--"+strings.TrimPrefix(args[4], "--")+":") {
			t.Errorf("%q: exit %d; stderr:\n%s", args, res.code, res.stderr)
		}
	}
}
