package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
)

// Format names a rendering of the finding model.
type Format string

// The formats every finding can be rendered in.
const (
	// FormatNative is the finding model's own JSON (Schema), the default.
	FormatNative Format = "native"
	// FormatOCSF is an OCSF Detection Finding (class_uid 2004).
	FormatOCSF Format = "ocsf"
	// FormatASFF is the AWS Security Finding Format (Security Hub).
	FormatASFF Format = "asff"
)

// Formats lists the formats in a stable order (flag help, docs).
func Formats() []Format { return []Format{FormatNative, FormatOCSF, FormatASFF} }

// ParseFormat reads a --format value; "" and "json" mean native.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "", "json":
		return FormatNative, nil
	case FormatNative, FormatOCSF, FormatASFF:
		return f, nil
	default:
		return "", fmt.Errorf("unknown format %q (want native, ocsf or asff)", s)
	}
}

// RenderConfig holds what a rendering needs beyond the finding itself.
type RenderConfig struct {
	// ProductVersion is sessionwatch's version, carried in OCSF metadata.
	// Default "dev".
	ProductVersion string
	// AccountID is the account that imports ASFF findings into Security Hub:
	// the account of the custom-product ProductArn and the findings'
	// AwsAccountId (Security Hub accepts a default-product finding only from
	// the account it names). Default: the finding's event account.
	AccountID string
	// Region is the Security Hub region of the ProductArn. Default: the
	// finding's event region.
	Region string
}

func (c RenderConfig) productVersion() string {
	if c.ProductVersion == "" {
		return "dev"
	}
	return c.ProductVersion
}

// Render encodes one finding in a format as compact JSON, without a
// trailing newline.
func Render(f *Finding, format Format, cfg RenderConfig) ([]byte, error) {
	v, err := view(f, format, cfg)
	if err != nil {
		return nil, err
	}
	b, err := encodeJSON(v)
	if err != nil {
		return nil, fmt.Errorf("render %s finding: %w", format, err)
	}
	return b, nil
}

// view is the value a format renders: the finding itself, or its OCSF or
// ASFF shape.
func view(f *Finding, format Format, cfg RenderConfig) (any, error) {
	switch format {
	case "", FormatNative:
		return f, nil
	case FormatOCSF:
		return toOCSF(f, cfg), nil
	case FormatASFF:
		return toASFF(f, cfg), nil
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

// encodeJSON is compact JSON without HTML escaping: attacker-supplied
// strings (user agents, SourceIdentities) read as they were sent, the same
// in every sink.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// titles give each verdict a human title; SIEM rules key on category, not on
// these.
var titles = map[classify.Verdict]string{
	classify.NoSourceIdentity: "Role assumed without a SourceIdentity",
	classify.NonSentinel:      "Role assumed with a foreign SourceIdentity",
	classify.Orphaned:         "Role assumed with a SourceIdentity that matches no broker session",
	classify.Revoked:          "Role assumed with a revoked broker session",
	classify.Expired:          "Role assumed with an expired broker session",
	classify.Unverifiable:     "Role assumed with a session too old to verify",
	classify.DeniedAttempt:    "Denied attempt to assume a role outside the broker",
	classify.PipelineTampered: "Change to the event pipeline that feeds sessionwatch",
}

// Title is a one-line summary of a finding: its verdict and the target role.
func (f *Finding) Title() string {
	t, ok := titles[f.Category]
	if !ok {
		t = "Untracked role session: " + string(f.Category)
	}
	switch {
	case f.Target.RoleARN != "":
		t += ": " + f.Target.RoleARN
	case f.Pipeline != nil:
		t += ": " + f.Pipeline.Resource
	}
	return t
}

// Description is the finding's reason with the who, where and when.
func (f *Finding) Description() string {
	var b strings.Builder
	b.WriteString(f.Reason)
	if b.Len() > 0 && !strings.HasSuffix(f.Reason, ".") {
		b.WriteString(".")
	}
	fmt.Fprintf(&b, " %s by %s", orDash(f.Event.Name), orDash(f.Principal.ARN))
	if f.Target.RoleARN != "" {
		fmt.Fprintf(&b, " on %s", f.Target.RoleARN)
	}
	fmt.Fprintf(&b, " in %s/%s at %s", orDash(f.Event.Account), orDash(f.Event.Region), f.Event.Time.UTC().Format("2006-01-02T15:04:05Z"))
	switch {
	case f.SourceIdentity.Value != "":
		fmt.Fprintf(&b, ", SourceIdentity %q", f.SourceIdentity.Value)
	case f.Pipeline == nil: // a pipeline call needs none
		b.WriteString(", no SourceIdentity")
	}
	if f.Event.ErrorCode != "" {
		fmt.Fprintf(&b, ", denied (%s)", f.Event.ErrorCode)
	}
	b.WriteString(".")
	return strings.TrimSpace(b.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// roleName is the last path element of a role ARN.
func roleName(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return ""
}

// partition is the AWS partition of a region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}
