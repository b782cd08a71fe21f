package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// openSessions is the session lookup to classify with: the replica the
// --session-replica flags ask for (loaded before the streamer is ready),
// with fallback, today's Query path, behind it. Under the Lambda runtime
// the replica is off: a frozen process cannot keep it fresh.
func openSessions(ctx context.Context, o options, table *dynamodb.Client, fallback *sessions.Finder, log zerolog.Logger) (*cli.Sessions, error) {
	r := o.replica
	if o.lambda {
		r.Mode = cli.ReplicaOff
	}
	return r.Sessions(ctx, table, sessions.StoreConfig{Table: o.table}, sessions.MatcherConfig{Strategies: o.strategies, ClockSkew: o.skew},
		o.stream.OrphanGrace, fallback, log)
}
