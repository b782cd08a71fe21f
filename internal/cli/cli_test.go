package cli

import (
	"bytes"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := map[string]time.Duration{
		"7d": 7 * day, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "30s": 30 * time.Second,
		"0d": 0, "2d30m": 2*day + 30*time.Minute, " 5s ": 5 * time.Second,
	}
	for in, want := range tests {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "7", "xd", "-1d", "7days", "1d-", "99999999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{90 * day: "90d", 36 * time.Hour: "1d12h", time.Minute: "1m",
		time.Hour: "1h", 150 * time.Second: "2m30s", 1500 * time.Millisecond: "1.5s", 0: "0s", -time.Second: "-1s",
		day + 90*time.Second: "1d1m30s", 250 * time.Millisecond: "250ms"} {
		got := FormatDuration(d)
		if got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(got); d >= 0 && (err != nil || back != d) {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", d, back, err)
		}
	}
	if _, err := ParseDuration("106752d"); err == nil || !strings.Contains(err.Error(), "at most 106751d") {
		t.Errorf("ParseDuration past the limit: %v, want it named", err)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Time{
		"7d":                   now.Add(-7 * day),
		"1d12h":                now.Add(-36 * time.Hour),
		"2026-11-01":           time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T10:00:00Z": time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	}
	for in, want := range tests {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseTime("last week", now); err == nil {
		t.Error("accepted nonsense")
	}
}

func TestParseEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"SESSIONWATCH_TABLE":             "from-env",
		"SESSIONWATCH_SESSION_RETENTION": "30d",
		"SESSIONWATCH_SINK":              "stdout, file:/tmp/x",
		"SESSIONWATCH_REGION":            "eu-west-1",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	newFS := func() (*flag.FlagSet, *string, *time.Duration, *List, *string) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		table := fs.String("table", "", "")
		ret := 90 * day
		fs.Var(Duration{&ret}, "session-retention", "")
		var sinks List
		fs.Var(&sinks, "sink", "")
		region := fs.String("region", "", "")
		return fs, table, &ret, &sinks, region
	}

	fs, table, ret, sinks, region := newFS()
	if err := Parse(fs, []string{"--region", "us-east-1"}, lookup); err != nil {
		t.Fatal(err)
	}
	if *table != "from-env" || *ret != 30*day || sinks.String() != "stdout,file:/tmp/x" || *region != "us-east-1" {
		t.Errorf("env not applied or flag lost: %q %v %q %q", *table, *ret, sinks, *region)
	}

	fs, _, _, sinks, _ = newFS()
	if err := Parse(fs, []string{"--sink", "file:/a", "--sink", "file:/b"}, lookup); err != nil {
		t.Fatal(err)
	}
	if sinks.String() != "file:/a,file:/b" {
		t.Errorf("command-line sinks %q should replace the env ones", sinks)
	}

	fs, _, _, _, _ = newFS()
	env["SESSIONWATCH_SESSION_RETENTION"] = "soon"
	if err := Parse(fs, nil, lookup); err == nil {
		t.Error("bad env value accepted")
	}
}

// TestParseBadValueIsOneLine: a bad flag value comes back as an error naming
// the flag and prints nothing (the command prints it, one line); -help
// prints the usage.
func TestParseBadValueIsOneLine(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		wantErr   string
		wantUsage bool
	}{
		{args: []string{"--session-replica", "always"}, wantErr: "session-replica"},
		{args: []string{"--replica-refresh", "soon"}, wantErr: "replica-refresh"},
		{args: []string{"--nope"}, wantErr: "nope"},
		{args: []string{"--help"}, wantErr: flag.ErrHelp.Error(), wantUsage: true},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		fs.Usage = func() { fmt.Fprintln(fs.Output(), "USAGE") }
		AddReplicaFlags(fs, 0)
		err := Parse(fs, tt.args, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v: error %v, want one naming %q", tt.args, err, tt.wantErr)
		}
		if got := out.String(); (got == "USAGE\n") != tt.wantUsage || (!tt.wantUsage && got != "") {
			t.Errorf("%v: printed %q, want the usage: %v", tt.args, got, tt.wantUsage)
		}
	}
}
