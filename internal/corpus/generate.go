package corpus

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// pad is how far the generator keeps event times from verdict boundaries:
// Margin plus room for the sub-second session times.
const pad = Margin + time.Minute

type user struct{ raw, san string }

func newUser(raw string) *user { return &user{raw: raw, san: sessions.SanitizeUser(raw)} }

var (
	// knownUserNames have sessions. Some raw names differ from their
	// sanitised form, two share one ("erink"), one is cut to 20 characters.
	knownUserNames = []string{
		"alice.smith@corp", "bob", "carol", "dan.o-brien", "erin.k", "erin-k", "frank",
		"grace.hopper@navy.mil", "heidi", "ivan_petrov", "christopher.montgomery-wellington@example.com",
	}
	// reservedUserNames get sessions only from orphan scenarios, so an
	// orphaned event of a user who has sessions can always be placed.
	reservedUserNames = []string{"judy", "ken.adams"}
	// unknownUserNames never have a session.
	unknownUserNames = []string{"mallory", "trudy", "oscar", "sybil", "victor"}

	roleNames        = []string{"SentinelDeveloper", "SentinelReadOnly", "SentinelAdmin", "DeployPipeline", "BillingViewer", "SecurityAudit"}
	profiles         = []string{"dev", "staging", "prod-readonly", "prod-admin", "billing"}
	sessionDurations = []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour}
	stsDurations     = []int{900, 3600, 3600, 3600, 7200, 14400, 43200}
	revokers         = []string{"security-oncall", "alice.smith@corp", "sentinel-admin"}
	revokeReasons    = []string{"laptop reported stolen", "offboarding", "suspicious activity", "credentials pasted in a CI log"}
	foreignNames     = []string{"JohnDoe", "jane_doe", "svc-deploy", "Administrator"}

	humanAgents = []string{
		"aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.8.0-1012-aws md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off md/command#sts.assume-role",
		"aws-cli/2.15.58 Python/3.11.8 Darwin/23.5.0 exe/x86_64 prompt/off command/sts.assume-role",
		"Boto3/1.34.144 md/Botocore#1.34.144 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.12.4 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.144",
		"aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/sts#1.30.3",
		"APN/1.0 HashiCorp/1.0 Terraform/1.9.2 (+https://www.terraform.io) terraform-provider-aws/5.59.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.3 ua/2.0 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/sts#1.30.3",
	}
	brokerAgent    = "sentinel/1.9.2 aws-sdk-go-v2/1.32.7 ua/2.0 os/linux lang/go#1.23.4 md/GOOS#linux md/GOARCH#amd64 api/sts#1.33.3"
	samlAgent      = "aws-sdk-go/1.54.20 (go1.22.5; darwin; arm64) saml2aws/2.36.16"
	webIDAgent     = "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/sts#1.30.3"
	oidcProvider   = "corp.okta.com/oauth2/default"
	samlIssuerPath = "http://www.okta.com/"
)

// Scenario kinds; an event's Case is "<verdict>/<kind>".
const (
	kExact             = "exact"
	kLegacy            = "legacy"
	kRequestOnly       = "request-parameters-only"
	kUserTime          = "user-time"
	kUserTimeRawName   = "user-time-raw-name"
	kUserTimeShared    = "user-time-shared-sanitised-name"
	kRevokedAfter      = "revoked-after-event"
	kDuplicateSI       = "duplicate-si-one-revoked"
	kChained           = "chained"
	kDenied            = "denied"
	kCrossAccount      = "cross-account"
	kDirect            = "direct"
	kIAMUser           = "iam-user"
	kSAML              = "saml"
	kWebIdentity       = "web-identity"
	kReservedUser      = "known-user-no-covering-session"
	kKnownUserGap      = "known-user-gap"
	kUnknownUser       = "unknown-user"
	kKnownUser         = "known-user"
	kNoSIIAMUser       = "no-si-iam-user"
	kNoSIFederated     = "no-si-federated"
	kForeignSIChained  = "foreign-si-chained"
	kRevokedSIChained  = "revoked-si-chained"
	kExpiredSIChained  = "expired-si-chained"
	kOrphanSIChained   = "orphan-si-chained"
	kGetSessionToken   = "get-session-token"
	kGetFederation     = "get-federation-token"
	kConsoleSignIn     = "signin-assume-role"
	kDisabledEventName = "disabled-event-name"
)

