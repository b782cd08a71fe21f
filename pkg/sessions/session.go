// Package sessions reads the credential broker's session table (Sentinel's
// schema) and answers one question for the classifier: which recorded
// sessions match this SourceIdentity at this time.
//
// Not found is an empty result with a nil error; any failure to read the
// table (throttling, timeouts, an unreachable endpoint) is an error, never an
// empty result, so that an outage cannot turn into false alarms.
//
// The read path is Store (DynamoDB, uncached) -> Cache (LRU with per-read
// maximum age, coalesced misses) and Directory (sanitised -> raw user names)
// -> Matcher (the match policy). Answers that matched are reused for
// MatcherConfig.PositiveTTL (30 s by default): that is how late the streamer
// can notice a revocation. Answers that matched nothing are reused only for
// NegativeTTL (5 s by default).
package sessions

import (
	"strings"
	"time"
	"unicode"
)

// Status values Sentinel writes. Sentinel never flips a session to expired,
// so expiry is judged from ExpiresAt, never from Status.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
	StatusExpired = "expired"
)

// Session is one row of the session table, times parsed.
type Session struct {
	ID               string
	User             string // raw user name as the broker stores it
	Profile          string
	ServerInstanceID string
	Status           string
	SourceIdentity   string
	StartedAt        time.Time
	LastAccessAt     time.Time
	ExpiresAt        time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	TTL              int64 // epoch seconds; DynamoDB may still return items past it
	RevokedBy        string
	RevokedReason    string

	// Malformed names the attributes that could not be decoded (and
	// started_at or expires_at when missing); those fields are left zero.
	// See UnmarshalItem.
	Malformed []string
}

// Covers reports whether the event time at falls in
// [StartedAt - skew, ExpiresAt + skew]. A session missing either time covers
// nothing, so a malformed item is never taken for a valid session.
func (s Session) Covers(at time.Time, skew time.Duration) bool {
	if s.StartedAt.IsZero() || s.ExpiresAt.IsZero() {
		return false
	}
	return !at.Before(s.StartedAt.Add(-skew)) && !at.After(s.ExpiresAt.Add(skew))
}

// Revoked reports whether the session was revoked, and when: Sentinel
// records the revocation time in UpdatedAt.
func (s Session) Revoked() (at time.Time, ok bool) {
	if s.Status != StatusRevoked {
		return time.Time{}, false
	}
	return s.UpdatedAt, true
}

// Strategy names a way of matching an event to sessions.
type Strategy string

const (
	// StrategyExact matches the SourceIdentity string exactly
	// (gsi-source-identity).
	StrategyExact Strategy = "exact"
	// StrategyUserTime matches a session of the same (sanitised) user whose
	// [started_at, expires_at] covers the event time (gsi-user).
	StrategyUserTime Strategy = "user-time"
)

// ParseStrategies parses a comma-separated list such as "exact,user-time".
func ParseStrategies(s string) ([]Strategy, error) {
	var out []Strategy
	seen := map[Strategy]bool{}
	for _, part := range strings.Split(s, ",") {
		st := Strategy(strings.TrimSpace(part))
		switch st {
		case StrategyExact, StrategyUserTime:
		case "":
			continue
		default:
			return nil, &StrategyError{Value: string(st)}
		}
		if !seen[st] {
			seen[st] = true
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		return nil, &StrategyError{Value: s}
	}
	return out, nil
}

// StrategyError reports an unknown match strategy.
type StrategyError struct{ Value string }

func (e *StrategyError) Error() string {
	return "unknown session match strategy " + quote(e.Value) + ` (want "exact" and/or "user-time")`
}

// Query asks for the sessions behind one event.
type Query struct {
	// SourceIdentity is the full value from the event, for the exact match.
	SourceIdentity string
	// User is the user parsed out of the SourceIdentity: already sanitised
	// by the broker (alphanumerics, at most 20).
	User string
	// At is the event time.
	At time.Time
	// Fresh bypasses cached answers (the streamer's orphan re-check).
	Fresh bool
}

// Result is what a lookup found. An empty Sessions with a nil error means
// nothing matched.
type Result struct {
	Sessions []Session
	// Strategy is the strategy that produced Sessions; empty when nothing
	// matched.
	Strategy Strategy
}

// SanitizeUser applies Sentinel's user sanitising: keep ASCII letters and
// digits, at most 20 of them. "alice.smith@corp" becomes "alicesmithcorp".
func SanitizeUser(raw string) string {
	var b strings.Builder
	for _, r := range raw {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
			if b.Len() == 20 {
				break
			}
		}
	}
	return b.String()
}

func quote(s string) string { return `"` + s + `"` }
