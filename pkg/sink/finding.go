// Package sink holds the finding model every output renders, and the sinks
// that deliver findings.
package sink

import (
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// Schema is the version of the native finding format. Field names are a
// contract with SIEM parsers: add fields, never rename them.
const Schema = "sessionwatch.finding/v1"

// Detector names which driver produced a finding.
type Detector string

const (
	DetectorStreamer Detector = "streamer"
	DetectorBackfill Detector = "backfill"
)

// Finding is the one finding model; the JSON tags are the native format.
type Finding struct {
	Schema    string `json:"schema"`
	FindingID string `json:"finding_id"`
	// FindingIDBasis is "content" when the record had no requestID,
	// sharedEventID or eventID, and finding_id was derived from its fields.
	FindingIDBasis string             `json:"finding_id_basis,omitempty"`
	Category       classify.Verdict   `json:"category"`
	Severity       string             `json:"severity"`
	Reason         string             `json:"reason"`
	DetectedAt     time.Time          `json:"detected_at"`
	Detector       Detector           `json:"detector"`
	Event          EventInfo          `json:"event"`
	Principal      PrincipalInfo      `json:"principal"`
	Target         TargetInfo         `json:"target"`
	SourceIdentity SourceIdentityInfo `json:"source_identity"`
	Session        *SessionInfo       `json:"session,omitempty"`
	// Pipeline is what a pipeline_tampered call changed.
	Pipeline *PipelineInfo `json:"pipeline,omitempty"`
}

// PipelineInfo is the EventBridge rule or SQS queue a pipeline_tampered
// call changed.
type PipelineInfo struct {
	Service    string   `json:"service"` // the record's eventSource
	Resource   string   `json:"resource"`
	Rule       string   `json:"rule,omitempty"`
	EventBus   string   `json:"event_bus,omitempty"`
	RuleState  string   `json:"rule_state,omitempty"`
	QueueURL   string   `json:"queue_url,omitempty"`
	Attributes []string `json:"attributes,omitempty"`
}

// EventInfo identifies the CloudTrail record.
type EventInfo struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Time          time.Time `json:"time"`
	Region        string    `json:"region"`
	Account       string    `json:"account"`
	RequestID     string    `json:"request_id"`
	SharedEventID string    `json:"shared_event_id"`
	SourceIP      string    `json:"source_ip"`
	UserAgent     string    `json:"user_agent"`
	ErrorCode     string    `json:"error_code"`
}

// PrincipalInfo is the caller.
type PrincipalInfo struct {
	Type             string `json:"type"`
	ARN              string `json:"arn"`
	PrincipalID      string `json:"principal_id"`
	AccountID        string `json:"account_id"`
	AccessKeyID      string `json:"access_key_id"`
	SessionIssuerARN string `json:"session_issuer_arn"`
}

// TargetInfo is the role assumed and the session issued.
type TargetInfo struct {
	RoleARN         string `json:"role_arn"`
	RoleSessionName string `json:"role_session_name"`
	AssumedRoleARN  string `json:"assumed_role_arn"`
	AccessKeyID     string `json:"access_key_id"`
}

// SourceIdentityInfo is the SourceIdentity, where it came from, and its parts.
type SourceIdentityInfo struct {
	Value     string            `json:"value"`
	Origin    cloudtrail.Origin `json:"origin"`
	User      string            `json:"user"`
	Marker    string            `json:"marker"`
	RequestID string            `json:"request_id"`
}

// SessionInfo is the broker session the verdict rests on.
type SessionInfo struct {
	ID        string     `json:"id"`
	User      string     `json:"user"`
	Status    string     `json:"status"`
	Profile   string     `json:"profile,omitempty"` // the broker profile the session was issued for
	StartedAt *time.Time `json:"started_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// NewFinding builds the finding for an event and its classification.
func NewFinding(ev *cloudtrail.Event, r classify.Result, detector Detector, detectedAt time.Time) Finding {
	f := Finding{
		Schema:     Schema,
		FindingID:  r.FindingID,
		Category:   r.Verdict,
		Severity:   r.Severity.String(),
		Reason:     r.Reason,
		DetectedAt: detectedAt.UTC(),
		Detector:   detector,
		Event: EventInfo{
			ID:            ev.ID,
			Name:          ev.Name,
			Time:          ev.Time,
			Region:        ev.Region,
			Account:       ev.Account,
			RequestID:     ev.RequestID,
			SharedEventID: ev.SharedEventID,
			SourceIP:      ev.SourceIP,
			UserAgent:     ev.UserAgent,
			ErrorCode:     ev.ErrorCode,
		},
		Principal: PrincipalInfo{
			Type:             ev.Caller.Type,
			ARN:              ev.Caller.ARN,
			PrincipalID:      ev.Caller.PrincipalID,
			AccountID:        ev.Caller.AccountID,
			AccessKeyID:      ev.Caller.AccessKeyID,
			SessionIssuerARN: ev.Caller.SessionIssuerARN,
		},
		Target: TargetInfo{
			RoleARN:         ev.TargetRoleARN,
			RoleSessionName: ev.RoleSessionName,
			AssumedRoleARN:  ev.AssumedRoleARN,
			AccessKeyID:     ev.AccessKeyID,
		},
		SourceIdentity: SourceIdentityInfo{
			Value:     r.SourceIdentity.Value,
			Origin:    r.SourceIdentity.Origin,
			User:      r.SourceIdentity.User,
			Marker:    r.SourceIdentity.Marker,
			RequestID: r.SourceIdentity.RequestID,
		},
	}
	if r.Session != nil {
		f.Session = sessionInfo(r.Session)
	}
	if p := ev.Pipeline; p != nil {
		f.Pipeline = &PipelineInfo{Service: ev.Source, Resource: p.Resource(), Rule: p.Rule, EventBus: p.EventBus,
			RuleState: p.RuleState, QueueURL: p.QueueURL, Attributes: p.Attributes}
	}
	if ev.KeyedByContent() {
		f.FindingIDBasis = "content"
	}
	return f
}

func sessionInfo(s *sessions.Session) *SessionInfo {
	info := &SessionInfo{ID: s.ID, User: s.User, Status: s.Status, Profile: s.Profile}
	if !s.StartedAt.IsZero() {
		t := s.StartedAt.UTC()
		info.StartedAt = &t
	}
	if !s.ExpiresAt.IsZero() {
		t := s.ExpiresAt.UTC()
		info.ExpiresAt = &t
	}
	return info
}

// service is the AWS service the finding's call went to.
func (f *Finding) service() string {
	if f.Pipeline != nil && f.Pipeline.Service != "" {
		return f.Pipeline.Service
	}
	return cloudtrail.STSEventSource
}

// pipelineResourceID is the ARN of the rule, or the URL of the queue, a
// pipeline call changed.
func (f *Finding) pipelineResourceID() string {
	p := f.Pipeline
	if p.QueueURL != "" {
		return p.QueueURL
	}
	name := p.Rule
	if p.EventBus != "" && p.EventBus != "default" {
		name = p.EventBus + "/" + p.Rule
	}
	return "arn:" + partition(f.Event.Region) + ":events:" + f.Event.Region + ":" + f.Event.Account + ":rule/" + name
}

// resourceType is the CloudFormation type of what a pipeline call changed.
func (p *PipelineInfo) resourceType() string {
	if p.QueueURL != "" {
		return "AWS::SQS::Queue"
	}
	return "AWS::Events::Rule"
}
