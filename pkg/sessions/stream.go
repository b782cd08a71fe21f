package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"
	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"
)

// StreamsAPI is the part of the DynamoDB Streams client the replica uses
// to follow the session table's stream; *dynamodbstreams.Client satisfies
// it.
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// Defaults of the stream follower (ReplicaConfig).
const (
	// DefaultStreamSettle is taken off the stream's watermark: the time a
	// completed write may take to show in its shard.
	DefaultStreamSettle = time.Second
	// DefaultStreamPoll is how often an idle shard is read (GetRecords
	// allows 5 calls a second a shard).
	DefaultStreamPoll = time.Second
	// DefaultStreamDescribe is how often the stream's shards are listed
	// to find new ones (also whenever a shard ends).
	DefaultStreamDescribe = 10 * time.Second
)

// ErrStreamUnusable says the stream cannot keep the replica exact: its
// view type carries no new image, it is not enabled, or it is another
// table's.
var ErrStreamUnusable = errors.New("sessions: replica: stream unusable")

// errResync asks for a full re-Load: the stream lost records the replica
// needs (trimmed, or the stream or a shard is gone), or the periodic
// safety-net re-scan is due.
var errResync = errors.New("sessions: replica: stream: full re-load needed")

const (
	getRecordsLimit = 1000
	// busyPause spaces the reads of a shard that returned records (at most
	// 4 a second, under GetRecords' 5).
	busyPause = 250 * time.Millisecond
	// maxStreamBackoff bounds the back-off between failed stream calls.
	maxStreamBackoff = 30 * time.Second
)

type shardPhase uint8

const (
	// shardFollowing: a goroutine reads the shard.
	shardFollowing shardPhase = iota
	// shardWaiting: found, but its parent is not read to its end yet.
	shardWaiting
	// shardEnded: read to its end; its children are not found yet, so it
	// holds the watermark.
	shardEnded
	// shardDone: ended (or closed before the load) and its children are
	// followed: it no longer holds the watermark.
	shardDone
)

// followedShard is what the follower knows of one shard.
type followedShard struct {
	id, parent string
	phase      shardPhase
	// iter is where to start reading (a LATEST iterator taken at load);
	// nil: TRIM_HORIZON.
	iter *string
	// fromLatest: the shard was started at a LATEST iterator taken at
	// load, so records before it are covered by the scan.
	fromLatest bool
	lastSeq    string    // of the last record applied
	tip        time.Time // start of the last GetRecords that returned nothing; zero: none yet
}

// holds reports whether the shard bounds the watermark.
func (s *followedShard) holds() bool { return s.phase != shardDone }

// streamFollower follows the session table's DynamoDB stream for a Replica.
type streamFollower struct {
	api                      StreamsAPI
	arn                      string
	settle, poll, describeAt time.Duration

	mu     sync.Mutex
	shards map[string]*followedShard

	records, errs atomic.Uint64
	following     atomic.Int64
}

func newStreamFollower(cfg ReplicaConfig) *streamFollower {
	return &streamFollower{api: cfg.Streams, arn: cfg.StreamARN, settle: cfg.StreamSettle, poll: cfg.StreamPoll,
		describeAt: cfg.StreamDescribe}
}

// describe lists every shard of the stream (DescribeStream, paged) and
// returns the description's first page with all the shards.
func (f *streamFollower) describe(ctx context.Context) (*streamtypes.StreamDescription, []streamtypes.Shard, error) {
	var (
		first  *streamtypes.StreamDescription
		shards []streamtypes.Shard
		start  *string
	)
	for {
		out, err := f.api.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(f.arn), ExclusiveStartShardId: start})
		if err != nil {
			return nil, nil, fmt.Errorf("describe stream %s: %w", f.arn, err)
		}
		d := out.StreamDescription
		if d == nil {
			return nil, nil, fmt.Errorf("describe stream %s: no description", f.arn)
		}
		if first == nil {
			first = d
		}
		shards = append(shards, d.Shards...)
		if d.LastEvaluatedShardId == nil || aws.ToString(d.LastEvaluatedShardId) == aws.ToString(start) {
			return first, shards, nil
		}
		start = d.LastEvaluatedShardId
	}
}

