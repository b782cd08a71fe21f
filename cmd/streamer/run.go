package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sessionwatch/sessionwatch/internal/app"
	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/streamer"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // a failure while starting or running
	exitUsage = 2 // bad flags
)

// env is what the command takes from its process, so tests can run it.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	hostname       func() (string, error) // nil: os.Hostname
	// ownMemoryLimit: the soft memory limit is the streamer's default
	// (GOMEMLIMIT unset), which then grows with the session replica.
	ownMemoryLimit bool
}

type options struct {
	queueURL       string
	table          string
	sinks          []string
	sinkOptions    sink.Options
	stream         streamer.Config
	accounts       []string
	eventNames     []string
	metricsAddr    string
	classification cli.Classification
	replica        cli.Replica
	pprof          bool
	logLevel       zerolog.Level
	lambda         bool // started by the Lambda runtime
	verdictLog     string
	pipelineEvents bool // also classify cloudtrail.PipelineEventNames
	verdictLogID   string
}

const usageExample = `Example:
  streamer --queue-url https://sqs.us-east-1.amazonaws.com/111122223333/sessionwatch \
    --table sentinel-sessions --sink stdout --sink file:/var/log/sessionwatch/findings.jsonl \
    --accounts 111122223333,444455556666 --orphan-grace 2m

  The same with environment variables:
  SESSIONWATCH_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/111122223333/sessionwatch \
  SESSIONWATCH_TABLE=sentinel-sessions SESSIONWATCH_SINK=stdout,file:findings.jsonl streamer

Every flag can also be set with its SESSIONWATCH_ variable (--max-in-flight: SESSIONWATCH_MAX_IN_FLIGHT);
a flag on the command line wins. Durations take Go syntax (5s, 2m) and days (7d).
The AWS SDK's default credential chain, region and AWS_ENDPOINT_URL_<SERVICE> variables apply.
The Go runtime's soft memory limit is 100 MiB, plus twice the session replica's size, unless GOMEMLIMIT
is set, and GOGC is 400 unless set.
Endpoints on --metrics-addr: /metrics (Prometheus), /healthz, /readyz.
SIGTERM or SIGINT: stop receiving, finish or release what is in flight, flush the sinks, exit 0.

Started by the Lambda runtime (AWS_LAMBDA_RUNTIME_API set), the streamer answers the SQS event
source mapping instead of polling: --queue-url is not needed, the same variables configure it, each
batch is processed by up to --workers at once, and the messages not done (a store, S3 or sink
failure, an orphaned verdict held for --orphan-grace, an undecodable message) are returned as
batchItemFailures for the queue to redeliver. The mapping needs ReportBatchItemFailures.
`

