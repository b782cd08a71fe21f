package sink

import (
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"
)

// ASFF limits (Security Hub BatchImportFindings and the ASFF guidelines).
const (
	ASFFSchemaVersion   = "2018-10-08"
	ASFFMaxFindingBytes = 240 * 1024 // one finding
	ASFFMaxPerCall      = 100        // findings per BatchImportFindings call
	asffMaxTitle        = 256        // characters
	asffMaxDescription  = 1024       // characters
)

// asffFinding is an AWS Security Finding Format finding.
type asffFinding struct {
	SchemaVersion         string             `json:"SchemaVersion"`
	ID                    string             `json:"Id"`
	ProductArn            string             `json:"ProductArn"`
	ProductName           string             `json:"ProductName"`
	CompanyName           string             `json:"CompanyName"`
	GeneratorID           string             `json:"GeneratorId"`
	AwsAccountID          string             `json:"AwsAccountId"`
	Region                string             `json:"Region,omitempty"`
	Types                 []string           `json:"Types"`
	CreatedAt             string             `json:"CreatedAt"`
	UpdatedAt             string             `json:"UpdatedAt"`
	FirstObservedAt       string             `json:"FirstObservedAt,omitempty"`
	LastObservedAt        string             `json:"LastObservedAt,omitempty"`
	Severity              asffSeverity       `json:"Severity"`
	Title                 string             `json:"Title"`
	Description           string             `json:"Description"`
	Resources             []asffResource     `json:"Resources"`
	FindingProviderFields asffProviderFields `json:"FindingProviderFields"`
	ProductFields         map[string]string  `json:"ProductFields,omitempty"`
	RecordState           string             `json:"RecordState"`
	Action                *asffAction        `json:"Action,omitempty"`
}

type asffSeverity struct {
	Label    string `json:"Label"`
	Original string `json:"Original,omitempty"`
}

type asffResource struct {
	Type      string               `json:"Type"`
	ID        string               `json:"Id"`
	Partition string               `json:"Partition,omitempty"`
	Region    string               `json:"Region,omitempty"`
	Details   *asffResourceDetails `json:"Details,omitempty"`
}

type asffResourceDetails struct {
	AwsIamRole *asffIamRole `json:"AwsIamRole,omitempty"`
}

type asffIamRole struct {
	RoleName string `json:"RoleName,omitempty"`
}

type asffProviderFields struct {
	Severity asffSeverity `json:"Severity"`
	Types    []string     `json:"Types"`
}

type asffAction struct {
	ActionType       string          `json:"ActionType"`
	AwsAPICallAction asffAPICallInfo `json:"AwsApiCallAction"`
}

type asffAPICallInfo struct {
	API             string        `json:"Api"`
	ServiceName     string        `json:"ServiceName"`
	CallerType      string        `json:"CallerType"`
	RemoteIPDetails *asffRemoteIP `json:"RemoteIpDetails,omitempty"`
	FirstSeen       string        `json:"FirstSeen,omitempty"`
	LastSeen        string        `json:"LastSeen,omitempty"`
}

type asffRemoteIP struct {
	IPAddressV4 string `json:"IpAddressV4"`
}

// asffTime is ASFF's timestamp form (RFC 3339, UTC, milliseconds).
func asffTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// ProductARN is the ARN of the default custom product of an account, the
// only ProductArn an account may import its own findings under.
func ProductARN(region, account string) string {
	return "arn:" + partition(region) + ":securityhub:" + region + ":" + account + ":product/" + account + "/default"
}

func asffLabel(severity string) string {
	switch severity {
	case "low", "medium", "high", "critical":
		return strings.ToUpper(severity)
	default:
		return "INFORMATIONAL"
	}
}

func toASFF(f *Finding, cfg RenderConfig) *asffFinding {
	account := cfg.AccountID
	if account == "" {
		account = f.Event.Account
	}
	region := cfg.Region
	if region == "" {
		region = f.Event.Region
	}
	types := []string{"TTPs/Defense Evasion/" + string(f.Category)}
	sev := asffSeverity{Label: asffLabel(f.Severity), Original: f.Severity}
	a := &asffFinding{
		SchemaVersion:         ASFFSchemaVersion,
		ID:                    f.FindingID,
		ProductArn:            ProductARN(region, account),
		ProductName:           "sessionwatch",
		CompanyName:           "sessionwatch",
		GeneratorID:           "sessionwatch/" + string(f.Category),
		AwsAccountID:          account,
		Region:                region,
		Types:                 types,
		CreatedAt:             asffTime(f.DetectedAt),
		UpdatedAt:             asffTime(f.DetectedAt),
		FirstObservedAt:       asffTime(f.Event.Time),
		LastObservedAt:        asffTime(f.Event.Time),
		Severity:              sev,
		Title:                 truncate(f.Title(), asffMaxTitle),
		Description:           truncate(f.Description(), asffMaxDescription),
		FindingProviderFields: asffProviderFields{Severity: sev, Types: types},
		RecordState:           "ACTIVE",
		ProductFields:         asffProductFields(f),
	}
	switch {
	case f.Pipeline != nil:
		typ := "Other"
		if f.Pipeline.QueueURL != "" {
			typ = "AwsSqsQueue"
		}
		a.Resources = []asffResource{{Type: typ, ID: f.pipelineResourceID(), Partition: partition(f.Event.Region), Region: f.Event.Region}}
	case f.Target.RoleARN != "":
		a.Resources = []asffResource{{
			Type: "AwsIamRole", ID: f.Target.RoleARN, Partition: partition(f.Event.Region), Region: f.Event.Region,
			Details: &asffResourceDetails{AwsIamRole: &asffIamRole{RoleName: roleName(f.Target.RoleARN)}},
		}}
	default:
		// Resources is required: without a role, the account is what is at risk.
		a.Resources = []asffResource{{
			Type: "AwsAccount", ID: "AWS::::Account:" + f.Event.Account, Partition: partition(f.Event.Region), Region: f.Event.Region,
		}}
	}
	if f.Event.Name != "" {
		call := asffAPICallInfo{
			API: f.Event.Name, ServiceName: f.service(), CallerType: "remoteip",
			FirstSeen: asffTime(f.Event.Time), LastSeen: asffTime(f.Event.Time),
		}
		if ip, err := netip.ParseAddr(f.Event.SourceIP); err == nil && ip.Is4() {
			call.RemoteIPDetails = &asffRemoteIP{IPAddressV4: ip.String()}
		} else if err != nil {
			call.CallerType = "domain"
		}
		a.Action = &asffAction{ActionType: "AWS_API_CALL", AwsAPICallAction: call}
	}
	return a
}

