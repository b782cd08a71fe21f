package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// The CloudTrail record as the trail writes it (eventVersion 1.08). Field
// order follows S3-delivered records; encoding/json keeps struct order.
type record struct {
	EventVersion       string        `json:"eventVersion"`
	UserIdentity       *userIdentity `json:"userIdentity"`
	EventTime          string        `json:"eventTime"`
	EventSource        string        `json:"eventSource"`
	EventName          string        `json:"eventName"`
	AWSRegion          string        `json:"awsRegion"`
	SourceIPAddress    string        `json:"sourceIPAddress"`
	UserAgent          string        `json:"userAgent"`
	ErrorCode          string        `json:"errorCode,omitempty"`
	ErrorMessage       string        `json:"errorMessage,omitempty"`
	RequestParameters  any           `json:"requestParameters"` // nil encodes as null
	ResponseElements   any           `json:"responseElements"`
	RequestID          string        `json:"requestID,omitempty"`
	EventID            string        `json:"eventID"`
	ReadOnly           bool          `json:"readOnly"`
	Resources          []resource    `json:"resources,omitempty"`
	EventType          string        `json:"eventType"`
	ManagementEvent    bool          `json:"managementEvent"`
	RecipientAccountID string        `json:"recipientAccountId"`
	SharedEventID      string        `json:"sharedEventID,omitempty"`
	EventCategory      string        `json:"eventCategory"`
	TLSDetails         *tlsDetails   `json:"tlsDetails,omitempty"`
}

type userIdentity struct {
	Type             string          `json:"type"`
	PrincipalID      string          `json:"principalId,omitempty"`
	ARN              string          `json:"arn,omitempty"`
	AccountID        string          `json:"accountId,omitempty"`
	AccessKeyID      string          `json:"accessKeyId,omitempty"`
	UserName         string          `json:"userName,omitempty"`
	SessionContext   *sessionContext `json:"sessionContext,omitempty"`
	IdentityProvider string          `json:"identityProvider,omitempty"`
}

type sessionContext struct {
	SessionIssuer       sessionIssuer     `json:"sessionIssuer"`
	WebIDFederationData struct{}          `json:"webIdFederationData"`
	Attributes          sessionAttributes `json:"attributes"`
	SourceIdentity      string            `json:"sourceIdentity,omitempty"`
}

type sessionIssuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
}

type sessionAttributes struct {
	CreationDate     string `json:"creationDate"`
	MFAAuthenticated string `json:"mfaAuthenticated"`
}

type resource struct {
	AccountID string `json:"accountId"`
	Type      string `json:"type"`
	ARN       string `json:"ARN"`
}

type tlsDetails struct {
	TLSVersion               string `json:"tlsVersion"`
	CipherSuite              string `json:"cipherSuite"`
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
}

type credentials struct {
	AccessKeyID  string `json:"accessKeyId"`
	Expiration   string `json:"expiration"`
	SessionToken string `json:"sessionToken"`
}

type assumedRoleUser struct {
	AssumedRoleID string `json:"assumedRoleId"`
	ARN           string `json:"arn"`
}

type assumeRoleRequest struct {
	RoleARN         string `json:"roleArn"`
	RoleSessionName string `json:"roleSessionName"`
	DurationSeconds int    `json:"durationSeconds,omitempty"`
	SourceIdentity  string `json:"sourceIdentity,omitempty"`
}

type assumeRoleResponse struct {
	Credentials     credentials     `json:"credentials"`
	AssumedRoleUser assumedRoleUser `json:"assumedRoleUser"`
	SourceIdentity  string          `json:"sourceIdentity,omitempty"`
}

type samlRequest struct {
	SAMLAssertionID string `json:"sAMLAssertionID"`
	RoleSessionName string `json:"roleSessionName"`
	DurationSeconds int    `json:"durationSeconds"`
	RoleARN         string `json:"roleArn"`
	PrincipalARN    string `json:"principalArn"`
}

type samlResponse struct {
	SubjectType     string          `json:"subjectType"`
	Issuer          string          `json:"issuer"`
	Credentials     credentials     `json:"credentials"`
	NameQualifier   string          `json:"nameQualifier"`
	AssumedRoleUser assumedRoleUser `json:"assumedRoleUser"`
	Subject         string          `json:"subject"`
	Audience        string          `json:"audience"`
	SourceIdentity  string          `json:"sourceIdentity,omitempty"`
}

type webIdentityRequest struct {
	DurationSeconds int    `json:"durationSeconds"`
	RoleARN         string `json:"roleArn"`
	RoleSessionName string `json:"roleSessionName"`
}

type webIdentityResponse struct {
	Provider                    string          `json:"provider"`
	SubjectFromWebIdentityToken string          `json:"subjectFromWebIdentityToken"`
	Audience                    string          `json:"audience"`
	Credentials                 credentials     `json:"credentials"`
	AssumedRoleUser             assumedRoleUser `json:"assumedRoleUser"`
	SourceIdentity              string          `json:"sourceIdentity,omitempty"`
}

// marshal encodes v compactly without HTML escaping (as AWS does). The
// package only marshals its own types, which cannot fail.
func marshal(v any) []byte {
	var b bytes.Buffer
	b.Grow(2048)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("corpus: marshal %T: %v", v, err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// Time layouts used in records.
const (
	eventTimeLayout  = "2006-01-02T15:04:05Z"
	expirationLayout = "Jan 2, 2006, 3:04:05 PM"
)

// Deterministic identifiers derived from names (stable across seeds, as an
// account's principals are).

const awsIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func digest(parts ...string) [32]byte {
	return sha256.Sum256([]byte(strings.Join(parts, "\x00")))
}

// awsID returns prefix followed by n characters derived from parts, in the
// style of AIDA…/AROA…/AKIA… identifiers.
func awsID(prefix string, n int, parts ...string) string {
	d := digest(parts...)
	var b strings.Builder
	b.WriteString(prefix)
	for i := range n {
		b.WriteByte(awsIDAlphabet[d[i%len(d)]%32])
	}
	return b.String()
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func base62ID(n int, parts ...string) string {
	d := digest(parts...)
	var b strings.Builder
	for i := range n {
		b.WriteByte(base62[int(d[i%len(d)])%len(base62)])
	}
	return b.String()
}

// hashUUID is a version-4-shaped UUID derived from parts.
func hashUUID(parts ...string) string {
	d := digest(parts...)
	return formatUUID(binary.BigEndian.Uint64(d[:8]), binary.BigEndian.Uint64(d[8:16]))
}

func formatUUID(hi, lo uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func hashBase64(n int, parts ...string) string {
	var raw []byte
	for i := 0; len(raw) < n; i++ {
		d := digest(append(parts, fmt.Sprint(i))...)
		raw = append(raw, d[:]...)
	}
	return base64.StdEncoding.EncodeToString(raw[:n])
}
