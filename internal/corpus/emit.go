package corpus

import (
	"fmt"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
)

// JSON paths a SourceIdentity can be read from, in the classifier's order.
const (
	OriginResponse       = "responseElements.sourceIdentity"
	OriginRequest        = "requestParameters.sourceIdentity"
	OriginSessionContext = "userIdentity.sessionContext.sourceIdentity"
)

const browserAgent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

const (
	stsSource    = "sts.amazonaws.com"
	signinSource = "signin.amazonaws.com"
)

// emit renders sp as one record per recipient account and appends the
// events (to Ignored when sp has no verdict).
func (g *generator) emit(sp spec) {
	name := sp.name
	if sp.caller == callerChained {
		name = AssumeRole
	}
	if name == "" {
		name = g.directName()
	}
	if sp.verdict != "" && !g.has[name] {
		g.fail("%s/%s: event name %s is not enabled", sp.verdict, sp.kind, name)
		return
	}

	place := sp.place
	switch {
	case sp.si == "":
		place = 0
	case sp.caller == callerChained:
		if place == 0 {
			place = inCtx // inherited only
			if g.rng.IntN(5) < 2 {
				place |= inReq | inResp // and passed on explicitly
			}
		}
	case name == AssumeRole:
		if place == 0 {
			place = inReq | inResp
		}
	default: // SAML and web identity: from the assertion or token
		place = inResp
	}
	if sp.denied && place&^inCtx != 0 {
		g.fail("%s/%s: a denied call can carry a SourceIdentity only in its sessionContext", sp.verdict, sp.kind)
		return
	}
	origin := ""
	switch {
	case place&inResp != 0:
		origin = OriginResponse
	case place&inReq != 0:
		origin = OriginRequest
	case place&inCtx != 0:
		origin = OriginSessionContext
	}
	siIf := func(p placement) string {
		if place&p != 0 {
			return sp.si
		}
		return ""
	}

	acct := sp.account
	if acct == "" {
		acct = pick(g.rng, g.cfg.Accounts)
	}
	callerAcct := sp.callerAcct
	if callerAcct == "" {
		callerAcct = acct
	}
	u, t := sp.user, sp.t
	region := pick(g.rng, g.cfg.Regions)
	role := pick(g.rng, roleNames)
	roleARN := "arn:aws:iam::" + acct + ":role/" + role

	r := g.baseRecord(stsSource, name, t, region)
	r.UserIdentity = g.identity(sp, name, callerAcct, siIf(inCtx))
	r.RequestID = sp.requestID
	if r.RequestID == "" {
		r.RequestID = g.uuid()
	}
	r.SharedEventID = sp.sharedID
	if r.SharedEventID == "" && g.rng.IntN(100) < 15 {
		r.SharedEventID = g.uuid()
	}
	switch {
	case sp.caller == callerBroker && name == AssumeRole:
		r.UserAgent, r.SourceIPAddress = brokerAgent, g.ipAddress(true)
	case name == AssumeRoleWithSAML:
		r.UserAgent, r.SourceIPAddress = samlAgent, g.ipAddress(false)
	case name == AssumeRoleWithWebIdentity:
		r.UserAgent, r.SourceIPAddress = webIDAgent, g.ipAddress(false)
	default:
		r.UserAgent, r.SourceIPAddress = pick(g.rng, humanAgents), g.ipAddress(false)
	}

	if sp.denied {
		r.ErrorCode = "AccessDenied"
		if name == AssumeRole {
			r.ErrorMessage = fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", r.UserIdentity.ARN, roleARN)
		} else {
			r.ErrorMessage = "Not authorized to perform sts:" + name
		}
	} else {
		dur := pick(g.rng, stsDurations)
		creds := credentials{
			AccessKeyID:  g.accessKey("ASIA"),
			Expiration:   t.Add(time.Duration(dur) * time.Second).Format(expirationLayout),
			SessionToken: "REDACTED",
		}
		sessName := g.roleSessionName(sp, name)
		aru := assumedRoleUser{
			AssumedRoleID: awsID("AROA", 17, acct, role) + ":" + sessName,
			ARN:           "arn:aws:sts::" + acct + ":assumed-role/" + role + "/" + sessName,
		}
		r.Resources = []resource{{AccountID: acct, Type: "AWS::IAM::Role", ARN: roleARN}}
		switch name {
		case AssumeRole:
			r.RequestParameters = &assumeRoleRequest{RoleARN: roleARN, RoleSessionName: sessName, DurationSeconds: dur, SourceIdentity: siIf(inReq)}
			r.ResponseElements = &assumeRoleResponse{Credentials: creds, AssumedRoleUser: aru, SourceIdentity: siIf(inResp)}
		case AssumeRoleWithSAML:
			providerARN := "arn:aws:iam::" + acct + ":saml-provider/Okta"
			r.RequestParameters = &samlRequest{SAMLAssertionID: "id" + g.hex(32), RoleSessionName: sessName, DurationSeconds: dur, RoleARN: roleARN, PrincipalARN: providerARN}
			r.ResponseElements = &samlResponse{
				SubjectType: "persistent", Issuer: samlIssuerPath + "exk" + base62ID(17, "okta", acct), Credentials: creds,
				NameQualifier: samlIdP(acct), AssumedRoleUser: aru, Subject: u.raw,
				Audience: "https://signin.aws.amazon.com/saml", SourceIdentity: siIf(inResp),
			}
			r.Resources = append(r.Resources, resource{AccountID: acct, Type: "AWS::IAM::SAMLProvider", ARN: providerARN})
		case AssumeRoleWithWebIdentity:
			r.RequestParameters = &webIdentityRequest{DurationSeconds: dur, RoleARN: roleARN, RoleSessionName: sessName}
			r.ResponseElements = &webIdentityResponse{
				Provider:                    "arn:aws:iam::" + acct + ":oidc-provider/" + oidcProvider,
				SubjectFromWebIdentityToken: oidcSubject(u), Audience: oidcAudience(acct),
				Credentials: creds, AssumedRoleUser: aru, SourceIdentity: siIf(inResp),
			}
		}
	}

	recipients := sp.recipients
	if len(recipients) == 0 {
		recipients = []string{acct}
	}
	for _, rc := range recipients {
		r.EventID = g.uuid()
		r.RecipientAccountID = rc
		ev := g.event(r)
		ev.Expected = sp.verdict
		ev.SourceIdentity, ev.SourceIdentityOrigin = sp.si, origin
		if sp.session != nil {
			ev.SessionID = sp.session.ID
		}
		g.add(ev, sp.verdict, sp.kind)
	}
}

