package report

import (
	"errors"
	"fmt"
	"strings"
)

// MaxGlobLen bounds a filter pattern (an IAM ARN is at most 2048 characters).
const MaxGlobLen = 2048

// Glob is a filter pattern: '*' matches any run of characters, ':' and '/'
// included; every other character matches itself, ASCII letters in either
// case (IAM names are unique regardless of case). There is no '?', no
// character class and no escape: ARNs, principal ids and account ids use
// none of them. path.Match does not fit: its '*' stops at '/', and its '['
// and '\' would make ordinary characters special.
//
// The zero Glob matches nothing.
type Glob struct {
	pattern string
	// parts are the pattern split at '*', ASCII lower-cased. len(parts) is
	// 1 for a pattern without '*' (an exact, case-insensitive match).
	parts []string
}

// ParseGlob checks and compiles a pattern.
func ParseGlob(pattern string) (Glob, error) {
	switch {
	case pattern == "":
		return Glob{}, errors.New("empty pattern")
	case len(pattern) > MaxGlobLen:
		return Glob{}, fmt.Errorf("pattern of %d bytes is longer than %d", len(pattern), MaxGlobLen)
	}
	for _, r := range pattern {
		if r < 0x20 || r == 0x7f {
			return Glob{}, fmt.Errorf("pattern %q holds a control character", pattern)
		}
	}
	return Glob{pattern: pattern, parts: strings.Split(asciiLower(pattern), "*")}, nil
}

// String returns the pattern as given.
func (g Glob) String() string { return g.pattern }

// Match reports whether s matches the whole pattern.
func (g Glob) Match(s string) bool {
	if len(g.parts) == 0 {
		return false
	}
	s = asciiLower(s)
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(g.parts) == 1 {
		return s == first
	}
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	// Between the fixed ends, each middle part at its leftmost position:
	// with '*' the only wildcard, the leftmost match never loses one.
	rest := s[len(first) : len(s)-len(last)]
	for _, p := range g.parts[1 : len(g.parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

// asciiLower lower-cases ASCII letters and leaves every other byte alone; it
// allocates only when s has an upper-case ASCII letter.
func asciiLower(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// globs is a repeatable filter: a value passes when any pattern matches.
type globs []Glob

func parseGlobs(flag string, patterns []string) (globs, error) {
	var gs globs
	for _, p := range patterns {
		g, err := ParseGlob(p)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// match reports whether any value matches any pattern.
func (gs globs) match(values ...string) bool {
	for _, g := range gs {
		for _, v := range values {
			if v != "" && g.Match(v) {
				return true
			}
		}
	}
	return false
}
