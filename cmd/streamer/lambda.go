package main

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/sessionwatch/sessionwatch/pkg/streamer"
)

// lambdaRuntime reports whether the Lambda runtime started the process: the
// runtime API (provided.al2023) or the older RPC server port (go1.x).
func lambdaRuntime(lookupEnv func(string) (string, bool)) bool {
	for _, name := range []string{"AWS_LAMBDA_RUNTIME_API", "_LAMBDA_SERVER_PORT"} {
		if v, ok := lookupEnv(name); ok && v != "" {
			return true
		}
	}
	return false
}

// answerMargin is kept before an invocation's deadline (a quarter of the
// time left at most) so that the handler answers in time: a handler that
// times out fails its whole batch, while one that answers fails only the
// messages it did not finish.
const answerMargin = 3 * time.Second

// sqsHandler answers the SQS event source mapping: every record makes one
// pass through the streamer's per-message path, and the records that are not
// done are reported as batch item failures, so that only they come back
// after the queue's visibility timeout.
type sqsHandler struct {
	proc    *streamer.Processor
	workers int
	log     zerolog.Logger
}

func (h *sqsHandler) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-min(answerMargin, time.Until(deadline)/4)))
		defer cancel()
	}
	start := time.Now()
	results := make([]streamer.Disposition, len(ev.Records))
	var g errgroup.Group
	g.SetLimit(max(h.workers, 1))
	for i, r := range ev.Records {
		g.Go(func() error {
			n, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
			// Process returns once every sink answered for the
			// message's findings: nothing is left to flush after Wait.
			results[i] = h.proc.Process(ctx, streamer.Message{ID: r.MessageId, Body: r.Body, ReceiveCount: n})
			return nil
		})
	}
	_ = g.Wait()

	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	var count [streamer.Undecodable + 1]int
	for i, d := range results {
		count[d]++
		if d != streamer.Done {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	h.log.Info().Int("messages", len(ev.Records)).Int("done", count[streamer.Done]).Int("held", count[streamer.Held]).
		Int("failed", count[streamer.Failed]).Int("undecodable", count[streamer.Undecodable]).
		Dur("took", time.Since(start)).Msg("batch processed")
	return resp, nil
}

// newSQSHandler builds the handler over an opened pipeline.
func newSQSHandler(o options, p *pipeline) (*sqsHandler, error) {
	proc, err := streamer.NewProcessor(o.stream, p.deps)
	if err != nil {
		return nil, err
	}
	return &sqsHandler{proc: proc, workers: o.stream.Workers, log: p.deps.Log}, nil
}

// serveLambda answers invocations until the runtime ends the process;
// lambda.StartWithOptions returns only by exiting.
func serveLambda(ctx context.Context, o options, e env, log zerolog.Logger) error {
	p, err := openPipeline(ctx, o, e, log, nil)
	if err != nil {
		return err
	}
	h, err := newSQSHandler(o, p)
	if err != nil {
		_ = p.CloseSinks(context.Background())
		return err
	}
	log.Info().Int("workers", h.workers).Dur("orphan_grace", o.stream.OrphanGrace).Strs("sinks", o.sinks).
		Msg("streamer started under the Lambda runtime")
	lambda.StartWithOptions(h.handle, lambda.WithContext(ctx))
	return nil
}
