// Command streamer reads CloudTrail STS events from an SQS queue (fed by an
// EventBridge rule, SNS or S3 notifications), classifies each against the
// session table within seconds, and sends the findings to every sink. A
// message is deleted only once every finding it produced was accepted by
// every sink.
//
//	streamer --queue-url https://sqs.us-east-1.amazonaws.com/111122223333/sessionwatch --table sentinel-sessions
//
// SIGTERM or SIGINT stops it within --shutdown-timeout, exit status 0.
//
// Started by the Lambda runtime (AWS_LAMBDA_RUNTIME_API set), it serves the
// SQS event source mapping instead: each batch goes through the same
// per-message path, and the messages not done are returned as batch item
// failures for the queue to redeliver.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultMemoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT
// says otherwise: the garbage collector works harder as the heap nears it,
// which keeps the resident set within a small container's memory (the
// streamer's own live heap is a few tens of MB).
const defaultMemoryLimit = 100 << 20

// defaultGCPercent is GOGC unless the environment sets it. The streamer's
// live heap is small (about 9 MB under make load, the session replica
// included) and it allocates fast, so at Go's default of 100 the collector
// ran 130 times in a 50,000-message run and took 18 to 20 µs of CPU a
// message; at 400, 30 times and 3 to 4 µs, for a peak RSS of 83 MB
// (docs/BENCHMARKS.md, issue 12). A larger heap still collects at the soft
// memory limit, not at 5x its live size.
const defaultGCPercent = 400

func main() {
	runtimeDefaults(os.LookupEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal gets the default behaviour (exit at once).
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv})
	stop()
	os.Exit(code)
}

// runtimeDefaults sets the garbage collector's target and soft memory
// limit where the environment (GOGC, GOMEMLIMIT) does not.
func runtimeDefaults(lookupEnv func(string) (string, bool)) {
	if _, set := lookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if _, set := lookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
