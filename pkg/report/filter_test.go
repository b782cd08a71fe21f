package report

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// testEvents are four calls that differ in account, target role and
// caller.
func testEvents() []*cloudtrail.Event {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return []*cloudtrail.Event{
		{ID: "e1", Time: t0, Account: "111122223333", Region: "eu-west-1", TargetRoleARN: "arn:aws:iam::111122223333:role/SentinelAdmin",
			Caller: cloudtrail.Identity{ARN: "arn:aws:iam::111122223333:user/alice", PrincipalID: "AIDAALICE"}},
		{ID: "e2", Time: t0, Account: "111122223333", Region: "us-east-1", TargetRoleARN: "arn:aws:iam::111122223333:role/ops/DeployPipeline",
			Caller: cloudtrail.Identity{ARN: "arn:aws:sts::111122223333:assumed-role/Gateway/bob", PrincipalID: "AROAGATEWAY:bob"}},
		{ID: "e3", Time: t0, Account: "444455556666", Region: "eu-west-1", TargetRoleARN: "arn:aws:iam::444455556666:role/SentinelAdmin",
			Caller: cloudtrail.Identity{PrincipalID: "corp.okta.com/oauth2/default:00u1mallory"}}, // web identity: no ARN
		{ID: "e4", Time: t0, Account: "444455556666", Region: "eu-west-1", // no target role (denied, null parameters)
			Caller: cloudtrail.Identity{ARN: "arn:aws:iam::444455556666:user/carol", PrincipalID: "AIDACAROL"}},
	}
}

func kept(t *testing.T, f *Filter) []string {
	t.Helper()
	var ids []string
	for _, ev := range testEvents() {
		if f.KeepEvent(ev) {
			ids = append(ids, ev.ID)
		}
	}
	return ids
}