// trackedFirst are the tracked kinds every corpus with enough tracked
// events contains, in this order; later tracked events are drawn by weight.
var trackedFirst = []string{
	kExact, kUserTimeRawName, kRevokedAfter, kDuplicateSI, kChained, kDenied,
	kLegacy, kUserTimeShared, kRequestOnly, kUserTime,
}

var trackedWeights = []struct {
	kind string
	w    int
}{
	{kExact, 25}, {kUserTime, 33}, {kChained, 15}, {kRevokedAfter, 5}, {kDuplicateSI, 2},
	{kDenied, 6}, {kLegacy, 5}, {kRequestOnly, 4}, {kUserTimeRawName, 3}, {kUserTimeShared, 2},
}

// Kinds of the other verdicts, used round-robin.
var kindCycles = map[classify.Verdict][]string{
	classify.NoSourceIdentity: {kIAMUser, kChained, kSAML, kWebIdentity},
	classify.NonSentinel:      nonSentinelKinds,
	classify.Orphaned:         {kReservedUser, kUnknownUser, kLegacy, kKnownUserGap, kChained},
	classify.Unverifiable:     {kKnownUser, kUnknownUser, kLegacy, kChained},
	classify.Revoked:          {kDirect, kChained, kLegacy},
	classify.Expired:          {kDirect, kChained, kLegacy},
	classify.DeniedAttempt:    {kNoSIIAMUser, kForeignSIChained, kRevokedSIChained, kNoSIFederated, kOrphanSIChained, kExpiredSIChained},
}

// Malformed SourceIdentity values (non_sentinel_format).
var nonSentinelKinds = []string{
	"foreign-name", "foreign-prefix", "email", "bad-request-id", "missing-request-id",
	"user-too-long", "short-request-id", "bad-marker", "extra-part", "prefix-case",
	"empty-user", "user-not-alphanumeric", "legacy-short-request-id",
}

type callerKind int

const (
	callerHuman   callerKind = iota // the user's own IAM user (a bypass)
	callerBroker                    // Sentinel's identity, stamping SourceIdentity
	callerChained                   // a role session assuming another role
)

// placement says where a SourceIdentity appears in the record.
type placement uint8

const (
	inResp placement = 1 << iota
	inReq
	inCtx
)

// spec describes one event (or one cross-account pair) to emit.
type spec struct {
	verdict    classify.Verdict // "" for an ignored event
	kind       string
	name       string // event name; "" picks an enabled one (AssumeRole for chained callers)
	caller     callerKind
	user       *user
	t          time.Time
	si         string
	place      placement // 0: the usual places for the caller and name
	denied     bool
	session    *sessions.Session
	account    string   // the target role's account; "" picks one
	recipients []string // accounts logging the call; default [account]
	callerAcct string   // default account
	requestID  string
	sharedID   string
}

type slot struct {
	v    classify.Verdict
	kind string
	late bool
}

type generator struct {
	cfg          Config
	rng          *rand.Rand
	now          time.Time // cfg.Now, whole seconds
	lo, hi       time.Time // in-scope window
	oldLo, oldHi time.Time // unverifiable band
	has          map[string]bool

	known, reserved, unknown []*user
	userByRaw                map[string]*user

	sessions   []*sessions.Session
	bySan      map[string][]*sessions.Session
	exactPool  []*sessions.Session // sessions with a SourceIdentity
	serverPool []*sessions.Session // sessions matched by user and time
	// uncovered holds, per sanitised user, event times no session may cover.
	uncovered map[string][]time.Time
	used      map[string]bool

	events, ignored []Event
	err             error
}