// begin checks the stream and takes a LATEST iterator for every open shard
// (before the load's Scan: a write the iterators miss, the Scan sees); a
// shard already closed was read by nobody, and the Scan covers its writes.
func (f *streamFollower) begin(ctx context.Context, table string) (map[string]*followedShard, error) {
	d, all, err := f.describe(ctx)
	if err != nil {
		return nil, err
	}
	switch d.StreamViewType {
	case streamtypes.StreamViewTypeNewImage, streamtypes.StreamViewTypeNewAndOldImages:
	default:
		return nil, fmt.Errorf("%w: %s has view type %s: want NEW_IMAGE or NEW_AND_OLD_IMAGES (the replica applies each write's new image)",
			ErrStreamUnusable, f.arn, d.StreamViewType)
	}
	if d.StreamStatus != streamtypes.StreamStatusEnabled {
		return nil, fmt.Errorf("%w: %s is %s, want ENABLED", ErrStreamUnusable, f.arn, d.StreamStatus)
	}
	if name := aws.ToString(d.TableName); name != "" && name != table {
		return nil, fmt.Errorf("%w: %s is the stream of table %s, not %s", ErrStreamUnusable, f.arn, name, table)
	}
	shards := make(map[string]*followedShard, len(all))
	for _, s := range all {
		sh := &followedShard{id: aws.ToString(s.ShardId), parent: aws.ToString(s.ParentShardId), phase: shardDone}
		shards[sh.id] = sh
		if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		out, err := f.api.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(f.arn),
			ShardId: s.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeLatest})
		if err != nil {
			return nil, fmt.Errorf("stream %s: shard %s: latest iterator: %w", f.arn, sh.id, err)
		}
		sh.phase, sh.iter, sh.fromLatest = shardFollowing, out.ShardIterator, true
	}
	return shards, nil
}

// install makes shards the ones to follow (after a load).
func (f *streamFollower) install(shards map[string]*followedShard) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards = shards
}

// tip returns the time every held shard has been read up to (the least
// tip), and false while a held shard has none (or none is held).
func (f *streamFollower) tip() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var least time.Time
	found := false
	for _, sh := range f.shards {
		if !sh.holds() {
			continue
		}
		if sh.tip.IsZero() {
			return time.Time{}, false
		}
		if !found || sh.tip.Before(least) {
			least, found = sh.tip, true
		}
	}
	return least, found
}

// follow reads the stream into r until ctx ends (ctx.Err()), a shard
// needs a re-Load or the safety-net re-scan is due (errResync).
func (f *streamFollower) follow(ctx context.Context, r *Replica, resyncAt time.Time) error {
	g, ctx := errgroup.WithContext(ctx)
	ended := make(chan struct{}, 1)
	startShard := func(sh *followedShard) {
		it := sh.iter
		sh.iter, sh.phase = nil, shardFollowing
		f.following.Add(1)
		g.Go(func() error {
			defer f.following.Add(-1)
			err := f.followShard(ctx, r, sh, it)
			if err == nil {
				select {
				case ended <- struct{}{}:
				default:
				}
			}
			return err
		})
	}
	f.mu.Lock()
	for _, sh := range f.shards {
		if sh.phase == shardFollowing {
			startShard(sh)
		}
	}
	f.mu.Unlock()
	g.Go(func() error {
		retry := newStreamBackoff(f.poll)
		timer := time.NewTimer(f.describeAt)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			case <-ended:
			}
			if !r.now().Before(resyncAt) {
				return errResync
			}
			wait := f.describeAt
			_, all, err := f.describe(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				f.errs.Add(1)
				if isGone(err) {
					return errResync
				}
				wait = min(wait, retry.NextBackOff())
			} else {
				retry.Reset()
				if f.adopt(all, startShard) {
					wait = f.poll // a shard waits for its children: look again soon
				}
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(wait)
		}
	})
	return g.Wait()
}

// adopt takes the shards of a description: a shard not known yet waits
// for its parent (when the parent is still read) or is started at
// TRIM_HORIZON; an ended shard whose children are known is done. It
// reports whether an ended shard still has no child.
func (f *streamFollower) adopt(all []streamtypes.Shard, start func(*followedShard)) (childless bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range all {
		id := aws.ToString(s.ShardId)
		if _, known := f.shards[id]; !known {
			f.shards[id] = &followedShard{id: id, parent: aws.ToString(s.ParentShardId), phase: shardWaiting}
		}
	}
	hasChild := map[string]bool{}
	for _, sh := range f.shards {
		hasChild[sh.parent] = true
	}
	// A parent's children start together once it is done; a shard whose
	// parent is not known (trimmed before the load) starts at once.
	for _, sh := range f.shards {
		if sh.phase == shardEnded && hasChild[sh.id] {
			sh.phase = shardDone
		}
	}
	for _, sh := range f.shards {
		if sh.phase != shardWaiting {
			continue
		}
		if p, ok := f.shards[sh.parent]; !ok || p.phase == shardDone {
			start(sh)
		}
	}
	for _, sh := range f.shards {
		if sh.phase == shardEnded {
			return true
		}
	}
	return false
}

