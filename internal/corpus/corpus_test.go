package corpus_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

var allVerdicts = []classify.Verdict{
	classify.Tracked, classify.NoSourceIdentity, classify.NonSentinel, classify.Orphaned,
	classify.Revoked, classify.Expired, classify.Unverifiable, classify.DeniedAttempt,
}

func generate(t testing.TB, cfg corpus.Config) *corpus.Corpus {
	t.Helper()
	c, err := corpus.Generate(cfg)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return c
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	cfg := corpus.Config{
		Seed: 7, Events: 300, OutOfScope: 15,
		Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-central-1"},
	}
	a, b := generate(t, cfg), generate(t, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same config, different corpus")
	}
	if !bytes.Equal(corpus.JSONLines(a.All()), corpus.JSONLines(b.All())) {
		t.Fatal("same config, different records")
	}
	fa, fb := corpus.Archive(a, 20), corpus.Archive(b, 20)
	if !reflect.DeepEqual(fa, fb) {
		t.Fatal("same corpus, different archive")
	}
	for i, ev := range a.All() {
		if !bytes.Equal(corpus.EventBridgeEnvelope(ev), corpus.EventBridgeEnvelope(b.All()[i])) {
			t.Fatalf("envelope %d differs", i)
		}
	}

	cfg.Seed = 8
	c := generate(t, cfg)
	if bytes.Equal(corpus.JSONLines(a.Events), corpus.JSONLines(c.Events)) {
		t.Fatal("different seeds, same records")
	}
	if reflect.DeepEqual(a.Sessions, c.Sessions) {
		t.Fatal("different seeds, same sessions")
	}
	// The verdict counts depend on Events and Mix only.
	if !reflect.DeepEqual(a.Counts(), c.Counts()) {
		t.Fatalf("counts depend on the seed: %v vs %v", a.Counts(), c.Counts())
	}
}

