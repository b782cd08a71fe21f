// Package cloudtrail decodes the messages sessionwatch consumes (EventBridge
// envelopes, bare CloudTrail records, SNS notifications, CloudTrail and S3
// delivery notifications, CloudTrail log files and JSON lines) into one typed
// Event per CloudTrail record. Each message is decoded once; nothing
// re-parses the JSON per field.
package cloudtrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// Origin says which field of a record a SourceIdentity came from.
type Origin string

// Origins in the order they are tried: the first one present wins.
const (
	OriginNone           Origin = ""
	OriginResponse       Origin = "responseElements.sourceIdentity"
	OriginRequest        Origin = "requestParameters.sourceIdentity"
	OriginSessionContext Origin = "userIdentity.sessionContext.sourceIdentity"
)

// Identity is the caller of an API call (CloudTrail's userIdentity).
type Identity struct {
	Type        string
	ARN         string
	PrincipalID string
	AccountID   string
	AccessKeyID string
	UserName    string
	InvokedBy   string
	// SessionIssuerARN is the caller's own role when the caller is an
	// assumed-role session. It is not the role being assumed.
	SessionIssuerARN string
}

// Event is the part of one CloudTrail record that sessionwatch reads.
type Event struct {
	ID            string // eventID
	Name          string // eventName
	Source        string // eventSource
	Time          time.Time
	Region        string
	Account       string // recipientAccountId
	RequestID     string
	SharedEventID string
	SourceIP      string
	UserAgent     string
	ErrorCode     string
	ErrorMessage  string

	Caller Identity

	SourceIdentity       string
	SourceIdentityOrigin Origin

	// TargetRoleARN is the role being assumed: requestParameters.roleArn,
	// else the AWS::IAM::Role in resources, else (for a denied call whose
	// requestParameters are null) the resource named in errorMessage.
	TargetRoleARN   string
	RoleSessionName string

	// The session the call issued (empty when errorCode is set).
	AssumedRoleARN string
	AccessKeyID    string
}

// Failed reports whether the call failed; a failed call created no session.
func (e *Event) Failed() bool { return e.ErrorCode != "" }

// DedupKey identifies the STS request behind the record. A cross-account
// call is logged in both accounts with the same requestID, so both copies
// share the key. A record with no requestID, sharedEventID or eventID (some
// exporters drop them) is keyed by its content instead, so that two such
// records of different calls never share a finding id.
func (e *Event) DedupKey() string {
	switch {
	case e.RequestID != "":
		return e.RequestID
	case e.SharedEventID != "":
		return e.SharedEventID
	case e.ID != "":
		return e.ID
	default:
		return e.contentKey()
	}
}

// KeyedByContent reports whether DedupKey had no id to use and was derived
// from the record's content.
func (e *Event) KeyedByContent() bool {
	return e.RequestID == "" && e.SharedEventID == "" && e.ID == ""
}

// contentKey hashes every field the decoder read, each length-prefixed so
// that no two different records hash the same bytes.
func (e *Event) contentKey() string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, f := range []string{
		e.Time.UTC().Format(time.RFC3339Nano), e.Name, e.Source, e.Region, e.Account,
		e.SourceIP, e.UserAgent, e.ErrorCode, e.ErrorMessage,
		e.Caller.Type, e.Caller.ARN, e.Caller.PrincipalID, e.Caller.AccountID, e.Caller.AccessKeyID,
		e.Caller.UserName, e.Caller.InvokedBy, e.Caller.SessionIssuerARN,
		e.SourceIdentity, string(e.SourceIdentityOrigin),
		e.TargetRoleARN, e.RoleSessionName, e.AssumedRoleARN, e.AccessKeyID,
	} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return "content:" + hex.EncodeToString(h.Sum(nil))
}

// rawRecord mirrors the CloudTrail fields that are read; everything else is
// skipped by the decoder. Nested objects are pointers: CloudTrail writes
// null for them (a denied call's requestParameters), and goccy/go-json
// v0.12.0 corrupts a struct value it decodes null into.
type rawRecord struct {
	EventID            string            `json:"eventID"`
	EventTime          string            `json:"eventTime"`
	EventSource        string            `json:"eventSource"`
	EventName          string            `json:"eventName"`
	AWSRegion          string            `json:"awsRegion"`
	SourceIPAddress    string            `json:"sourceIPAddress"`
	UserAgent          string            `json:"userAgent"`
	ErrorCode          string            `json:"errorCode"`
	ErrorMessage       string            `json:"errorMessage"`
	RequestID          string            `json:"requestID"`
	SharedEventID      string            `json:"sharedEventID"`
	RecipientAccountID string            `json:"recipientAccountId"`
	UserIdentity       rawIdentity       `json:"userIdentity"`
	RequestParameters  *rawRequest       `json:"requestParameters"`
	ResponseElements   *rawResponse      `json:"responseElements"`
	Resources          []lenientResource `json:"resources"`
}

type rawIdentity struct {
	Type           string `json:"type"`
	PrincipalID    string `json:"principalId"`
	ARN            string `json:"arn"`
	AccountID      string `json:"accountId"`
	AccessKeyID    string `json:"accessKeyId"`
	UserName       string `json:"userName"`
	InvokedBy      string `json:"invokedBy"`
	SessionContext *struct {
		SourceIdentity string `json:"sourceIdentity"`
		SessionIssuer  *struct {
			ARN string `json:"arn"`
		} `json:"sessionIssuer"`
	} `json:"sessionContext"`
}

type rawRequest struct {
	RoleARN         string `json:"roleArn"`
	RoleSessionName string `json:"roleSessionName"`
	SourceIdentity  string `json:"sourceIdentity"`
}

