package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"
)

// ErrReplicaTooLarge says the table holds more sessions than
// ReplicaConfig.MaxSessions: use the Query path instead.
var ErrReplicaTooLarge = errors.New("sessions: replica: table larger than the replica's limit")

// Defaults for ReplicaConfig.
const (
	DefaultReplicaScanSegments = 4
	DefaultReplicaRefresh      = 30 * time.Second
	DefaultReplicaMaxSessions  = 2_000_000
	// DefaultReplicaClockMargin is taken off every watermark: the replica
	// claims a write only if it completed at least this long before the
	// scan started by this host's clock, so a host clock running up to
	// this far ahead of AWS's (CloudTrail's event times) cannot make an
	// answer final too early.
	DefaultReplicaClockMargin = time.Second
	// DefaultReplicaRescanOverlap is how far before the last scan's start an
	// incremental re-scan still reads updated_at: it covers the writer's
	// clock running behind ours and the time between stamping updated_at
	// and the write completing (retries included). It costs no read
	// capacity (a filtered Scan pays for every item it reads anyway), only
	// the items it returns again.
	DefaultReplicaRescanOverlap = 5 * time.Minute
	// DefaultReplicaFullResync is how often a re-scan reads everything, so
	// that deleted (TTL) items leave the replica.
	DefaultReplicaFullResync = time.Hour
)

// ReplicaConfig configures a Replica. Zero fields take their defaults.
type ReplicaConfig struct {
	Store        StoreConfig   // table and index names, as for the Store
	ScanSegments int           // parallel Scan TotalSegments
	Refresh      time.Duration // incremental re-scan period when there is no stream
	StreamARN    string        // the table's stream; "" means periodic re-scans
	MaxSessions  int           // Load fails with ErrReplicaTooLarge beyond it
	// ClockMargin is subtracted from every watermark
	// (DefaultReplicaClockMargin).
	ClockMargin time.Duration
	// RescanOverlap widens each incremental re-scan's updated_at filter
	// (DefaultReplicaRescanOverlap).
	RescanOverlap time.Duration
	// FullResync is the period of unfiltered re-scans that drop deleted
	// items (DefaultReplicaFullResync); with a stream, of full re-Loads
	// (a safety net).
	FullResync time.Duration
	// Streams reads StreamARN (required with it).
	Streams StreamsAPI
	// StreamSettle is taken off the stream's watermark: how long a
	// completed write may take to show in its shard (DefaultStreamSettle).
	StreamSettle time.Duration
	// StreamPoll is how often an idle shard is read (DefaultStreamPoll);
	// StreamDescribe how often the shards are listed
	// (DefaultStreamDescribe).
	StreamPoll, StreamDescribe time.Duration
	// Now is the clock; nil = time.Now (tests).
	Now func() time.Time
}