// followShard reads one shard from it (nil: TRIM_HORIZON) into r until
// the shard ends (nil), ctx ends, or the stream lost what the replica
// needs (errResync).
func (f *streamFollower) followShard(ctx context.Context, r *Replica, sh *followedShard, it *string) error {
	retry := newStreamBackoff(f.poll)
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err() // stopping: not a stream error
		}
		f.errs.Add(1)
		if isGone(err) || apiCode(err) == "TrimmedDataAccessException" {
			return errResync
		}
		return sleepCtx(ctx, retry.NextBackOff())
	}
	for {
		if it == nil {
			next, err := f.iterator(ctx, sh)
			if err != nil {
				if err := fail(err); err != nil {
					return err
				}
				continue
			}
			it = next
		}
		started := r.now()
		out, err := f.api.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(getRecordsLimit)})
		if err != nil {
			if apiCode(err) == "ExpiredIteratorException" {
				it = nil // a new one after the last record applied
			}
			if err := fail(fmt.Errorf("stream %s: shard %s: get records: %w", f.arn, sh.id, err)); err != nil {
				return err
			}
			continue
		}
		lastSeq, err := r.applyStream(out.Records)
		f.mu.Lock()
		if lastSeq != "" {
			sh.lastSeq = lastSeq
		}
		f.mu.Unlock()
		if err != nil {
			// Read the same records again (the iterator stays valid for
			// 15 minutes; the records before the one that failed apply
			// again, in order, under one lock).
			if err := fail(fmt.Errorf("stream %s: shard %s: %w", f.arn, sh.id, err)); err != nil {
				return err
			}
			continue
		}
		retry.Reset()
		if out.NextShardIterator == nil {
			f.mu.Lock()
			sh.phase = shardEnded
			f.mu.Unlock()
			return nil
		}
		it = out.NextShardIterator
		pause := busyPause
		if len(out.Records) == 0 {
			f.mu.Lock()
			sh.tip = started
			f.mu.Unlock()
			r.streamAdvance()
			pause = f.poll
		}
		if err := sleepCtx(ctx, pause); err != nil {
			return err
		}
	}
}

// iterator returns a new iterator for sh: after the last record applied,
// or at TRIM_HORIZON when none was. A shard started at load's LATEST
// iterator with no record applied since cannot be resumed exactly (its
// older records are the scan's, and replaying them would show states
// older than the watermark): that needs a re-Load.
func (f *streamFollower) iterator(ctx context.Context, sh *followedShard) (*string, error) {
	f.mu.Lock()
	last, fromLatest := sh.lastSeq, sh.fromLatest
	f.mu.Unlock()
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(f.arn), ShardId: aws.String(sh.id),
		ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon}
	switch {
	case last != "":
		in.ShardIteratorType, in.SequenceNumber = streamtypes.ShardIteratorTypeAfterSequenceNumber, aws.String(last)
	case fromLatest:
		return nil, fmt.Errorf("stream %s: shard %s: iterator expired before any record: %w", f.arn, sh.id, errResync)
	}
	out, err := f.api.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("stream %s: shard %s: iterator %s: %w", f.arn, sh.id, in.ShardIteratorType, err)
	}
	return out.ShardIterator, nil
}

func newStreamBackoff(initial time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = maxStreamBackoff
	return b
}

// sleepCtx waits d or until ctx ends (then ctx.Err()).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isGone reports an error that says the stream (or a shard) no longer
// exists, or that a re-Load is needed.
func isGone(err error) bool {
	return errors.Is(err, errResync) || apiCode(err) == "ResourceNotFoundException"
}

