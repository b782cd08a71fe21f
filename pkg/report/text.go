package report

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable replaces what a terminal would act on rather than show:
// control characters (ESC starts an ANSI sequence, CR and BS overwrite),
// bidirectional overrides (they reorder what follows) and invalid UTF-8.
// SourceIdentity, user agent and ARNs are attacker-controlled.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if !printableRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !printableRune(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func printableRune(r rune) bool {
	switch {
	case r == utf8.RuneError:
		return false
	case unicode.IsControl(r):
		return false
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
		return false // zero-width, bidi marks, embeddings, overrides and isolates
	}
	return true
}

// truncateEnd shortens s to at most n runes, ending in "…".
func truncateEnd(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// truncateMiddle shortens s to at most n runes, keeping both ends (an ARN's
// account and its role or session name): "arn:aws:iam::1…role/Admin".
func truncateMiddle(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 5 {
		return truncateEnd(s, n)
	}
	r := []rune(s)
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// truncateARN shortens an ARN to at most n runes, keeping its
// "arn:partition:service:region:account:" prefix whole and cutting the
// resource in the middle; anything else is cut in the middle.
func truncateARN(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n || !strings.HasPrefix(s, "arn:") {
		return truncateMiddle(s, n)
	}
	i, colons := 0, 0
	for ; i < len(s) && colons < 5; i++ {
		if s[i] == ':' {
			colons++
		}
	}
	prefix := s[:i]
	room := n - utf8.RuneCountInString(prefix)
	if colons < 5 || room < 12 {
		return truncateMiddle(s, n)
	}
	return prefix + truncateMiddle(s[i:], room)
}

// thousands formats n with comma separators: 12,345.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// percent formats a rate as "61.2%", or "n/a".
func percent(rate float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*rate)
}
