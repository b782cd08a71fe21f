package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/app"
	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/source"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
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

// Source kinds.
const (
	sourceLookup   = "lookup"
	sourceS3       = "s3"
	sourceFile     = "file"
	sourceFindings = "findings"
)

// viewTable is the --format value that prints a table for people on stdout.
const viewTable = "table"

// defaultCacheEntries bounds the session cache. A backfill reads each
// stream in time order, so the sessions it needs again are recent ones: a
// small cache keeps the hit rate and keeps memory flat in the window's size
// (the streamer's default, 100,000 entries, would grow with the window up
// to a hundred MB or more).
const defaultCacheEntries = 512

// cloudTrailLaunch is the day CloudTrail began recording: no window needs
// to start before it, and one that does is a typo (99999d for 9999d).
var cloudTrailLaunch = time.Date(2013, 11, 13, 0, 0, 0, 0, time.UTC)

// orgAccounts as --accounts reads every active account of the organization.
const orgAccounts = "org"

type options struct {
	source         string
	sourceKind     string
	table          string
	since, until   time.Time
	sinks          []string
	sinkOptions    sink.Options
	accounts       []string
	orgAccounts    bool
	roleName       string
	regions        []string
	eventNames     []string
	classification cli.Classification
	replica        cli.Replica
	workers        int
	cacheEntries   int
	downloads      int
	region         string
	s3PathStyle    bool
	checkpoint     string
	quiet          bool
	summaryJSON    string
	failOn         classify.Severity
	logLevel       zerolog.Level
	awsProfile     string
	filter         *report.Filter
	view           string // viewTable, or "" for findings on the sinks
	reportPath     string
	cpuProfile     string
	// windowSet: --since or --until was given. A findings file is read
	// whole unless one was.
	windowSet bool
	// reconcile is the verdict log to reconcile the source against (empty:
	// no reconciliation); events younger than reconcileSettle at the
	// run's clock are not counted.
	reconcile       string
	reconcileSettle time.Duration
	// reconcileMargin is how long after an event the streamer may have
	// logged it; zero: verdictlog.DefaultMargin.
	reconcileMargin time.Duration
}

const usageExample = `Examples:
  # CloudTrail event history (LookupEvents) of the last 7 days in three regions
  backfill --table sentinel-sessions --since 7d --regions us-east-1,eu-west-1,eu-central-1

  # every enabled region of every account of the organization, resumable
  backfill --table sentinel-sessions --since 30d --regions all --accounts org \
    --assume-role-name sessionwatch-backfill --checkpoint backfill.ckpt --summary-json summary.json

  # a trail's S3 archive, or local log files
  backfill --source s3://org-trail-bucket/prefix --table sentinel-sessions --since 2026-11-01 --until 1d
  backfill --source file:./trail-archive --table sentinel-sessions --since 7d --sink file:findings.jsonl

  # for people: a table on stdout, an HTML report; only some roles and callers
  backfill --table sentinel-sessions --since 7d --format table --report week.html \
    --role 'arn:aws:iam::*:role/Prod*' --principal '*:user/*'

  # the same report from the streamer's findings file, without classifying again
  backfill --source findings:/var/log/sessionwatch/findings.jsonl --report streamer.html

  # what the streamer never saw: the events of the last day its verdict log lacks, as JSON
  # lines on stdout, classified, their findings sent to --sink (exit 1 when there is a gap)
  backfill --table sentinel-sessions --since 1d --regions us-east-1,eu-west-1 \
    --reconcile s3://audit-bucket/verdicts --sink securityhub --summary-json coverage.json

Every flag can also be set with its SESSIONWATCH_ variable (--session-retention: SESSIONWATCH_SESSION_RETENTION).
The AWS SDK's default credential chain, region and AWS_ENDPOINT_URL_<SERVICE> variables apply.
IAM: cloudtrail:LookupEvents (lookup), s3:ListBucket and s3:GetObject (s3), dynamodb:Query and
dynamodb:Scan on the session table; with --assume-role-name sts:AssumeRole into each account;
--accounts org: organizations:ListAccounts; --regions all: account:ListRegions (in each account).
Exit status: 0 no finding at or above --fail-on (and, with --reconcile, no gap), 1 such findings
or a gap, 2 error (an account or file that could not be read included: the others are still read
and reported; a run that read no record; an error wins over findings and gaps).
`