func newGenerator(cfg Config) *generator {
	g := &generator{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5e5510_2a7c4)),
		now:       cfg.Now.Truncate(time.Second),
		has:       map[string]bool{},
		userByRaw: map[string]*user{},
		bySan:     map[string][]*sessions.Session{},
		uncovered: map[string][]time.Time{},
		used:      map[string]bool{},
		events:    make([]Event, 0, cfg.Events),
		ignored:   make([]Event, 0, cfg.OutOfScope),
	}
	g.lo = ceilSecond(g.now.Add(-cfg.Window))
	g.hi = g.now.Add(-cfg.MinAge).Truncate(time.Second)
	g.oldLo = ceilSecond(g.now.Add(-cfg.Retention - 48*time.Hour))
	g.oldHi = g.now.Add(-cfg.Retention - 24*time.Hour).Truncate(time.Second)
	for _, n := range cfg.EventNames {
		g.has[n] = true
	}
	for _, group := range []struct {
		names []string
		dst   *[]*user
	}{{knownUserNames, &g.known}, {reservedUserNames, &g.reserved}, {unknownUserNames, &g.unknown}} {
		for _, n := range group.names {
			u := newUser(n)
			*group.dst = append(*group.dst, u)
			g.userByRaw[n] = u
		}
	}
	for i := len(g.known); i < cfg.Users; i++ {
		// Raw names that differ from their sanitised form, as
		// alice.smith@corp's does, so the raw-name scenario can use any.
		u := newUser(fmt.Sprintf("user.%04d@corp", i))
		g.known = append(g.known, u)
		g.userByRaw[u.raw] = u
	}
	return g
}

func (g *generator) run() error {
	slots := g.plan()
	// Early slots build the sessions. Late slots need a user's final set of
	// sessions to be sure none covers them; they add only decoy sessions,
	// checked against the times already placed.
	for _, late := range []bool{false, true} {
		for _, s := range slots {
			if s.late == late {
				g.slot(s)
			}
		}
	}
	g.outOfScope()
	g.finishSessions()
	return g.err
}

func (g *generator) fail(format string, args ...any) {
	if g.err == nil {
		g.err = fmt.Errorf("corpus: internal error: "+format, args...)
	}
}

func (g *generator) plan() []slot {
	counts := allocate(g.cfg.Events, g.cfg.Mix)
	var pairV classify.Verdict
	if len(g.cfg.Accounts) >= 2 && g.has[AssumeRole] {
		switch {
		case counts[classify.NoSourceIdentity] >= 2:
			pairV = classify.NoSourceIdentity
		case counts[classify.Tracked] >= 2:
			pairV = classify.Tracked
		}
	}
	var out []slot
	for _, v := range classify.AllVerdicts() {
		n := counts[v]
		if v == pairV {
			out = append(out, slot{v: v, kind: kCrossAccount})
			n -= 2
		}
		for i := range n {
			var k string
			switch {
			case v != classify.Tracked:
				cycle := kindCycles[v]
				k = cycle[i%len(cycle)]
			case i < len(trackedFirst):
				k = trackedFirst[i]
			default:
				k = g.weightedTrackedKind()
			}
			late := v == classify.Orphaned || v == classify.Unverifiable || k == kOrphanSIChained
			out = append(out, slot{v: v, kind: k, late: late})
		}
	}
	return out
}

func (g *generator) weightedTrackedKind() string {
	total := 0
	for _, kw := range trackedWeights {
		total += kw.w
	}
	n := g.rng.IntN(total)
	for _, kw := range trackedWeights {
		if n < kw.w {
			return kw.kind
		}
		n -= kw.w
	}
	return kExact
}

func (g *generator) slot(s slot) {
	if s.kind == kCrossAccount {
		g.crossAccount(s.v)
		return
	}
	switch s.v {
	case classify.Tracked:
		g.tracked(s.kind)
	case classify.NoSourceIdentity:
		g.noSourceIdentity(s.kind)
	case classify.NonSentinel:
		g.nonSentinel(s.kind)
	case classify.Orphaned:
		g.orphaned(s.kind)
	case classify.Unverifiable:
		g.unverifiable(s.kind)
	case classify.Revoked:
		g.revoked(s.kind)
	case classify.Expired:
		g.expired(s.kind)
	case classify.DeniedAttempt:
		g.denied(s.kind)
	default:
		g.fail("no scenario for verdict %q", s.v)
	}
}

// --- scenarios -------------------------------------------------------------

