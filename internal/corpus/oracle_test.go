package corpus_test

// An independent, deliberately naive re-derivation of the verdict rules
// (DESIGN.md "Verdicts" and "Session store"), used to check that every
// generated event's Expected verdict is what the rules give. It reads only
// the rendered record and Corpus.Sessions, never the generator's state.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

var (
	sentinelRE = regexp.MustCompile(`^sentinel:([A-Za-z0-9]{1,20}):(?:direct|[0-9a-f]{8}):[0-9a-f]{8}$`)
	legacyRE   = regexp.MustCompile(`^sentinel:([A-Za-z0-9]{1,20}):[0-9a-f]{8}$`)
)

func parseSentinel(si string) (user string, ok bool) {
	if m := sentinelRE.FindStringSubmatch(si); m != nil {
		return m[1], true
	}
	if m := legacyRE.FindStringSubmatch(si); m != nil {
		return m[1], true
	}
	return "", false
}

type oracle struct {
	now, horizon time.Time // horizon = now - retention
	skew         time.Duration
	scope        []string
	bySI         map[string][]sessions.Session
	byUser       map[string][]sessions.Session // by sanitised user
}

func newOracle(c *corpus.Corpus, skew time.Duration) *oracle {
	o := &oracle{
		now: c.Config.Now, horizon: c.Config.Now.Add(-c.Config.Retention), skew: skew, scope: c.Config.EventNames,
		bySI: map[string][]sessions.Session{}, byUser: map[string][]sessions.Session{},
	}
	for _, s := range c.Sessions {
		if s.SourceIdentity != "" {
			o.bySI[s.SourceIdentity] = append(o.bySI[s.SourceIdentity], s)
		}
		u := sessions.SanitizeUser(s.User)
		o.byUser[u] = append(o.byUser[u], s)
	}
	return o
}

type siHolder struct {
	SourceIdentity *string `json:"sourceIdentity"`
}

type oracleRecord struct {
	EventSource       string    `json:"eventSource"`
	EventName         string    `json:"eventName"`
	EventTime         string    `json:"eventTime"`
	ErrorCode         string    `json:"errorCode"`
	RequestParameters *siHolder `json:"requestParameters"`
	ResponseElements  *siHolder `json:"responseElements"`
	UserIdentity      struct {
		SessionContext *siHolder `json:"sessionContext"`
	} `json:"userIdentity"`
}

// inScope reports whether the classifier must classify the record at all.
func (o *oracle) inScope(rec []byte) (bool, error) {
	var r oracleRecord
	if err := json.Unmarshal(rec, &r); err != nil {
		return false, err
	}
	return r.EventSource == "sts.amazonaws.com" && slices.Contains(o.scope, r.EventName), nil
}

// verdict returns the verdict of a record, with the SourceIdentity found
// and the path it came from.
func (o *oracle) verdict(rec []byte) (v classify.Verdict, si, origin string, err error) {
	var r oracleRecord
	if err := json.Unmarshal(rec, &r); err != nil {
		return "", "", "", err
	}
	t, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil {
		return "", "", "", err
	}
	for _, c := range []struct {
		h    *siHolder
		path string
	}{
		{r.ResponseElements, "responseElements.sourceIdentity"},
		{r.RequestParameters, "requestParameters.sourceIdentity"},
		{r.UserIdentity.SessionContext, "userIdentity.sessionContext.sourceIdentity"},
	} {
		if c.h != nil && c.h.SourceIdentity != nil {
			si, origin = *c.h.SourceIdentity, c.path
			break
		}
	}
	v, err = o.judge(si, t)
	if err == nil && r.ErrorCode != "" && v != classify.Tracked {
		v = classify.DeniedAttempt
	}
	return v, si, origin, err
}

func (o *oracle) judge(si string, t time.Time) (classify.Verdict, error) {
	if si == "" {
		return classify.NoSourceIdentity, nil
	}
	user, ok := parseSentinel(si)
	if !ok {
		return classify.NonSentinel, nil
	}
	matched := o.bySI[si]
	if len(matched) == 0 {
		for _, s := range o.byUser[user] {
			if !t.Before(s.StartedAt.Add(-o.skew)) && !t.After(s.ExpiresAt.Add(o.skew)) {
				matched = append(matched, s)
			}
		}
	}
	if len(matched) == 0 {
		if t.Before(o.horizon) {
			return classify.Unverifiable, nil
		}
		return classify.Orphaned, nil
	}
	revokedBefore := func(s sessions.Session) bool {
		return s.Status == sessions.StatusRevoked && s.UpdatedAt.Add(o.skew).Before(t)
	}
	for _, s := range matched {
		if !t.Before(s.StartedAt.Add(-o.skew)) && !t.After(s.ExpiresAt.Add(o.skew)) && !revokedBefore(s) {
			return classify.Tracked, nil
		}
	}
	for _, s := range matched {
		if revokedBefore(s) {
			return classify.Revoked, nil
		}
	}
	for _, s := range matched {
		if t.After(s.ExpiresAt.Add(o.skew)) {
			return classify.Expired, nil
		}
	}
	return "", fmt.Errorf("%d matching sessions but none valid, revoked or expired at %s", len(matched), t)
}

