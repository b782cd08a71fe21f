// Command backfill replays a past window of CloudTrail STS events through
// the same classifier the streamer uses and reports the sessions that
// bypassed session tracking.
//
//	backfill --source file:./trail --table sentinel-sessions --since 7d
//
// Exit status: 0 no finding, 1 findings, 2 error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv, now: time.Now})
	stop()
	os.Exit(code)
}