type rawResponse struct {
	SourceIdentity string `json:"sourceIdentity"`
	Credentials    *struct {
		AccessKeyID string `json:"accessKeyId"`
	} `json:"credentials"`
	AssumedRoleUser *struct {
		ARN string `json:"arn"`
	} `json:"assumedRoleUser"`
}

// lenientResource accepts a resource object and ignores anything else: some
// exporters (Panther's normalised records) write resources as strings.
type lenientResource struct {
	ARN  string
	Type string
}

func (r *lenientResource) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var v struct {
		ARN  string `json:"ARN"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.ARN, r.Type = v.ARN, v.Type
	return nil
}

// present reports whether the value held a CloudTrail record at all.
func (r *rawRecord) present() bool {
	return r.EventTime != "" || r.EventName != "" || r.EventSource != "" || r.EventID != ""
}

// toEvent turns a decoded record into an Event. It fails only when the
// record is not usable at all (no event time).
func (r *rawRecord) toEvent() (*Event, error) {
	t, err := parseEventTime(r.EventTime)
	if err != nil {
		return nil, &EventTimeError{EventID: r.EventID, EventName: r.EventName, Value: r.EventTime, Err: err}
	}
	ev := &Event{
		ID:            r.EventID,
		Name:          r.EventName,
		Source:        r.EventSource,
		Time:          t,
		Region:        r.AWSRegion,
		Account:       r.RecipientAccountID,
		RequestID:     r.RequestID,
		SharedEventID: r.SharedEventID,
		SourceIP:      r.SourceIPAddress,
		UserAgent:     r.UserAgent,
		ErrorCode:     r.ErrorCode,
		ErrorMessage:  r.ErrorMessage,
		Caller: Identity{
			Type:        r.UserIdentity.Type,
			ARN:         r.UserIdentity.ARN,
			PrincipalID: r.UserIdentity.PrincipalID,
			AccountID:   r.UserIdentity.AccountID,
			AccessKeyID: r.UserIdentity.AccessKeyID,
			UserName:    r.UserIdentity.UserName,
			InvokedBy:   r.UserIdentity.InvokedBy,
		},
	}
	sc := r.UserIdentity.SessionContext
	if sc != nil && sc.SessionIssuer != nil {
		ev.Caller.SessionIssuerARN = sc.SessionIssuer.ARN
	}

	// SourceIdentity: the first present wins, in the documented order.
	switch {
	case r.ResponseElements != nil && r.ResponseElements.SourceIdentity != "":
		ev.SourceIdentity, ev.SourceIdentityOrigin = r.ResponseElements.SourceIdentity, OriginResponse
	case r.RequestParameters != nil && r.RequestParameters.SourceIdentity != "":
		ev.SourceIdentity, ev.SourceIdentityOrigin = r.RequestParameters.SourceIdentity, OriginRequest
	case sc != nil && sc.SourceIdentity != "":
		ev.SourceIdentity, ev.SourceIdentityOrigin = sc.SourceIdentity, OriginSessionContext
	}

	if p := r.RequestParameters; p != nil {
		ev.TargetRoleARN = p.RoleARN
		ev.RoleSessionName = p.RoleSessionName
	}
	if ev.TargetRoleARN == "" {
		for _, res := range r.Resources {
			if res.Type == "AWS::IAM::Role" && res.ARN != "" {
				ev.TargetRoleARN = res.ARN
				break
			}
		}
	}
	if ev.TargetRoleARN == "" && ev.ErrorMessage != "" {
		ev.TargetRoleARN = roleFromErrorMessage(ev.ErrorMessage)
	}
	if re := r.ResponseElements; re != nil {
		if re.AssumedRoleUser != nil {
			ev.AssumedRoleARN = re.AssumedRoleUser.ARN
		}
		if re.Credentials != nil {
			ev.AccessKeyID = re.Credentials.AccessKeyID
		}
	}
	if ev.RoleSessionName == "" && ev.AssumedRoleARN != "" {
		// SAML calls carry no roleSessionName parameter; STS names the
		// session in the assumed-role ARN: …:assumed-role/<role>/<session>.
		if i := strings.LastIndexByte(ev.AssumedRoleARN, '/'); i >= 0 {
			ev.RoleSessionName = ev.AssumedRoleARN[i+1:]
		}
	}
	return ev, nil
}

// roleFromErrorMessage extracts the role from an AccessDenied message such as
// "User: … is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::1:role/x".
func roleFromErrorMessage(msg string) string {
	const marker = "on resource: "
	i := strings.Index(msg, marker)
	if i < 0 {
		return ""
	}
	arn := msg[i+len(marker):]
	if j := strings.IndexAny(arn, " ,;\"'"); j >= 0 {
		arn = arn[:j]
	}
	if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":role/") {
		return ""
	}
	return arn
}

// Exporters (Panther) normalise eventTime with a space for the T, with or
// without a zone ("YYYY-MM-DD HH:MM:SS[.nnnnnnnnn][Z|±hh:mm]"); no zone is UTC.
const (
	exporterTimeLayout     = "2006-01-02 15:04:05.999999999"
	exporterZoneTimeLayout = "2006-01-02 15:04:05.999999999Z07:00"
)

// errNoEventTime: the record has no eventTime, or an empty or null one.
var errNoEventTime = errors.New("no eventTime")

// parseEventTime reads CloudTrail's RFC 3339 eventTime, or an exporter form.
// Its errors are words for an operator, not the layouts time.Parse quotes.
func parseEventTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errNoEventTime
	}
	for _, layout := range []string{time.RFC3339Nano, exporterZoneTimeLayout, exporterTimeLayout} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("eventTime %q is not a time (want RFC 3339, e.g. 2006-01-02T15:04:05Z)", truncate(s, 64))
}
