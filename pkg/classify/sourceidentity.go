package classify

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// SentinelPattern is Sentinel's SourceIdentity format: the current
// sentinel:<user>:<marker>:<request-id> (marker "direct" or 8 lowercase hex)
// and the legacy sentinel:<user>:<request-id>. Other brokers configure their
// own pattern with the same named groups.
const SentinelPattern = `^sentinel:(?P<user>[A-Za-z0-9]{1,20}):(?:(?P<marker>direct|[0-9a-f]{8}):)?(?P<request_id>[0-9a-f]{8})$`

// Group names a custom pattern may use; "user" is required.
const (
	groupUser      = "user"
	groupMarker    = "marker"
	groupRequestID = "request_id"
)

// ParsedIdentity is a SourceIdentity split into its parts.
type ParsedIdentity struct {
	Value     string
	User      string
	Marker    string
	RequestID string
}

// ErrFormat matches every FormatError.
var ErrFormat = errors.New("SourceIdentity format")

// FormatError says why a SourceIdentity does not parse. NearMiss is set when
// it carries the expected prefix, the kind of value a forger or a broken
// broker produces.
type FormatError struct {
	Value    string
	NearMiss bool
	Reason   string
}

func (e *FormatError) Error() string {
	if e.NearMiss {
		return "near miss: " + e.Reason
	}
	return e.Reason
}
func (e *FormatError) Is(t error) bool { return t == ErrFormat }

// Parser parses SourceIdentity values against one pattern. It is safe for
// concurrent use.
type Parser struct {
	pattern  string
	re       *regexp.Regexp
	prefix   string // literal prefix every match starts with
	sentinel bool   // the default pattern: parsed by hand, with precise near-miss reasons
	user     int
	marker   int
	request  int
}

// NewParser compiles pattern, which must have a named group "user" and may
// have "marker" and "request_id". An empty pattern is SentinelPattern.
func NewParser(pattern string) (*Parser, error) {
	if pattern == "" {
		pattern = SentinelPattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("SourceIdentity pattern: %w", err)
	}
	p := &Parser{pattern: pattern, re: re, sentinel: pattern == SentinelPattern}
	p.user, p.marker, p.request = re.SubexpIndex(groupUser), re.SubexpIndex(groupMarker), re.SubexpIndex(groupRequestID)
	if p.user < 0 {
		return nil, fmt.Errorf("SourceIdentity pattern %q has no (?P<user>…) group", pattern)
	}
	p.prefix, _ = re.LiteralPrefix()
	if p.prefix == "" {
		p.prefix = literalPrefix(pattern)
	}
	return p, nil
}

// Pattern returns the pattern the parser was built from.
func (p *Parser) Pattern() string { return p.pattern }

// Parse splits si into its parts, or returns a *FormatError.
func (p *Parser) Parse(si string) (ParsedIdentity, error) {
	if p.sentinel {
		return parseSentinel(si)
	}
	m := p.re.FindStringSubmatch(si)
	if m == nil {
		if p.prefix != "" && strings.HasPrefix(si, p.prefix) {
			return ParsedIdentity{}, &FormatError{Value: si, NearMiss: true,
				Reason: fmt.Sprintf("starts with %q but does not match the pattern %s", p.prefix, p.pattern)}
		}
		return ParsedIdentity{}, &FormatError{Value: si, Reason: "does not match the pattern " + p.pattern}
	}
	out := ParsedIdentity{Value: si, User: m[p.user]}
	if p.marker >= 0 {
		out.Marker = m[p.marker]
	}
	if p.request >= 0 {
		out.RequestID = m[p.request]
	}
	if out.User == "" {
		return ParsedIdentity{}, &FormatError{Value: si, NearMiss: true, Reason: "the pattern matched an empty user"}
	}
	return out, nil
}

// literalPrefix reads the literal characters after a leading ^, for patterns
// whose LiteralPrefix is empty because of the anchor.
func literalPrefix(pattern string) string {
	rest, ok := strings.CutPrefix(pattern, "^")
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, r := range rest {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

const sentinelPrefix = "sentinel:"

// parseSentinel is SentinelPattern written out by hand: it is on the hot path
// and it can say which part of a near miss is wrong. FuzzSentinelParser
// checks that it accepts exactly what the pattern accepts.
func parseSentinel(si string) (ParsedIdentity, error) {
	rest, ok := strings.CutPrefix(si, sentinelPrefix)
	if !ok {
		return ParsedIdentity{}, &FormatError{Value: si, Reason: fmt.Sprintf("does not start with %q", sentinelPrefix)}
	}
	near := func(format string, args ...any) (ParsedIdentity, error) {
		return ParsedIdentity{}, &FormatError{Value: si, NearMiss: true, Reason: fmt.Sprintf(format, args...)}
	}
	// Split by hand: strings.Split would allocate on every event.
	fields := strings.Count(rest, ":") + 1
	var user, marker, request string
	switch fields {
	case 2:
		user, request, _ = strings.Cut(rest, ":")
	case 3:
		var tail string
		user, tail, _ = strings.Cut(rest, ":")
		marker, request, _ = strings.Cut(tail, ":")
	default:
		return near("has the %q prefix but %d fields after it, want sentinel:<user>:<marker>:<request-id>", sentinelPrefix, fields)
	}
	if !isSentinelUser(user) {
		return near("user %q is not 1-20 ASCII letters and digits", bounded(user))
	}
	if fields == 3 && marker != "direct" && !isLowerHex8(marker) {
		return near("marker %q is neither \"direct\" nor 8 lowercase hex digits", bounded(marker))
	}
	if !isLowerHex8(request) {
		return near("request-id %q is not 8 lowercase hex digits", bounded(request))
	}
	return ParsedIdentity{Value: si, User: user, Marker: marker, RequestID: request}, nil
}

func isSentinelUser(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func isLowerHex8(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// bounded shortens attacker-supplied parts quoted in reasons.
func bounded(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