func parseOptions(args []string, e env) (options, error) {
	fs := flag.NewFlagSet("streamer", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var (
		o        options
		logLevel = fs.String("log-level", "info", "log level: debug, info, warn, error")
		pipeline = fs.Bool("pipeline-events", true, "also classify changes to the EventBridge rule and the queue ("+strings.Join(cloudtrail.PipelineEventNames(), ", ")+") as pipeline_tampered findings; they arrive only when the second EventBridge rule of the Terraform module sends them")
		expect   = fs.String("expect-regions", "", "comma-separated regions that must send events (in each --accounts account, else each account seen); every account and region seen is expected too")
	)
	o.stream = streamer.Config{
		Pollers:           streamer.DefaultPollers,
		Workers:           streamer.DefaultWorkers,
		MaxInFlight:       streamer.DefaultMaxInFlight,
		VisibilityTimeout: streamer.DefaultVisibilityTimeout,
		OrphanGrace:       streamer.DefaultOrphanGrace,
		ShutdownTimeout:   streamer.DefaultShutdownTimeout,

		VerdictLogInterval: streamer.DefaultVerdictLogInterval,
		SilenceAfter:       streamer.DefaultSilenceAfter,
	}
	fs.StringVar(&o.queueURL, "queue-url", "", "URL of the SQS queue to consume (required)")
	fs.StringVar(&o.table, "table", "", "the session table (required)")
	sinkFlags := cli.AddSinkFlags(fs, "stdout")
	fs.IntVar(&o.stream.Pollers, "pollers", o.stream.Pollers, "concurrent long polls (20 s, 10 messages each)")
	fs.IntVar(&o.stream.Workers, "workers", o.stream.Workers, "messages processed concurrently")
	fs.IntVar(&o.stream.MaxInFlight, "max-in-flight", o.stream.MaxInFlight, "most messages received and not yet deleted or released; receiving waits beyond it")
	fs.Var(cli.Duration{D: &o.stream.VisibilityTimeout}, "visibility-timeout", "visibility timeout asked for on receive (whole seconds); extended at half for messages in flight")
	fs.Var(cli.Duration{D: &o.stream.OrphanGrace}, "orphan-grace", "an orphaned verdict waits this long after its event for the session to appear, then is re-checked before it is emitted (0 emits at once)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":9090", "listen address for /metrics, /healthz and /readyz (empty: none)")
	fs.BoolVar(&o.pprof, "pprof", false, "also serve Go's profiler at /debug/pprof/ on --metrics-addr (off by default: profiles can show event data)")
	fs.Var(cli.Duration{D: &o.stream.ShutdownTimeout}, "shutdown-timeout", "on SIGTERM or SIGINT, exit within this long")
	fs.StringVar(&o.verdictLog, "verdict-log", "", "record every classified event (tracked included) in this verdict log, s3://BUCKET/PREFIX or file:DIR, before its message is deleted (docs/VERDICTLOG.md; empty: none)")
	fs.Var(cli.Duration{D: &o.stream.VerdictLogInterval}, "verdict-log-interval", "write the verdict log this often (one object each), or sooner once half of --max-in-flight waits for it; messages are deleted after")
	fs.StringVar(&o.verdictLogID, "verdict-log-id", "", "this streamer's name in the verdict log's object names (default: the host name)")
	fs.Var(cli.Duration{D: &o.stream.SilenceAfter}, "silence-after", "an expected account and region with no event for longer counts in sessionwatch_streamer_silent_regions")
	classification := cli.AddClassificationFlags(fs)
	replica := cli.AddReplicaFlags(fs, defaultReplicaMaxWait)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: streamer --queue-url URL --table NAME [flags]\n\n")
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
	if err := o.replica.Validate(); err != nil {
		return o, err
	}
	var err error
	if o.logLevel, err = cli.LogLevel(*logLevel); err != nil {
		return o, err
	}
	// Under the Lambda runtime the event source mapping receives and
	// deletes: no queue URL, and NewProcessor checks the rest.
	o.lambda = lambdaRuntime(e.lookupEnv)
	if o.queueURL == "" && !o.lambda {
		return o, errors.New("--queue-url is required")
	}
	if o.table == "" {
		return o, errors.New("--table is required")
	}
	o.stream.QueueURL = o.queueURL
	if err := o.classification.Check(); err != nil {
		return o, err
	}
	c := o.classification
	o.accounts, o.eventNames = cli.CSV(c.Accounts), cli.CSV(c.EventNames)
	o.stream.ExpectRegions, o.stream.ExpectAccounts = cli.CSV(*expect), o.accounts
	if o.verdictLog != "" && o.lambda {
		return o, errors.New("--verdict-log: not supported under the Lambda runtime (the event source mapping deletes the messages)")
	}
	if o.verdictLog != "" {
		if o.verdictLogID == "" {
			o.verdictLogID = defaultStreamerID(e.hostname)
		}
		if err := verdictlog.ValidStreamerID(o.verdictLogID); err != nil {
			return o, fmt.Errorf("--verdict-log-id: %w", err)
		}
	}
	if err := checkStreamFlags(o.stream); err != nil {
		return o, err
	}
	// The ops server needs a moment after the streamer: give it a tenth of
	// the deadline, at most a second.
	cfg := o.stream
	cfg.ShutdownTimeout -= httpShutdownShare(o.stream.ShutdownTimeout)
	if err := cfg.Validate(); err != nil && !o.lambda {
		return o, err
	}
	o.sinks = sinkFlags.URIs()
	if err := cli.CheckSinks(o.sinks); err != nil {
		return o, err
	}
	if o.sinkOptions, err = sinkFlags.Options(); err != nil {
		return o, err
	}
	o.pipelineEvents = *pipeline
	return o, nil
}

// defaultStreamerID is the host name (an ECS task's or a pod's is its own)
// made a valid streamer id: other characters become '-'.
func defaultStreamerID(hostname func() (string, error)) string {
	if hostname == nil {
		hostname = os.Hostname
	}
	name, err := hostname()
	if err != nil || name == "" {
		return "streamer"
	}
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), 128)])
}

