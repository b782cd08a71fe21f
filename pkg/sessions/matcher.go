package sessions

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CachingReader reads sessions through a cache, accepting answers younger
// than maxAge; *Cache satisfies it.
type CachingReader interface {
	BySourceIdentity(ctx context.Context, sourceIdentity string, maxAge time.Duration) (Entry, error)
	ByUser(ctx context.Context, rawUser string, maxAge time.Duration) (Entry, error)
}

// RawNameResolver maps a sanitised user name to the raw names stored in the
// table; *Directory satisfies it.
type RawNameResolver interface {
	RawNames(ctx context.Context, user string) ([]string, error)
	Refresh(ctx context.Context) (refreshed bool, err error)
}

// Defaults for MatcherConfig.
const (
	DefaultClockSkew = time.Minute
	// DefaultPositiveTTL bounds how late the streamer notices a revocation: a
	// cached valid session hides a later revocation for at most this long.
	DefaultPositiveTTL = 30 * time.Second
	// DefaultNegativeTTL bounds how long "no session" is believed, since the
	// broker may write a session just after the STS call.
	DefaultNegativeTTL = 5 * time.Second
)

// DefaultStrategies is the order lookups try when none is configured.
func DefaultStrategies() []Strategy { return []Strategy{StrategyExact, StrategyUserTime} }

// MatcherConfig sets the match policy. Zero fields take their defaults.
type MatcherConfig struct {
	// Strategies are tried in order; the first that matches wins.
	Strategies []Strategy
	// ClockSkew widens every session's [started_at, expires_at] on both
	// sides: CloudTrail times have whole seconds, session times do not.
	ClockSkew time.Duration
	// PositiveTTL is how long a cached answer that matched is reused. A
	// cached valid session hides a later revocation (or a new session) for
	// at most this long.
	PositiveTTL time.Duration
	// NegativeTTL is how long a cached answer that matched nothing is
	// reused; at most PositiveTTL.
	NegativeTTL time.Duration
}

