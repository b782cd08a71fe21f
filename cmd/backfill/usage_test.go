package main

import (
	"strings"
	"testing"
)

// TestBadInvocationsAreOneLine: every usage or configuration mistake is
// exit 2 and one plain line on stderr naming the flag, before anything
// starts (the AWS endpoints point at a closed port: a run that started
// would say something else), and no JSON log line beside it.
func TestBadInvocationsAreOneLine(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	dir := t.TempDir()
	base := []string{"--table", "t", "--source", "file:" + dir, "--quiet"}
	for _, tt := range []struct {
		args []string
		want string // the line's start, after "backfill: "
	}{
		{[]string{"--since", "99999d"}, "--since 99999d: starts 1753-01-17, before CloudTrail's first record (2013-11-13)"},
		{[]string{"--since", "999999d"}, `--since: duration "999999d": at most 106751d (about 292 years)`},
		{[]string{"--clock-skew", "1h"}, "--clock-skew 1h: want 1s to 10m"},
		{[]string{"--clock-skew", "0"}, "--clock-skew 0s: want 1s to 10m"},
		{[]string{"--session-retention", "0"}, "--session-retention 0s: want more than 0"},
		{[]string{"--source-identity-pattern", "("}, "--source-identity-pattern: SourceIdentity pattern"},
		{[]string{"--sink", "bogus:x"}, `--sink: unknown sink "bogus"`},
		{[]string{"--sink", "webhook:https://siem.example/in"}, "--sink: webhook sink signing key"},
		{[]string{"--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{[]string{"--workers", "0"}, "--workers 0: want at least 1"},
		{[]string{"--workers", "x"}, `--workers "x": not a number`},
		{[]string{"--bogus"}, "--bogus: no such flag (see --help)"},
		{[]string{"--format", "xml"}, `--format: unknown format "xml"`},
		{[]string{"--fail-on", "nope"}, "--fail-on: unknown severity"},
		{[]string{"--event-names", ","}, "--event-names: want at least one name"},
		{[]string{"--match", "fuzzy"}, "--match: "},
	} {
		code, stdout, stderr := runRaw(nil, append(append([]string{}, base...), tt.args...)...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != exitError || len(lines) != 1 || !strings.HasPrefix(lines[0], "backfill: "+tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and one line starting %q", tt.args, code, stderr, exitError, "backfill: "+tt.want)
		}
		if stdout != "" {
			t.Errorf("%q: wrote %q on stdout", tt.args, stdout)
		}
	}
}
