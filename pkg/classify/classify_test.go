package classify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// fakeFinder answers lookups from a fixed result and records queries.
type fakeFinder struct {
	result  sessions.Result
	err     error
	queries []sessions.Query
}

func (f *fakeFinder) Lookup(_ context.Context, q sessions.Query) (sessions.Result, error) {
	f.queries = append(f.queries, q)
	return f.result, f.err
}

var (
	now     = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	evTime  = now.Add(-time.Hour)
	validSI = "sentinel:alice:direct:0a1b2c3d"
)

func session(id string, mutate func(*sessions.Session)) sessions.Session {
	s := sessions.Session{
		ID: id, User: "alice", Status: sessions.StatusActive, SourceIdentity: validSI,
		StartedAt: evTime.Add(-30 * time.Minute).Add(123 * time.Millisecond),
		ExpiresAt: evTime.Add(30 * time.Minute),
	}
	s.CreatedAt, s.UpdatedAt = s.StartedAt, s.StartedAt
	if mutate != nil {
		mutate(&s)
	}
	return s
}

func revokedAt(at time.Time) func(*sessions.Session) {
	return func(s *sessions.Session) { s.Status, s.UpdatedAt, s.RevokedBy = sessions.StatusRevoked, at, "secops" }
}

func event(si string, mutate func(*cloudtrail.Event)) *cloudtrail.Event {
	ev := &cloudtrail.Event{ID: "evt", Name: "AssumeRole", Source: "sts.amazonaws.com", Time: evTime, RequestID: "req", SourceIdentity: si}
	if si != "" {
		ev.SourceIdentityOrigin = cloudtrail.OriginResponse
	}
	if mutate != nil {
		mutate(ev)
	}
	return ev
}

func accessDenied(ev *cloudtrail.Event) { ev.ErrorCode = "AccessDenied" }

