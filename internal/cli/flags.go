package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "SESSIONWATCH_"

// EnvName is the environment variable for a flag: --session-retention reads
// SESSIONWATCH_SESSION_RETENTION.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs after applying environment variables, so that a
// flag on the command line wins over its variable, which wins over the
// default. A repeatable flag (a List) takes a comma-separated variable.
func Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		v, ok := lookupEnv(EnvName(f.Name))
		if !ok {
			return
		}
		if l, isList := f.Value.(*List); isList {
			l.fromEnv = true
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					l.items = append(l.items, item)
				}
			}
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s: %w", EnvName(f.Name), e)
		}
	})
	if err != nil {
		return err
	}
	// A bad value is one line, the caller's (naming the flag), not the
	// flag package's copy of it followed by the whole usage; -help still
	// prints the usage.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	err = fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		if usage != nil {
			usage()
		} else {
			fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
	}
	return err
}

// List is a repeatable string flag. Values from the command line replace
// values from the environment.
type List struct {
	items   []string
	fromEnv bool
}

func (l *List) String() string { return strings.Join(l.items, ",") }

func (l *List) Set(s string) error {
	if l.fromEnv {
		l.items, l.fromEnv = nil, false
	}
	l.items = append(l.items, s)
	return nil
}

// Values returns the items, or def when there are none.
func (l *List) Values(def ...string) []string {
	if len(l.items) == 0 {
		return def
	}
	return l.items
}

// CSV splits a comma-separated flag value, dropping blanks.
func CSV(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Classification holds the flags that decide how events are read and judged,
// which the streamer and the backfill must share: the same event has to get
// the same verdict (and finding_id) from both.
type Classification struct {
	// Pattern is the SourceIdentity pattern ("" for Sentinel's).
	Pattern string
	// IncludeServiceCallers classifies AssumeRole calls made by AWS
	// services too.
	IncludeServiceCallers bool
}

// AddClassificationFlags registers --source-identity-pattern and
// --include-service-callers on fs.
func AddClassificationFlags(fs *flag.FlagSet) *Classification {
	c := &Classification{}
	fs.StringVar(&c.Pattern, "source-identity-pattern", "", "SourceIdentity pattern with named groups user, marker, request_id (default: Sentinel's)")
	fs.BoolVar(&c.IncludeServiceCallers, "include-service-callers", false, "also classify AssumeRole calls made by AWS services (Lambda, ECS, EMR)")
	return c
}
