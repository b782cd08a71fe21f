package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	sessions    CachingReader
	users       RawNameResolver
	cfg         MatcherConfig
	userTimeToo bool // user-time is configured: exact may use the user lists
	now         func() time.Time
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
	cfg = cfg.withDefaults()
	return &Matcher{sessions: sessions, users: users, cfg: cfg, now: time.Now,
		userTimeToo: slices.Contains(cfg.Strategies, StrategyUserTime)}, nil
}

// Lookup tries the configured strategies in order and returns the sessions
// of the first that matches:
//   - exact: every session whose source_identity is q.SourceIdentity, at any
//     time (the classifier judges revoked and expired). When user-time is
//     configured too, the user's cached session lists are searched first,
//     and the source-identity index is read unless they hold a session
//     with it that was valid at q.At;
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
	if !q.Fresh && q.User != "" && m.userTimeToo {
		// The user's session lists (gsi-user, which the user-time strategy
		// reads anyway) usually hold this SourceIdentity already: one read
		// a user per PositiveTTL instead of one a SourceIdentity, which is
		// new with every credential request. They settle the exact match
		// only when they hold a session valid at the event: the verdict is
		// then tracked, whatever else carries this SourceIdentity. Anything
		// less is the index's to answer: an error reading them (the
		// directory, say), no session (written after the lists were read,
		// or under a raw name the directory does not know yet), or only
		// revoked or expired ones (a valid one may be newer than the lists).
		found, err := m.exactFromUserLists(ctx, q)
		if err == nil && slices.ContainsFunc(found, func(s Session) bool { return validAt(s, q.At, m.cfg.ClockSkew) }) {
			return found, nil
		}
	}
	read := func(ctx context.Context, maxAge time.Duration) (Entry, error) {
		return m.sessions.BySourceIdentity(ctx, q.SourceIdentity, maxAge)
	}
	return m.cached(ctx, q.Fresh, read, Entry.all)
}

// validAt reports whether s certainly made at valid: it covers at and was
// never revoked. (A session revoked after at was valid too, but the
// classifier is left to judge that from the index's full answer.)
func validAt(s Session, at time.Time, skew time.Duration) bool {
	return s.Covers(at, skew) && s.Status != StatusRevoked
}

// exactFromUserLists returns the sessions with q's SourceIdentity found in
// the cached session lists of q.User and its raw names.
func (m *Matcher) exactFromUserLists(ctx context.Context, q Query) ([]Session, error) {
	var (
		found []Session
		tried []string
	)
	err := m.eachUserName(ctx, q.User, &tried, func(name string) error {
		e, err := m.sessions.ByUser(ctx, name, m.cfg.PositiveTTL)
		if err != nil {
			return err
		}
		found = append(found, e.withSourceIdentity(q.SourceIdentity)...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// eachUserName calls visit for the sanitised user (the raw name of most
// users, so it goes first) and then for each raw name the directory maps it
// to, skipping names already in tried and adding the rest to it.
func (m *Matcher) eachUserName(ctx context.Context, user string, tried *[]string, visit func(name string) error) error {
	once := func(name string) error {
		if slices.Contains(*tried, name) { // a user has a handful of raw names at most
			return nil
		}
		*tried = append(*tried, name)
		return visit(name)
	}
	if err := once(user); err != nil {
		return err
	}
	raw, err := m.users.RawNames(ctx, user)
	if err != nil {
		return err
	}
	for _, name := range raw {
		if err := once(name); err != nil {
			return err
		}
	}
	return nil
}

func (m *Matcher) userTime(ctx context.Context, q Query) ([]Session, error) {
	if q.User == "" {
		// Nothing is stored under an empty user, and the directory has no
		// names for it.
		return nil, nil
	}
	covering := func(e Entry) []Session { return e.covering(q.At, m.cfg.ClockSkew) }
	var (
		found []Session
		tried []string
		ids   map[string]bool // of found, once a second name adds sessions
	)
	readName := func(name string) error {
		read := func(ctx context.Context, maxAge time.Duration) (Entry, error) {
			return m.sessions.ByUser(ctx, name, maxAge)
		}
		matches, err := m.cached(ctx, q.Fresh, read, covering)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			found = matches
			return nil
		}
		// Two raw names never share a session, but be sure.
		if ids == nil && len(matches) > 0 {
			ids = make(map[string]bool, len(found)+len(matches))
			for _, s := range found {
				ids[s.ID] = true
			}
		}
		for _, s := range matches {
			if !ids[s.ID] {
				ids[s.ID] = true
				found = append(found, s)
			}
		}
		return nil
	}

	if err := m.eachUserName(ctx, q.User, &tried, readName); err != nil {
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
	if err := m.eachUserName(ctx, q.User, &tried, readName); err != nil {
		return nil, err
	}
	return found, nil
}

// cached reads through the cache and keeps the sessions that match. An
// answer with a match is trusted for PositiveTTL; one without is trusted
// only for NegativeTTL and otherwise read again. Fresh always reads.
func (m *Matcher) cached(ctx context.Context, fresh bool, read func(context.Context, time.Duration) (Entry, error), match func(Entry) []Session) ([]Session, error) {
	if fresh {
		e, err := read(ctx, 0)
		if err != nil {
			return nil, err
		}
		return match(e), nil
	}
	e, err := read(ctx, m.cfg.PositiveTTL)
	if err != nil {
		return nil, err
	}
	if found := match(e); len(found) > 0 || m.now().Sub(e.FetchedAt) < m.cfg.NegativeTTL {
		return found, nil
	}
	if e, err = read(ctx, m.cfg.NegativeTTL); err != nil {
		return nil, err
	}
	return match(e), nil
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
