package corpus

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
)

// Defaults applied by [Generate] to zero Config fields.
const (
	DefaultWindow    = 24 * time.Hour
	DefaultRetention = 90 * 24 * time.Hour
	DefaultAccount   = "111122223333"
	DefaultRegion    = "us-east-1"
)

// Margin is the least distance between an event time and any time boundary
// its verdict depends on (see the package documentation).
const Margin = 10 * time.Minute

// Event names the generator can produce in scope.
const (
	AssumeRole                = "AssumeRole"
	AssumeRoleWithSAML        = "AssumeRoleWithSAML"
	AssumeRoleWithWebIdentity = "AssumeRoleWithWebIdentity"
)

// defaultNow is Config.Now when left zero: a fixed instant, so that a zero
// Config stays deterministic.
var defaultNow = time.Date(2025, time.June, 2, 12, 0, 0, 0, time.UTC)

// DefaultEventNames returns the in-scope event names of the product contract.
func DefaultEventNames() []string {
	return []string{AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity}
}

// DefaultMix returns the default verdict weights: 60% tracked, the rest
// spread over every finding verdict.
func DefaultMix() map[classify.Verdict]int {
	return map[classify.Verdict]int{
		classify.Tracked:          60,
		classify.NoSourceIdentity: 6,
		classify.NonSentinel:      6,
		classify.Orphaned:         6,
		classify.Revoked:          5,
		classify.Expired:          5,
		classify.Unverifiable:     6,
		classify.DeniedAttempt:    6,
	}
}

// Config describes a corpus. Zero fields take the defaults documented on
// each; the zero Config is valid (and generates no events).
type Config struct {
	// Seed selects the corpus; the same Config always gives the same bytes.
	Seed int64
	// Events is the number of in-scope events (Corpus.Events).
	Events int
	// Now is the reference time, typically the classifier's clock. Zero
	// means 2025-06-02T12:00:00Z, so that a zero Config is deterministic.
	Now time.Time
	// Window and MinAge bound the in-scope event times to
	// [Now-Window, Now-MinAge]; unverifiable events are the exception (see
	// the package documentation). Window defaults to 24h, must be at least
	// MinAge+1h and at most Retention-1h.
	Window time.Duration
	MinAge time.Duration
	// Retention is the classifier's --session-retention: events without a
	// session and older than Now-Retention are unverifiable, younger ones
	// orphaned. Default 90 days.
	Retention time.Duration
	// Accounts are the recipient accounts (12 digits). Default
	// ["111122223333"]. With two or more, one cross-account call is logged
	// in the first two (two events with the same requestID and
	// sharedEventID).
	Accounts []string
	// Regions the events are spread over. Default ["us-east-1"].
	Regions []string
	// EventNames are the in-scope event names: any of AssumeRole,
	// AssumeRoleWithSAML and AssumeRoleWithWebIdentity (the default is all
	// three). Scenarios that need role chaining fall back to a direct call
	// when AssumeRole is left out; left-out names appear among Ignored.
	EventNames []string
	// Mix weighs the verdicts of the in-scope events. Counts are
	// apportioned by largest remainder; when Events allows, every verdict
	// with a positive weight gets at least one event. Default DefaultMix().
	Mix map[classify.Verdict]int
	// Users is how many users have sessions. 0 keeps the 11 built-in
	// users (some with tricky names: dots, an e-mail, two raw names with
	// one sanitised form), among whom every session falls: a skewed
	// population. More adds generated users ("user.0011@corp", ...)
	// beside them, so that each holds tens of sessions, as in a real
	// organisation (the scenario of two raw names with one sanitised form
	// stays on its built-in pair); fewer than the built-in ones is refused.
	Users int
	// OutOfScope is the number of extra events the classifier must ignore
	// (Corpus.Ignored): GetSessionToken, GetFederationToken, an AssumeRole
	// logged by signin.amazonaws.com, and any left-out AssumeRole* name.
	OutOfScope int
}

