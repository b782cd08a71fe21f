package classify

import (
	"fmt"
	"strings"
)

// Verdict is the classifier's answer for one in-scope event. Its string form
// is the finding's `category` field, which SIEM parsers depend on.
type Verdict string

// The verdicts of the product contract (DESIGN.md "Verdicts").
const (
	Tracked          Verdict = "tracked"
	NoSourceIdentity Verdict = "no_source_identity"
	NonSentinel      Verdict = "non_sentinel_format"
	Orphaned         Verdict = "orphaned"
	Revoked          Verdict = "revoked"
	Expired          Verdict = "expired"
	Unverifiable     Verdict = "unverifiable"
	DeniedAttempt    Verdict = "denied_attempt"
	// PipelineTampered is a change to the EventBridge rule or the queue
	// that feed the streamer (DisableRule, DeleteRule, PutRule, PutTargets,
	// RemoveTargets, SetQueueAttributes): the stream may be going blind.
	PipelineTampered Verdict = "pipeline_tampered"
)

// AllVerdicts lists every verdict of an STS call in a stable order
// (summaries, metrics). PipelineTampered, the verdict of the pipeline's own
// calls, is not among them: only the streamer classifies those by default.
func AllVerdicts() []Verdict {
	return []Verdict{Tracked, NoSourceIdentity, NonSentinel, Orphaned, Revoked, Expired, Unverifiable, DeniedAttempt}
}

// Severity orders findings. The zero value is SeverityNone (no finding).
type Severity int

const (
	SeverityNone Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"none", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads "low", "medium", "high" or "critical" (any case).
func ParseSeverity(s string) (Severity, error) {
	for i, name := range severityNames {
		if strings.EqualFold(s, name) {
			return Severity(i), nil
		}
	}
	return SeverityNone, fmt.Errorf("unknown severity %q (want low, medium, high or critical)", s)
}

// DefaultSeverity is the severity of a verdict per the product contract.
func (v Verdict) DefaultSeverity() Severity {
	switch v {
	case Revoked:
		return SeverityCritical
	case NoSourceIdentity, NonSentinel, Orphaned, Expired, PipelineTampered:
		return SeverityHigh
	case DeniedAttempt:
		return SeverityMedium
	case Unverifiable:
		return SeverityLow
	default:
		return SeverityNone
	}
}

// IsFinding reports whether the verdict produces a finding.
func (v Verdict) IsFinding() bool { return v != Tracked && v != "" }
