package sessions_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// memoryTable stands in for the DynamoDB Store (sessions.NewStore over a
// dynamodb client, which honours AWS_ENDPOINT_URL_DYNAMODB): the Cache reads
// it through SessionReader, the Directory through UserNameLister.
type memoryTable []sessions.Session

func (t memoryTable) BySourceIdentity(_ context.Context, sourceIdentity string) ([]sessions.Session, error) {
	var out []sessions.Session
	for _, s := range t {
		if s.SourceIdentity == sourceIdentity {
			out = append(out, s)
		}
	}
	return out, nil
}

func (t memoryTable) ByUser(_ context.Context, rawUser string) ([]sessions.Session, error) {
	var out []sessions.Session
	for _, s := range t {
		if s.User == rawUser {
			out = append(out, s)
		}
	}
	return out, nil
}

func (t memoryTable) UserNames(context.Context) ([]string, error) {
	var out []string
	for _, s := range t {
		out = append(out, s.User)
	}
	return out, nil
}

// A process builds the read path once: the Store reads the table, the Cache
// and the Directory sit on it, and the Matcher is what the classifier calls.
func ExampleNewMatcher() {
	ctx := context.Background()
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	table := memoryTable{{
		ID: "s-1", User: "alice.smith@corp", Status: "active",
		SourceIdentity: "sentinel:alicesmithcorp:direct:a1b2c3d4",
		StartedAt:      start, ExpiresAt: start.Add(time.Hour), UpdatedAt: start,
	}}
	cache, err := sessions.NewCache(table, sessions.CacheConfig{})
	if err != nil {
		log.Fatal(err)
	}
	directory, err := sessions.NewDirectory(table, sessions.DirectoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	matcher, err := sessions.NewMatcher(cache, directory, sessions.MatcherConfig{PositiveTTL: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}

	for _, q := range []sessions.Query{
		// The event carries the session's SourceIdentity: an exact match.
		{SourceIdentity: "sentinel:alicesmithcorp:direct:a1b2c3d4", User: "alicesmithcorp", At: start.Add(10 * time.Minute)},
		// A SourceIdentity the table lacks: the user's sessions at that time.
		{SourceIdentity: "sentinel:alicesmithcorp:direct:ffffffff", User: "alicesmithcorp", At: start.Add(20 * time.Minute)},
		// Outside every session of the user: nothing matches.
		{SourceIdentity: "sentinel:alicesmithcorp:direct:ffffffff", User: "alicesmithcorp", At: start.Add(3 * time.Hour)},
	} {
		found, err := matcher.Lookup(ctx, q)
		if err != nil {
			log.Fatal(err) // a store failure: retry the event, never call it a verdict
		}
		fmt.Printf("%d session(s), strategy %q\n", len(found.Sessions), found.Strategy)
	}
	// Output:
	// 1 session(s), strategy "exact"
	// 1 session(s), strategy "user-time"
	// 0 session(s), strategy ""
}