// Validate reports whether Generate would accept the Config.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) withDefaults() Config {
	if c.Now.IsZero() {
		c.Now = defaultNow
	}
	c.Now = c.Now.UTC().Round(0)
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if len(c.Accounts) == 0 {
		c.Accounts = []string{DefaultAccount}
	} else {
		c.Accounts = slices.Clone(c.Accounts)
	}
	if len(c.Regions) == 0 {
		c.Regions = []string{DefaultRegion}
	} else {
		c.Regions = slices.Clone(c.Regions)
	}
	if len(c.EventNames) == 0 {
		c.EventNames = DefaultEventNames()
	} else {
		c.EventNames = slices.Clone(c.EventNames)
	}
	if c.Mix == nil {
		c.Mix = DefaultMix()
	} else {
		c.Mix = maps.Clone(c.Mix)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Events < 0 {
		errs = append(errs, fmt.Errorf("events %d is negative", c.Events))
	}
	if c.OutOfScope < 0 {
		errs = append(errs, fmt.Errorf("out-of-scope %d is negative", c.OutOfScope))
	}
	if c.Users != 0 && c.Users < len(knownUserNames) {
		errs = append(errs, fmt.Errorf("users %d: want 0 or at least %d (the built-in users)", c.Users, len(knownUserNames)))
	}
	if c.MinAge < 0 {
		errs = append(errs, fmt.Errorf("min age %s is negative", c.MinAge))
	}
	if c.Window < c.MinAge+time.Hour {
		errs = append(errs, fmt.Errorf("window %s must be at least min age %s plus 1h", c.Window, c.MinAge))
	}
	if c.Window > c.Retention-time.Hour {
		errs = append(errs, fmt.Errorf("window %s must be at most retention %s minus 1h (older events would be unverifiable)", c.Window, c.Retention))
	}
	for _, a := range c.Accounts {
		if !isAccountID(a) {
			errs = append(errs, fmt.Errorf("account %q is not 12 digits", a))
		}
	}
	if slices.Contains(c.Regions, "") {
		errs = append(errs, errors.New("empty region"))
	}
	seen := map[string]bool{}
	for _, n := range c.EventNames {
		switch n {
		case AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity:
		default:
			errs = append(errs, fmt.Errorf("unsupported event name %q (want %s, %s or %s)", n, AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity))
		}
		if seen[n] {
			errs = append(errs, fmt.Errorf("event name %q listed twice", n))
		}
		seen[n] = true
	}
	total := 0
	for _, v := range slices.Sorted(maps.Keys(c.Mix)) {
		w := c.Mix[v]
		if !slices.Contains(classify.AllVerdicts(), v) {
			errs = append(errs, fmt.Errorf("mix: unknown verdict %q", v))
		}
		if w < 0 {
			errs = append(errs, fmt.Errorf("mix: negative weight %d for %s", w, v))
		}
		total += w
	}
	if c.Events > 0 && total <= 0 {
		errs = append(errs, errors.New("mix: no positive weight"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("corpus: invalid config: %w", err)
	}
	return nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// allocate apportions n events over the verdicts by weight (largest
// remainder, ties in classify.AllVerdicts order), then makes sure every
// positive weight gets at least one event when n allows.
func allocate(n int, mix map[classify.Verdict]int) map[classify.Verdict]int {
	counts := map[classify.Verdict]int{}
	total := 0
	for _, v := range classify.AllVerdicts() {
		total += max(mix[v], 0)
	}
	if n == 0 || total == 0 {
		return counts
	}
	type rem struct {
		v classify.Verdict
		r int
	}
	var rems []rem
	given := 0
	for _, v := range classify.AllVerdicts() {
		w := max(mix[v], 0)
		counts[v] = n * w / total
		given += counts[v]
		rems = append(rems, rem{v, n * w % total})
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return b.r - a.r })
	for i := 0; given < n; i++ {
		counts[rems[i%len(rems)].v]++
		given++
	}
	var positive []classify.Verdict
	for _, v := range classify.AllVerdicts() {
		if mix[v] > 0 {
			positive = append(positive, v)
		}
	}
	if n < len(positive) {
		return counts
	}
	for _, v := range positive {
		if counts[v] > 0 {
			continue
		}
		var donor classify.Verdict
		for _, d := range classify.AllVerdicts() {
			if counts[d] > counts[donor] || donor == "" {
				donor = d
			}
		}
		counts[donor]--
		counts[v]++
	}
	return counts
}
