package main

import (
	"io"
	"testing"
	"time"
)

// TestCheckpointScope: the scope a checkpoint is tied to ignores the order
// flags are given in, and changes with anything that decides which events
// a run reads or classifies.
func TestCheckpointScope(t *testing.T) {
	scope := func(args ...string) string {
		t.Helper()
		e := env{stderr: io.Discard, lookupEnv: func(string) (string, bool) { return "", false }, now: func() time.Time { return testNow }}
		o, err := parseOptions(append([]string{"--table", "t", "--since", "1d"}, args...), e)
		if err != nil {
			t.Fatal(err)
		}
		return o.scope()
	}
	base := scope("--regions", "us-east-1,eu-west-1", "--role", "*Admin", "--role", "*Dev")
	if got := scope("--regions", "eu-west-1,us-east-1", "--role", "*Dev", "--role", "*Admin"); got != base {
		t.Errorf("the same flags in another order: %q, want %q", got, base)
	}
	for name, args := range map[string][]string{
		"a region more":   {"--regions", "us-east-1,eu-west-1,ap-south-1", "--role", "*Admin", "--role", "*Dev"},
		"a filter less":   {"--regions", "us-east-1,eu-west-1", "--role", "*Admin"},
		"another filter":  {"--regions", "us-east-1,eu-west-1", "--role", "*Admin", "--role", "*Dev", "--account", "111122223333"},
		"event names":     {"--regions", "us-east-1,eu-west-1", "--role", "*Admin", "--role", "*Dev", "--event-names", "AssumeRole"},
		"pattern":         {"--regions", "us-east-1,eu-west-1", "--role", "*Admin", "--role", "*Dev", "--source-identity-pattern", `^(?P<user>a)(?P<marker>b)(?P<request_id>c)$`},
		"service callers": {"--regions", "us-east-1,eu-west-1", "--role", "*Admin", "--role", "*Dev", "--include-service-callers"},
		"accounts":        {"--regions", "us-east-1,eu-west-1", "--role", "*Admin", "--role", "*Dev", "--accounts", "111122223333"},
	} {
		if got := scope(args...); got == base {
			t.Errorf("%s: the scope did not change: %q", name, got)
		}
	}
}
