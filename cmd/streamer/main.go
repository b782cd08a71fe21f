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
	"time"
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
	ownLimit := runtimeDefaults(os.LookupEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal gets the default behaviour (exit at once).
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv, ownMemoryLimit: ownLimit})
	stop()
	os.Exit(code)
}

// runtimeDefaults sets the garbage collector's target and soft memory
// limit where the environment (GOGC, GOMEMLIMIT) does not; it reports
// whether the memory limit is the streamer's to move (GOMEMLIMIT unset).
func runtimeDefaults(lookupEnv func(string) (string, bool)) (ownMemoryLimit bool) {
	_, set := lookupEnv("GOMEMLIMIT")
	if !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if _, set := lookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	return !set
}

// replicaMemoryLimit is the soft memory limit beside a session replica of
// replicaBytes: the default's room for the pipeline plus the replica twice
// over (a full re-load builds its copy beside the one in use). Without it,
// a replica near --replica-max-sessions (about 650 MB at 2,000,000) would
// sit far above the 100 MiB default and the collector would run without
// pause.
func replicaMemoryLimit(replicaBytes int64) int64 {
	return defaultMemoryLimit + 2*max(0, replicaBytes)
}

// followReplicaMemory keeps the soft memory limit at replicaMemoryLimit of
// the replica's size, read every interval until ctx ends.
func followReplicaMemory(ctx context.Context, replicaBytes func() int64, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		debug.SetMemoryLimit(replicaMemoryLimit(replicaBytes()))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