// applyStream applies stream records in order: INSERT and MODIFY put the
// new image, decoded as the Scan decodes items; REMOVE deletes the key. It
// returns the sequence number of the last record applied; an error stops
// at the record that failed.
func (r *Replica) applyStream(recs []streamtypes.Record) (string, error) {
	if len(recs) == 0 {
		return "", nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	last := ""
	for _, rec := range recs {
		if rec.Dynamodb == nil {
			return last, fmt.Errorf("record %s without a dynamodb body", aws.ToString(rec.EventID))
		}
		s, created, remove, err := decodeStreamRecord(rec)
		if err != nil {
			return last, err
		}
		switch {
		case remove:
			r.st.delete(s.ID)
		default:
			if _, known := r.st.byID[s.ID]; !known && r.st.live >= r.cfg.MaxSessions {
				return last, fmt.Errorf("%w (limit %d)", ErrReplicaTooLarge, r.cfg.MaxSessions)
			}
			r.st.put(s, created, r.gen)
		}
		last = aws.ToString(rec.Dynamodb.SequenceNumber)
		r.stream.records.Add(1)
	}
	return last, nil
}

// decodeStreamRecord decodes a stream record: for INSERT and MODIFY the
// session of its new image (and whether it has a created_at), for REMOVE
// the session's id alone (remove true).
func decodeStreamRecord(rec streamtypes.Record) (s Session, created, remove bool, err error) {
	d := rec.Dynamodb
	switch rec.EventName {
	case streamtypes.OperationTypeRemove:
		id, ok := d.Keys[AttrID].(*streamtypes.AttributeValueMemberS)
		if !ok {
			return Session{}, false, false, fmt.Errorf("REMOVE record %s: no string key %s", aws.ToString(d.SequenceNumber), AttrID)
		}
		return Session{ID: id.Value}, false, true, nil
	case streamtypes.OperationTypeInsert, streamtypes.OperationTypeModify:
		if d.NewImage == nil {
			return Session{}, false, false, fmt.Errorf("%s record %s: no new image (view type %s)", rec.EventName, aws.ToString(d.SequenceNumber), d.StreamViewType)
		}
		s, created = decodeReplicaItem(fromStreamImage(d.NewImage))
		if s.ID == "" {
			return Session{}, false, false, fmt.Errorf("%s record %s: new image without a string %s", rec.EventName, aws.ToString(d.SequenceNumber), AttrID)
		}
		return s, created, false, nil
	}
	return Session{}, false, false, fmt.Errorf("record %s: event %q", aws.ToString(d.SequenceNumber), rec.EventName)
}

// fromStreamImage converts a stream image to the DynamoDB client's
// attribute values, attribute by attribute: one the SDK cannot convert
// (an unknown type) becomes an unknown member, which UnmarshalItem reports
// as malformed, as the Scan would.
func fromStreamImage(img map[string]streamtypes.AttributeValue) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(img))
	for k, v := range img {
		c, err := attributevalue.FromDynamoDBStreams(v)
		if err != nil || c == nil {
			c = &types.UnknownUnionMember{Tag: "unconvertible"}
		}
		out[k] = c
	}
	return out
}

// decodeReplicaItem decodes a table item as the replica keeps it: the
// session and whether it has a created_at (gsi-user membership).
func decodeReplicaItem(item map[string]types.AttributeValue) (Session, bool) {
	c, ok := item[AttrCreatedAt].(*types.AttributeValueMemberS)
	return UnmarshalItem(item), ok && c.Value != ""
}

// streamAdvance moves the watermark to the least shard tip less the
// clock margin and the settle allowance, once every held shard has one.
func (r *Replica) streamAdvance() {
	if tip, ok := r.stream.tip(); ok {
		r.advance(tip.Add(-r.cfg.ClockMargin - r.cfg.StreamSettle))
	}
}

// followStream is Run with a stream: follow it; on a lost position, a gone
// stream or every FullResync, re-Load (retried with back-off; the
// watermark waits meanwhile) and follow again.
func (r *Replica) followStream(ctx context.Context) error {
	retry := newStreamBackoff(r.cfg.StreamPoll)
	for {
		err := r.stream.follow(ctx, r, r.lastStart.Add(r.cfg.FullResync))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, errResync) {
			return fmt.Errorf("sessions: replica: follow stream: %w", err)
		}
		for {
			r.refreshes.Add(1)
			err := r.Load(ctx)
			if err == nil {
				r.fullResyncs.Add(1)
				retry.Reset()
				break
			}
			r.refreshErrors.Add(1)
			r.stream.errs.Add(1)
			if err := sleepCtx(ctx, retry.NextBackOff()); err != nil {
				return err
			}
		}
	}
}
