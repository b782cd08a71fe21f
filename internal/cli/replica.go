package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// Values of --session-replica.
const (
	// ReplicaAuto uses the replica unless the table holds more than
	// --replica-max-sessions sessions; then the cache, as ReplicaOff.
	ReplicaAuto = "auto"
	// ReplicaOn uses the replica; a table too large for it is an error.
	ReplicaOn = "on"
	// ReplicaOff reads the table per lookup through the session cache.
	ReplicaOff = "off"
)

// Defaults of the replica flags.
const (
	DefaultReplicaRefresh      = 30 * time.Second
	DefaultReplicaMaxSessions  = 2_000_000
	DefaultReplicaScanSegments = 4
	// maxScanSegments is DynamoDB's limit on Scan's TotalSegments.
	maxScanSegments = 1_000_000
)

// Replica holds the flags of the in-memory session replica, which the
// streamer and the backfill share.
type Replica struct {
	// Mode is ReplicaAuto, ReplicaOn or ReplicaOff.
	Mode string
	// Refresh is the period of the incremental re-scan when no stream is
	// given.
	Refresh time.Duration
	// StreamARN is the session table's DynamoDB stream ("": re-scans).
	StreamARN string
	// MaxSessions is the most sessions the replica holds.
	MaxSessions int
	// MaxWait is the longest an event waits for the replica to catch up
	// with it before today's Query path answers it instead.
	MaxWait time.Duration
	// ScanSegments is the parallel Scan's TotalSegments.
	ScanSegments int

	// streams reads StreamARN (UseStreams).
	streams sessions.StreamsAPI
}

// UseStreams builds the DynamoDB Streams client that follows --session-stream
// from cfg, the command's AWS configuration (its endpoint, like every
// client's, from the SDK's chain: AWS_ENDPOINT_URL_DYNAMODB_STREAMS). It
// does nothing without --session-stream.
func (r *Replica) UseStreams(cfg aws.Config) {
	if r.StreamARN != "" {
		r.streams = dynamodbstreams.NewFromConfig(cfg)
	}
}

// Enabled reports whether the replica is to be built (on or auto).
func (r *Replica) Enabled() bool { return r.Mode != ReplicaOff }

// replicaMode is the flag.Value of --session-replica: a bad value is
// refused when it is set, so the error names the flag (or its variable).
type replicaMode struct{ mode *string }

func (m replicaMode) String() string {
	if m.mode == nil {
		return ""
	}
	return *m.mode
}

func (m replicaMode) Set(s string) error {
	switch s = strings.TrimSpace(s); s {
	case ReplicaAuto, ReplicaOn, ReplicaOff:
		*m.mode = s
		return nil
	}
	return fmt.Errorf("%q: want auto, on or off", s)
}

// AddReplicaFlags registers --session-replica, --replica-refresh,
// --session-stream, --replica-max-sessions, --replica-max-wait and
// --replica-scan-segments on fs. maxWait is the command's default for
// --replica-max-wait (the backfill never waits: 0). Call Validate after
// parsing.
func AddReplicaFlags(fs *flag.FlagSet, maxWait time.Duration) *Replica {
	r := &Replica{Mode: ReplicaAuto, Refresh: DefaultReplicaRefresh, MaxSessions: DefaultReplicaMaxSessions,
		MaxWait: maxWait, ScanSegments: DefaultReplicaScanSegments}
	fs.Var(replicaMode{&r.Mode}, "session-replica", "answer session lookups from an in-memory replica of the session table: "+
		"auto (on unless the table holds more than --replica-max-sessions), on, or off (query the table per lookup, through a cache)")
	fs.Var(Duration{D: &r.Refresh}, "replica-refresh", "without --session-stream, how often the replica re-scans the table for changes")
	fs.StringVar(&r.StreamARN, "session-stream", "", "ARN of the session table's DynamoDB stream (NEW_IMAGE or NEW_AND_OLD_IMAGES): the replica follows it instead of re-scanning")
	fs.IntVar(&r.MaxSessions, "replica-max-sessions", r.MaxSessions, "most sessions the replica holds (about 400 bytes each); a larger table: the cache (auto) or an error (on)")
	fs.Var(Duration{D: &r.MaxWait}, "replica-max-wait", "longest an event waits for the replica to have every write up to its time; beyond it the table is queried instead")
	fs.IntVar(&r.ScanSegments, "replica-scan-segments", r.ScanSegments, "parallel segments of the replica's table Scan")
	return r
}

// Validate checks the values parsed into r; an error names the flag.
func (r *Replica) Validate() error {
	switch {
	case r.Refresh <= 0:
		return fmt.Errorf("--replica-refresh %s: want more than 0", r.Refresh)
	case r.MaxSessions < 1:
		return fmt.Errorf("--replica-max-sessions %d: want at least 1", r.MaxSessions)
	case r.MaxWait < 0:
		return fmt.Errorf("--replica-max-wait %s: want 0 or more", r.MaxWait)
	case r.ScanSegments < 1 || r.ScanSegments > maxScanSegments:
		return fmt.Errorf("--replica-scan-segments %d: want 1 to %d", r.ScanSegments, maxScanSegments)
	}
	if r.StreamARN != "" {
		if err := checkStreamARN(r.StreamARN); err != nil {
			return fmt.Errorf("--session-stream %q: %w", r.StreamARN, err)
		}
	}
	return nil
}

// checkStreamARN accepts a DynamoDB stream ARN:
// arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL.
func checkStreamARN(s string) error {
	a, err := arn.Parse(s)
	if err != nil {
		return fmt.Errorf("not an ARN: %w", err)
	}
	parts := strings.Split(a.Resource, "/")
	if a.Service != "dynamodb" || len(parts) != 4 || parts[0] != "table" || parts[1] == "" || parts[2] != "stream" || parts[3] == "" {
		return errors.New("want a DynamoDB stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL)")
	}
	return nil
}

