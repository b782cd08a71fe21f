package testenv

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

func TestCreateSessionTableAndPutSessions(t *testing.T) {
	ctx := context.Background()
	client := DynamoClient(t)
	table := UniqueTableName(t)
	if err := CreateSessionTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})

	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(desc.Table.KeySchema); got != "id:HASH" {
		t.Errorf("table key = %s, want id:HASH", got)
	}
	indexes := map[string]string{}
	for _, gsi := range desc.Table.GlobalSecondaryIndexes {
		indexes[aws.ToString(gsi.IndexName)] = keys(gsi.KeySchema) + " " + string(gsi.Projection.ProjectionType)
	}
	want := map[string]string{
		"gsi-user":            "user:HASH created_at:RANGE ALL",
		"gsi-source-identity": "source_identity:HASH ALL",
	}
	if fmt.Sprint(indexes) != fmt.Sprint(want) {
		t.Errorf("indexes = %v, want %v", indexes, want)
	}

	// More than one BatchWriteItem's worth, with empty source identities
	// (omitted from the item, as DynamoDB requires for GSI keys).
	var ss []sessions.Session
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range 30 {
		ss = append(ss, sessions.Session{
			ID: fmt.Sprintf("s-%02d", i), User: "alice.smith@corp",
			StartedAt: start, ExpiresAt: start.Add(time.Hour), CreatedAt: start.Add(time.Duration(i) * time.Second),
		})
	}
	if err := PutSessions(ctx, client, table, ss); err != nil {
		t.Fatal(err)
	}
	out, err := client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount})
	if err != nil {
		t.Fatal(err)
	}
	if out.Count != 30 {
		t.Errorf("%d items in the table, want 30", out.Count)
	}
	item, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key:       map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "s-07"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := item.Item[sessions.AttrSourceIdentity]; ok {
		t.Error("an empty source_identity was written")
	}
	if got := sessions.UnmarshalItem(item.Item); got.User != "alice.smith@corp" || !got.ExpiresAt.Equal(start.Add(time.Hour)) {
		t.Errorf("item read back = %+v", got)
	}
}

func TestUniqueTableName(t *testing.T) {
	a, b := UniqueTableName(t), UniqueTableName(t)
	if a == b {
		t.Errorf("two calls gave the same name %q", a)
	}
	if !strings.Contains(a, "TestUniqueTableName") || len(a) > 255 {
		t.Errorf("name %q should carry the test name and fit DynamoDB's 255 characters", a)
	}
}

func TestStartDynaliteAndStop(t *testing.T) {
	endpoint, stop := StartDynalite(t)
	t.Setenv(EndpointEnv, endpoint)
	client := DynamoClient(t, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("private dynalite at %s: %v", endpoint, err)
	}
	stop()
	stop() // idempotent
	if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}); err == nil {
		t.Error("ListTables succeeded after stop")
	}
}

// fatalRecorder records Fatalf and ends the goroutine, as testing.T does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestDynamoClientWithoutEndpointFails(t *testing.T) {
	t.Setenv(EndpointEnv, "")
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		DynamoClient(rec)
	}()
	<-done
	if !strings.Contains(rec.msg, "scripts/emulators.sh start; source .emulators/env") {
		t.Errorf("DynamoClient without an endpoint: Fatalf(%q), want the start hint", rec.msg)
	}
}

func keys(schema []types.KeySchemaElement) string {
	var parts []string
	for _, k := range schema {
		parts = append(parts, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	return strings.Join(parts, " ")
}