func (g *generator) add(ev Event, v classify.Verdict, kind string) {
	if v == "" {
		ev.Case = "ignored/" + kind
		g.ignored = append(g.ignored, ev)
		return
	}
	ev.Case = string(v) + "/" + kind
	g.events = append(g.events, ev)
}

// event renders r and restates its fields.
func (g *generator) event(r *record) Event {
	t, _ := time.Parse(eventTimeLayout, r.EventTime)
	return Event{
		ID: r.EventID, RequestID: r.RequestID, SharedEventID: r.SharedEventID,
		Name: r.EventName, Source: r.EventSource, Region: r.AWSRegion, Account: r.RecipientAccountID,
		Time: t, ErrorCode: r.ErrorCode, Record: marshal(r),
	}
}

func (g *generator) baseRecord(source, name string, t time.Time, region string) *record {
	r := &record{
		EventVersion:    "1.08",
		EventTime:       t.UTC().Format(eventTimeLayout),
		EventSource:     source,
		EventName:       name,
		AWSRegion:       region,
		ReadOnly:        true,
		EventType:       "AwsApiCall",
		ManagementEvent: true,
		EventCategory:   "Management",
	}
	if g.rng.IntN(10) > 0 {
		host := "sts." + region + ".amazonaws.com"
		if region == "us-east-1" && g.rng.IntN(3) == 0 {
			host = "sts.amazonaws.com"
		}
		r.TLSDetails = &tlsDetails{TLSVersion: "TLSv1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ClientProvidedHostHeader: host}
		if g.rng.IntN(5) == 0 {
			r.TLSDetails.TLSVersion, r.TLSDetails.CipherSuite = "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"
		}
	}
	return r
}

func samlIdP(acct string) string      { return hashBase64(20, "saml-idp", acct) }
func oidcSubject(u *user) string      { return "00u" + base62ID(17, "oidc-sub", u.raw) }
func oidcAudience(acct string) string { return "0oa" + base62ID(17, "oidc-aud", acct) }

// identity is the caller's userIdentity.
func (g *generator) identity(sp spec, name, acct, ctxSI string) *userIdentity {
	u := sp.user
	switch {
	case name == AssumeRoleWithSAML:
		idp := samlIdP(acct)
		return &userIdentity{Type: "SAMLUser", PrincipalID: idp + ":" + u.raw, UserName: u.raw, IdentityProvider: idp}
	case name == AssumeRoleWithWebIdentity:
		sub := oidcSubject(u)
		return &userIdentity{Type: "WebIdentityUser", PrincipalID: oidcProvider + ":" + oidcAudience(acct) + ":" + sub, UserName: sub, IdentityProvider: oidcProvider}
	case sp.caller == callerChained:
		role := pick(g.rng, roleNames)
		sess := u.san + "-" + g.hex(8)
		if g.rng.IntN(3) == 0 {
			sess = fmt.Sprintf("aws-go-sdk-%d", sp.t.Add(-g.span(5*time.Minute, 55*time.Minute)).UnixMilli())
		}
		return g.roleSession(acct, role, sess, sp.t, ctxSI)
	case sp.caller == callerBroker && g.rng.IntN(2) == 0:
		// Sentinel running as an ECS task: its role session has no
		// SourceIdentity of its own.
		return g.roleSession(acct, "sentinel-server", g.hex(32), sp.t, "")
	case sp.caller == callerBroker:
		return iamUser(acct, "sentinel-broker")
	default:
		return iamUser(acct, u.raw)
	}
}

func iamUser(acct, name string) *userIdentity {
	return &userIdentity{
		Type:        "IAMUser",
		PrincipalID: awsID("AIDA", 17, acct, name),
		ARN:         "arn:aws:iam::" + acct + ":user/" + name,
		AccountID:   acct,
		AccessKeyID: awsID("AKIA", 16, acct, name, "key"),
		UserName:    name,
	}
}

func (g *generator) roleSession(acct, role, sess string, t time.Time, si string) *userIdentity {
	roleID := awsID("AROA", 17, acct, role)
	mfa := "false"
	if g.rng.IntN(4) == 0 {
		mfa = "true"
	}
	return &userIdentity{
		Type:        "AssumedRole",
		PrincipalID: roleID + ":" + sess,
		ARN:         "arn:aws:sts::" + acct + ":assumed-role/" + role + "/" + sess,
		AccountID:   acct,
		AccessKeyID: g.accessKey("ASIA"),
		SessionContext: &sessionContext{
			SessionIssuer: sessionIssuer{Type: "Role", PrincipalID: roleID, ARN: "arn:aws:iam::" + acct + ":role/" + role, AccountID: acct, UserName: role},
			Attributes: sessionAttributes{
				CreationDate:     t.Add(-g.span(5*time.Minute, 55*time.Minute)).UTC().Format(eventTimeLayout),
				MFAAuthenticated: mfa,
			},
			SourceIdentity: si,
		},
	}
}

func (g *generator) roleSessionName(sp spec, name string) string {
	u := sp.user
	switch {
	case name == AssumeRoleWithSAML:
		return u.raw
	case name == AssumeRoleWithWebIdentity:
		return "oidc-" + u.san
	case sp.caller == callerBroker:
		return "sentinel-" + u.san
	}
	switch g.rng.IntN(3) {
	case 0:
		return u.raw
	case 1:
		return fmt.Sprintf("aws-go-sdk-%d", sp.t.UnixMilli()-int64(g.rng.IntN(5000)))
	default:
		return fmt.Sprintf("botocore-session-%d", sp.t.Unix()-int64(g.rng.IntN(60)))
	}
}

// outOfScope adds the events the classifier must count and ignore.
func (g *generator) outOfScope() {
	kinds := []string{kGetSessionToken, kConsoleSignIn, kGetFederation}
	var disabled []string
	for _, n := range DefaultEventNames() {
		if !g.has[n] {
			disabled = append(disabled, n)
			kinds = append(kinds, kDisabledEventName)
		}
	}
	for i := range g.cfg.OutOfScope {
		kind := kinds[i%len(kinds)]
		u, t := g.anyUser(), g.eventTime()
		acct, region := pick(g.rng, g.cfg.Accounts), pick(g.rng, g.cfg.Regions)
		creds := func(d time.Duration) credentials {
			return credentials{AccessKeyID: g.accessKey("ASIA"), Expiration: t.Add(d).Format(expirationLayout), SessionToken: "REDACTED"}
		}
		var r *record
		switch kind {
		case kDisabledEventName:
			name := disabled[i%len(kinds)-3]
			g.emit(spec{kind: kind, name: name, caller: callerHuman, user: u, t: t})
			continue
		case kGetSessionToken:
			r = g.baseRecord(stsSource, "GetSessionToken", t, region)
			r.UserIdentity = iamUser(acct, u.raw)
			r.RequestParameters = map[string]any{"durationSeconds": 43200}
			r.ResponseElements = map[string]any{"credentials": creds(12 * time.Hour)}
			r.RequestID = g.uuid()
		case kGetFederation:
			r = g.baseRecord(stsSource, "GetFederationToken", t, region)
			r.UserIdentity = iamUser(acct, u.raw)
			r.ReadOnly = false
			r.RequestParameters = map[string]any{"name": u.san, "durationSeconds": 3600}
			r.ResponseElements = map[string]any{
				"credentials":      creds(time.Hour),
				"federatedUser":    map[string]string{"arn": "arn:aws:sts::" + acct + ":federated-user/" + u.san, "federatedUserId": acct + ":" + u.san},
				"packedPolicySize": 4,
			}
			r.RequestID = g.uuid()
		case kConsoleSignIn:
			// A console sign-in relabelled AssumeRole (as in a public rule
			// test): the eventSource, not the name, puts it out of scope.
			// Its SourceIdentity would be orphaned if it were classified.
			r = g.baseRecord(signinSource, AssumeRole, t, region)
			r.UserIdentity = g.roleSession(acct, pick(g.rng, roleNames), u.raw, t, g.sentinelSI(pick(g.rng, g.unknown).san, "direct"))
			r.UserIdentity.AccessKeyID = ""
			r.EventType = "AwsConsoleSignIn"
			r.ReadOnly = false
			r.ResponseElements = map[string]string{"ConsoleLogin": "Success"}
			if r.TLSDetails != nil {
				r.TLSDetails.ClientProvidedHostHeader = "signin.aws.amazon.com"
			}
		}
		r.SourceIPAddress, r.UserAgent = g.ipAddress(false), pick(g.rng, humanAgents)
		if kind == kConsoleSignIn {
			r.UserAgent = browserAgent
		}
		r.EventID = g.uuid()
		r.RecipientAccountID = acct
		g.add(g.event(r), "", kind)
	}
}