// asffProductFields carries the native fields ASFF has no place for, under
// "sessionwatch/" keys (ProductFields: at most 50 pairs).
func asffProductFields(f *Finding) map[string]string {
	m := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			m["sessionwatch/"+k] = truncate(v, 2048)
		}
	}
	put("schema", f.Schema)
	put("category", string(f.Category))
	put("detector", string(f.Detector))
	put("reason", f.Reason)
	put("event_id", f.Event.ID)
	put("event_account", f.Event.Account)
	put("request_id", f.Event.RequestID)
	put("shared_event_id", f.Event.SharedEventID)
	put("source_ip", f.Event.SourceIP)
	put("user_agent", f.Event.UserAgent)
	put("error_code", f.Event.ErrorCode)
	put("principal_arn", f.Principal.ARN)
	put("principal_access_key_id", f.Principal.AccessKeyID)
	put("session_issuer_arn", f.Principal.SessionIssuerARN)
	put("role_session_name", f.Target.RoleSessionName)
	put("assumed_role_arn", f.Target.AssumedRoleARN)
	put("issued_access_key_id", f.Target.AccessKeyID)
	put("source_identity", f.SourceIdentity.Value)
	put("source_identity_origin", string(f.SourceIdentity.Origin))
	if p := f.Pipeline; p != nil {
		put("pipeline_resource", p.Resource)
		put("pipeline_rule_state", p.RuleState)
		put("pipeline_attributes", strings.Join(p.Attributes, ","))
	}
	if f.Session != nil {
		put("session_id", f.Session.ID)
		put("session_status", f.Session.Status)
		put("session_profile", f.Session.Profile)
	}
	return m
}

// sdk converts the rendering to the Security Hub SDK's type.
func (a *asffFinding) sdk() shtypes.AwsSecurityFinding {
	s := shtypes.AwsSecurityFinding{
		SchemaVersion:   aws.String(a.SchemaVersion),
		Id:              aws.String(a.ID),
		ProductArn:      aws.String(a.ProductArn),
		ProductName:     aws.String(a.ProductName),
		CompanyName:     aws.String(a.CompanyName),
		GeneratorId:     aws.String(a.GeneratorID),
		AwsAccountId:    aws.String(a.AwsAccountID),
		Types:           a.Types,
		CreatedAt:       aws.String(a.CreatedAt),
		UpdatedAt:       aws.String(a.UpdatedAt),
		FirstObservedAt: optString(a.FirstObservedAt),
		LastObservedAt:  optString(a.LastObservedAt),
		Region:          optString(a.Region),
		Severity:        &shtypes.Severity{Label: shtypes.SeverityLabel(a.Severity.Label), Original: optString(a.Severity.Original)},
		Title:           aws.String(a.Title),
		Description:     aws.String(a.Description),
		FindingProviderFields: &shtypes.FindingProviderFields{
			Severity: &shtypes.FindingProviderSeverity{Label: shtypes.SeverityLabel(a.FindingProviderFields.Severity.Label), Original: optString(a.FindingProviderFields.Severity.Original)},
			Types:    a.FindingProviderFields.Types,
		},
		ProductFields: a.ProductFields,
		RecordState:   shtypes.RecordState(a.RecordState),
	}
	for _, r := range a.Resources {
		res := shtypes.Resource{Type: aws.String(r.Type), Id: aws.String(r.ID), Partition: shtypes.Partition(r.Partition), Region: optString(r.Region)}
		if r.Details != nil && r.Details.AwsIamRole != nil {
			res.Details = &shtypes.ResourceDetails{AwsIamRole: &shtypes.AwsIamRoleDetails{RoleName: optString(r.Details.AwsIamRole.RoleName)}}
		}
		s.Resources = append(s.Resources, res)
	}
	if a.Action != nil {
		c := a.Action.AwsAPICallAction
		call := &shtypes.AwsApiCallAction{
			Api: aws.String(c.API), ServiceName: aws.String(c.ServiceName), CallerType: aws.String(c.CallerType),
			FirstSeen: optString(c.FirstSeen), LastSeen: optString(c.LastSeen),
		}
		if c.RemoteIPDetails != nil {
			call.RemoteIpDetails = &shtypes.ActionRemoteIpDetails{IpAddressV4: aws.String(c.RemoteIPDetails.IPAddressV4)}
		}
		s.Action = &shtypes.Action{ActionType: aws.String(a.Action.ActionType), AwsApiCallAction: call}
	}
	return s
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}
