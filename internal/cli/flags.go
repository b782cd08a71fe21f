package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
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
		return err
	}
	return flagError(err)
}

// flagError restates the flag package's errors with the flag as it is
// written on the command line ("-workers" becomes "--workers").
func flagError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Errorf("--%s: no such flag (see --help)", strings.TrimPrefix(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s: needs a value", strings.TrimPrefix(name, "-"))
	}
	// invalid value "x" for flag -workers: parse error
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if value, rest, ok := strings.Cut(rest, " for flag -"); ok {
			name, why, _ := strings.Cut(rest, ": ")
			if why == "parse error" {
				why = "not a number"
			}
			if strings.Contains(why, value) {
				return fmt.Errorf("--%s: %s", name, why) // the value is quoted already
			}
			return fmt.Errorf("--%s %s: %s", name, value, why)
		}
	}
	return err
}

// LogLevel reads --log-level.
func LogLevel(s string) (zerolog.Level, error) {
	switch l, err := zerolog.ParseLevel(strings.TrimSpace(s)); {
	case err == nil && l >= zerolog.DebugLevel && l <= zerolog.ErrorLevel:
		return l, nil
	default:
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
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

// Classification holds the flags that decide which events are read and how
// they are judged, which the streamer and the backfill must share: the same
// event has to get the same verdict (and finding_id) from both. Both
// commands register them with AddClassificationFlags, so their names, help
// and defaults cannot drift apart.
type Classification struct {
	// Pattern is the SourceIdentity pattern ("" for Sentinel's).
	Pattern string
	// IncludeServiceCallers classifies AssumeRole calls made by AWS
	// services too.
	IncludeServiceCallers bool
	// Retention and ClockSkew are --session-retention and --clock-skew.
	Retention, ClockSkew time.Duration
	// Accounts and EventNames are --accounts and --event-names as given
	// (comma-separated); Check splits them.
	Accounts, EventNames string
	// Match is --match as given; Check parses it into Strategies.
	Match      string
	Strategies []sessions.Strategy
}

// AddClassificationFlags registers the classification flags on fs.
func AddClassificationFlags(fs *flag.FlagSet) *Classification {
	c := &Classification{Retention: classify.DefaultRetention, ClockSkew: classify.DefaultClockSkew}
	fs.StringVar(&c.Pattern, "source-identity-pattern", "", "SourceIdentity pattern with named groups user, marker, request_id (default: Sentinel's)")
	fs.BoolVar(&c.IncludeServiceCallers, "include-service-callers", false, "also classify AssumeRole calls made by AWS services (Lambda, ECS, EMR)")
	fs.Var(Duration{D: &c.Retention}, "session-retention", "how long the store keeps a session; an unmatched event older than this is unverifiable, not orphaned")
	fs.Var(Duration{D: &c.ClockSkew}, "clock-skew", "tolerance in time comparisons")
	fs.StringVar(&c.Accounts, "accounts", "", "comma-separated account ids an event may come from (default: every account); "+
		"backfill: org for every active account of the organization, and with --assume-role-name the accounts read")
	fs.StringVar(&c.EventNames, "event-names", strings.Join(cloudtrail.DefaultEventNames(), ","), "comma-separated STS event names to classify (backfill lookup: one query each)")
	fs.StringVar(&c.Match, "match", "exact,user-time", "session match strategies, tried in order")
	return c
}

// Check validates the classification flags, naming the flag at fault: a
// bad value is a usage error before anything starts, not a failure of the
// classifier once running. It parses --match.
func (c *Classification) Check() error {
	if c.Retention <= 0 {
		return fmt.Errorf("--session-retention %s: want more than 0", FormatDuration(c.Retention))
	}
	// Zero is refused, not read as the default as the packages do:
	// CloudTrail times have whole seconds and session times do not, so no
	// tolerance at all would flag sessions that began within the second.
	if c.ClockSkew < time.Second || c.ClockSkew > classify.MaxClockSkew {
		return fmt.Errorf("--clock-skew %s: want 1s to %s", FormatDuration(c.ClockSkew), FormatDuration(classify.MaxClockSkew))
	}
	if _, err := classify.NewParser(c.Pattern); err != nil {
		return fmt.Errorf("--source-identity-pattern: %w", err)
	}
	if len(CSV(c.EventNames)) == 0 {
		return errors.New("--event-names: want at least one name")
	}
	var err error
	if c.Strategies, err = sessions.ParseStrategies(c.Match); err != nil {
		return fmt.Errorf("--match: %w", err)
	}
	return nil
}

// CheckSinks checks each --sink URI's form.
func CheckSinks(uris []string) error {
	for _, uri := range uris {
		if err := sink.CheckURI(uri); err != nil {
			return fmt.Errorf("--sink: %w", err)
		}
	}
	return nil
}