// Validate reports a configuration the Replica cannot use.
func (c ReplicaConfig) Validate() error {
	errs := []error{c.Store.Validate()}
	if c.ScanSegments < 0 || c.ScanSegments > 1_000_000 {
		errs = append(errs, fmt.Errorf("scan segments %d out of [1, 1000000]", c.ScanSegments))
	}
	for name, d := range map[string]time.Duration{"refresh": c.Refresh, "clock margin": c.ClockMargin,
		"rescan overlap": c.RescanOverlap, "full resync": c.FullResync, "stream settle": c.StreamSettle,
		"stream poll": c.StreamPoll, "stream describe": c.StreamDescribe} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", name, d))
		}
	}
	if c.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("max sessions %d is negative", c.MaxSessions))
	}
	if c.StreamARN != "" && c.Streams == nil {
		errs = append(errs, errors.New("a stream ARN needs a DynamoDB Streams client"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sessions: replica config: %w", err)
	}
	return nil
}

func (c ReplicaConfig) withDefaults() ReplicaConfig {
	c.Store = c.Store.withDefaults()
	if c.ScanSegments == 0 {
		c.ScanSegments = DefaultReplicaScanSegments
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultReplicaRefresh
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultReplicaMaxSessions
	}
	if c.ClockMargin == 0 {
		c.ClockMargin = DefaultReplicaClockMargin
	}
	if c.RescanOverlap == 0 {
		c.RescanOverlap = DefaultReplicaRescanOverlap
	}
	if c.FullResync == 0 {
		c.FullResync = DefaultReplicaFullResync
	}
	if c.StreamSettle == 0 {
		c.StreamSettle = DefaultStreamSettle
	}
	if c.StreamPoll == 0 {
		c.StreamPoll = DefaultStreamPoll
	}
	if c.StreamDescribe == 0 {
		c.StreamDescribe = DefaultStreamDescribe
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ReplicaStats is a snapshot of the replica.
type ReplicaStats struct {
	Sessions      int
	Bytes         int64 // estimated heap held (replicaState.bytes)
	Refreshes     uint64
	RefreshErrors uint64
	FullResyncs   uint64 // with a stream: full re-Loads (lost stream position, safety net)
	Watermark     time.Time
	// With a stream: the shards being read, the records applied, the
	// stream calls that failed, and now less the watermark.
	StreamShards  int
	StreamRecords uint64
	StreamErrors  uint64
	StreamLag     time.Duration
}

// Replica holds the whole session table in memory: loaded by a parallel
// consistent Scan and kept fresh by periodic incremental re-scans or by the
// table's DynamoDB Stream (see docs/REPLICA.md). Its watermark says how
// fresh it is: every write that completed before Watermark() has been
// applied.
type Replica struct {
	db  DynamoDBAPI
	cfg ReplicaConfig
	now func() time.Time

	mu  sync.RWMutex
	st  *replicaState
	gen uint16 // of the last full read

	watermark atomic.Int64 // Unix nanoseconds; 0 until loaded
	// lastStart is when the last successful scan started (the base of the
	// next incremental filter); Run alone writes it after Load.
	lastStart time.Time
	// nextStart and lastDuration predict when the watermark passes a time
	// (ReplicaFinder's RetryAfter).
	nextStart    atomic.Int64
	lastDuration atomic.Int64

	refreshes, refreshErrors, fullResyncs atomic.Uint64
	// fullNext says the table is deleting items (TTL's included): an
	// incremental re-scan cannot see a delete, so refreshes read
	// everything until one finds nothing deleted.
	fullNext atomic.Bool

	loaded atomic.Bool     // a Load succeeded
	stream *streamFollower // nil without a stream
}

// NewReplica returns an empty Replica: call Load, then Run.
func NewReplica(db DynamoDBAPI, cfg ReplicaConfig) (*Replica, error) {
	if db == nil {
		return nil, errors.New("sessions: replica: nil DynamoDB client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Replica{db: db, cfg: cfg, now: cfg.Now, st: newReplicaState(0)}
	if cfg.StreamARN != "" {
		r.stream = newStreamFollower(cfg)
	}
	return r, nil
}

// Watermark returns the time before which every completed write has been
// applied; zero before Load.
func (r *Replica) Watermark() time.Time {
	n := r.watermark.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// advance moves the watermark to w unless it is already later.
func (r *Replica) advance(w time.Time) {
	n := w.UnixNano()
	for {
		old := r.watermark.Load()
		if old >= n || r.watermark.CompareAndSwap(old, n) {
			return
		}
	}
}

// Stats returns a snapshot of the replica's counters.
func (r *Replica) Stats() ReplicaStats {
	r.mu.RLock()
	sessions, bytes := r.st.live, r.st.bytes()
	r.mu.RUnlock()
	st := ReplicaStats{
		Sessions:      sessions,
		Bytes:         bytes,
		Refreshes:     r.refreshes.Load(),
		RefreshErrors: r.refreshErrors.Load(),
		FullResyncs:   r.fullResyncs.Load(),
		Watermark:     r.Watermark(),
	}
	if f := r.stream; f != nil {
		st.StreamShards = int(f.following.Load())
		st.StreamRecords, st.StreamErrors = f.records.Load(), f.errs.Load()
		if !st.Watermark.IsZero() {
			st.StreamLag = r.now().Sub(st.Watermark)
		}
	}
	return st
}

// Load reads the whole table with a parallel consistent Scan and replaces
// the replica's content; the watermark becomes the scan's start less
// ClockMargin (a consistent read sees every write that completed before
// it). A table with more than MaxSessions sessions fails with
// ErrReplicaTooLarge, and the scan stops there.
//
// With a stream, Load first checks it (ErrStreamUnusable) and takes a
// LATEST iterator for every open shard, then scans; the watermark does not
// move until Run has read every shard to its tip (the records between the
// iterators and the scan replay older states of some items).
func (r *Replica) Load(ctx context.Context) error {
	started := r.now()
	var shards map[string]*followedShard
	if r.stream != nil {
		var err error
		if shards, err = r.stream.begin(ctx, r.cfg.Store.Table); err != nil {
			return fmt.Errorf("sessions: replica: load %s: %w", r.cfg.Store.Table, err)
		}
	}
	st := newReplicaState(0)
	st.bulk = true
	var mu sync.Mutex
	_, err := r.scan(ctx, "", func(ss []Session, created []bool) error {
		mu.Lock()
		defer mu.Unlock()
		for i, s := range ss {
			st.put(s, created[i], 1)
		}
		if st.live > r.cfg.MaxSessions {
			return fmt.Errorf("%w (%d sessions read, limit %d)", ErrReplicaTooLarge, st.live, r.cfg.MaxSessions)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sessions: replica: load %s: %w", r.cfg.Store.Table, err)
	}
	st.finish()
	r.mu.Lock()
	r.st, r.gen = st, 1
	r.mu.Unlock()
	r.loaded.Store(true)
	if r.stream != nil {
		r.stream.install(shards)
		r.lastStart = started
		r.lastDuration.Store(int64(r.now().Sub(started)))
		return nil
	}
	r.scanned(started)
	return nil
}

// scanned records a successful scan that started at started.
func (r *Replica) scanned(started time.Time) {
	r.lastStart = started
	r.lastDuration.Store(int64(r.now().Sub(started)))
	r.nextStart.Store(started.Add(r.cfg.Refresh).UnixNano())
	r.advance(started.Add(-r.cfg.ClockMargin))
}

// sinceLayout formats the incremental filter's bound at whole seconds and
// without a zone: compared as strings with Sentinel's updated_at (RFC 3339
// in UTC, "2006-01-02T15:04:05[.fff]Z"), every value in that second or
// later sorts at or after it, whatever its fraction. (RFC 3339 with a
// fraction does not sort as a string: "05.5Z" < "05Z".)
const sinceLayout = "2006-01-02T15:04:05"

// refresh re-scans the table: the items updated since the last scan began
// (less RescanOverlap), plus every item without a string updated_at; or,
// when full, everything, after which the sessions it did not see are
// dropped.
//
// An incremental re-scan cannot return an item that is gone, so it also
// counts the items the table holds (the Scan's ScannedCount: every item
// present throughout the scan is counted once, in exactly one segment).
// When that differs from the sessions the replica then holds, the table
// deleted an item (or holds one written with an updated_at older than the
// filter), and the refresh reads everything at once instead: the watermark
// moves only with a scan that saw every delete before its start. Refreshes
// stay full while they keep finding deleted items.
func (r *Replica) refresh(ctx context.Context, full bool) error {
	started := r.now()
	r.refreshes.Add(1)
	filter := ""
	if !full {
		filter = r.lastStart.Add(-r.cfg.RescanOverlap).UTC().Truncate(time.Second).Add(-time.Second).Format(sinceLayout)
	}
	r.mu.Lock()
	gen := r.gen
	if full {
		gen++
	}
	r.mu.Unlock()
	scanned, err := r.scan(ctx, filter, func(ss []Session, created []bool) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, s := range ss {
			if _, known := r.st.byID[s.ID]; !known && r.st.live >= r.cfg.MaxSessions {
				return fmt.Errorf("%w (limit %d)", ErrReplicaTooLarge, r.cfg.MaxSessions)
			}
			r.st.put(s, created[i], gen)
		}
		return nil
	})
	if err != nil {
		r.refreshErrors.Add(1)
		return fmt.Errorf("sessions: replica: refresh %s: %w", r.cfg.Store.Table, err)
	}
	if !full {
		r.mu.RLock()
		held := r.st.live
		r.mu.RUnlock()
		if scanned != int64(held) {
			r.fullNext.Store(true)
			return r.refresh(ctx, true)
		}
	}
	if full {
		r.mu.Lock()
		dropped := r.st.sweep(gen)
		r.gen = gen
		r.mu.Unlock()
		r.fullResyncs.Add(1)
		r.fullNext.Store(dropped > 0)
	}
	r.scanned(started)
	return nil
}

// replicaAttrs are the attributes the replica reads (see replicaState).
var replicaAttrs = []string{AttrID, AttrUser, AttrProfile, AttrStatus, AttrSourceIdentity, AttrStartedAt,
	AttrExpiresAt, AttrUpdatedAt, AttrCreatedAt, AttrRevokedBy, AttrRevokedReason}

// scan reads the table with ScanSegments parallel consistent Scans, handing
// each decoded page to apply (concurrently); since, when set, keeps items
// whose updated_at is missing, not a string, or not before it. It returns
// how many items the Scans read before the filter (their ScannedCount).
func (r *Replica) scan(ctx context.Context, since string, apply func([]Session, []bool) error) (int64, error) {
	names := make(map[string]string, len(replicaAttrs))
	projection := ""
	for i, a := range replicaAttrs {
		ph := fmt.Sprintf("#a%d", i)
		names[ph] = a
		if i > 0 {
			projection += ", "
		}
		projection += ph
	}
	base := dynamodb.ScanInput{
		TableName:                aws.String(r.cfg.Store.Table),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String(projection),
		ExpressionAttributeNames: names,
	}
	if r.cfg.Store.PageSize > 0 {
		base.Limit = aws.Int32(r.cfg.Store.PageSize)
	}
	if since != "" {
		names["#upd"] = AttrUpdatedAt
		base.FilterExpression = aws.String("attribute_not_exists(#upd) OR NOT attribute_type(#upd, :str) OR #upd >= :since")
		base.ExpressionAttributeValues = map[string]types.AttributeValue{
			":str":   &types.AttributeValueMemberS{Value: string(types.ScalarAttributeTypeS)},
			":since": &types.AttributeValueMemberS{Value: since},
		}
	}
	var scanned atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	segments := int32(r.cfg.ScanSegments)
	for seg := range segments {
		g.Go(func() error {
			in := base
			in.Segment, in.TotalSegments = aws.Int32(seg), aws.Int32(segments)
			pages := dynamodb.NewScanPaginator(r.db, &in)
			for pages.HasMorePages() {
				if err := ctx.Err(); err != nil {
					return err
				}
				page, err := r.nextPage(ctx, pages)
				if err != nil {
					return fmt.Errorf("scan segment %d of %d: %w", seg, segments, err)
				}
				scanned.Add(int64(page.ScannedCount))
				ss := make([]Session, len(page.Items))
				created := make([]bool, len(page.Items))
				for i, item := range page.Items {
					ss[i], created[i] = decodeReplicaItem(item)
				}
				if err := apply(ss, created); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return scanned.Load(), nil
}

// scanPageTimeout bounds one Scan page's request (its retries included).
const scanPageTimeout = time.Minute

// nextPage reads the next page without cancelling a request in flight when
// ctx ends (a shutdown): the scan stops before its next page instead, at
// most one page later. (An aborted request gains nothing, and dynalite, the
// emulator the tests and the demo use, exits on one.)
func (r *Replica) nextPage(ctx context.Context, pages *dynamodb.ScanPaginator) (*dynamodb.ScanOutput, error) {
	pageCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), scanPageTimeout)
	defer cancel()
	return pages.NextPage(pageCtx)
}

// Run keeps the replica fresh until ctx is done and then returns ctx.Err().
// Without a stream it re-scans every Refresh (from the start of one scan to
// the start of the next), reading everything every FullResync and while
// the table deletes items (see refresh). A failed
// refresh is retried with back-off (at most Refresh apart) and only holds
// the watermark back: the replica never answers from a state its watermark
// does not cover. Call Load first.
//
// With a stream, Run follows it instead (docs/REPLICA.md): each shard read
// about every StreamPoll when idle, new shards found by DescribeStream, a
// full re-Load when the stream lost records the replica needs, and every
// FullResync as a safety net.
func (r *Replica) Run(ctx context.Context) error {
	if !r.loaded.Load() {
		return errors.New("sessions: replica: Run before a successful Load")
	}
	if r.stream != nil {
		return r.followStream(ctx)
	}
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = min(time.Second, r.cfg.Refresh)
	retry.MaxInterval = r.cfg.Refresh
	lastFull := r.lastStart
	timer := time.NewTimer(r.untilNext())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		full := r.fullNext.Load() || r.now().Sub(lastFull) >= r.cfg.FullResync
		started := r.now()
		if err := r.refresh(ctx, full); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wait := retry.NextBackOff()
			r.nextStart.Store(r.now().Add(wait).UnixNano())
			timer.Reset(wait)
			continue
		}
		retry.Reset()
		if full {
			lastFull = started
		}
		timer.Reset(r.untilNext())
	}
}

// untilNext is the wait before the next scheduled refresh.
func (r *Replica) untilNext() time.Duration {
	return max(0, time.Unix(0, r.nextStart.Load()).Sub(r.now()))
}

// healthy reports whether the watermark is recent enough to wait for: at
// most about two refresh periods old.
func (r *Replica) healthy() bool {
	w := r.Watermark()
	if w.IsZero() {
		return false
	}
	return r.now().Sub(w) <= 2*r.cfg.Refresh+r.cfg.ClockMargin+time.Duration(r.lastDuration.Load())
}

// expectedPass estimates how long until the watermark passes until.
func (r *Replica) expectedPass(until time.Time) time.Duration {
	now := r.now()
	if r.stream != nil {
		// The first empty read of every shard that starts after until +
		// ClockMargin + StreamSettle passes it: about a poll later.
		return max(time.Millisecond, until.Add(r.cfg.ClockMargin+r.cfg.StreamSettle).Sub(now)+r.cfg.StreamPoll)
	}
	// A scan that starts at or after until + ClockMargin passes it, once
	// it ends (about lastDuration later).
	need := until.Add(r.cfg.ClockMargin)
	next := time.Unix(0, r.nextStart.Load())
	if next.Before(need) {
		periods := (need.Sub(next) + r.cfg.Refresh - 1) / r.cfg.Refresh
		next = next.Add(periods * r.cfg.Refresh)
	}
	return max(time.Millisecond, next.Sub(now)+time.Duration(r.lastDuration.Load()))
}

// replicaReader serves the Matcher from the replica: it is the
// CachingReader and RawNameResolver of a ReplicaFinder, so that the replica
// answers with the Matcher's own policy. Its entries are views that read
// the replica under its lock and copy only the sessions that match.
type replicaReader struct{ r *Replica }

func (rr replicaReader) BySourceIdentity(_ context.Context, si string, _ time.Duration) (Entry, error) {
	return Entry{FetchedAt: rr.r.now(), view: replicaSIView{rr.r, si}}, nil
}

func (rr replicaReader) ByUser(_ context.Context, rawUser string, _ time.Duration) (Entry, error) {
	return Entry{FetchedAt: rr.r.now(), view: replicaUserView{rr.r, rawUser}}, nil
}

// RawNames returns the raw names the replica holds sessions under for the
// sanitised user.
func (rr replicaReader) RawNames(_ context.Context, user string) ([]string, error) {
	rr.r.mu.RLock()
	defer rr.r.mu.RUnlock()
	return rr.r.st.rawNames(user), nil
}

// Refresh has nothing to do: the replica's names are as fresh as its
// sessions.
func (rr replicaReader) Refresh(context.Context) (bool, error) { return false, nil }

// replicaSIView is the gsi-source-identity answer for one SourceIdentity.
type replicaSIView struct {
	r  *Replica
	si string
}

func (v replicaSIView) all() []Session {
	v.r.mu.RLock()
	defer v.r.mu.RUnlock()
	return v.r.st.withSourceIdentity(v.si, "", false)
}

func (v replicaSIView) withSourceIdentity(si string) []Session {
	if si != v.si {
		return nil
	}
	return v.all()
}

func (v replicaSIView) covering(at time.Time, skew time.Duration) []Session {
	return keep(v.all(), func(s Session) bool { return s.Covers(at, skew) })
}

// replicaUserView is the gsi-user answer for one raw user name.
type replicaUserView struct {
	r    *Replica
	user string
}

func (v replicaUserView) all() []Session {
	v.r.mu.RLock()
	defer v.r.mu.RUnlock()
	return v.r.st.userAll(v.user)
}

func (v replicaUserView) withSourceIdentity(si string) []Session {
	v.r.mu.RLock()
	defer v.r.mu.RUnlock()
	return v.r.st.withSourceIdentity(si, v.user, true)
}

func (v replicaUserView) covering(at time.Time, skew time.Duration) []Session {
	v.r.mu.RLock()
	defer v.r.mu.RUnlock()
	return v.r.st.userCovering(v.user, at, skew)
}