// defaultReplicaMaxWait is the streamer's --replica-max-wait: half the
// default visibility timeout, when the heartbeat would first extend a held
// message, so an event that waits for the replica costs no SQS call.
const defaultReplicaMaxWait = streamer.DefaultVisibilityTimeout / 2

// checkStreamFlags checks the flags streamer.Config takes, naming the flag:
// the package reads a zero as its default, the command line must not (a
// --workers 0 is a mistake, not a wish for 32).
func checkStreamFlags(c streamer.Config) error {
	for _, f := range []struct {
		name string
		v    int
	}{{"pollers", c.Pollers}, {"workers", c.Workers}, {"max-in-flight", c.MaxInFlight}} {
		if f.v < 1 {
			return fmt.Errorf("--%s %d: want at least 1", f.name, f.v)
		}
	}
	if v := c.VisibilityTimeout; v < time.Second || v > streamer.MaxVisibilityTimeout || v%time.Second != 0 {
		return fmt.Errorf("--visibility-timeout %s: want whole seconds from 1s to %s", cli.FormatDuration(v), cli.FormatDuration(streamer.MaxVisibilityTimeout))
	}
	if v := c.OrphanGrace; v < 0 || v > streamer.MaxOrphanGrace {
		return fmt.Errorf("--orphan-grace %s: want 0 to %s", cli.FormatDuration(v), cli.FormatDuration(streamer.MaxOrphanGrace))
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout %s: want more than 0", cli.FormatDuration(c.ShutdownTimeout))
	}
	return nil
}

// classified is every event name the decoder keeps: --event-names, and the
// pipeline's own calls with --pipeline-events.
func (o *options) classified() []string {
	names := slices.Clone(o.eventNames)
	if o.pipelineEvents {
		for _, n := range cloudtrail.PipelineEventNames() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

func httpShutdownShare(total time.Duration) time.Duration { return min(total/10, time.Second) }

func run(ctx context.Context, args []string, e env) int {
	o, err := parseOptions(args, e)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "streamer: %v\n", err)
		return exitUsage
	}
	log := zerolog.New(e.stderr).Level(o.logLevel).With().Timestamp().Str("cmd", "streamer").Logger()
	if o.lambda {
		err = serveLambda(ctx, o, e, log)
	} else {
		err = stream(ctx, o, e, log)
	}
	var usage app.UsageError
	if errors.As(err, &usage) {
		fmt.Fprintf(e.stderr, "streamer: %v\n", usage.Err)
		return exitUsage
	}
	if err != nil {
		log.Error().Err(err).Msg("streamer failed")
		return exitError
	}
	return exitOK
}

// pipeline is what both modes build from the options: the AWS clients, the
// classifier over the session lookup, and one sink per --sink (the
// streamer tracks which sink accepted which finding).
type pipeline struct {
	*app.App
	queue *sqs.Client
	s3    *s3.Client
	deps  streamer.Deps // without Queue and Metrics
}