func (g *generator) tracked(kind string) {
	v := classify.Tracked
	if (kind == kChained || kind == kDenied || kind == kRequestOnly) && !g.has[AssumeRole] {
		kind = kExact
	}
	switch kind {
	case kExact, kLegacy, kRequestOnly:
		u, t := g.knownUser(), g.eventTime()
		si := g.sentinelSI(u.san, "direct")
		if kind == kLegacy {
			si = g.legacySI(u.san)
		}
		s := g.sessionCovering(u, t, si, "direct")
		g.exactPool = append(g.exactPool, s)
		sp := spec{verdict: v, kind: kind, caller: callerBroker, user: u, t: t, si: si, session: s}
		if kind == kRequestOnly {
			sp.name, sp.place = AssumeRole, inReq
		}
		g.emit(sp)

	case kUserTime, kUserTimeRawName, kUserTimeShared:
		var u *user
		var s *sessions.Session
		var t time.Time
		switch kind {
		case kUserTimeRawName:
			u = g.userByRaw["alice.smith@corp"]
			if extra := g.known[len(knownUserNames):]; len(extra) > 0 {
				u = pick(g.rng, extra) // generated users (Config.Users)
			}
		case kUserTimeShared:
			u = g.userByRaw["erin-k"]
		default:
			if len(g.serverPool) > 0 && g.rng.IntN(2) == 0 {
				s, t = g.reuse(g.serverPool)
			}
			if s == nil {
				u = g.knownUser()
			} else {
				u = g.userByRaw[s.User]
			}
		}
		if s == nil {
			t = g.eventTime()
			marker := g.hex(8)
			sessSI := ""
			if kind == kUserTime && g.rng.IntN(10) < 3 {
				// The session keeps the SourceIdentity of its first
				// request; later requests mint new request-ids.
				sessSI = g.sentinelSI(u.san, marker)
			}
			s = g.sessionCovering(u, t, sessSI, marker)
			g.serverPool = append(g.serverPool, s)
		}
		marker := "direct"
		if s.ServerInstanceID != "" {
			marker = s.ServerInstanceID[:8]
		}
		g.emit(spec{verdict: v, kind: kind, caller: callerBroker, user: u, t: t, si: g.sentinelSI(u.san, marker), session: s})

	case kRevokedAfter:
		u := g.knownUser()
		t := g.between(g.lo, minTime(g.hi, g.now.Add(-30*time.Minute)))
		dur := g.sessionDuration()
		start := t.Add(-g.span(pad, dur-2*pad))
		var s *sessions.Session
		var si string
		if g.rng.IntN(2) == 0 {
			si = g.sentinelSI(u.san, "direct")
			s = g.newSession(u, si, "direct", start, dur)
			g.exactPool = append(g.exactPool, s)
		} else {
			marker := g.hex(8)
			s = g.newSession(u, "", marker, start, dur)
			si = g.sentinelSI(u.san, marker)
		}
		latest := minTime(s.ExpiresAt, g.now.Add(-time.Minute))
		g.revoke(s, t.Add(g.span(pad, latest.Sub(t))))
		g.emit(spec{verdict: v, kind: kind, caller: callerBroker, user: u, t: t, si: si, session: s})

	case kDuplicateSI:
		u, t := g.knownUser(), g.eventTime()
		si := g.sentinelSI(u.san, "direct")
		old := g.newSession(u, si, "direct", t.Add(-g.span(2*time.Hour, 5*time.Hour)), 12*time.Hour)
		g.revoke(old, old.StartedAt.Add(g.span(5*time.Minute, t.Add(-pad).Sub(old.StartedAt))))
		cur := g.sessionCovering(u, t, si, "direct")
		g.exactPool = append(g.exactPool, old, cur)
		g.emit(spec{verdict: v, kind: kind, caller: callerBroker, user: u, t: t, si: si, session: cur})

	case kChained, kDenied:
		s, t := g.reuse(g.exactPool)
		if s == nil {
			u := g.knownUser()
			t = g.eventTime()
			s = g.sessionCovering(u, t, g.sentinelSI(u.san, "direct"), "direct")
			g.exactPool = append(g.exactPool, s)
		}
		sp := spec{verdict: v, kind: kind, caller: callerChained, user: g.userByRaw[s.User], t: t, si: s.SourceIdentity, session: s}
		if kind == kDenied {
			sp.denied, sp.place = true, inCtx
		}
		g.emit(sp)

	default:
		g.fail("unknown tracked kind %q", kind)
	}
}

