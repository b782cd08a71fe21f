// Package classify decides, for one in-scope STS event, whether the session
// it created was tracked by the credential broker, and if not, which verdict
// applies. It is the one classifier every driver (streamer, backfill) uses.
package classify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// SessionFinder finds the sessions behind an event. An empty result with a
// nil error means none; an error means the store could not answer.
type SessionFinder interface {
	Lookup(ctx context.Context, q sessions.Query) (sessions.Result, error)
}

// ErrStore matches the error Classify returns when the session store failed.
// Such an event has no verdict and must be retried.
var ErrStore = errors.New("session store")

// Defaults for Config.
const (
	// DefaultClockSkew is the store's: both compare times with one tolerance.
	DefaultClockSkew = sessions.DefaultClockSkew
	DefaultRetention = 90 * 24 * time.Hour
	// MaxClockSkew bounds the tolerance: a larger one would hide real
	// revocations and expiries.
	MaxClockSkew = 10 * time.Minute
)

// Config configures a Classifier.
type Config struct {
	// Pattern is the SourceIdentity pattern (SentinelPattern when empty).
	Pattern string
	// Retention is how long the store keeps a session after it ends. A
	// parsable SourceIdentity with no session is orphaned when the event is
	// younger than this, unverifiable when older.
	Retention time.Duration
	// ClockSkew is tolerated in every time comparison: CloudTrail times have
	// whole seconds, session times do not, and clocks drift.
	ClockSkew time.Duration
	// Now returns the current time (time.Now when nil).
	Now func() time.Time
}

// Validate reports a configuration the Classifier cannot use. It changes
// nothing: a zero field is checked as the default it takes.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("session retention %v is negative", c.Retention))
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		errs = append(errs, fmt.Errorf("clock skew %v is outside 0..%v", c.ClockSkew, MaxClockSkew))
	}
	return errors.Join(errs...)
}

