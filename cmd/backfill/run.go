package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// Exit codes.
const (
	exitClean    = 0
	exitFindings = 1
	exitError    = 2
)

// env is what the command takes from its process, so tests can run it.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	now            func() time.Time
}

type options struct {
	source       string
	table        string
	since, until time.Time
	sinks        []string
	retention    time.Duration
	skew         time.Duration
	strategies   []sessions.Strategy
	accounts     []string
	eventNames   []string
	pattern      string
	workers      int
	region       string
	services     bool
	logLevel     zerolog.Level
}

const usageExample = `Examples:
  backfill --source file:./trail-archive --table sentinel-sessions --since 7d
  backfill --source file:events.jsonl --table sentinel-sessions --since 2026-11-01 --until 1d12h --sink file:findings.jsonl

Every flag can also be set with its SESSIONWATCH_ variable (--session-retention: SESSIONWATCH_SESSION_RETENTION).
Exit status: 0 no finding, 1 findings, 2 error.
`

func parseOptions(args []string, e env) (options, error) {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var (
		o          options
		since      = fs.String("since", "7d", "start of the window: a duration ago (7d, 1d12h, 90m), an RFC 3339 time or a date")
		until      = fs.String("until", "", "end of the window, same forms as --since (default: now)")
		sinks      cli.List
		match      = fs.String("match", "exact,user-time", "session match strategies, tried in order")
		accounts   = fs.String("accounts", "", "comma-separated account allowlist (default: every account)")
		eventNames = fs.String("event-names", strings.Join(cloudtrail.DefaultEventNames(), ","), "comma-separated STS event names to classify")
		logLevel   = fs.String("log-level", "warn", "log level: debug, info, warn, error")
	)
	o.retention, o.skew = classify.DefaultRetention, classify.DefaultClockSkew
	fs.StringVar(&o.source, "source", "", "where events come from: file:PATH (a file, or a folder laid out like a trail archive)")
	fs.StringVar(&o.table, "table", "", "the session table (required)")
	fs.Var(&sinks, "sink", "where findings go: stdout or file:PATH (repeatable; default stdout)")
	fs.Var(cli.Duration{D: &o.retention}, "session-retention", "how long the store keeps a session; an unmatched event older than this is unverifiable, not orphaned")
	fs.Var(cli.Duration{D: &o.skew}, "clock-skew", "tolerance in time comparisons")
	fs.StringVar(&o.pattern, "source-identity-pattern", "", "SourceIdentity pattern with named groups user, marker, request_id (default: Sentinel's)")
	fs.IntVar(&o.workers, "workers", 8, "events classified concurrently")
	fs.StringVar(&o.region, "region", "", "AWS region (default: the SDK's configuration)")
	fs.BoolVar(&o.services, "include-service-callers", false, "also classify AssumeRole calls made by AWS services (Lambda, ECS, EMR)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: backfill --source file:PATH --table NAME [flags]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", usageExample)
	}
	if err := cli.Parse(fs, args, e.lookupEnv); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	now := e.now()
	var err error
	if o.since, err = cli.ParseTime(*since, now); err != nil {
		return o, fmt.Errorf("--since: %w", err)
	}
	o.until = now
	if *until != "" {
		if o.until, err = cli.ParseTime(*until, now); err != nil {
			return o, fmt.Errorf("--until: %w", err)
		}
	}
	if !o.since.Before(o.until) {
		return o, fmt.Errorf("empty window: --since %s is not before --until %s", o.since.Format(time.RFC3339), o.until.Format(time.RFC3339))
	}
	if o.strategies, err = sessions.ParseStrategies(*match); err != nil {
		return o, fmt.Errorf("--match: %w", err)
	}
	if o.logLevel, err = zerolog.ParseLevel(*logLevel); err != nil {
		return o, fmt.Errorf("--log-level: %w", err)
	}
	if o.table == "" {
		return o, errors.New("--table is required")
	}
	if !strings.HasPrefix(o.source, "file:") || len(o.source) == len("file:") {
		return o, fmt.Errorf("--source %q: want file:PATH", o.source)
	}
	if o.workers < 1 {
		return o, fmt.Errorf("--workers %d: want at least 1", o.workers)
	}
	o.sinks = sinks.Values("stdout")
	o.accounts = cli.CSV(*accounts)
	o.eventNames = cli.CSV(*eventNames)
	return o, nil
}

func run(ctx context.Context, args []string, e env) int {
	o, err := parseOptions(args, e)
	if errors.Is(err, flag.ErrHelp) {
		return exitClean
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "backfill: %v\n", err)
		return exitError
	}
	// Workers log concurrently: serialise writes to stderr.
	e.stderr = zerolog.SyncWriter(e.stderr)
	log := zerolog.New(e.stderr).Level(o.logLevel).With().Timestamp().Str("cmd", "backfill").Logger()

	sum, err := backfill(ctx, o, e, log)
	if sum != nil {
		sum.write(e.stderr)
	}
	if err != nil {
		log.Error().Err(err).Msg("backfill failed")
		fmt.Fprintf(e.stderr, "backfill: %v\n", err)
		return exitError
	}
	if sum.findings() > 0 {
		return exitFindings
	}
	return exitClean
}

func backfill(ctx context.Context, o options, e env, log zerolog.Logger) (*summary, error) {
	path := strings.TrimPrefix(o.source, "file:")
	files, err := listLogFiles(path)
	if err != nil {
		return nil, err
	}

	var loadOpts []func(*config.LoadOptions) error
	if o.region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	finder, err := sessions.Open(dynamodb.NewFromConfig(awsCfg), sessions.Config{
		Store:   sessions.StoreConfig{Table: o.table},
		Matcher: sessions.MatcherConfig{Strategies: o.strategies, ClockSkew: o.skew},
	})
	if err != nil {
		return nil, err
	}
	classifier, err := classify.New(finder, classify.Config{Pattern: o.pattern, Retention: o.retention, ClockSkew: o.skew, Now: e.now})
	if err != nil {
		return nil, err
	}

	outs := make([]sink.Sink, 0, len(o.sinks))
	for _, uri := range o.sinks {
		var s sink.Sink
		if uri == "stdout" || uri == "-" {
			s = sink.NewWriter("stdout", e.stdout)
		} else if s, err = sink.Open(uri); err != nil {
			closeAll(ctx, outs, log)
			return nil, err
		}
		outs = append(outs, s)
	}

	r := &replay{
		opts:       o,
		files:      files,
		decoder:    cloudtrail.NewDecoder(cloudtrail.Config{Accounts: o.accounts, EventNames: o.eventNames, IncludeServiceCallers: o.services}),
		classifier: classifier,
		sinks:      outs,
		log:        log,
		now:        e.now,
		sum:        newSummary(o, aws.ToString(&awsCfg.Region)),
	}
	err = r.run(ctx)
	if cerr := closeAll(context.WithoutCancel(ctx), outs, log); err == nil {
		err = cerr
	}
	r.sum.finish(e.now())
	return r.sum, err
}

func closeAll(ctx context.Context, outs []sink.Sink, log zerolog.Logger) error {
	var errs []error
	for _, s := range outs {
		if err := s.Close(ctx); err != nil {
			log.Error().Err(err).Str("sink", s.Name()).Msg("close sink")
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