func (g *generator) noSourceIdentity(kind string) {
	sp := spec{verdict: classify.NoSourceIdentity, kind: kind, caller: callerHuman, user: g.anyUser(), t: g.eventTime()}
	switch kind {
	case kIAMUser:
		sp.name = g.prefer(AssumeRole)
	case kChained:
		if g.has[AssumeRole] {
			sp.caller = callerChained
		} else {
			sp.kind = kIAMUser
		}
	case kSAML:
		sp.name = g.prefer(AssumeRoleWithSAML)
	case kWebIdentity:
		sp.name = g.prefer(AssumeRoleWithWebIdentity)
	default:
		g.fail("unknown no_source_identity kind %q", kind)
	}
	g.emit(sp)
}

func (g *generator) nonSentinel(kind string) {
	u := g.knownUser()
	sp := spec{verdict: classify.NonSentinel, kind: kind, caller: callerHuman, user: u, t: g.eventTime(), si: g.badSI(kind, u)}
	if g.has[AssumeRole] && g.rng.IntN(10) < 3 {
		sp.caller = callerChained
	}
	g.emit(sp)
}

func (g *generator) revoked(kind string) {
	if kind == kChained && !g.has[AssumeRole] {
		kind = kDirect
	}
	s, t := g.revokedSession(kind == kLegacy)
	sp := spec{verdict: classify.Revoked, kind: kind, caller: callerHuman, user: g.userByRaw[s.User], t: t, si: s.SourceIdentity, session: s}
	if kind == kChained {
		sp.caller = callerChained
	}
	g.emit(sp)
}

func (g *generator) expired(kind string) {
	if kind == kChained && !g.has[AssumeRole] {
		kind = kDirect
	}
	s, t := g.expiredSession(kind == kLegacy)
	sp := spec{verdict: classify.Expired, kind: kind, caller: callerHuman, user: g.userByRaw[s.User], t: t, si: s.SourceIdentity, session: s}
	if kind == kChained {
		sp.caller = callerChained
	}
	g.emit(sp)
}

// revokedSession makes a session with a SourceIdentity and an event time
// after its revocation and before its expiry.
func (g *generator) revokedSession(legacy bool) (*sessions.Session, time.Time) {
	u, t := g.knownUser(), g.eventTime()
	si := g.sentinelSI(u.san, "direct")
	if legacy {
		si = g.legacySI(u.san)
	}
	dur := g.sessionDuration()
	s := g.newSession(u, si, "direct", t.Add(-g.span(pad+5*time.Minute, dur-pad)), dur)
	g.revoke(s, s.StartedAt.Add(g.span(5*time.Minute, t.Add(-pad).Sub(s.StartedAt))))
	g.exactPool = append(g.exactPool, s)
	return s, t
}

// expiredSession makes an active session with a SourceIdentity and an event
// time after its expiry.
func (g *generator) expiredSession(legacy bool) (*sessions.Session, time.Time) {
	u, t := g.knownUser(), g.eventTime()
	si := g.sentinelSI(u.san, "direct")
	if legacy {
		si = g.legacySI(u.san)
	}
	dur := g.sessionDuration()
	exp := t.Add(-g.span(pad, 6*time.Hour))
	s := g.newSession(u, si, "direct", exp.Add(-dur), dur)
	g.exactPool = append(g.exactPool, s)
	return s, t
}

func (g *generator) orphaned(kind string) {
	if kind == kChained && !g.has[AssumeRole] {
		kind = kUnknownUser
	}
	sp := spec{verdict: classify.Orphaned, kind: kind, caller: callerHuman}
	switch kind {
	case kReservedUser, kKnownUserGap:
		pool := g.known
		if kind == kReservedUser {
			pool = g.reserved
		}
		u := pick(g.rng, pool)
		t, ok := g.uncoveredTime(u, g.lo, g.hi)
		if !ok {
			sp.kind, sp.user, sp.t = kUnknownUser, pick(g.rng, g.unknown), g.eventTime()
			break
		}
		sp.user, sp.t = u, t
		if kind == kReservedUser {
			g.decoy(u, t)
		}
	case kUnknownUser, kLegacy, kChained:
		sp.user, sp.t = pick(g.rng, g.unknown), g.eventTime()
		if kind == kChained {
			sp.caller = callerChained
		}
	default:
		g.fail("unknown orphaned kind %q", kind)
		return
	}
	g.placeUncovered(&sp)
	g.emit(sp)
}

