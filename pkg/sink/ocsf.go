package sink

import (
	"net/netip"
	"time"
)

// OCSF constants for a Detection Finding. OCSFVersion is the schema version
// the rendering follows.
const (
	OCSFVersion         = "1.5.0"
	ocsfClassUID        = 2004 // Detection Finding
	ocsfCategoryUID     = 2    // Findings
	ocsfActivityCreate  = 1
	ocsfAccountTypeAWS  = 10 // account.type_id: AWS Account
	ocsfStatusNew       = 1
	ocsfAnalyticRule    = 1
	ocsfSeverityUnknown = 0
)

// ocsfFinding is an OCSF Detection Finding with the cloud profile.
type ocsfFinding struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity"`
	StatusID     int    `json:"status_id"`
	Status       string `json:"status"`
	Time         int64  `json:"time"`
	Message      string `json:"message"`

	Metadata    ocsfMetadata    `json:"metadata"`
	FindingInfo ocsfFindingInfo `json:"finding_info"`
	Actor       ocsfActor       `json:"actor"`
	API         ocsfAPI         `json:"api"`
	SrcEndpoint ocsfEndpoint    `json:"src_endpoint"`
	Cloud       ocsfCloud       `json:"cloud"`
	Resources   []ocsfResource  `json:"resources,omitempty"`
	Unmapped    ocsfUnmapped    `json:"unmapped"`
}

type ocsfMetadata struct {
	Version  string      `json:"version"`
	Product  ocsfProduct `json:"product"`
	UID      string      `json:"uid"`
	Profiles []string    `json:"profiles"`
	LogName  string      `json:"log_name"`
}

type ocsfProduct struct {
	Name       string       `json:"name"`
	VendorName string       `json:"vendor_name"`
	Version    string       `json:"version"`
	Feature    *ocsfFeature `json:"feature,omitempty"`
}

type ocsfFeature struct {
	Name string `json:"name"`
}

type ocsfFindingInfo struct {
	UID           string       `json:"uid"`
	Title         string       `json:"title"`
	Desc          string       `json:"desc"`
	Types         []string     `json:"types"`
	CreatedTime   int64        `json:"created_time"`
	FirstSeenTime int64        `json:"first_seen_time"`
	LastSeenTime  int64        `json:"last_seen_time"`
	DataSources   []string     `json:"data_sources"`
	Analytic      ocsfAnalytic `json:"analytic"`
}

type ocsfAnalytic struct {
	UID    string `json:"uid"`
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
}

type ocsfActor struct {
	User    ocsfUser     `json:"user"`
	Session *ocsfSession `json:"session,omitempty"`
}

type ocsfUser struct {
	Type          string       `json:"type,omitempty"`
	UID           string       `json:"uid,omitempty"`
	UIDAlt        string       `json:"uid_alt,omitempty"`
	CredentialUID string       `json:"credential_uid,omitempty"`
	Account       *ocsfAccount `json:"account,omitempty"`
}

type ocsfSession struct {
	Issuer string `json:"issuer"`
}