// withDefaults is c with each zero field that has a default set to it.
func (c Config) withDefaults() Config {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Classifier classifies events. It is safe for concurrent use.
type Classifier struct {
	finder SessionFinder
	parser *Parser
	cfg    Config
}

// New builds a Classifier.
func New(finder SessionFinder, cfg Config) (*Classifier, error) {
	if finder == nil {
		return nil, errors.New("classify: nil session finder")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	cfg = cfg.withDefaults()
	parser, err := NewParser(cfg.Pattern)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	return &Classifier{finder: finder, parser: parser, cfg: cfg}, nil
}

// SourceIdentity is the SourceIdentity of an event as the finding reports it.
type SourceIdentity struct {
	Value  string
	Origin cloudtrail.Origin
	ParsedIdentity
}

// Result is the classification of one event.
type Result struct {
	Verdict  Verdict
	Severity Severity
	Reason   string
	// FindingID is deterministic: the same STS request and verdict give
	// the same id, so redeliveries and both copies of a cross-account call
	// dedupe downstream. Empty when the verdict is no finding.
	FindingID      string
	SourceIdentity SourceIdentity
	// Session is the session the verdict rests on, when one matched.
	Session   *sessions.Session
	MatchedBy sessions.Strategy
	// Underlying is, for a denied_attempt, what the call would have been
	// had it succeeded.
	Underlying Verdict
}

// IsFinding reports whether r should be emitted.
func (r Result) IsFinding() bool { return r.Verdict.IsFinding() }

// Classify returns the verdict for ev. A session-store failure returns an
// error matching ErrStore and no verdict. A finder that cannot answer yet
// (the session replica, before its watermark passes the event) returns a
// *sessions.NotFinalError, passed through (errors.As) without ErrStore:
// ask again after its RetryAfter.
func (c *Classifier) Classify(ctx context.Context, ev *cloudtrail.Event) (Result, error) {
	return c.classify(ctx, ev, false)
}

// Recheck classifies ev again with a fresh store read that bypasses cached
// answers; the streamer uses it before emitting an orphaned verdict.
func (c *Classifier) Recheck(ctx context.Context, ev *cloudtrail.Event) (Result, error) {
	return c.classify(ctx, ev, true)
}

func (c *Classifier) classify(ctx context.Context, ev *cloudtrail.Event, fresh bool) (Result, error) {
	if ev.Pipeline != nil {
		return pipelineTampered(ev), nil
	}
	r, err := c.judge(ctx, ev, fresh)
	if err != nil {
		return Result{}, err
	}
	if ev.Failed() {
		r = denied(ev, r)
	}
	if !r.IsFinding() {
		return r, nil // the hot path: no severity, no id to derive
	}
	if r.Severity == SeverityNone {
		r.Severity = r.Verdict.DefaultSeverity()
	}
	r.FindingID = FindingID(ev.DedupKey(), r.Verdict)
	return r, nil
}

// judge classifies ev as if the call had succeeded.
func (c *Classifier) judge(ctx context.Context, ev *cloudtrail.Event, fresh bool) (Result, error) {
	r := Result{SourceIdentity: SourceIdentity{Value: ev.SourceIdentity, Origin: ev.SourceIdentityOrigin}}
	if ev.SourceIdentity == "" {
		r.Verdict = NoSourceIdentity
		r.Reason = "no SourceIdentity in responseElements, requestParameters or userIdentity.sessionContext"
		return r, nil
	}
	parsed, err := c.parser.Parse(ev.SourceIdentity)
	if err != nil {
		r.Verdict = NonSentinel
		r.Reason = fmt.Sprintf("SourceIdentity %q (%s) is not in the expected format: %v", bounded(ev.SourceIdentity), ev.SourceIdentityOrigin, err)
		return r, nil
	}
	r.SourceIdentity.ParsedIdentity = parsed

	found, err := c.finder.Lookup(ctx, sessions.Query{SourceIdentity: ev.SourceIdentity, User: parsed.User, At: ev.Time, Fresh: fresh})
	if nf := (*sessions.NotFinalError)(nil); errors.As(err, &nf) {
		// The replica cannot answer yet: the caller holds the event for
		// nf.RetryAfter. Not a store failure, so no store retry.
		return Result{}, fmt.Errorf("classify event %s: %w", bounded(ev.ID), err)
	}
	if err != nil {
		return Result{}, fmt.Errorf("classify event %s: %w: %w", bounded(ev.ID), ErrStore, err)
	}
	if len(found.Sessions) == 0 {
		return c.noSession(ev, parsed, r), nil
	}
	r.MatchedBy = found.Strategy
	return c.judgeSessions(ev, found.Sessions, r), nil
}

func (c *Classifier) noSession(ev *cloudtrail.Event, parsed ParsedIdentity, r Result) Result {
	age := c.cfg.Now().Sub(ev.Time)
	if age > c.cfg.Retention {
		r.Verdict = Unverifiable
		r.Reason = fmt.Sprintf("no session of user %q matches, but the event (%s) is older than the session retention (%s), so its session may have left the store",
			parsed.User, ev.Time.Format(time.RFC3339), c.cfg.Retention)
		return r
	}
	r.Verdict = Orphaned
	r.Reason = fmt.Sprintf("no session matches SourceIdentity %q or covers user %q at %s", bounded(ev.SourceIdentity), parsed.User, ev.Time.Format(time.RFC3339))
	return r
}

// judgeSessions: any session valid at the event time makes it tracked, even
// when another match was revoked; otherwise revoked beats expired.
func (c *Classifier) judgeSessions(ev *cloudtrail.Event, matches []sessions.Session, r Result) Result {
	skew := c.cfg.ClockSkew
	t := ev.Time
	var revoked, expired, notStarted *sessions.Session
	for i := range matches {
		s := &matches[i]
		revokedAt, isRevoked := s.Revoked()
		revokedBefore := isRevoked && revokedAt.Add(skew).Before(t) && !revokedAt.After(s.ExpiresAt)
		switch {
		case revokedBefore:
			if revoked == nil || revokedAt.After(revoked.UpdatedAt) {
				revoked = s
			}
		case s.ExpiresAt.IsZero() || s.ExpiresAt.Add(skew).Before(t):
			if expired == nil || s.ExpiresAt.After(expired.ExpiresAt) {
				expired = s
			}
		case s.StartedAt.IsZero() || s.StartedAt.Add(-skew).After(t):
			if notStarted == nil {
				notStarted = s
			}
		default:
			// Most events end here; the reason is kept cheap.
			r.Verdict = Tracked
			r.Session = s
			r.Reason = "session " + s.ID + " is valid at the event time (" + string(r.MatchedBy) + " match)"
			return r
		}
	}
	switch {
	case revoked != nil:
		r.Verdict, r.Session = Revoked, revoked
		r.Reason = fmt.Sprintf("session %s of %q was revoked at %s", revoked.ID, revoked.User, revoked.UpdatedAt.Format(time.RFC3339))
		if revoked.RevokedBy != "" {
			r.Reason += " by " + revoked.RevokedBy
		}
		if revoked.RevokedReason != "" {
			r.Reason += fmt.Sprintf(" (%s)", revoked.RevokedReason)
		}
		r.Reason += ", before the event at " + t.Format(time.RFC3339)
	case expired != nil:
		r.Verdict, r.Session = Expired, expired
		if expired.ExpiresAt.IsZero() {
			r.Reason = fmt.Sprintf("session %s of %q has no expiry on record, so it cannot be valid at %s", expired.ID, expired.User, t.Format(time.RFC3339))
		} else {
			r.Reason = fmt.Sprintf("session %s of %q expired at %s, before the event at %s", expired.ID, expired.User, expired.ExpiresAt.Format(time.RFC3339), t.Format(time.RFC3339))
		}
	default:
		r.Verdict, r.Session = Orphaned, notStarted
		r.Reason = fmt.Sprintf("the only session with SourceIdentity %q (%s) starts at %s, after the event at %s",
			bounded(ev.SourceIdentity), notStarted.ID, notStarted.StartedAt.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	return r
}

// denied turns the verdict of a failed call into denied_attempt: a blocked
// bypass. A denied call that would have been tracked gives no finding. The
// severity is medium, or lower when the call itself would have been (an
// unverifiable SourceIdentity).
func denied(ev *cloudtrail.Event, r Result) Result {
	if r.Verdict == Tracked {
		r.Reason = fmt.Sprintf("denied with %s; the SourceIdentity was tracked: %s", bounded(ev.ErrorCode), r.Reason)
		return r
	}
	r.Underlying = r.Verdict
	r.Severity = min(SeverityMedium, r.Verdict.DefaultSeverity())
	r.Reason = fmt.Sprintf("denied with %s; had it succeeded it would have been %s: %s", bounded(ev.ErrorCode), r.Verdict, r.Reason)
	r.Verdict = DeniedAttempt
	return r
}

// pipelineTampered classifies a call that changed the EventBridge rule or
// the queue feeding the streamer: no session is involved. A denied call is
// still pipeline_tampered (SIEM rules route the category), at medium.
func pipelineTampered(ev *cloudtrail.Event) Result {
	p := ev.Pipeline
	r := Result{Verdict: PipelineTampered, Severity: PipelineTampered.DefaultSeverity(),
		SourceIdentity: SourceIdentity{Value: ev.SourceIdentity, Origin: ev.SourceIdentityOrigin}}
	var b strings.Builder
	// A queue URL or a rule on a named bus is longer than bounded keeps.
	resource := p.Resource()
	if len(resource) > 300 {
		resource = resource[:300] + "…"
	}
	fmt.Fprintf(&b, "%s on %s", bounded(ev.Name), resource)
	if p.RuleState != "" {
		fmt.Fprintf(&b, " (state %s)", bounded(p.RuleState))
	}
	if len(p.Attributes) > 0 {
		fmt.Fprintf(&b, " (attributes %s)", bounded(strings.Join(p.Attributes, ", ")))
	}
	b.WriteString(": a change to the EventBridge rule or queue that feed sessionwatch")
	if ev.Failed() {
		r.Severity = SeverityMedium
		fmt.Fprintf(&b, "; denied with %s", bounded(ev.ErrorCode))
	}
	r.Reason = b.String()
	r.FindingID = FindingID(ev.DedupKey(), r.Verdict)
	return r
}

// FindingID derives the finding id from the STS request and the verdict, as
// a UUID-shaped string (version 8, name-based).
func FindingID(requestKey string, v Verdict) string {
	h := sha256.New()
	h.Write([]byte("sessionwatch.finding/v1\x00"))
	h.Write([]byte(requestKey))
	h.Write([]byte{0})
	h.Write([]byte(v))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	sum[6] = sum[6]&0x0f | 0x80 // version 8
	sum[8] = sum[8]&0x3f | 0x80 // RFC 9562 variant
	var b [36]byte
	hex.Encode(b[0:8], sum[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], sum[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], sum[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], sum[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], sum[10:16])
	return string(b[:])
}
