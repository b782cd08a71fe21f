package streamer

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// heartbeat extends the visibility of messages in flight once less than half
// of their visibility timeout is left, until ctx ends.
func (s *Streamer) heartbeat(ctx context.Context) error {
	vis := s.cfg.VisibilityTimeout
	tick := max(vis/4, 100*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		// Ask for a full timeout from now; count the deadline from now
		// too (the call takes a moment, so the real deadline is later).
		due := s.track.due(now, vis/2+tick, now.Add(vis))
		for start := 0; start < len(due); start += MaxBatch {
			s.extend(ctx, due[start:min(start+MaxBatch, len(due))])
		}
	}
}

func (s *Streamer) extend(ctx context.Context, batch []extension) {
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
	for i, e := range batch {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			ReceiptHandle:     aws.String(e.handle),
			VisibilityTimeout: s.cfg.visibilitySeconds(),
		}
	}
	out, err := s.queue.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(s.cfg.QueueURL), Entries: entries})
	if err != nil {
		if ctx.Err() == nil {
			s.track.failed(batch)
			s.m.extendFailures.Add(float64(len(batch)))
			s.log.Warn().Err(err).Int("messages", len(batch)).Msg("visibility extension failed; retrying at the next tick")
		}
		return
	}
	s.m.extended.Add(float64(len(out.Successful)))
	for _, f := range out.Failed {
		s.m.extendFailures.Inc()
		i, _ := strconv.Atoi(aws.ToString(f.Id))
		if i < 0 || i >= len(batch) {
			continue
		}
		s.log.Warn().Str("message_id", batch[i].id).Str("code", aws.ToString(f.Code)).Str("error", aws.ToString(f.Message)).
			Msg("visibility extension failed for a message in flight")
	}
}
