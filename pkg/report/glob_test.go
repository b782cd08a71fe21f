package report

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlobMatch(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/team/SentinelAdmin"
	tests := []struct {
		pattern, value string
		want           bool
	}{
		{role, role, true},
		{"ARN:AWS:IAM::111122223333:ROLE/TEAM/sentineladmin", role, true}, // IAM names ignore case
		{role, role + "2", false},
		{role, "x" + role, false},
		{"*", role, true},
		{"*", "", true},
		{"**", role, true},
		{"*SentinelAdmin", role, true},
		{"*Admin*", role, true},
		{"*admin", role, true},
		{"arn:aws:iam::*:role/*", role, true},              // '*' crosses ':' and '/'
		{"arn:aws:iam::*:role/SentinelAdmin", role, false}, // the role's path is part of its ARN
		{"arn:aws:iam::*:role/*SentinelAdmin", role, true},
		{"arn:aws:iam::*:role/team/Sentinel*", role, true},
		{"arn:aws:iam::444455556666:*", role, false},
		{"arn:aws:iam::111122223333:*", role, true},
		{"*:role/team/*", role, true},
		{"*:role/other/*", role, false},
		{"a*a", "a", false}, // the two ends may not overlap
		{"a*a", "aa", true},
		{"ab*ba", "aba", false},
		{"*ab*ab*", "xabyab", true},
		{"*ab*ab*", "xaby", false},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acb", false},
		{"[x]", "[x]", true}, // no character classes
		{"a?c", "abc", false},
		{"a?c", "a?c", true},
		{`a\*`, `a\bc`, true},    // no escapes: '\' is literal, '*' still a wildcard
		{"ÄRN*", "ärn:x", false}, // only ASCII letters fold
		{"ÄRN*", "ÄRN:x", true},
		{"AROAEXAMPLE:*", "AROAEXAMPLE:alice", true},
	}
	for _, tt := range tests {
		g, err := ParseGlob(tt.pattern)
		if err != nil {
			t.Fatalf("ParseGlob(%q): %v", tt.pattern, err)
		}
		if got := g.Match(tt.value); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.value, got, tt.want)
		}
		if g.String() != tt.pattern {
			t.Errorf("String() = %q, want %q", g.String(), tt.pattern)
		}
	}
}

func TestParseGlobRejects(t *testing.T) {
	for _, p := range []string{"", "a\nb", "a\x1b[2Jb", "a\x7f", strings.Repeat("a", MaxGlobLen+1)} {
		if _, err := ParseGlob(p); err == nil {
			t.Errorf("ParseGlob(%q) accepted", p)
		}
	}
	if (Glob{}).Match("") || (Glob{}).Match("x") {
		t.Error("the zero Glob matched")
	}
}

// globRegexp is an independent model of a Glob: the parts between '*'
// quoted, joined by ".*", matched against ASCII-lower-cased input.
func globRegexp(pattern string) *regexp.Regexp {
	parts := strings.Split(strings.ToLower(pattern), "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzGlob: a pattern is user input. Matching never panics, agrees with a
// regular-expression model, and a pattern matches itself (a pattern
// without '*' matches only itself, in any case).
func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"arn:aws:iam::*:role/*", "arn:aws:iam::111122223333:role/Admin"},
		{"*Admin*", "arn:aws:iam::1:role/SentinelAdmin"},
		{"a*a", "a"}, {"**", ""}, {"*ab*ab*", "xabyab"}, {"ÄRN*", "ärn"}, {"[*]", "[x]"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		g, err := ParseGlob(pattern)
		if err != nil {
			return
		}
		got := g.Match(value)
		if isASCII(pattern) && isASCII(value) {
			// strings.ToLower is ASCII-only on ASCII input: same folding.
			if want := globRegexp(pattern).MatchString(strings.ToLower(value)); got != want {
				t.Fatalf("%q.Match(%q) = %v, regexp model says %v", pattern, value, got, want)
			}
		}
		if !g.Match(pattern) {
			t.Fatalf("%q does not match itself", pattern)
		}
		if !strings.Contains(pattern, "*") && got != (asciiLower(pattern) == asciiLower(value)) {
			t.Fatalf("literal %q.Match(%q) = %v", pattern, value, got)
		}
	})
}