type ocsfAccount struct {
	UID    string `json:"uid"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
}

type ocsfAPI struct {
	Operation string          `json:"operation"`
	Service   ocsfService     `json:"service"`
	Request   ocsfAPIRequest  `json:"request"`
	Response  *ocsfAPIReponse `json:"response,omitempty"`
}

type ocsfService struct {
	Name string `json:"name"`
}

type ocsfAPIRequest struct {
	UID string `json:"uid"`
}

type ocsfAPIReponse struct {
	Error string `json:"error"`
}

type ocsfEndpoint struct {
	IP   string `json:"ip,omitempty"`
	Name string `json:"name,omitempty"`
}

type ocsfCloud struct {
	Provider string       `json:"provider"`
	Region   string       `json:"region,omitempty"`
	Account  *ocsfAccount `json:"account,omitempty"`
}

type ocsfResource struct {
	UID    string `json:"uid"`
	Name   string `json:"name,omitempty"`
	Type   string `json:"type"`
	Region string `json:"region,omitempty"`
}

// ocsfUnmapped keeps what OCSF has no attribute for, under the native
// field names.
type ocsfUnmapped struct {
	Schema         string             `json:"schema"`
	Category       string             `json:"category"`
	Detector       Detector           `json:"detector"`
	EventID        string             `json:"event_id"`
	SharedEventID  string             `json:"shared_event_id,omitempty"`
	UserAgent      string             `json:"user_agent,omitempty"`
	Target         TargetInfo         `json:"target"`
	SourceIdentity SourceIdentityInfo `json:"source_identity"`
	Session        *SessionInfo       `json:"session,omitempty"`
	Pipeline       *PipelineInfo      `json:"pipeline,omitempty"`
}

// ocsfSeverity maps a finding severity to OCSF severity_id and its caption.
func ocsfSeverity(s string) (int, string) {
	switch s {
	case "low":
		return 2, "Low"
	case "medium":
		return 3, "Medium"
	case "high":
		return 4, "High"
	case "critical":
		return 5, "Critical"
	default:
		return ocsfSeverityUnknown, "Unknown"
	}
}

func epochMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func toOCSF(f *Finding, cfg RenderConfig) *ocsfFinding {
	sevID, sev := ocsfSeverity(f.Severity)
	o := &ocsfFinding{
		ActivityID:   ocsfActivityCreate,
		ActivityName: "Create",
		CategoryUID:  ocsfCategoryUID,
		CategoryName: "Findings",
		ClassUID:     ocsfClassUID,
		ClassName:    "Detection Finding",
		TypeUID:      ocsfClassUID*100 + ocsfActivityCreate,
		TypeName:     "Detection Finding: Create",
		SeverityID:   sevID,
		Severity:     sev,
		StatusID:     ocsfStatusNew,
		Status:       "New",
		Time:         epochMillis(f.DetectedAt),
		Message:      f.Reason,
		Metadata: ocsfMetadata{
			Version: OCSFVersion,
			Product: ocsfProduct{
				Name: "sessionwatch", VendorName: "sessionwatch", Version: cfg.productVersion(),
			},
			UID:      f.FindingID,
			Profiles: []string{"cloud"},
			LogName:  "sessionwatch findings",
		},
		FindingInfo: ocsfFindingInfo{
			UID:           f.FindingID,
			Title:         f.Title(),
			Desc:          f.Description(),
			Types:         []string{string(f.Category)},
			CreatedTime:   epochMillis(f.DetectedAt),
			FirstSeenTime: epochMillis(f.Event.Time),
			LastSeenTime:  epochMillis(f.Event.Time),
			DataSources:   []string{"CloudTrail"},
			Analytic: ocsfAnalytic{
				UID: string(f.Category), Name: string(f.Category), TypeID: ocsfAnalyticRule, Type: "Rule",
			},
		},
		Actor: ocsfActor{User: ocsfUser{
			Type:          f.Principal.Type,
			UID:           f.Principal.ARN,
			UIDAlt:        f.Principal.PrincipalID,
			CredentialUID: f.Principal.AccessKeyID,
		}},
		API: ocsfAPI{
			Operation: f.Event.Name,
			Service:   ocsfService{Name: f.service()},
			Request:   ocsfAPIRequest{UID: f.Event.RequestID},
		},
		Cloud: ocsfCloud{Provider: "AWS", Region: f.Event.Region},
		Unmapped: ocsfUnmapped{
			Schema:         f.Schema,
			Category:       string(f.Category),
			Detector:       f.Detector,
			EventID:        f.Event.ID,
			SharedEventID:  f.Event.SharedEventID,
			UserAgent:      f.Event.UserAgent,
			Target:         f.Target,
			SourceIdentity: f.SourceIdentity,
			Session:        f.Session,
			Pipeline:       f.Pipeline,
		},
	}
	if f.Detector != "" {
		o.Metadata.Product.Feature = &ocsfFeature{Name: string(f.Detector)}
	}
	if f.Principal.AccountID != "" {
		o.Actor.User.Account = &ocsfAccount{UID: f.Principal.AccountID, TypeID: ocsfAccountTypeAWS, Type: "AWS Account"}
	}
	if f.Principal.SessionIssuerARN != "" {
		o.Actor.Session = &ocsfSession{Issuer: f.Principal.SessionIssuerARN}
	}
	if f.Event.ErrorCode != "" {
		o.API.Response = &ocsfAPIReponse{Error: f.Event.ErrorCode}
	}
	// src_endpoint.ip must be an address; CloudTrail also writes service
	// names ("lambda.amazonaws.com", "AWS Internal") there.
	if _, err := netip.ParseAddr(f.Event.SourceIP); err == nil {
		o.SrcEndpoint.IP = f.Event.SourceIP
	} else {
		o.SrcEndpoint.Name = f.Event.SourceIP
	}
	if f.Event.Account != "" {
		o.Cloud.Account = &ocsfAccount{UID: f.Event.Account, TypeID: ocsfAccountTypeAWS, Type: "AWS Account"}
	}
	if f.Target.RoleARN != "" {
		o.Resources = append(o.Resources, ocsfResource{
			UID: f.Target.RoleARN, Name: roleName(f.Target.RoleARN), Type: "AWS::IAM::Role", Region: f.Event.Region,
		})
	}
	if p := f.Pipeline; p != nil {
		o.Resources = append(o.Resources, ocsfResource{UID: f.pipelineResourceID(), Name: p.Resource, Type: p.resourceType(), Region: f.Event.Region})
	}
	if f.Target.AssumedRoleARN != "" {
		o.Resources = append(o.Resources, ocsfResource{
			UID: f.Target.AssumedRoleARN, Name: f.Target.RoleSessionName, Type: "AWS::STS::AssumedRole", Region: f.Event.Region,
		})
	}
	return o
}