func (g *generator) unverifiable(kind string) {
	if kind == kChained && !g.has[AssumeRole] {
		kind = kUnknownUser
	}
	sp := spec{verdict: classify.Unverifiable, kind: kind, caller: callerHuman}
	switch kind {
	case kKnownUser:
		u := g.knownUser()
		t, ok := g.uncoveredTime(u, g.oldLo, g.oldHi)
		if !ok {
			sp.kind, sp.user, sp.t = kUnknownUser, pick(g.rng, g.unknown), g.between(g.oldLo, g.oldHi)
			break
		}
		sp.user, sp.t = u, t
	case kUnknownUser, kLegacy, kChained:
		sp.user, sp.t = pick(g.rng, g.unknown), g.between(g.oldLo, g.oldHi)
		if kind == kChained {
			sp.caller = callerChained
		}
	default:
		g.fail("unknown unverifiable kind %q", kind)
		return
	}
	g.placeUncovered(&sp)
	g.emit(sp)
}

// placeUncovered gives sp a fresh Sentinel SourceIdentity (legacy for the
// legacy kind) and records that no session may cover its time.
func (g *generator) placeUncovered(sp *spec) {
	if sp.kind == kLegacy {
		sp.si = g.legacySI(sp.user.san)
	} else {
		marker := "direct"
		if g.rng.IntN(3) == 0 {
			marker = g.hex(8)
		}
		sp.si = g.sentinelSI(sp.user.san, marker)
	}
	g.uncovered[sp.user.san] = append(g.uncovered[sp.user.san], sp.t)
}

