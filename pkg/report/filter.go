package report

import (
	"sync/atomic"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// Filter names, the keys of Filter.Dropped and Summary.Filtered.
const (
	FilterAccount   = "account"
	FilterRole      = "role"
	FilterPrincipal = "principal"
	FilterProfile   = "profile"
)

// FilterNames lists the filters in the order they are applied; an event
// failing several is counted once, under the first it fails.
func FilterNames() []string {
	return []string{FilterAccount, FilterRole, FilterPrincipal, FilterProfile}
}

// FilterConfig holds the patterns of each filter (see Glob), typically one
// repeatable flag each. A filter with no pattern lets everything through;
// with several, a value passes when any matches. Filters combine with AND.
type FilterConfig struct {
	// Accounts match the recipient account (recipientAccountId).
	Accounts []string
	// Roles match the target role ARN.
	Roles []string
	// Principals match the caller's ARN or its principal id.
	Principals []string
	// Profiles match the broker profile of the session the event matched:
	// known only after the session lookup (KeepResult), or from a finding's
	// session (KeepFinding).
	Profiles []string
}

// Filter selects events for a run and counts what each filter dropped. It
// is safe for concurrent use. A nil *Filter keeps everything.
//
// In a backfill: KeepEvent before classifying (account, role, principal:
// the store is never asked about a dropped event), KeepResult after it
// (profile). For findings read back from a file, KeepFinding, which
// Accumulator.AddFinding applies itself when the filter is in its Config.
//
// A field that is absent (no target role, no caller ARN or principal id,
// no matched session) never passes a filter set on it.
type Filter struct {
	accounts, roles, principals, profiles globs
	dropped                               [4]atomic.Int64 // in FilterNames order
}

// NewFilter compiles the patterns; an error names the offending flag.
func NewFilter(c FilterConfig) (*Filter, error) {
	f := &Filter{}
	var err error
	if f.accounts, err = parseGlobs(FilterAccount, c.Accounts); err != nil {
		return nil, err
	}
	if f.roles, err = parseGlobs(FilterRole, c.Roles); err != nil {
		return nil, err
	}
	if f.principals, err = parseGlobs(FilterPrincipal, c.Principals); err != nil {
		return nil, err
	}
	if f.profiles, err = parseGlobs(FilterProfile, c.Profiles); err != nil {
		return nil, err
	}
	return f, nil
}

// Empty reports whether the filter keeps everything.
func (f *Filter) Empty() bool {
	return f == nil || len(f.accounts)+len(f.roles)+len(f.principals)+len(f.profiles) == 0
}

// KeepEvent applies the account, role and principal filters to an event
// before classification, counting a drop.
func (f *Filter) KeepEvent(ev *cloudtrail.Event) bool {
	if f == nil {
		return true
	}
	return f.keep(ev.Account, ev.TargetRoleARN, ev.Caller.ARN, ev.Caller.PrincipalID)
}

// KeepFinding applies every filter to a finding (a findings file),
// counting a drop. The profile is that of the finding's session, as for
// KeepResult: a finding without one never passes a profile filter.
func (f *Filter) KeepFinding(fd *sink.Finding) bool {
	if f == nil {
		return true
	}
	if !f.keep(fd.Event.Account, fd.Target.RoleARN, fd.Principal.ARN, fd.Principal.PrincipalID) {
		return false
	}
	if len(f.profiles) == 0 || (fd.Session != nil && f.profiles.match(fd.Session.Profile)) {
		return true
	}
	f.dropped[3].Add(1)
	return false
}

func (f *Filter) keep(account, role, callerARN, principalID string) bool {
	switch {
	case len(f.accounts) > 0 && !f.accounts.match(account):
		f.dropped[0].Add(1)
	case len(f.roles) > 0 && !f.roles.match(role):
		f.dropped[1].Add(1)
	case len(f.principals) > 0 && !f.principals.match(callerARN, principalID):
		f.dropped[2].Add(1)
	default:
		return true
	}
	return false
}

// KeepResult applies the profile filter to a classified event, counting a
// drop: the profile is that of the session the verdict rests on, so an
// event that matched no session (no SourceIdentity, orphaned, …) never
// passes a profile filter.
func (f *Filter) KeepResult(r classify.Result) bool {
	if f == nil || len(f.profiles) == 0 {
		return true
	}
	if r.Session != nil && f.profiles.match(r.Session.Profile) {
		return true
	}
	f.dropped[3].Add(1)
	return false
}

// Dropped returns how many events (or findings) each filter dropped, keyed
// by filter name; filters that are not set are left out.
func (f *Filter) Dropped() map[string]int {
	m := map[string]int{}
	if f == nil {
		return m
	}
	for i, gs := range []globs{f.accounts, f.roles, f.principals, f.profiles} {
		if len(gs) > 0 {
			m[FilterNames()[i]] = int(f.dropped[i].Load())
		}
	}
	return m
}

// Describe lists the filters set, as "role=PATTERN" strings, for a
// summary's header.
func (f *Filter) Describe() []string {
	var out []string
	if f == nil {
		return out
	}
	for i, gs := range []globs{f.accounts, f.roles, f.principals, f.profiles} {
		for _, g := range gs {
			out = append(out, FilterNames()[i]+"="+g.String())
		}
	}
	return out
}
