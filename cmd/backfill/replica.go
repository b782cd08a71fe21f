package main

import (
	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// openSessions is the session lookup to classify with: the replica the
// --session-replica flags ask for, loaded once at the first lookup (a
// window replay then reads the table once; a window with nothing to look
// up reads nothing; the events are past, so nothing waits), with fallback,
// today's Query path, answering what the replica's watermark does not
// cover yet. The replica is never refreshed, so --session-stream (accepted:
// both commands share one configuration) is not read.
func openSessions(o options, table sessions.DynamoDBAPI, fallback *sessions.Finder, log zerolog.Logger) *cli.Sessions {
	if o.replica.StreamARN != "" {
		log.Info().Str("stream", o.replica.StreamARN).Msg("--session-stream not read: the backfill reads the session table once")
		o.replica.StreamARN = ""
	}
	return o.replica.LazySessions(table, sessions.StoreConfig{Table: o.table},
		sessions.MatcherConfig{Strategies: o.strategies, ClockSkew: o.skew}, 0, fallback, log)
}
