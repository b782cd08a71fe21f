package report

import (
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// GapSchema names the version of a Gap's JSON line.
const GapSchema = "sessionwatch.gap/v1"

// Gap is one in-scope CloudTrail event that the streamer's verdict log
// lacks, with the verdict the reconciliation gave it. Its JSON field names
// are a contract, like a finding's.
type Gap struct {
	Schema    string    `json:"schema"`
	EventID   string    `json:"event_id"`
	EventName string    `json:"event_name"`
	EventTime time.Time `json:"event_time"`
	Account   string    `json:"account"`
	Region    string    `json:"region"`
	CallerARN string    `json:"caller_arn"`
	RoleARN   string    `json:"target_role_arn"`
	Verdict   string    `json:"verdict"`
	// Severity and FindingID are set when the verdict is a finding: the
	// finding_id is the one the streamer would have given the event.
	Severity  string `json:"severity,omitempty"`
	FindingID string `json:"finding_id,omitempty"`
}

// NewGap describes a missed event and its classification.
func NewGap(ev *cloudtrail.Event, r classify.Result) Gap {
	g := Gap{Schema: GapSchema, EventID: ev.ID, EventName: ev.Name, EventTime: ev.Time.UTC(), Account: ev.Account,
		Region: ev.Region, CallerARN: ev.Caller.ARN, RoleARN: ev.TargetRoleARN, Verdict: string(r.Verdict)}
	if r.IsFinding() {
		g.Severity, g.FindingID = r.Severity.String(), r.FindingID
	}
	return g
}