func TestDefaultMixCoversEveryVerdictAndCase(t *testing.T) {
	t.Parallel()
	c := generate(t, corpus.Config{Events: 200, Accounts: []string{"111122223333", "444455556666"}})
	counts := c.Counts()
	for _, v := range allVerdicts {
		if counts[v] == 0 {
			t.Errorf("no %s event in the default mix: %v", v, counts)
		}
	}
	if counts[classify.Tracked] != 120 {
		t.Errorf("tracked = %d, want 60%% of 200", counts[classify.Tracked])
	}
	cases := map[string]int{}
	for _, ev := range c.Events {
		cases[ev.Case]++
	}
	for _, want := range []string{
		"tracked/exact", "tracked/user-time", "tracked/user-time-raw-name", "tracked/user-time-shared-sanitised-name",
		"tracked/revoked-after-event", "tracked/duplicate-si-one-revoked", "tracked/chained", "tracked/denied",
		"tracked/legacy", "tracked/request-parameters-only",
		"no_source_identity/cross-account", "no_source_identity/chained", "no_source_identity/saml", "no_source_identity/web-identity",
		"non_sentinel_format/foreign-name", "non_sentinel_format/bad-request-id", "non_sentinel_format/missing-request-id", "non_sentinel_format/user-too-long",
		"orphaned/known-user-no-covering-session", "orphaned/unknown-user", "orphaned/legacy",
		"revoked/direct", "revoked/chained", "expired/direct", "expired/chained",
		"unverifiable/known-user", "unverifiable/unknown-user",
		"denied_attempt/no-si-iam-user", "denied_attempt/revoked-si-chained", "denied_attempt/orphan-si-chained",
	} {
		if cases[want] == 0 {
			t.Errorf("no %s event", want)
		}
	}
	if t.Failed() {
		t.Logf("cases: %v", cases)
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  corpus.Config
		want map[classify.Verdict]int
	}{
		{"empty", corpus.Config{}, map[classify.Verdict]int{}},
		{"one", corpus.Config{Events: 1}, map[classify.Verdict]int{classify.Tracked: 1}},
		{"one of each", corpus.Config{Events: 8}, map[classify.Verdict]int{
			classify.Tracked: 1, classify.NoSourceIdentity: 1, classify.NonSentinel: 1, classify.Orphaned: 1,
			classify.Revoked: 1, classify.Expired: 1, classify.Unverifiable: 1, classify.DeniedAttempt: 1,
		}},
		{"weights", corpus.Config{Events: 10, Mix: map[classify.Verdict]int{classify.Orphaned: 3, classify.Revoked: 1, classify.Tracked: 0}},
			map[classify.Verdict]int{classify.Orphaned: 8, classify.Revoked: 2}},
		{"single verdict", corpus.Config{Events: 50, Mix: map[classify.Verdict]int{classify.Unverifiable: 1}},
			map[classify.Verdict]int{classify.Unverifiable: 50}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := generate(t, tt.cfg)
			got := c.Counts()
			if len(got) != len(tt.want) {
				t.Fatalf("counts %v, want %v", got, tt.want)
			}
			for v, n := range tt.want {
				if got[v] != n {
					t.Fatalf("counts %v, want %v", got, tt.want)
				}
			}
			exp := c.Expected()
			if len(exp) != len(c.Events) {
				t.Fatalf("Expected has %d entries for %d events", len(exp), len(c.Events))
			}
			findings := 0
			for _, v := range exp {
				if v.IsFinding() {
					findings++
				}
			}
			if findings != len(c.Findings()) {
				t.Fatalf("Findings() = %d, Expected() has %d findings", len(c.Findings()), findings)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (corpus.Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	for name, cfg := range map[string]corpus.Config{
		"negative events":        {Events: -1},
		"negative out of scope":  {OutOfScope: -1},
		"window below 1h":        {Window: 30 * time.Minute},
		"window past min age":    {Window: 2 * time.Hour, MinAge: 90 * time.Minute},
		"window past retention":  {Window: 90 * 24 * time.Hour},
		"bad account":            {Accounts: []string{"12345"}},
		"empty region":           {Regions: []string{""}},
		"unknown event name":     {EventNames: []string{"GetSessionToken"}},
		"duplicate event name":   {EventNames: []string{corpus.AssumeRole, corpus.AssumeRole}},
		"unknown verdict":        {Mix: map[classify.Verdict]int{"bogus": 1}},
		"negative weight":        {Mix: map[classify.Verdict]int{classify.Tracked: -1, classify.Orphaned: 2}},
		"no weight":              {Events: 3, Mix: map[classify.Verdict]int{classify.Tracked: 0}},
		"fewer users than built": {Users: 5},
		"negative users":         {Users: -1},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
		if _, err := corpus.Generate(cfg); err == nil {
			t.Errorf("%s: Generate accepted %+v", name, cfg)
		}
	}
}

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	eventTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	accountRE   = regexp.MustCompile(`^\d{12}$`)
	tempKeyRE   = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)
	userKeyRE   = regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
)

// obj is a decoded JSON object with path helpers.
type obj map[string]any

func (o obj) get(path string) (any, bool) {
	var cur any = map[string]any(o)
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (o obj) str(path string) string {
	v, _ := o.get(path)
	s, _ := v.(string)
	return s
}

// emptyStrings lists the paths of "" values: the generator must omit
// fields it has no value for.
func emptyStrings(v any, path string, out *[]string) {
	switch x := v.(type) {
	case string:
		if x == "" {
			*out = append(*out, path)
		}
	case map[string]any:
		for k, e := range x {
			emptyStrings(e, path+"."+k, out)
		}
	case []any:
		for i, e := range x {
			emptyStrings(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func TestRecordsLookReal(t *testing.T) {
	t.Parallel()
	c := generate(t, corpus.Config{
		Seed: 3, Events: 600, OutOfScope: 30,
		Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-west-1"},
	})
	ids := map[string]bool{}
	byRequest := map[string][]corpus.Event{}
	for _, ev := range c.All() {
		var m obj
		if err := json.Unmarshal(ev.Record, &m); err != nil {
			t.Fatalf("%s: invalid JSON: %v", ev.ID, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, ev.Record); err != nil || !bytes.Equal(compact.Bytes(), ev.Record) {
			t.Errorf("%s: record is not compact JSON", ev.ID)
		}
		var empty []string
		emptyStrings(map[string]any(m), "", &empty)
		if len(empty) > 0 {
			t.Errorf("%s (%s): empty strings at %v", ev.ID, ev.Case, empty)
		}
		if ids[ev.ID] {
			t.Errorf("duplicate eventID %s", ev.ID)
		}
		ids[ev.ID] = true
		if ev.RequestID != "" {
			byRequest[ev.RequestID] = append(byRequest[ev.RequestID], ev)
		}
		checkCommon(t, ev, m)
		if ev.Expected != "" {
			checkAssumeRole(t, ev, m)
		}
	}
	pairs := 0
	for id, evs := range byRequest {
		switch len(evs) {
		case 1:
		case 2:
			pairs++
			a, b := evs[0], evs[1]
			if a.SharedEventID == "" || a.SharedEventID != b.SharedEventID || a.Account == b.Account ||
				a.Expected != b.Expected || a.ID == b.ID || a.Expected == "" {
				t.Errorf("requestID %s shared by %+v and %+v", id, a, b)
			}
		default:
			t.Errorf("requestID %s used %d times", id, len(evs))
		}
	}
	if pairs != 1 {
		t.Errorf("%d cross-account pairs, want 1", pairs)
	}
}

func checkCommon(t *testing.T, ev corpus.Event, m obj) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s (%s): %s", ev.ID, ev.Case, fmt.Sprintf(format, args...))
	}
	want := map[string]string{
		"eventVersion": "1.08", "eventID": ev.ID, "eventName": ev.Name, "eventSource": ev.Source,
		"awsRegion": ev.Region, "recipientAccountId": ev.Account, "eventCategory": "Management",
	}
	for k, v := range want {
		if got := m.str(k); got != v {
			fail("%s = %q, want %q", k, got, v)
		}
	}
	if !uuidRE.MatchString(ev.ID) {
		fail("eventID %q is not a UUID", ev.ID)
	}
	if ev.RequestID != "" && (m.str("requestID") != ev.RequestID || !uuidRE.MatchString(ev.RequestID)) {
		fail("requestID %q / %q", m.str("requestID"), ev.RequestID)
	}
	if sh := m.str("sharedEventID"); sh != ev.SharedEventID || (sh != "" && !uuidRE.MatchString(sh)) {
		fail("sharedEventID %q / %q", sh, ev.SharedEventID)
	}
	if et := m.str("eventTime"); !eventTimeRE.MatchString(et) || et != ev.Time.Format(time.RFC3339) {
		fail("eventTime %q, Time %s", et, ev.Time)
	}
	if m.str("sourceIPAddress") == "" || m.str("userAgent") == "" {
		fail("no sourceIPAddress or userAgent")
	}
	if v, _ := m.get("managementEvent"); v != true {
		fail("managementEvent %v", v)
	}
	if v, _ := m.get("readOnly"); v != true && v != false {
		fail("readOnly %v", v)
	}
	if m.str("userIdentity.type") == "" {
		fail("no userIdentity.type")
	}
	if m.str("errorCode") != ev.ErrorCode {
		fail("errorCode %q / %q", m.str("errorCode"), ev.ErrorCode)
	}
	if tls, ok := m.get("tlsDetails"); ok {
		if obj(tls.(map[string]any)).str("clientProvidedHostHeader") == "" {
			fail("tlsDetails without host header")
		}
	}
	if ev.Expected == "" {
		if ev.Case == "" || !strings.HasPrefix(ev.Case, "ignored/") {
			fail("ignored event with case %q", ev.Case)
		}
	}
}

func checkAssumeRole(t *testing.T, ev corpus.Event, m obj) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s (%s): %s", ev.ID, ev.Case, fmt.Sprintf(format, args...))
	}
	if m.str("eventType") != "AwsApiCall" || ev.Source != "sts.amazonaws.com" || ev.RequestID == "" {
		fail("eventType %q source %q requestID %q", m.str("eventType"), ev.Source, ev.RequestID)
	}
	typ := m.str("userIdentity.type")
	switch ev.Name {
	case corpus.AssumeRole:
		if typ != "IAMUser" && typ != "AssumedRole" {
			fail("AssumeRole by %s", typ)
		}
	case corpus.AssumeRoleWithSAML:
		if typ != "SAMLUser" || m.str("userIdentity.identityProvider") == "" || m.str("userIdentity.userName") == "" {
			fail("SAML caller %v", m["userIdentity"])
		}
	case corpus.AssumeRoleWithWebIdentity:
		if typ != "WebIdentityUser" || m.str("userIdentity.identityProvider") == "" {
			fail("web identity caller %v", m["userIdentity"])
		}
	default:
		fail("unexpected name %s", ev.Name)
	}
	switch typ {
	case "IAMUser":
		if !strings.Contains(m.str("userIdentity.arn"), ":user/") || !userKeyRE.MatchString(m.str("userIdentity.accessKeyId")) ||
			!accountRE.MatchString(m.str("userIdentity.accountId")) {
			fail("IAM user identity %v", m["userIdentity"])
		}
	case "AssumedRole":
		issuer := m.str("userIdentity.sessionContext.sessionIssuer.arn")
		if m.str("userIdentity.sessionContext.sessionIssuer.type") != "Role" || !strings.HasPrefix(issuer, "arn:aws:iam::") ||
			!strings.Contains(issuer, ":role/") || !strings.Contains(m.str("userIdentity.arn"), ":assumed-role/") ||
			!tempKeyRE.MatchString(m.str("userIdentity.accessKeyId")) ||
			!eventTimeRE.MatchString(m.str("userIdentity.sessionContext.attributes.creationDate")) {
			fail("assumed-role identity %v", m["userIdentity"])
		}
	}
	if ev.ErrorCode != "" {
		if ev.ErrorCode != "AccessDenied" || m.str("errorMessage") == "" {
			fail("errorCode %q errorMessage %q", ev.ErrorCode, m.str("errorMessage"))
		}
		for _, k := range []string{"requestParameters", "responseElements"} {
			if v, ok := m.get(k); !ok || v != nil {
				fail("denied call with %s = %v (want null)", k, v)
			}
		}
		if _, ok := m.get("resources"); ok {
			fail("denied call with resources")
		}
		return
	}
	roleARN := m.str("requestParameters.roleArn")
	if !strings.HasPrefix(roleARN, "arn:aws:iam::") || m.str("requestParameters.roleSessionName") == "" {
		fail("requestParameters %v", m["requestParameters"])
	}
	if d, _ := m.get("requestParameters.durationSeconds"); d == nil {
		fail("no durationSeconds")
	}
	if !tempKeyRE.MatchString(m.str("responseElements.credentials.accessKeyId")) ||
		m.str("responseElements.credentials.sessionToken") != "REDACTED" {
		fail("credentials %v", m["responseElements"])
	}
	exp, err := time.Parse("Jan 2, 2006, 3:04:05 PM", m.str("responseElements.credentials.expiration"))
	if err != nil || !exp.After(ev.Time) {
		fail("expiration %q (%v)", m.str("responseElements.credentials.expiration"), err)
	}
	account := strings.Split(roleARN, ":")[4]
	if id := m.str("responseElements.assumedRoleUser.assumedRoleId"); !strings.HasPrefix(id, "AROA") || !strings.Contains(id, ":") {
		fail("assumedRoleId %q", id)
	}
	if arn := m.str("responseElements.assumedRoleUser.arn"); !strings.HasPrefix(arn, "arn:aws:sts::"+account+":assumed-role/") {
		fail("assumedRoleUser.arn %q", arn)
	}
	res, _ := m.get("resources")
	list, _ := res.([]any)
	if len(list) == 0 {
		fail("no resources")
		return
	}
	r0 := obj(list[0].(map[string]any))
	if r0.str("type") != "AWS::IAM::Role" || r0.str("ARN") != roleARN || r0.str("accountId") != account {
		fail("resources[0] %v", r0)
	}
}

func TestSessionsLookReal(t *testing.T) {
	t.Parallel()
	c := generate(t, corpus.Config{Seed: 5, Events: 500})
	ids := map[string]bool{}
	var withSI, withoutSI, rawDiffers, subSecond, revoked int
	for _, s := range c.Sessions {
		if ids[s.ID] || s.ID == "" {
			t.Errorf("session id %q empty or repeated", s.ID)
		}
		ids[s.ID] = true
		if s.User == "" || s.Profile == "" {
			t.Errorf("session %s without user or profile", s.ID)
		}
		if sessions.SanitizeUser(s.User) != s.User {
			rawDiffers++
		}
		if s.SourceIdentity == "" {
			withoutSI++
		} else if _, ok := parseSentinel(s.SourceIdentity); !ok {
			t.Errorf("session %s source identity %q does not parse", s.ID, s.SourceIdentity)
		} else {
			withSI++
		}
		if s.StartedAt.Nanosecond() != 0 {
			subSecond++
		}
		if !s.CreatedAt.Equal(s.StartedAt) || !s.ExpiresAt.After(s.StartedAt) || s.ExpiresAt.Sub(s.StartedAt) > 13*time.Hour {
			t.Errorf("session %s times: %+v", s.ID, s)
		}
		if s.TTL != s.ExpiresAt.Add(24*time.Hour).Unix() {
			t.Errorf("session %s ttl %d", s.ID, s.TTL)
		}
		if s.LastAccessAt.Before(s.StartedAt) || s.LastAccessAt.After(s.ExpiresAt) {
			t.Errorf("session %s last access %s", s.ID, s.LastAccessAt)
		}
		switch s.Status {
		case sessions.StatusActive:
			if !s.UpdatedAt.Equal(s.LastAccessAt) {
				t.Errorf("active session %s updated_at %s", s.ID, s.UpdatedAt)
			}
		case sessions.StatusRevoked:
			revoked++
			at, _ := s.Revoked()
			if at.Before(s.StartedAt) || s.RevokedBy == "" || s.RevokedReason == "" || s.LastAccessAt.After(at) {
				t.Errorf("revoked session %s: %+v", s.ID, s)
			}
		default:
			t.Errorf("session %s status %q", s.ID, s.Status)
		}
	}
	if withSI == 0 || withoutSI == 0 || rawDiffers == 0 || subSecond == 0 || revoked == 0 {
		t.Errorf("with SI %d, without %d, raw names %d, sub-second %d, revoked %d: want each > 0",
			withSI, withoutSI, rawDiffers, subSecond, revoked)
	}
}

func TestIgnoredEvents(t *testing.T) {
	t.Parallel()
	c := generate(t, corpus.Config{Events: 10, OutOfScope: 12, EventNames: []string{corpus.AssumeRole}})
	if len(c.Ignored) != 12 {
		t.Fatalf("%d ignored events, want 12", len(c.Ignored))
	}
	names := map[string]bool{}
	for _, ev := range c.Ignored {
		names[ev.Source+" "+ev.Name] = true
	}
	for _, want := range []string{
		"sts.amazonaws.com GetSessionToken", "sts.amazonaws.com GetFederationToken",
		"signin.amazonaws.com AssumeRole", "sts.amazonaws.com AssumeRoleWithSAML",
		"sts.amazonaws.com AssumeRoleWithWebIdentity",
	} {
		if !names[want] {
			t.Errorf("no ignored %s event (have %v)", want, names)
		}
	}
	for _, ev := range c.Events {
		if ev.Name != corpus.AssumeRole {
			t.Errorf("in-scope %s with AssumeRole only", ev.Name)
		}
	}
}

func TestSpanCoversEverything(t *testing.T) {
	t.Parallel()
	c := generate(t, corpus.Config{Events: 100, OutOfScope: 5})
	oldest, newest := c.Span()
	horizon := c.Config.Now.Add(-c.Config.Retention)
	if !oldest.Before(horizon.Add(-24*time.Hour)) || newest.After(c.Config.Now) {
		t.Fatalf("span [%s, %s], horizon %s", oldest, newest, horizon)
	}
	for _, ev := range c.All() {
		if ev.Time.Before(oldest) || ev.Time.After(newest) {
			t.Fatalf("%s at %s outside span", ev.ID, ev.Time)
		}
	}
	if o, n := generate(t, corpus.Config{}).Span(); !o.IsZero() || !n.IsZero() {
		t.Fatalf("empty corpus span %s %s", o, n)
	}
}

func ExampleGenerate() {
	c, err := corpus.Generate(corpus.Config{Seed: 1, Events: 100, OutOfScope: 4})
	if err != nil {
		panic(err)
	}
	counts := c.Counts()
	for _, v := range allVerdicts {
		fmt.Println(v, counts[v])
	}
	fmt.Println("ignored", len(c.Ignored))
	// Output:
	// tracked 60
	// no_source_identity 6
	// non_sentinel_format 6
	// orphaned 6
	// revoked 5
	// expired 5
	// unverifiable 6
	// denied_attempt 6
	// ignored 4
}

func BenchmarkGenerate(b *testing.B) {
	cfg := corpus.Config{Events: 10_000, OutOfScope: 100, Accounts: []string{"111122223333", "444455556666"}}
	for b.Loop() {
		if _, err := corpus.Generate(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUsersSpreadSessions: Users gives a population in which each user holds
// tens of sessions, where the built-in users each hold thousands.
func TestUsersSpreadSessions(t *testing.T) {
	t.Parallel()
	// most is the largest share of one user but the two who share one
	// sanitised name (that scenario keeps its built-in pair).
	perUser := func(c *corpus.Corpus) (users, most int) {
		n := map[string]int{}
		for _, s := range c.Sessions {
			n[s.User]++
		}
		for u, k := range n {
			if u != "erin-k" && u != "erin.k" {
				most = max(most, k)
			}
		}
		return len(n), most
	}
	skewed := generate(t, corpus.Config{Seed: 3, Events: 20_000})
	spread := generate(t, corpus.Config{Seed: 3, Events: 20_000, Users: 2000})
	su, smost := perUser(skewed)
	u, most := perUser(spread)
	t.Logf("built-in users: %d users, at most %d sessions each; Users 2000: %d users, at most %d", su, smost, u, most)
	if su > 20 || smost < 500 {
		t.Errorf("default corpus: %d users, at most %d sessions each; want the skewed built-in population", su, smost)
	}
	if u < 1900 || most > 40 {
		t.Errorf("Users 2000: %d users hold sessions, at most %d each; want about 2000 with tens each", u, most)
	}
}