func TestClassifyVerdicts(t *testing.T) {
	exact := func(ss ...sessions.Session) sessions.Result {
		return sessions.Result{Sessions: ss, Strategy: sessions.StrategyExact}
	}
	tests := []struct {
		name     string
		ev       *cloudtrail.Event
		found    sessions.Result
		verdict  Verdict
		severity Severity
		session  string // id of the session the verdict rests on
		reason   string
		noLookup bool
	}{
		{name: "tracked", ev: event(validSI, nil), found: exact(session("s1", nil)), verdict: Tracked, session: "s1"},
		{name: "tracked by user and time", ev: event(validSI, nil),
			found:   sessions.Result{Sessions: []sessions.Session{session("s1", func(s *sessions.Session) { s.SourceIdentity = "" })}, Strategy: sessions.StrategyUserTime},
			verdict: Tracked, session: "s1", reason: "user-time"},
		{name: "tracked: one match valid, another revoked", ev: event(validSI, nil),
			found:   exact(session("old", revokedAt(evTime.Add(-10*time.Minute))), session("s2", nil)),
			verdict: Tracked, session: "s2"},
		{name: "tracked: revoked after the event", ev: event(validSI, nil),
			found: exact(session("s1", revokedAt(evTime.Add(5*time.Minute)))), verdict: Tracked, session: "s1"},
		{name: "tracked: revoked within the clock skew", ev: event(validSI, nil),
			found: exact(session("s1", revokedAt(evTime.Add(-30*time.Second)))), verdict: Tracked},
		{name: "tracked: sub-second start after a whole-second event", ev: event(validSI, nil),
			found: exact(session("s1", func(s *sessions.Session) { s.StartedAt = evTime.Add(400 * time.Millisecond) })), verdict: Tracked},
		{name: "no source identity", ev: event("", nil), verdict: NoSourceIdentity, severity: SeverityHigh, noLookup: true},
		{name: "foreign format", ev: event("JohnDoe", nil), verdict: NonSentinel, severity: SeverityHigh, reason: "does not start", noLookup: true},
		{name: "near miss", ev: event("sentinel:alice:direct:XYZ12345", nil), verdict: NonSentinel, severity: SeverityHigh, reason: "near miss: request-id", noLookup: true},
		{name: "orphaned", ev: event(validSI, nil), verdict: Orphaned, severity: SeverityHigh, reason: "no session"},
		{name: "orphaned: exact match starts after the event", ev: event(validSI, nil),
			found:   exact(session("late", func(s *sessions.Session) { s.StartedAt = evTime.Add(time.Hour) })),
			verdict: Orphaned, severity: SeverityHigh, session: "late", reason: "after the event"},
		{name: "revoked", ev: event(validSI, nil), found: exact(session("s1", revokedAt(evTime.Add(-10*time.Minute)))),
			verdict: Revoked, severity: SeverityCritical, session: "s1", reason: "revoked at"},
		{name: "revoked beats expired", ev: event(validSI, nil),
			found:   exact(session("exp", func(s *sessions.Session) { s.ExpiresAt = evTime.Add(-time.Minute * 20) }), session("rev", revokedAt(evTime.Add(-10*time.Minute)))),
			verdict: Revoked, severity: SeverityCritical, session: "rev"},
		{name: "revoked after it expired is expired", ev: event(validSI, nil),
			found: exact(session("s1", func(s *sessions.Session) {
				s.ExpiresAt = evTime.Add(-20 * time.Minute)
				revokedAt(evTime.Add(-10 * time.Minute))(s)
			})),
			verdict: Expired, severity: SeverityHigh, session: "s1"},
		{name: "expired", ev: event(validSI, nil), found: exact(session("s1", func(s *sessions.Session) { s.ExpiresAt = evTime.Add(-5 * time.Minute) })),
			verdict: Expired, severity: SeverityHigh, session: "s1", reason: "expired at"},
		{name: "status expired alone says nothing", ev: event(validSI, nil), found: exact(session("s1", func(s *sessions.Session) { s.Status = sessions.StatusExpired })),
			verdict: Tracked, session: "s1"},
		{name: "expired within the clock skew is tracked", ev: event(validSI, nil), found: exact(session("s1", func(s *sessions.Session) { s.ExpiresAt = evTime.Add(-30 * time.Second) })),
			verdict: Tracked},
		{name: "unverifiable", ev: event(validSI, func(e *cloudtrail.Event) { e.Time = now.Add(-100 * 24 * time.Hour) }),
			verdict: Unverifiable, severity: SeverityLow, reason: "retention"},
		{name: "denied without source identity", ev: event("", accessDenied), verdict: DeniedAttempt, severity: SeverityMedium, reason: "no_source_identity", noLookup: true},
		{name: "denied orphan", ev: event(validSI, accessDenied), verdict: DeniedAttempt, severity: SeverityMedium, reason: "orphaned"},
		{name: "denied unverifiable stays low", ev: event(validSI, func(e *cloudtrail.Event) { accessDenied(e); e.Time = now.Add(-100 * 24 * time.Hour) }),
			verdict: DeniedAttempt, severity: SeverityLow},
		{name: "denied but tracked gives no finding", ev: event(validSI, accessDenied), found: exact(session("s1", nil)), verdict: Tracked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			finder := &fakeFinder{result: tt.found}
			c, err := New(finder, Config{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Classify(context.Background(), tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tt.verdict {
				t.Fatalf("verdict %s (%s), want %s", r.Verdict, r.Reason, tt.verdict)
			}
			if r.Severity != tt.severity {
				t.Errorf("severity %s, want %s", r.Severity, tt.severity)
			}
			if r.IsFinding() != (tt.verdict != Tracked) {
				t.Errorf("IsFinding %v", r.IsFinding())
			}
			if tt.session != "" && (r.Session == nil || r.Session.ID != tt.session) {
				t.Errorf("session %+v, want %s", r.Session, tt.session)
			}
			if !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", r.Reason, tt.reason)
			}
			if wantID := FindingID("req", tt.verdict); tt.verdict != Tracked && r.FindingID != wantID {
				t.Errorf("finding id %s not derived from the request and verdict", r.FindingID)
			}
			if tt.verdict == Tracked && (r.FindingID != "" || r.Severity != SeverityNone) {
				t.Errorf("tracked event has finding id %q, severity %s", r.FindingID, r.Severity)
			}
			if tt.noLookup != (len(finder.queries) == 0) {
				t.Errorf("lookups %d, want none: %v", len(finder.queries), tt.noLookup)
			}
			if len(finder.queries) > 0 {
				q := finder.queries[0]
				if q.SourceIdentity != tt.ev.SourceIdentity || q.User != "alice" || !q.At.Equal(tt.ev.Time) || q.Fresh {
					t.Errorf("query %+v", q)
				}
			}
		})
	}
}

func TestStoreFailureIsNeverAVerdict(t *testing.T) {
	storeErr := errors.New("ProvisionedThroughputExceededException: throttled")
	finder := &fakeFinder{err: storeErr}
	c, err := New(finder, Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*cloudtrail.Event{event(validSI, nil), event(validSI, accessDenied), event(validSI, func(e *cloudtrail.Event) { e.Time = now.Add(-200 * 24 * time.Hour) })} {
		r, err := c.Classify(context.Background(), ev)
		if !errors.Is(err, ErrStore) || !errors.Is(err, storeErr) {
			t.Errorf("error %v does not wrap ErrStore and the cause", err)
		}
		if r.Verdict != "" || r.IsFinding() {
			t.Errorf("store failure produced verdict %q", r.Verdict)
		}
	}
}

// TestNotFinalIsNotAStoreFailure: the replica's "not yet" reaches the
// caller as itself, so that the caller holds the event instead of
// retrying a store that did not fail.
func TestNotFinalIsNotAStoreFailure(t *testing.T) {
	notFinal := &sessions.NotFinalError{Until: evTime.Add(time.Minute), RetryAfter: 3 * time.Second}
	c, err := New(&fakeFinder{err: fmt.Errorf("lookup: %w", notFinal)}, Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, classify := range []func(context.Context, *cloudtrail.Event) (Result, error){c.Classify, c.Recheck} {
		r, err := classify(context.Background(), event(validSI, nil))
		var nf *sessions.NotFinalError
		if !errors.As(err, &nf) || nf.RetryAfter != 3*time.Second {
			t.Errorf("error %v: want the NotFinalError through", err)
		}
		if errors.Is(err, ErrStore) {
			t.Errorf("error %v matches ErrStore", err)
		}
		if r.Verdict != "" {
			t.Errorf("verdict %q before the answer is final", r.Verdict)
		}
	}
}

func TestRecheckIsFresh(t *testing.T) {
	finder := &fakeFinder{}
	c, _ := New(finder, Config{Now: func() time.Time { return now }})
	if _, err := c.Recheck(context.Background(), event(validSI, nil)); err != nil {
		t.Fatal(err)
	}
	if len(finder.queries) != 1 || !finder.queries[0].Fresh {
		t.Errorf("queries %+v, want one fresh query", finder.queries)
	}
}

func TestFindingID(t *testing.T) {
	a := FindingID("req-1", Orphaned)
	if a != FindingID("req-1", Orphaned) {
		t.Error("not deterministic")
	}
	if a == FindingID("req-1", Revoked) || a == FindingID("req-2", Orphaned) {
		t.Error("collides across verdicts or requests")
	}
	if len(a) != 36 || a[14] != '8' || strings.Count(a, "-") != 4 {
		t.Errorf("%q is not a version-8 UUID", a)
	}
	// Both copies of a cross-account call share the request id.
	x := event(validSI, func(e *cloudtrail.Event) { e.ID = "copy-a" })
	y := event(validSI, func(e *cloudtrail.Event) { e.ID = "copy-b"; e.Account = "222233334444" })
	if FindingID(x.DedupKey(), Orphaned) != FindingID(y.DedupKey(), Orphaned) {
		t.Error("cross-account copies get different ids")
	}
}

// TestConfigValidate: Validate reports each bad field and changes nothing;
// the zero config is valid and takes the defaults.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" is valid
	}{
		{"zero", Config{}, ""},
		{"largest clock skew", Config{ClockSkew: MaxClockSkew}, ""},
		{"negative clock skew", Config{ClockSkew: -time.Second}, "clock skew -1s"},
		{"clock skew too large", Config{ClockSkew: time.Hour}, "clock skew 1h0m0s"},
		{"negative retention", Config{Retention: -time.Hour}, "session retention -1h0m0s"},
		{"both", Config{Retention: -time.Hour, ClockSkew: time.Hour}, "clock skew 1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.cfg
			err := tc.cfg.Validate()
			if tc.cfg.Retention != before.Retention || tc.cfg.ClockSkew != before.ClockSkew || tc.cfg.Now != nil {
				t.Errorf("Validate changed the config: %+v, was %+v", tc.cfg, before)
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
	d := Config{}.withDefaults()
	if d.Retention != DefaultRetention || d.ClockSkew != DefaultClockSkew || d.Now == nil {
		t.Errorf("withDefaults: %+v", d)
	}
	for _, cfg := range []Config{{ClockSkew: -time.Second}, {ClockSkew: time.Hour}, {Retention: -time.Hour}, {Pattern: "("}} {
		if _, err := New(&fakeFinder{}, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("nil finder accepted")
	}
}