func parseOptions(args []string, e env) (options, error) {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	tableView := cli.SinkView{Name: viewTable, Help: "a table for people on stdout (time, detected, verdict, severity, caller, target role, " +
		"SourceIdentity, reason), the summary under it; findings go to --sink only when one is given"}
	var (
		o         options
		since     = fs.String("since", "7d", "start of the window: a duration ago (7d, 1d12h, 90m), an RFC 3339 time or a date")
		until     = fs.String("until", "", "end of the window, same forms as --since (default: now)")
		sinkFlags = cli.AddSinkFlags(fs, "stdout", tableView)
		regions   = fs.String("regions", "", "comma-separated regions to read, or all for every enabled region (default: lookup reads the configured region, s3 every region in the archive)")
		failOn    = fs.String("fail-on", "high", "exit 1 when a finding of this severity or above exists: low, medium, high, critical")
		logLevel  = fs.String("log-level", "warn", "log level: debug, info, warn, error")
	)
	// Filters: repeatable; their variables take comma-separated lists.
	var roles, principals, profiles, recipients cli.List
	fs.Var(&roles, "role", "only events whose target role ARN matches (repeatable; '*' matches any run of characters, ':' and '/' included; letters in either case)")
	fs.Var(&principals, "principal", "only events whose caller ARN or principal id matches (repeatable, '*' globs)")
	fs.Var(&profiles, "profile", "only events whose matched broker session has this profile (repeatable, '*' globs; applied after the session lookup)")
	fs.Var(&recipients, "account", "only events whose recipient account matches (repeatable, '*' globs); --accounts says which accounts are read")
	fs.StringVar(&o.awsProfile, "aws-profile", "", "shared-config profile for the run's AWS credentials and region (default: the SDK's default chain)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	fs.StringVar(&o.reportPath, "report", "", "also write a self-contained HTML report (charts, top callers and roles, findings) to this file")
	fs.StringVar(&o.source, "source", sourceLookup, "where events come from: lookup (CloudTrail LookupEvents), s3://BUCKET[/PREFIX] (a trail's archive), file:PATH (a file, or a folder laid out like a trail archive), or findings:PATH (a findings file, JSON lines: --report or --format table from it, nothing classified)")
	fs.StringVar(&o.table, "table", "", "the session table (required)")
	fs.StringVar(&o.roleName, "assume-role-name", "", "role assumed in each account of --accounts (lookup source)")
	fs.StringVar(&o.checkpoint, "checkpoint", "", "progress file: written as pages (lookup) or objects (s3, file) finish; a rerun with the same file resumes an unfinished run's window where it stopped")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress display (there is none when stderr is not a terminal)")
	fs.StringVar(&o.summaryJSON, "summary-json", "", "also write the summary as JSON to this file")
	classification := cli.AddClassificationFlags(fs)
	// The backfill's events are past: it never waits for the replica.
	replica := cli.AddReplicaFlags(fs, 0)
	fs.IntVar(&o.workers, "workers", 8, "events classified concurrently")
	fs.IntVar(&o.cacheEntries, "cache-entries", defaultCacheEntries, "session lookups kept in memory, least recently used dropped first: bounds memory whatever the window")
	fs.IntVar(&o.downloads, "downloads", source.DefaultDownloads, "log objects downloaded at once (s3 source)")
	fs.StringVar(&o.region, "region", "", "AWS region of the session table and the AWS APIs (default: the SDK's configuration)")
	fs.BoolVar(&o.s3PathStyle, "s3-path-style", false, "address the bucket in the path, not the host name (S3-compatible stores)")
	fs.StringVar(&o.reconcile, "reconcile", "", "the streamer's verdict log (s3://BUCKET/PREFIX or file:DIR): list, as JSON lines on stdout (or --format table), every in-scope event of the window the log lacks, classify only those (findings to --sink, none to stdout), and exit 1 when there is one")
	o.reconcileSettle = defaultReconcileSettle
	fs.Var(cli.Duration{D: &o.reconcileSettle}, "reconcile-settle", "with --reconcile, events younger than this at the run's clock (now, not --until) are not counted: the streamer may not have logged them yet")
	o.reconcileMargin = verdictlog.DefaultMargin
	fs.Var(cli.Duration{D: &o.reconcileMargin}, "reconcile-margin", "with --reconcile, how long after an event the streamer may have logged it: the log objects written up to this long after --until are read (raise it after a queue backlog)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: backfill --table NAME [--source lookup|s3://BUCKET/PREFIX|file:PATH] [flags]\n")
		fmt.Fprintf(fs.Output(), "       backfill --source findings:PATH (--report FILE.html | --format table) [flags]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", usageExample)
	}
	if err := cli.Parse(fs, args, e.lookupEnv); err != nil {
		return o, err
	}
	o.classification, o.replica = *classification, *replica
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{} // flags given, on the command line or in the environment
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.windowSet = set["since"] || set["until"]
	now := e.now()
	var err error
	if o.since, err = cli.ParseTime(*since, now); err != nil {
		return o, fmt.Errorf("--since: %w", err)
	}
	if o.since.Before(cloudTrailLaunch) {
		return o, fmt.Errorf("--since %s: starts %s, before CloudTrail's first record (%s)", *since,
			o.since.Format(time.DateOnly), cloudTrailLaunch.Format(time.DateOnly))
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
	if o.logLevel, err = cli.LogLevel(*logLevel); err != nil {
		return o, err
	}
	if o.failOn, err = classify.ParseSeverity(*failOn); err != nil {
		return o, fmt.Errorf("--fail-on: %w", err)
	}
	if o.sinkOptions, err = sinkFlags.Options(); err != nil {
		return o, err
	}
	o.view = sinkFlags.View()
	if o.filter, err = report.NewFilter(report.FilterConfig{Roles: roles.Values(), Principals: principals.Values(),
		Profiles: profiles.Values(), Accounts: recipients.Values()}); err != nil {
		return o, err
	}
	if o.reportPath != "" {
		if fi, err := os.Stat(filepath.Dir(o.reportPath)); err != nil || !fi.IsDir() {
			return o, fmt.Errorf("--report %s: no such folder", o.reportPath)
		}
	}
	if strings.HasPrefix(o.source, "findings:") {
		if o.reconcile != "" {
			return o, errors.New("--reconcile needs CloudTrail events: it does not apply to a findings file (--source findings:PATH)")
		}
		return findingsOptions(o, set)
	}
	if o.table == "" {
		return o, errors.New("--table is required")
	}
	switch {
	case o.source == sourceLookup:
		o.sourceKind = sourceLookup
	case strings.HasPrefix(o.source, "s3://"):
		if _, _, err := source.ParseS3URI(o.source); err != nil {
			return o, fmt.Errorf("--source %w", err)
		}
		o.sourceKind = sourceS3
	case strings.HasPrefix(o.source, "file:") && len(o.source) > len("file:"):
		o.sourceKind = sourceFile
	default:
		return o, fmt.Errorf("--source %q: want lookup, s3://BUCKET[/PREFIX], file:PATH or findings:PATH", o.source)
	}
	if err := o.replica.Validate(); err != nil {
		return o, err
	}
	if o.workers < 1 {
		return o, fmt.Errorf("--workers %d: want at least 1", o.workers)
	}
	if o.cacheEntries < 1 {
		return o, fmt.Errorf("--cache-entries %d: want at least 1", o.cacheEntries)
	}
	if o.downloads < 1 {
		return o, fmt.Errorf("--downloads %d: want at least 1", o.downloads)
	}
	o.sinks = sinkFlags.URIs()
	if err := cli.CheckSinks(o.sinks); err != nil {
		return o, err
	}
	if err := o.classification.Check(); err != nil {
		return o, err
	}
	if o.reconcile != "" {
		if err := o.reconcileOptions(set["sink"]); err != nil {
			return o, err
		}
	}
	o.accounts = cli.CSV(o.classification.Accounts)
	if slices.Contains(o.accounts, orgAccounts) {
		if len(o.accounts) != 1 {
			return o, errors.New("--accounts: org stands alone")
		}
		o.accounts, o.orgAccounts = nil, true
	}
	o.regions = cli.CSV(*regions)
	if slices.Contains(o.regions, source.AllRegions) {
		if len(o.regions) != 1 {
			return o, errors.New("--regions: all stands alone")
		}
		if o.sourceKind != sourceLookup {
			o.regions = nil // an archive holds what it holds
		}
	}
	o.eventNames = cli.CSV(o.classification.EventNames)
	if o.roleName != "" && o.sourceKind != sourceLookup {
		return o, errors.New("--assume-role-name applies to --source lookup only")
	}
	if o.sourceKind == sourceLookup && o.roleName == "" && (o.orgAccounts || len(o.accounts) > 1) {
		return o, errors.New("--accounts with several accounts (or org) needs --assume-role-name for --source lookup")
	}
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
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(e.stderr, "backfill: %v\n", err)
			return exitError
		}
		defer stop()
	}
	logs := &switchWriter{w: e.stderr}
	log := zerolog.New(logs).Level(o.logLevel).With().Timestamp().Str("cmd", "backfill").Logger()

	var (
		sum *summary
		ppl *people
	)
	if o.sourceKind == sourceFindings {
		sum, ppl, err = readFindingsFile(ctx, o, e, log)
	} else {
		sum, ppl, err = backfill(ctx, o, e, log, logs)
	}
	// The table and the report show a run that got to its end (some
	// accounts unread included: the report names them).
	if err == nil || errors.Is(err, errAccountsFailed) {
		if werr := ppl.write(e, sum); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if (err == nil || errors.Is(err, errAccountsFailed)) && sum != nil {
		if why := sum.readNothing(); why != "" {
			nothing := fmt.Errorf("%w: %s", errReadNothing, why)
			sum.problems = append(sum.problems, nothing.Error())
			err = errors.Join(err, nothing)
		}
	}
	if sum != nil {
		sum.write(e.stderr)
		if o.summaryJSON != "" {
			if werr := sum.writeJSON(o.summaryJSON); werr != nil && err == nil {
				err = werr
			}
		}
	}
	var usage app.UsageError
	if errors.As(err, &usage) {
		fmt.Fprintf(e.stderr, "backfill: %v\n", usage.Err)
		return exitError
	}
	if err != nil {
		log.Error().Err(err).Msg("backfill failed")
		fmt.Fprintf(e.stderr, "backfill: %v\n", err)
		return exitError
	}
	if sum.findingsAtOrAbove(o.failOn) > 0 || sum.gap() {
		return exitFindings
	}
	return exitClean
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// errAccountsFailed ends a run in which some accounts, regions or files
// could not be read; the others were.
var errAccountsFailed = errors.New("some accounts or files could not be read (see the summary)")

// errReadNothing ends a run in which no record could be read: a scheduled
// backfill of an empty folder or a wrong prefix must not look like a clean
// one.
var errReadNothing = errors.New("read no record")

func backfill(ctx context.Context, o options, e env, log zerolog.Logger, logs *switchWriter) (*summary, *people, error) {
	awsCfg, err := app.LoadAWS(ctx, app.AWSOptions{Region: o.region, Profile: o.awsProfile, Log: log})
	if err != nil {
		return nil, nil, err
	}

	var cp *source.Checkpoint
	if o.checkpoint != "" {
		if cp, err = source.OpenCheckpoint(o.checkpoint, o.source, o.scope(), o.since, o.until); err != nil {
			return nil, nil, err
		}
		if cp.Resumed() {
			o.since, o.until = cp.Window()
			log.Warn().Str("checkpoint", o.checkpoint).Time("since", o.since).Time("until", o.until).
				Msg("resuming an unfinished run: its window applies")
		}
	}
	if o.orgAccounts {
		if o.accounts, err = source.OrganizationAccounts(ctx, organizations.NewFromConfig(awsCfg)); err != nil {
			return nil, nil, fmt.Errorf("--accounts org: list the organization's accounts: %w", err)
		}
	}
	if o.sourceKind == sourceLookup && len(o.regions) == 0 && awsCfg.Region != "" {
		o.regions = []string{awsCfg.Region} // what the SDK is configured with
	}
	// The replica, if any, opens at the first lookup (a window with
	// nothing to look up reads no table); the events are past, so nothing
	// waits for it.
	a, err := app.Build(ctx, awsCfg, app.Options{
		Table: o.table, Classification: o.classification, Accounts: o.accounts, EventNames: o.eventNames,
		CacheEntries: o.cacheEntries, Replica: o.replica, LazyReplica: true, Now: e.now,
		Sinks: o.sinks, SinkOptions: o.sinkOptions, Stdout: e.stdout, LookupEnv: e.lookupEnv, Log: log,
	})
	if err != nil {
		return nil, nil, err
	}
	// Closed once: at the run's end, or on a setup failure below.
	closeSinks := sync.OnceValue(func() error { return a.CloseSinks(context.WithoutCancel(ctx)) })
	defer closeSinks()
	src, err := openSource(o, awsCfg, a.Decoder, cp, log)
	if err != nil {
		return nil, nil, err
	}

	var rec *reconciler
	if o.reconcile != "" {
		// The table, when shown, takes stdout and lists the missed events;
		// the JSON lines then go nowhere.
		cfg := reconcileConfig{URI: o.reconcile, Since: o.since, Until: o.until, Now: e.now(), Settle: o.reconcileSettle,
			Margin: o.reconcileMargin,
			Out:    e.stdout, Log: log}
		if o.view == viewTable {
			cfg.Out = io.Discard
		}
		if strings.HasPrefix(o.reconcile, "s3://") {
			cfg.S3 = o.s3Client(awsCfg)
		}
		if rec, err = newReconciler(ctx, cfg); err != nil {
			return nil, nil, err
		}
	}
	sum := newSummary(o)
	ppl := newPeople(o, e)
	r := &replay{workers: o.workers, since: o.since, until: o.until, source: src, classifier: a.Classifier,
		sinks: a.Sinks, checkpoint: cp, log: log, now: e.now, sum: sum, filter: o.filter, reconcile: rec}
	var prog *progress
	if !o.quiet {
		prog = startProgress(e.stderr, src.Stats(), logs)
	}
	err = r.run(ctx)
	prog.stop()
	if ferr := rec.flush(); err == nil {
		err = ferr
	}
	sum.coverage = rec.coverage()
	if cerr := closeSinks(); err == nil && cerr != nil {
		err = fmt.Errorf("close sinks: %w", cerr)
	}
	if err == nil && (len(src.Stats().Failures()) > 0 || len(src.Stats().Unreadable()) > 0) {
		err = errAccountsFailed
	}
	if err == nil {
		err = cp.Complete()
	}
	sum.finish(src.Stats())
	if files, ok := src.(*source.Files); ok {
		sum.found = files.Found()
	}
	return sum, ppl, err
}

// openSource builds the source --source names.
func openSource(o options, awsCfg aws.Config, decoder *cloudtrail.Decoder, cp *source.Checkpoint, log zerolog.Logger) (source.Source, error) {
	switch o.sourceKind {
	case sourceFile:
		return source.NewFiles(source.FilesConfig{Path: strings.TrimPrefix(o.source, "file:"), Decoder: decoder, Checkpoint: cp, Regions: o.regions})
	case sourceS3:
		bucket, prefix, _ := source.ParseS3URI(o.source)
		return source.NewArchive(source.S3Config{Client: o.s3Client(awsCfg), Bucket: bucket, Prefix: prefix, Accounts: o.accounts,
			Regions: o.regions, Since: o.since, Until: o.until, Downloads: o.downloads, Decoder: decoder, Checkpoint: cp})
	default:
		cfg := source.LookupConfig{AWS: awsCfg, Regions: o.regions, EventNames: o.eventNames, Since: o.since, Until: o.until,
			Decoder: decoder, Checkpoint: cp, Log: log}
		if o.roleName != "" {
			cfg.Accounts, cfg.AssumeRoleName = o.accounts, o.roleName
		}
		return source.NewLookup(cfg)
	}
}

// s3Client is the S3 client of the archive source and of an s3:// verdict
// log.
func (o options) s3Client(awsCfg aws.Config) *s3.Client {
	return s3.NewFromConfig(awsCfg, func(so *s3.Options) {
		so.UsePathStyle = o.s3PathStyle
		// S3-compatible stores send no checksum; the SDK would say so on
		// stderr for every object.
		so.DisableLogOutputChecksumValidationSkipped = true
	})
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}

// scope names what decides, beyond the source and the window, which events
// a run reads and classifies, as given on the command line: a checkpoint
// resumes only a run of the same scope.
func (o options) scope() string {
	sorted := func(v []string) string {
		v = slices.Clone(v)
		slices.Sort(v)
		return strings.Join(v, ",")
	}
	accounts := sorted(o.accounts)
	if o.orgAccounts {
		accounts = orgAccounts
	}
	return strings.Join([]string{
		"regions=" + sorted(o.regions),
		"accounts=" + accounts,
		"event-names=" + sorted(o.eventNames),
		"filters=" + sorted(o.filter.Describe()),
		"source-identity-pattern=" + o.classification.Pattern,
		"include-service-callers=" + strconv.FormatBool(o.classification.IncludeServiceCallers),
	}, " ")
}
