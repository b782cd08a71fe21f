// Package app wires what the streamer and the backfill share, once: the AWS
// configuration, the decoder, the session lookup (the Query path through
// the cache, with the replica in front when --session-replica asks), the
// classifier and the sinks. The commands add what is theirs (the queue and
// the ops server; the sources, the checkpoint and the tally).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// UsageError is a configuration mistake found while setting up (a sink's
// missing token, an unreadable AWS profile): the commands print it as one
// plain line and exit as for a bad flag, not as a failure of a run.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// AWSOptions say how to load the AWS configuration.
type AWSOptions struct {
	// Region and Profile override the SDK's default chain ("": the chain's).
	Region, Profile string
	// Conns, when above 0, sizes the HTTP connection pool: idle connections
	// kept per host (twice that in all), one per concurrent caller.
	Conns int
	// Log receives the SDK's own log lines.
	Log zerolog.Logger
}

// LoadAWS loads the AWS configuration both commands use: the SDK's default
// credential chain and its AWS_ENDPOINT_URL_<SERVICE> variables, with the
// SDK's log lines through o.Log. A failure is a UsageError.
func LoadAWS(ctx context.Context, o AWSOptions) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithLogger(cli.SDKLogger(o.Log))}
	if o.Conns > 0 {
		opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 2 * o.Conns
			t.MaxIdleConnsPerHost = o.Conns
		})))
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, UsageError{fmt.Errorf("load AWS configuration: %w", err)}
	}
	return cfg, nil
}

// Options is what Build needs from the command's flags.
type Options struct {
	// Table is --table.
	Table string
	// Classification holds the checked classification flags (Check done).
	Classification cli.Classification
	// Accounts and EventNames are what the decoder keeps: the command
	// resolves --accounts (the backfill's org) and may add event names
	// (the streamer's pipeline events).
	Accounts, EventNames []string
	// CacheEntries bounds the session cache (0: sessions' default).
	CacheEntries int
	// Replica holds the validated replica flags.
	Replica cli.Replica
	// LazyReplica opens the replica at the first lookup rather than in
	// Build (the backfill: a window with nothing to look up reads no
	// table); its replica runs no refreshes.
	LazyReplica bool
	// OrphanGrace is what an orphan re-check adds to the replica's wait.
	OrphanGrace time.Duration
	// Now is the classifier's clock (nil: time.Now).
	Now func() time.Time

	// Sinks are the --sink URIs; SinkOptions the sink flags' options, to
	// which Build adds the AWS configuration, Stdout, LookupEnv, Log and
	// Observer.
	Sinks       []string
	SinkOptions sink.Options
	Stdout      io.Writer
	LookupEnv   func(string) (string, bool)
	// Observer, when set, counts the sinks' retries and give-ups.
	Observer sink.Observer
	Log      zerolog.Logger
}

// App is what Build wires.
type App struct {
	Decoder *cloudtrail.Decoder
	// Table is the session table's client (the streamer's readiness probe
	// reads it too).
	Table *dynamodb.Client
	// Finder is the Query path: the Store behind the cache and the user
	// directory; its Cache has the store's metrics.
	Finder *sessions.Finder
	// Sessions is what the classifier asks: the replica with Finder behind
	// it, or Finder alone. Run it to keep the replica fresh.
	Sessions   *cli.Sessions
	Classifier *classify.Classifier
	// Sinks has one sink per --sink, in order; the caller closes them
	// (CloseSinks), or hands them to what does.
	Sinks []sink.Sink
}

// Build wires the decoder, the session lookup, the classifier and the
// sinks from awsCfg and o. Sinks open first: a missing token or key is a
// UsageError found before the replica reads the table. Without
// o.LazyReplica the replica is built and loaded here. On error nothing is
// left open.
func Build(ctx context.Context, awsCfg aws.Config, o Options) (*App, error) {
	a := &App{Decoder: cloudtrail.NewDecoder(cloudtrail.Config{Accounts: o.Accounts, EventNames: o.EventNames,
		IncludeServiceCallers: o.Classification.IncludeServiceCallers})}
	var err error
	if a.Sinks, err = OpenSinks(awsCfg, o); err != nil {
		return nil, err
	}
	if err := a.openSessions(ctx, awsCfg, o); err != nil {
		a.CloseSinks(context.WithoutCancel(ctx))
		return nil, err
	}
	return a, nil
}

func (a *App) openSessions(ctx context.Context, awsCfg aws.Config, o Options) error {
	c := o.Classification
	a.Table = dynamodb.NewFromConfig(awsCfg)
	store := sessions.StoreConfig{Table: o.Table}
	matcher := sessions.MatcherConfig{Strategies: c.Strategies, ClockSkew: c.ClockSkew}
	var err error
	a.Finder, err = sessions.Open(a.Table, sessions.Config{Store: store, Cache: sessions.CacheConfig{Capacity: o.CacheEntries}, Matcher: matcher})
	if err != nil {
		return err
	}
	replica := o.Replica
	if o.LazyReplica && replica.StreamARN != "" {
		// A lazy replica (the backfill's) is loaded once and never
		// refreshed: --session-stream (accepted, so both commands share
		// one configuration) is not read.
		o.Log.Info().Str("stream", replica.StreamARN).Msg("--session-stream not read: the replica is loaded once and never refreshed")
		replica.StreamARN = ""
	}
	replica.UseStreams(awsCfg)
	if o.LazyReplica {
		a.Sessions = replica.LazySessions(a.Table, store, matcher, o.OrphanGrace, a.Finder, o.Log)
	} else if a.Sessions, err = replica.Sessions(ctx, a.Table, store, matcher, o.OrphanGrace, a.Finder, o.Log); err != nil {
		return err
	}
	a.Classifier, err = classify.New(a.Sessions.Finder, classify.Config{Pattern: c.Pattern, Retention: c.Retention, ClockSkew: c.ClockSkew, Now: o.Now})
	return err
}

// OpenSinks opens one sink per o.Sinks URI with o.SinkOptions, the AWS
// configuration and the process's stdout; a failure closes those opened and
// is a UsageError naming --sink.
func OpenSinks(awsCfg aws.Config, o Options) ([]sink.Sink, error) {
	opts := o.SinkOptions
	opts.AWS, opts.Stdout, opts.LookupEnv, opts.Log = &awsCfg, o.Stdout, o.LookupEnv, &o.Log
	if o.Observer != nil {
		opts.Observer = o.Observer
	}
	outs := make([]sink.Sink, 0, len(o.Sinks))
	for _, uri := range o.Sinks {
		s, err := sink.Open(uri, opts)
		if err != nil {
			closeAll(context.Background(), outs)
			return nil, UsageError{fmt.Errorf("--sink: %w", err)}
		}
		outs = append(outs, s)
	}
	return outs, nil
}

// CloseSinks closes the sinks no one else will close.
func (a *App) CloseSinks(ctx context.Context) error { return closeAll(ctx, a.Sinks) }

func closeAll(ctx context.Context, sinks []sink.Sink) error {
	var errs []error
	for _, s := range sinks {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}