func TestFilterEvents(t *testing.T) {
	tests := []struct {
		name    string
		cfg     FilterConfig
		want    []string
		dropped map[string]int
	}{
		{"none", FilterConfig{}, []string{"e1", "e2", "e3", "e4"}, map[string]int{}},
		{"role exact", FilterConfig{Roles: []string{"arn:aws:iam::111122223333:role/SentinelAdmin"}},
			[]string{"e1"}, map[string]int{FilterRole: 3}},
		{"role glob across accounts", FilterConfig{Roles: []string{"arn:aws:iam::*:role/SentinelAdmin"}},
			[]string{"e1", "e3"}, map[string]int{FilterRole: 2}},
		{"role glob across a path", FilterConfig{Roles: []string{"*:role/*Pipeline"}},
			[]string{"e2"}, map[string]int{FilterRole: 3}},
		{"role repeated", FilterConfig{Roles: []string{"*DeployPipeline", "*:444455556666:*"}},
			[]string{"e2", "e3"}, map[string]int{FilterRole: 2}},
		{"role star skips events without a role", FilterConfig{Roles: []string{"*"}},
			[]string{"e1", "e2", "e3"}, map[string]int{FilterRole: 1}},
		{"principal by ARN", FilterConfig{Principals: []string{"arn:aws:iam::*:user/*"}},
			[]string{"e1", "e4"}, map[string]int{FilterPrincipal: 2}},
		{"principal by principal id", FilterConfig{Principals: []string{"AROAGATEWAY:*"}},
			[]string{"e2"}, map[string]int{FilterPrincipal: 3}},
		{"principal id of a caller without ARN", FilterConfig{Principals: []string{"*mallory"}},
			[]string{"e3"}, map[string]int{FilterPrincipal: 3}},
		{"account", FilterConfig{Accounts: []string{"444455556666"}},
			[]string{"e3", "e4"}, map[string]int{FilterAccount: 2}},
		{"account glob", FilterConfig{Accounts: []string{"1111*"}},
			[]string{"e1", "e2"}, map[string]int{FilterAccount: 2}},
		{"combined: AND across filters, first failing filter counts", FilterConfig{
			Accounts: []string{"111122223333"}, Roles: []string{"*SentinelAdmin"}, Principals: []string{"*alice"}},
			[]string{"e1"}, map[string]int{FilterAccount: 2, FilterRole: 1, FilterPrincipal: 0}},
		{"profile is not applied before classification", FilterConfig{Profiles: []string{"prod-*"}},
			[]string{"e1", "e2", "e3", "e4"}, map[string]int{FilterProfile: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFilter(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(kept(t, f), ","); got != strings.Join(tt.want, ",") {
				t.Errorf("kept %s, want %s", got, strings.Join(tt.want, ","))
			}
			if got := f.Dropped(); !maps.Equal(got, tt.dropped) {
				t.Errorf("Dropped() = %v, want %v", got, tt.dropped)
			}
			if f.Empty() != (tt.name == "none") {
				t.Errorf("Empty() = %v", f.Empty())
			}
		})
	}
}

func TestFilterProfile(t *testing.T) {
	f, err := NewFilter(FilterConfig{Profiles: []string{"prod-*", "billing"}})
	if err != nil {
		t.Fatal(err)
	}
	results := []classify.Result{
		{Verdict: classify.Tracked, Session: &sessions.Session{ID: "s1", Profile: "prod-admin"}},
		{Verdict: classify.Revoked, Session: &sessions.Session{ID: "s2", Profile: "PROD-readonly"}},
		{Verdict: classify.Expired, Session: &sessions.Session{ID: "s3", Profile: "billing"}},
		{Verdict: classify.Tracked, Session: &sessions.Session{ID: "s4", Profile: "dev"}},
		{Verdict: classify.Tracked, Session: &sessions.Session{ID: "s5"}}, // no profile recorded
		{Verdict: classify.NoSourceIdentity},                              // no session, no profile
		{Verdict: classify.Orphaned},
	}
	var keptIDs []string
	for _, r := range results {
		if f.KeepResult(r) {
			keptIDs = append(keptIDs, r.Session.ID)
		}
	}
	if got := strings.Join(keptIDs, ","); got != "s1,s2,s3" {
		t.Errorf("kept %s, want s1,s2,s3", got)
	}
	if got := f.Dropped(); !maps.Equal(got, map[string]int{FilterProfile: 4}) {
		t.Errorf("Dropped() = %v", got)
	}

	var none *Filter
	if !none.KeepResult(results[5]) || !none.KeepEvent(testEvents()[0]) || !none.KeepFinding(&sink.Finding{}) ||
		!none.Empty() || len(none.Dropped()) != 0 || len(none.Describe()) != 0 {
		t.Error("a nil *Filter must keep everything")
	}
	noProfile, _ := NewFilter(FilterConfig{Roles: []string{"*"}})
	if !noProfile.KeepResult(results[5]) {
		t.Error("without --profile, KeepResult must keep everything")
	}

	// A finding read back from a file: the profile of its session, as for
	// KeepResult; a finding without a session never passes.
	ff, err := NewFilter(FilterConfig{Profiles: []string{"prod-*"}})
	if err != nil {
		t.Fatal(err)
	}
	findings := []sink.Finding{
		{FindingID: "f1", Category: classify.Revoked, Session: &sink.SessionInfo{ID: "s1", Profile: "prod-admin"}},
		{FindingID: "f2", Category: classify.Expired, Session: &sink.SessionInfo{ID: "s2", Profile: "dev"}},
		{FindingID: "f3", Category: classify.Expired, Session: &sink.SessionInfo{ID: "s3"}}, // written before findings carried it
		{FindingID: "f4", Category: classify.Orphaned},
	}
	var keptFindings []string
	for i := range findings {
		if ff.KeepFinding(&findings[i]) {
			keptFindings = append(keptFindings, findings[i].FindingID)
		}
	}
	if got := strings.Join(keptFindings, ","); got != "f1" {
		t.Errorf("findings kept %s, want f1", got)
	}
	if got := ff.Dropped(); !maps.Equal(got, map[string]int{FilterProfile: 3}) {
		t.Errorf("findings: Dropped() = %v", got)
	}
}

// TestFilterFindings: the findings: source filters the same fields of a
// finding as of an event.
func TestFilterFindings(t *testing.T) {
	f, err := NewFilter(FilterConfig{Accounts: []string{"111122223333", "444455556666"}, Roles: []string{"*:role/SentinelAdmin"}, Principals: []string{"*alice", "*mallory"}})
	if err != nil {
		t.Fatal(err)
	}
	var keptIDs []string
	for _, ev := range testEvents() {
		fd := sink.NewFinding(ev, classify.Result{Verdict: classify.NoSourceIdentity, Severity: classify.SeverityHigh, FindingID: "f-" + ev.ID}, sink.DetectorStreamer, ev.Time)
		if f.KeepFinding(&fd) {
			keptIDs = append(keptIDs, fd.FindingID)
		}
	}
	if got := strings.Join(keptIDs, ","); got != "f-e1,f-e3" {
		t.Errorf("kept %s, want f-e1,f-e3", got)
	}
	if got := f.Dropped(); !maps.Equal(got, map[string]int{FilterAccount: 0, FilterRole: 2, FilterPrincipal: 0}) {
		t.Errorf("Dropped() = %v", got)
	}
	if got := strings.Join(f.Describe(), " "); got != "account=111122223333 account=444455556666 role=*:role/SentinelAdmin principal=*alice principal=*mallory" {
		t.Errorf("Describe() = %s", got)
	}
}

func TestNewFilterErrors(t *testing.T) {
	for _, cfg := range []FilterConfig{
		{Roles: []string{""}},
		{Principals: []string{"ok", "bad\x1b"}},
		{Accounts: []string{strings.Repeat("1", MaxGlobLen+1)}},
		{Profiles: []string{"\n"}},
	} {
		if _, err := NewFilter(cfg); err == nil {
			t.Errorf("NewFilter(%+v) accepted", cfg)
		} else if !strings.HasPrefix(err.Error(), "--") {
			t.Errorf("error %q does not name the flag", err)
		}
	}
}