// oracleConfigs are the corpora the oracle checks.
func oracleConfigs() map[string]corpus.Config {
	now := time.Date(2026, time.January, 15, 8, 30, 12, 345_000_000, time.UTC)
	cfgs := map[string]corpus.Config{
		"default": {Events: 400, OutOfScope: 20},
		"multi-account-region": {
			Events: 400, OutOfScope: 30, Now: now,
			Accounts: []string{"111122223333", "444455556666", "777788889999"},
			Regions:  []string{"us-east-1", "eu-west-1", "ap-southeast-2"},
		},
		"assume-role-only":    {Events: 200, OutOfScope: 10, EventNames: []string{corpus.AssumeRole}},
		"saml-only":           {Events: 200, OutOfScope: 10, EventNames: []string{corpus.AssumeRoleWithSAML}, Accounts: []string{"111122223333", "444455556666"}},
		"web-identity-only":   {Events: 100, EventNames: []string{corpus.AssumeRoleWithWebIdentity}},
		"narrow-window":       {Events: 300, Window: time.Hour, Now: now},
		"min-age":             {Events: 300, Window: 3 * time.Hour, MinAge: 2 * time.Hour},
		"short-retention":     {Events: 300, Window: 24 * time.Hour, Retention: 25 * time.Hour},
		"orphans-only":        {Events: 300, Window: 2 * time.Hour, Mix: map[classify.Verdict]int{classify.Orphaned: 1}},
		"dense":               {Events: 3000, Window: 2 * time.Hour, Now: now},
		"many-users":          {Events: 3000, OutOfScope: 30, Users: 500},
		"findings-no-tracked": {Events: 200, Mix: map[classify.Verdict]int{classify.Revoked: 1, classify.Expired: 1, classify.Unverifiable: 1, classify.DeniedAttempt: 1}},
	}
	return cfgs
}

func TestExpectedMatchesOracle(t *testing.T) {
	t.Parallel()
	for name, cfg := range oracleConfigs() {
		for seed := range int64(5) {
			cfg.Seed = seed*7919 + 1
			c, err := corpus.Generate(cfg)
			if err != nil {
				t.Fatalf("%s/seed %d: %v", name, cfg.Seed, err)
			}
			// Any clock skew below Margin must give the same verdicts.
			for _, skew := range []time.Duration{0, time.Minute, corpus.Margin - time.Second} {
				checkOracle(t, fmt.Sprintf("%s/seed %d/skew %s", name, cfg.Seed, skew), c, newOracle(c, skew))
			}
		}
	}
}

func checkOracle(t *testing.T, label string, c *corpus.Corpus, o *oracle) {
	t.Helper()
	bad := 0
	for _, ev := range c.Events {
		in, err := o.inScope(ev.Record)
		if err != nil || !in {
			t.Errorf("%s: %s (%s) not in scope (err %v)", label, ev.ID, ev.Case, err)
		}
		v, si, origin, err := o.verdict(ev.Record)
		if err != nil || v != ev.Expected || si != ev.SourceIdentity || origin != ev.SourceIdentityOrigin {
			bad++
			if bad <= 10 {
				t.Errorf("%s: %s (%s): oracle says %q si=%q from %q (err %v); corpus says %q si=%q from %q",
					label, ev.ID, ev.Case, v, si, origin, err, ev.Expected, ev.SourceIdentity, ev.SourceIdentityOrigin)
			}
		}
	}
	for _, ev := range c.Ignored {
		if in, err := o.inScope(ev.Record); err != nil || in {
			t.Errorf("%s: ignored %s (%s) is in scope (err %v)", label, ev.ID, ev.Case, err)
		}
		if ev.Expected != "" {
			t.Errorf("%s: ignored %s has Expected %q", label, ev.ID, ev.Expected)
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d events disagree in all", label, bad)
	}
}

// TestEventTimesKeepMargins checks the placement promises of the package
// documentation that the oracle's skew runs do not cover.
func TestEventTimesKeepMargins(t *testing.T) {
	t.Parallel()
	for name, cfg := range oracleConfigs() {
		cfg.Seed = 42
		c, err := corpus.Generate(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cfg = c.Config
		lo, hi := cfg.Now.Add(-cfg.Window), cfg.Now.Add(-cfg.MinAge)
		horizon := cfg.Now.Add(-cfg.Retention)
		for _, ev := range c.All() {
			if ev.Time.Nanosecond() != 0 || ev.Time.Location() != time.UTC {
				t.Errorf("%s: %s time %s is not whole UTC seconds", name, ev.ID, ev.Time)
			}
			if ev.Expected == classify.Unverifiable {
				if ev.Time.Before(horizon.Add(-48*time.Hour-time.Second)) || ev.Time.After(horizon.Add(-24*time.Hour)) {
					t.Errorf("%s: unverifiable %s at %s, want 1-2 days before %s", name, ev.ID, ev.Time, horizon)
				}
				continue
			}
			if ev.Time.Before(lo.Add(-time.Second)) || ev.Time.After(hi) {
				t.Errorf("%s: %s (%s) at %s outside [%s, %s]", name, ev.ID, ev.Case, ev.Time, lo, hi)
			}
			if d := ev.Time.Sub(horizon); d < corpus.Margin {
				t.Errorf("%s: %s (%s) only %s after the retention horizon", name, ev.ID, ev.Case, d)
			}
		}
		for _, s := range c.Sessions {
			if s.StartedAt.After(cfg.Now) || s.LastAccessAt.After(cfg.Now) || s.UpdatedAt.After(cfg.Now) {
				t.Errorf("%s: session %s has times after now: %+v", name, s.ID, s)
			}
		}
	}
}
