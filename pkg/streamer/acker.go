package streamer

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"
)

// ackRequest resolves one delivery on the queue: delete it, or release it
// with a visibility timeout.
type ackRequest struct {
	d          *delivery
	release    bool
	visibility int32  // seconds, for a release
	reason     string // for a release
}

// maxConcurrentFlushes bounds the delete and visibility calls in progress;
// when they lag, the acker's input fills and workers wait.
const maxConcurrentFlushes = 4

// acker batches deletes and releases (MaxBatch entries or FlushInterval,
// whichever comes first) and frees each delivery's in-flight slot once its
// call returned. It runs until its input is closed, then flushes what it
// holds and waits for every call, each bounded by callCtx.
func (s *Streamer) acker(callCtx context.Context) error {
	var (
		deletes  = make([]ackRequest, 0, MaxBatch)
		releases = make([]ackRequest, 0, MaxBatch)
		calls    errgroup.Group
	)
	calls.SetLimit(maxConcurrentFlushes)
	flushDeletes := func() {
		if len(deletes) == 0 {
			return
		}
		batch := deletes
		deletes = make([]ackRequest, 0, MaxBatch)
		calls.Go(func() error { s.deleteBatch(callCtx, batch); return nil })
	}
	flushReleases := func() {
		if len(releases) == 0 {
			return
		}
		batch := releases
		releases = make([]ackRequest, 0, MaxBatch)
		calls.Go(func() error { s.releaseBatch(callCtx, batch); return nil })
	}
	ticker := time.NewTicker(s.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case r, ok := <-s.acks:
			if !ok {
				flushDeletes()
				flushReleases()
				return calls.Wait()
			}
			if r.release {
				releases = append(releases, r)
				if len(releases) == MaxBatch {
					flushReleases()
				}
			} else {
				deletes = append(deletes, r)
				if len(deletes) == MaxBatch {
					flushDeletes()
				}
			}
		case <-ticker.C:
			flushDeletes()
			flushReleases()
		}
	}
}

func (s *Streamer) deleteBatch(ctx context.Context, batch []ackRequest) {
	defer s.slots.Release(int64(len(batch)))
	entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.d.handle)}
	}
	out, err := s.queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: entries})
	if err != nil {
		s.m.deleteFailures.Add(float64(len(batch)))
		s.log.Error().Err(err).Int("messages", len(batch)).Msg("delete failed; the messages come back after their visibility timeout and are processed again")
		return
	}
	now := time.Now()
	for _, ok := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(ok.Id)); err == nil && i >= 0 && i < len(batch) {
			s.m.ackLatency.Observe(now.Sub(batch[i].d.received).Seconds())
		}
	}
	s.m.deleted.Add(float64(len(out.Successful)))
	for _, f := range out.Failed {
		s.m.deleteFailures.Inc()
		ev := s.log.Error().Str("code", aws.ToString(f.Code)).Str("error", aws.ToString(f.Message))
		if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(batch) {
			ev = ev.Str("message_id", batch[i].d.id)
		}
		ev.Msg("delete failed for a message; it comes back after its visibility timeout")
	}
}

func (s *Streamer) releaseBatch(ctx context.Context, batch []ackRequest) {
	defer s.slots.Release(int64(len(batch)))
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.d.handle), VisibilityTimeout: r.visibility,
		}
	}
	out, err := s.queue.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: entries})
	if err != nil {
		s.m.releaseFailures.Add(float64(len(batch)))
		s.log.Warn().Err(err).Int("messages", len(batch)).Msg("release failed; the messages come back after their visibility timeout")
		return
	}
	for _, ok := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(ok.Id)); err == nil && i >= 0 && i < len(batch) {
			s.m.released[batch[i].reason].Inc()
		}
	}
	for _, f := range out.Failed {
		s.m.releaseFailures.Inc()
		ev := s.log.Warn().Str("code", aws.ToString(f.Code)).Str("error", aws.ToString(f.Message))
		if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(batch) {
			ev = ev.Str("message_id", batch[i].d.id)
		}
		ev.Msg("release failed for a message; it comes back after its visibility timeout")
	}
}