func (g *generator) denied(kind string) {
	v := classify.DeniedAttempt
	if !g.has[AssumeRole] && strings.HasSuffix(kind, "-chained") {
		kind = kNoSIFederated
	}
	sp := spec{verdict: v, kind: kind, denied: true, caller: callerChained, place: inCtx}
	switch kind {
	case kNoSIIAMUser:
		sp.caller, sp.place, sp.user, sp.t, sp.name = callerHuman, 0, g.anyUser(), g.eventTime(), g.prefer(AssumeRole)
	case kNoSIFederated:
		sp.caller, sp.place, sp.user, sp.t = callerHuman, 0, g.anyUser(), g.eventTime()
		var names []string
		for _, n := range []string{AssumeRoleWithSAML, AssumeRoleWithWebIdentity} {
			if g.has[n] {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			sp.name = pick(g.rng, names)
		}
	case kForeignSIChained:
		sp.user, sp.t = g.knownUser(), g.eventTime()
		sp.si = g.badSI(pick(g.rng, nonSentinelKinds), sp.user)
	case kRevokedSIChained:
		sp.session, sp.t = g.revokedSession(false)
		sp.user, sp.si = g.userByRaw[sp.session.User], sp.session.SourceIdentity
	case kExpiredSIChained:
		sp.session, sp.t = g.expiredSession(false)
		sp.user, sp.si = g.userByRaw[sp.session.User], sp.session.SourceIdentity
	case kOrphanSIChained:
		sp.user, sp.t = pick(g.rng, g.unknown), g.eventTime()
		g.placeUncovered(&sp)
	default:
		g.fail("unknown denied kind %q", kind)
		return
	}
	g.emit(sp)
}

// crossAccount logs one call in the first two accounts: a user of the first
// assumes a role of the second.
func (g *generator) crossAccount(v classify.Verdict) {
	a, b := g.cfg.Accounts[0], g.cfg.Accounts[1]
	u, t := g.knownUser(), g.eventTime()
	sp := spec{
		verdict: v, kind: kCrossAccount, name: AssumeRole, caller: callerHuman, user: u, t: t,
		account: b, callerAcct: a, recipients: []string{a, b}, requestID: g.uuid(), sharedID: g.uuid(),
	}
	if v == classify.Tracked {
		sp.caller = callerBroker
		sp.si = g.sentinelSI(u.san, "direct")
		sp.session = g.sessionCovering(u, t, sp.si, "direct")
		g.exactPool = append(g.exactPool, sp.session)
	}
	g.emit(sp)
}

// badSI returns a SourceIdentity that does not parse as Sentinel's.
func (g *generator) badSI(kind string, u *user) string {
	switch kind {
	case "foreign-name":
		return pick(g.rng, foreignNames)
	case "foreign-prefix":
		return "okta:" + u.san
	case "email":
		return u.san + "@example.com"
	case "bad-request-id":
		return fmt.Sprintf("sentinel:%s:direct:XYZ%05d", u.san, g.rng.IntN(100000))
	case "missing-request-id":
		return "sentinel:" + u.san + ":direct"
	case "user-too-long":
		long := (u.san + "withaverylongsuffix0123456789")[:21+g.rng.IntN(8)]
		return "sentinel:" + long + ":direct:" + g.hex(8)
	case "short-request-id":
		return "sentinel:" + u.san + ":direct:" + g.hex(7)
	case "bad-marker":
		return "sentinel:" + u.san + ":Direct:" + g.hex(8)
	case "extra-part":
		return "sentinel:" + u.san + ":direct:" + g.hex(8) + ":" + g.hex(8)
	case "prefix-case":
		return "Sentinel:" + u.san + ":direct:" + g.hex(8)
	case "empty-user":
		return "sentinel::direct:" + g.hex(8)
	case "user-not-alphanumeric":
		return "sentinel:" + u.san + ".ops:direct:" + g.hex(8)
	case "legacy-short-request-id":
		return "sentinel:" + u.san + ":" + g.hex(7)
	}
	g.fail("unknown non-sentinel kind %q", kind)
	return "JohnDoe"
}

// --- sessions ---------------------------------------------------------------

func (g *generator) newSession(u *user, si, marker string, start time.Time, dur time.Duration) *sessions.Session {
	s := &sessions.Session{
		ID:             g.unique("session", func() string { return g.hex(16) }),
		User:           u.raw,
		Profile:        pick(g.rng, profiles),
		Status:         sessions.StatusActive,
		SourceIdentity: si,
		StartedAt:      start,
		ExpiresAt:      start.Add(dur),
		CreatedAt:      start,
	}
	if marker != "direct" {
		s.ServerInstanceID = marker + g.uuid()[8:]
	}
	g.sessions = append(g.sessions, s)
	g.bySan[u.san] = append(g.bySan[u.san], s)
	return s
}

// sessionCovering makes a session valid from well before t to well after.
func (g *generator) sessionCovering(u *user, t time.Time, si, marker string) *sessions.Session {
	dur := g.sessionDuration()
	return g.newSession(u, si, marker, t.Add(-g.span(pad, dur-pad)), dur)
}

func (g *generator) revoke(s *sessions.Session, at time.Time) {
	s.Status = sessions.StatusRevoked
	s.UpdatedAt = at
	s.RevokedBy = pick(g.rng, revokers)
	s.RevokedReason = pick(g.rng, revokeReasons)
}

// validUntil is when s stops being valid: its expiry or its revocation.
func validUntil(s *sessions.Session) time.Time {
	if at, ok := s.Revoked(); ok && at.Before(s.ExpiresAt) {
		return at
	}
	return s.ExpiresAt
}

// reuse picks a session of pool and an event time inside its validity (and
// the window); nil when a few tries find none.
func (g *generator) reuse(pool []*sessions.Session) (*sessions.Session, time.Time) {
	for range 4 {
		if len(pool) == 0 {
			break
		}
		s := pick(g.rng, pool)
		lo := ceilSecond(maxTime(s.StartedAt.Add(pad), g.lo))
		hi := minTime(validUntil(s).Add(-pad), g.hi).Truncate(time.Second)
		if !hi.Before(lo) {
			return s, g.between(lo, hi)
		}
	}
	return nil, time.Time{}
}

// covered reports whether a session of a user with this sanitised name
// comes within pad of covering t.
func (g *generator) covered(san string, t time.Time) bool {
	for _, s := range g.bySan[san] {
		if !t.Before(s.StartedAt.Add(-pad)) && !t.After(s.ExpiresAt.Add(pad)) {
			return true
		}
	}
	return false
}

func (g *generator) uncoveredTime(u *user, lo, hi time.Time) (time.Time, bool) {
	for range 8 {
		if t := g.between(lo, hi); !g.covered(u.san, t) {
			return t, true
		}
	}
	return time.Time{}, false
}

// decoy gives u a session that ended before t, unless it would cover a time
// already placed as uncovered.
func (g *generator) decoy(u *user, t time.Time) {
	dur := g.sessionDuration()
	exp := t.Add(-g.span(pad, 3*time.Hour))
	start := exp.Add(-dur)
	for _, ut := range g.uncovered[u.san] {
		if !ut.Before(start.Add(-pad)) && !ut.After(exp.Add(pad)) {
			return
		}
	}
	si := ""
	if g.rng.IntN(2) == 0 {
		si = g.sentinelSI(u.san, "direct")
	}
	g.newSession(u, si, "direct", start, dur)
}

func (g *generator) finishSessions() {
	for _, s := range g.sessions {
		end := minTime(validUntil(s), g.now)
		s.LastAccessAt = s.StartedAt
		if end.After(s.StartedAt) {
			s.LastAccessAt = s.StartedAt.Add(g.span(0, end.Sub(s.StartedAt)))
		}
		if s.Status != sessions.StatusRevoked {
			s.UpdatedAt = s.LastAccessAt
		}
		s.TTL = s.ExpiresAt.Add(24 * time.Hour).Unix()
	}
}

// --- random values -----------------------------------------------------------

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g *generator) knownUser() *user { return pick(g.rng, g.known) }

