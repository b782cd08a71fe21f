package sessions_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// A process builds the read path once: the Store reads the table, the Cache
// and the Directory sit on it, and the Matcher is what the classifier calls.
func ExampleNewMatcher() {
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx) // honours AWS_ENDPOINT_URL_DYNAMODB
	if err != nil {
		log.Fatal(err)
	}
	store, err := sessions.NewStore(dynamodb.NewFromConfig(awsCfg), sessions.StoreConfig{Table: "sentinel-sessions"})
	if err != nil {
		log.Fatal(err)
	}
	cache, err := sessions.NewCache(store, sessions.CacheConfig{})
	if err != nil {
		log.Fatal(err)
	}
	directory, err := sessions.NewDirectory(store, sessions.DirectoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	matcher, err := sessions.NewMatcher(cache, directory, sessions.MatcherConfig{PositiveTTL: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}

	found, err := matcher.Lookup(ctx, sessions.Query{
		SourceIdentity: "sentinel:alicesmithcorp:direct:a1b2c3d4",
		User:           "alicesmithcorp",
		At:             time.Now(),
	})
	if err != nil {
		log.Fatal(err) // a store failure: retry the event, never call it a verdict
	}
	fmt.Println(len(found.Sessions), found.Strategy)
}