// openPipeline wires the pipeline with app.Build: sinks first, then the
// session lookup (the replica loaded before the streamer is ready; off
// under the Lambda runtime, where a frozen process cannot keep it fresh)
// and the classifier. obs counts the sinks' retries and give-ups (nil: not
// counted).
func openPipeline(ctx context.Context, o options, e env, log zerolog.Logger, obs sink.Observer) (*pipeline, error) {
	// One connection per concurrent caller, kept alive between calls.
	awsCfg, err := app.LoadAWS(ctx, app.AWSOptions{Conns: o.stream.Pollers + o.stream.Workers + 16, Log: log})
	if err != nil {
		return nil, err
	}
	replica := o.replica
	if o.lambda {
		replica.Mode = cli.ReplicaOff
	}
	a, err := app.Build(ctx, awsCfg, app.Options{
		Table: o.table, Classification: o.classification, Accounts: o.accounts, EventNames: o.classified(),
		Replica: replica, OrphanGrace: o.stream.OrphanGrace,
		Sinks: o.sinks, SinkOptions: o.sinkOptions, Stdout: e.stdout, LookupEnv: e.lookupEnv, Observer: obs, Log: log,
	})
	if err != nil {
		return nil, err
	}
	p := &pipeline{App: a, queue: sqs.NewFromConfig(awsCfg), s3: s3.NewFromConfig(awsCfg)}
	p.deps = streamer.Deps{Objects: p.s3, Decoder: a.Decoder, Classifier: a.Classifier, Sinks: a.Sinks, Log: log}
	return p, nil
}

func stream(ctx context.Context, o options, e env, log zerolog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := streamer.NewMetrics(reg)
	if err != nil {
		return err
	}
	p, err := openPipeline(ctx, o, e, log, metrics)
	if err != nil {
		return err
	}
	if err := streamer.RegisterStoreStats(reg, p.Finder.Cache.Stats); err != nil {
		_ = p.CloseSinks(context.Background())
		return err
	}
	if rep := p.Sessions.Replica; rep != nil {
		if err := streamer.RegisterReplicaStats(reg, rep.Stats, p.Sessions.ReplicaFinder.Stats); err != nil {
			_ = p.CloseSinks(context.Background())
			return err
		}
	}

	cfg := o.stream
	cfg.ShutdownTimeout -= httpShutdownShare(o.stream.ShutdownTimeout)
	deps := p.deps
	deps.Queue, deps.Metrics = p.queue, metrics
	if o.verdictLog != "" {
		w, err := verdictlog.OpenWriter(ctx, o.verdictLog, verdictlog.WriterOptions{StreamerID: o.verdictLogID, S3: p.s3})
		if err != nil {
			_ = p.CloseSinks(context.Background())
			return fmt.Errorf("--verdict-log: %w", err)
		}
		deps.VerdictLog = w
		log.Info().Str("verdict_log", o.verdictLog).Str("streamer_id", o.verdictLogID).Dur("interval", cfg.VerdictLogInterval).Msg("verdict log on")
	}
	st, err := streamer.New(cfg, deps)
	if err != nil {
		_ = p.CloseSinks(context.Background())
		return err
	}
	queue, table := p.queue, p.Table

	var srv *http.Server
	var ln net.Listener
	if o.metricsAddr != "" {
		if ln, err = net.Listen("tcp", o.metricsAddr); err != nil {
			_ = p.CloseSinks(context.Background())
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		probe := &streamer.Probe{Queue: queue, QueueURL: o.queueURL, Table: table, TableName: o.table}
		handler := streamer.OpsHandler(reg, probe.Check, st.Draining, st.Degraded)
		if o.pprof {
			handler = withPprof(handler)
		}
		srv = &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
		}
		log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics, /healthz and /readyz")
	}

	var g errgroup.Group
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if srv != nil {
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				stopRun() // a lifecycle failure: shut the streamer down
				return fmt.Errorf("ops server: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error { return p.Sessions.Run(runCtx) })
	if rep := p.Sessions.Replica; rep != nil && e.ownMemoryLimit {
		g.Go(func() error {
			followReplicaMemory(runCtx, func() int64 { return rep.Stats().Bytes }, time.Minute)
			return nil
		})
	}
	g.Go(func() error {
		err := st.Run(runCtx)
		stopRun() // the replica's refreshes end with the streamer
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), httpShutdownShare(o.stream.ShutdownTimeout))
			_ = srv.Shutdown(sctx)
			cancel()
		}
		return err
	})
	return g.Wait()
}

// withPprof serves Go's profiler under /debug/pprof/ beside next.
func withPprof(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", next)
	return mux
}
