// Command seed prepares the local demo: it creates Sentinel's session table
// in the emulator the SDK points at (AWS_ENDPOINT_URL_DYNAMODB), loads the
// sessions of a generated corpus, and writes the corpus's CloudTrail events
// as a trail archive.
//
//	go run ./internal/cmd/seed --table demo-sessions --archive out/demo-trail
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run() error {
	table := flag.String("table", "demo-sessions", "session table to create and fill")
	archive := flag.String("archive", "out/demo-trail", "folder for the trail archive")
	events := flag.Int("events", 200, "in-scope events to generate")
	seed := flag.Int64("seed", 42, "corpus seed")
	days := flag.Int("days", 3, "days of events")
	retention := flag.Duration("retention", 0, "the backfill's --session-retention: unverifiable events are placed just before it (default 90 days)")
	flag.Parse()

	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	c, err := corpus.Generate(corpus.Config{Seed: *seed, Events: *events, Now: now, Window: time.Duration(*days) * 24 * time.Hour,
		Retention: *retention, Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-west-1"}, OutOfScope: 20})
	if err != nil {
		return err
	}
	client := dynamodb.NewFromConfig(cfg)
	if err := testenv.CreateSessionTable(ctx, client, *table); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	if err := testenv.PutSessions(ctx, client, *table, c.Sessions); err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	if err := os.RemoveAll(*archive); err != nil {
		return err
	}
	keys, err := corpus.WriteArchive(*archive, c, 40)
	if err != nil {
		return err
	}
	oldest, _ := c.Span()
	fmt.Fprintf(os.Stderr, "seed: table %s holds %d sessions; %s holds %d log files with %d in-scope and %d other events\n",
		*table, len(c.Sessions), *archive, len(keys), len(c.Events), len(c.Ignored))
	// The window the demo should replay, for the caller's --since.
	fmt.Println(oldest.Add(-time.Hour).Format(time.RFC3339))
	return nil
}