// anyUser is a user of any kind, for events whose verdict does not depend
// on sessions.
func (g *generator) anyUser() *user {
	if g.rng.IntN(5) == 0 {
		return pick(g.rng, g.unknown)
	}
	return g.knownUser()
}

// prefer returns name if it is enabled, else "" (any enabled name).
func (g *generator) prefer(name string) string {
	if g.has[name] {
		return name
	}
	return ""
}

func (g *generator) eventTime() time.Time { return g.between(g.lo, g.hi) }

// between returns a whole second in [lo, hi] (lo and hi whole seconds).
func (g *generator) between(lo, hi time.Time) time.Time {
	n := int64(hi.Sub(lo) / time.Second)
	if n < 0 {
		g.fail("empty time range [%s, %s]", lo, hi)
		return lo
	}
	return lo.Add(time.Duration(g.rng.Int64N(n+1)) * time.Second)
}

// span returns a duration in [lo, hi] with nanosecond resolution.
func (g *generator) span(lo, hi time.Duration) time.Duration {
	if hi < lo {
		g.fail("empty duration range [%s, %s]", lo, hi)
		return lo
	}
	return lo + time.Duration(g.rng.Int64N(int64(hi-lo)+1))
}

func (g *generator) sessionDuration() time.Duration {
	return pick(g.rng, sessionDurations) + time.Duration(g.rng.IntN(30))*time.Minute
}

const hexDigits = "0123456789abcdef"

func (g *generator) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[g.rng.IntN(16)]
	}
	return string(b)
}

// unique draws values until one is new in its namespace.
func (g *generator) unique(ns string, draw func() string) string {
	for {
		v := draw()
		if k := ns + "\x00" + v; !g.used[k] {
			g.used[k] = true
			return v
		}
	}
}

func (g *generator) uuid() string {
	return g.unique("uuid", func() string { return formatUUID(g.rng.Uint64(), g.rng.Uint64()) })
}

// requestTag is a fresh Sentinel request-id (8 lowercase hex).
func (g *generator) requestTag() string { return g.unique("rid", func() string { return g.hex(8) }) }

func (g *generator) sentinelSI(san, marker string) string {
	return "sentinel:" + san + ":" + marker + ":" + g.requestTag()
}

func (g *generator) legacySI(san string) string { return "sentinel:" + san + ":" + g.requestTag() }

func (g *generator) accessKey(prefix string) string {
	b := []byte(prefix)
	for range 16 {
		b = append(b, awsIDAlphabet[g.rng.IntN(len(awsIDAlphabet))])
	}
	return string(b)
}

func (g *generator) ipAddress(broker bool) string {
	if broker {
		return fmt.Sprintf("203.0.113.%d", 10+g.rng.IntN(4))
	}
	return fmt.Sprintf("%s.%d", pick(g.rng, []string{"192.0.2", "198.51.100"}), 1+g.rng.IntN(254))
}

func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// directName picks one of the enabled event names.
func (g *generator) directName() string { return pick(g.rng, g.cfg.EventNames) }