// Validate reports a configuration the Matcher cannot use.
func (c MatcherConfig) Validate() error {
	var errs []error
	for _, st := range c.Strategies {
		if st != StrategyExact && st != StrategyUserTime {
			errs = append(errs, &StrategyError{Value: string(st)})
		}
	}
	if c.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("clock skew %v is negative", c.ClockSkew))
	}
	if c.PositiveTTL < 0 {
		errs = append(errs, fmt.Errorf("positive TTL %v is negative", c.PositiveTTL))
	}
	if c.NegativeTTL < 0 {
		errs = append(errs, fmt.Errorf("negative TTL %v is negative", c.NegativeTTL))
	}
	if d := c.withDefaults(); d.NegativeTTL > d.PositiveTTL {
		errs = append(errs, fmt.Errorf("negative TTL %v exceeds positive TTL %v", d.NegativeTTL, d.PositiveTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sessions: matcher config: %w", err)
	}
	return nil
}

func (c MatcherConfig) withDefaults() MatcherConfig {
	if len(c.Strategies) == 0 {
		c.Strategies = DefaultStrategies()
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.PositiveTTL == 0 {
		c.PositiveTTL = DefaultPositiveTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	return c
}

// Matcher finds the recorded sessions behind an event (DESIGN "Session
// store"). It is what the classifier calls.
type Matcher struct {
	sessions CachingReader
	users    RawNameResolver
	cfg      MatcherConfig
	now      func() time.Time
}

// NewMatcher returns a Matcher reading sessions through sessions (usually a
// *Cache) and raw user names through users (usually a *Directory).
func NewMatcher(sessions CachingReader, users RawNameResolver, cfg MatcherConfig) (*Matcher, error) {
	if sessions == nil || users == nil {
		return nil, errors.New("sessions: matcher: nil session reader or user directory")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Matcher{sessions: sessions, users: users, cfg: cfg.withDefaults(), now: time.Now}, nil
}

// Lookup tries the configured strategies in order and returns the sessions
// of the first that matches:
//   - exact: every session whose source_identity is q.SourceIdentity, at any
//     time (the classifier judges revoked and expired);
//   - user-time: the sessions of q.User, under its own name and the raw
//     names the directory maps it to, whose [started_at, expires_at] widened
//     by the clock skew covers q.At.
//
// Nothing matching is Result{} with a nil error; a failure to read is an
// error, never an empty Result.
func (m *Matcher) Lookup(ctx context.Context, q Query) (Result, error) {
	for _, st := range m.cfg.Strategies {
		var (
			found []Session
			err   error
		)
		switch st {
		case StrategyExact:
			found, err = m.exact(ctx, q)
		case StrategyUserTime:
			found, err = m.userTime(ctx, q)
		}
		if err != nil {
			return Result{}, fmt.Errorf("%s match: %w", st, err)
		}
		if len(found) > 0 {
			return Result{Sessions: found, Strategy: st}, nil
		}
	}
	return Result{}, nil
}

func (m *Matcher) exact(ctx context.Context, q Query) ([]Session, error) {
	if q.SourceIdentity == "" {
		return nil, nil
	}
	read := func(ctx context.Context, maxAge time.Duration) (Entry, error) {
		return m.sessions.BySourceIdentity(ctx, q.SourceIdentity, maxAge)
	}
	return m.cached(ctx, q.Fresh, read, func(s Session) bool { return true })
}

func (m *Matcher) userTime(ctx context.Context, q Query) ([]Session, error) {
	if q.User == "" {
		// Nothing is stored under an empty user, and the directory has no
		// names for it.
		return nil, nil
	}
	covers := func(s Session) bool { return s.Covers(q.At, m.cfg.ClockSkew) }
	tried := map[string]bool{}
	var found []Session
	seen := map[string]bool{} // session ids: two raw names never share a session, but be sure
	tryNames := func(names []string) error {
		for _, name := range names {
			if tried[name] {
				continue
			}
			tried[name] = true
			read := func(ctx context.Context, maxAge time.Duration) (Entry, error) {
				return m.sessions.ByUser(ctx, name, maxAge)
			}
			matches, err := m.cached(ctx, q.Fresh, read, covers)
			if err != nil {
				return err
			}
			for _, s := range matches {
				if !seen[s.ID] {
					seen[s.ID] = true
					found = append(found, s)
				}
			}
		}
		return nil
	}

	// The sanitised name first: it is the raw name for most users.
	if err := tryNames([]string{q.User}); err != nil {
		return nil, err
	}
	raw, err := m.users.RawNames(ctx, q.User)
	if err != nil {
		return nil, err
	}
	if err := tryNames(raw); err != nil {
		return nil, err
	}
	if len(found) > 0 {
		return found, nil
	}
	// Nothing: the directory may predate a new raw name for this user.
	// Refresh is rate-limited, so a burst of misses costs one scan.
	refreshed, err := m.users.Refresh(ctx)
	if err != nil {
		return nil, err
	}
	if !refreshed {
		return nil, nil
	}
	if raw, err = m.users.RawNames(ctx, q.User); err != nil {
		return nil, err
	}
	if err := tryNames(raw); err != nil {
		return nil, err
	}
	return found, nil
}

// cached reads through the cache and keeps the sessions that match. An
// answer with a match is trusted for PositiveTTL; one without is trusted
// only for NegativeTTL and otherwise read again. Fresh always reads.
func (m *Matcher) cached(ctx context.Context, fresh bool, read func(context.Context, time.Duration) (Entry, error), match func(Session) bool) ([]Session, error) {
	if fresh {
		e, err := read(ctx, 0)
		if err != nil {
			return nil, err
		}
		return keep(e.Sessions, match), nil
	}
	e, err := read(ctx, m.cfg.PositiveTTL)
	if err != nil {
		return nil, err
	}
	if found := keep(e.Sessions, match); len(found) > 0 || m.now().Sub(e.FetchedAt) < m.cfg.NegativeTTL {
		return found, nil
	}
	if e, err = read(ctx, m.cfg.NegativeTTL); err != nil {
		return nil, err
	}
	return keep(e.Sessions, match), nil
}

// keep returns the sessions that match, in a new slice (cached slices are
// shared).
func keep(sessions []Session, match func(Session) bool) []Session {
	var out []Session
	for _, s := range sessions {
		if match(s) {
			out = append(out, s)
		}
	}
	return out
}