// Open builds the replica r asks for and loads it (a parallel consistent
// Scan of the whole table); the caller runs its Run to keep it fresh. It
// returns nil and no error when the replica is off, or, with auto, when the
// table holds more than --replica-max-sessions sessions or Scan is not
// allowed (a role granted only dynamodb:Query): the caller then uses the
// cache, and the reason is logged.
func (r *Replica) Open(ctx context.Context, db sessions.DynamoDBAPI, store sessions.StoreConfig, log zerolog.Logger) (*sessions.Replica, error) {
	if !r.Enabled() {
		return nil, nil
	}
	rep, err := sessions.NewReplica(db, sessions.ReplicaConfig{Store: store, ScanSegments: r.ScanSegments,
		Refresh: r.Refresh, StreamARN: r.StreamARN, Streams: r.streams, MaxSessions: r.MaxSessions})
	if err != nil {
		return nil, fmt.Errorf("--session-replica %s: %w", r.Mode, err)
	}
	start := time.Now()
	err = rep.Load(ctx)
	if err != nil && r.Mode == ReplicaAuto && (errors.Is(err, sessions.ErrReplicaTooLarge) || accessDenied(err)) {
		log.Warn().Err(err).Msg("session replica not used (--session-replica auto): session lookups query the table through the cache")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--session-replica %s: %w", r.Mode, err)
	}
	st := rep.Stats()
	ev := log.Info().Int("sessions", st.Sessions).Int64("bytes", st.Bytes).Dur("took", time.Since(start))
	if r.StreamARN != "" {
		ev = ev.Str("stream", r.StreamARN)
	}
	ev.Msg("session replica loaded")
	return rep, nil
}

// accessDenied reports whether err is DynamoDB refusing the call.
func accessDenied(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDeniedException"
}

// SessionFinder is what the classifier asks (classify.SessionFinder).
type SessionFinder interface {
	Lookup(ctx context.Context, q sessions.Query) (sessions.Result, error)
}

// Sessions is the session lookup a command classifies with: the replica's
// ReplicaFinder, with the Query path as its fallback, or the Query path
// alone when the replica is off (or, with auto, does not fit).
type Sessions struct {
	// Finder is what to classify with.
	Finder SessionFinder
	// Replica and ReplicaFinder are nil without a replica.
	Replica       *sessions.Replica
	ReplicaFinder *sessions.ReplicaFinder
}

// Sessions opens the lookup the flags ask for over fallback (today's
// Matcher over the cached table): it builds and loads the replica (Open)
// and puts a ReplicaFinder in front of fallback, waiting at most MaxWait
// for the replica to catch up with an event and adding orphanGrace to what
// an orphan re-check needs. The caller runs Run to keep the replica fresh.
func (r *Replica) Sessions(ctx context.Context, db sessions.DynamoDBAPI, store sessions.StoreConfig,
	matcher sessions.MatcherConfig, orphanGrace time.Duration, fallback SessionFinder, log zerolog.Logger) (*Sessions, error) {
	rep, err := r.Open(ctx, db, store, log)
	if err != nil || rep == nil {
		return &Sessions{Finder: fallback}, err
	}
	f, err := sessions.NewReplicaFinder(rep, fallback, sessions.ReplicaFinderConfig{Matcher: matcher, OrphanGrace: orphanGrace, MaxWait: r.MaxWait})
	if err != nil {
		return nil, fmt.Errorf("--session-replica %s: %w", r.Mode, err)
	}
	return &Sessions{Finder: f, Replica: rep, ReplicaFinder: f}, nil
}

// Run keeps the replica fresh until ctx is done, then returns nil (at once
// without a replica): run it in the command's errgroup.
func (s *Sessions) Run(ctx context.Context) error {
	if s.Replica == nil {
		return nil
	}
	if err := s.Replica.Run(ctx); ctx.Err() == nil {
		return err
	}
	return nil
}

// LazySessions is Sessions opened on the first Lookup rather than now (the
// backfill: a run whose window holds no event to look up reads no table).
// A failed open fails that lookup, as a store failure, and the next lookup
// opens again. Its Finder is the only field set; the replica runs no
// refreshes.
func (r *Replica) LazySessions(db sessions.DynamoDBAPI, store sessions.StoreConfig,
	matcher sessions.MatcherConfig, orphanGrace time.Duration, fallback SessionFinder, log zerolog.Logger) *Sessions {
	return &Sessions{Finder: &lazyFinder{open: func(ctx context.Context) (*Sessions, error) {
		return r.Sessions(ctx, db, store, matcher, orphanGrace, fallback, log)
	}}}
}

// lazyFinder opens its finder on the first Lookup that succeeds in opening
// it; concurrent first lookups wait for one open.
type lazyFinder struct {
	open   func(context.Context) (*Sessions, error)
	mu     sync.Mutex
	opened atomic.Pointer[Sessions]
}

func (l *lazyFinder) Lookup(ctx context.Context, q sessions.Query) (sessions.Result, error) {
	s := l.opened.Load()
	if s == nil {
		var err error
		if s, err = l.openOnce(ctx); err != nil {
			return sessions.Result{}, err
		}
	}
	return s.Finder.Lookup(ctx, q)
}

func (l *lazyFinder) openOnce(ctx context.Context) (*Sessions, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.opened.Load(); s != nil {
		return s, nil
	}
	s, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	l.opened.Store(s)
	return s, nil
}
