// Package testenv gives tests a DynamoDB to talk to: a client for the
// emulators that scripts/emulators.sh starts, Sentinel's session table, and a
// private dynalite a test may stop. Production code never imports it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// EndpointEnv is the variable the AWS SDK reads for a DynamoDB endpoint.
const EndpointEnv = "AWS_ENDPOINT_URL_DYNAMODB"

const startHint = "start the emulators: scripts/emulators.sh start; source .emulators/env"

// DynamoClient returns a client for the DynamoDB at $AWS_ENDPOINT_URL_DYNAMODB,
// configured exactly as production is (the SDK's default chain reads the
// endpoint), with optFns applied on top. Without the variable the test fails:
// a missing emulator must not pass as a skipped test.
func DynamoClient(t testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	if os.Getenv(EndpointEnv) == "" {
		t.Fatalf("%s is not set; %s", EndpointEnv, startHint)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return dynamodb.NewFromConfig(cfg, optFns...)
}

// UniqueTableName returns a table name derived from the test's name that no
// other test (or earlier run against the same emulator) uses.
func UniqueTableName(t testing.TB) string {
	t.Helper()
	base := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "-")
	if len(base) > 200 {
		base = base[:200]
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatalf("random table suffix: %v", err)
	}
	return "sessions-" + base + "-" + hex.EncodeToString(suffix)
}

// CreateSessionTable creates Sentinel's session table (with the
// gsi-source-identity index the Terraform module adds) and waits until it is
// active.
func CreateSessionTable(ctx context.Context, client *dynamodb.Client, name string) error {
	all := &types.Projection{ProjectionType: types.ProjectionTypeAll}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(sessions.AttrID), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(sessions.AttrUser), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(sessions.AttrCreatedAt), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(sessions.AttrSourceIdentity), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(sessions.AttrID), KeyType: types.KeyTypeHash},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			{
				IndexName: aws.String(sessions.DefaultUserIndex),
				KeySchema: []types.KeySchemaElement{
					{AttributeName: aws.String(sessions.AttrUser), KeyType: types.KeyTypeHash},
					{AttributeName: aws.String(sessions.AttrCreatedAt), KeyType: types.KeyTypeRange},
				},
				Projection: all,
			},
			{
				IndexName: aws.String(sessions.DefaultSourceIdentityIndex),
				KeySchema: []types.KeySchemaElement{
					{AttributeName: aws.String(sessions.AttrSourceIdentity), KeyType: types.KeyTypeHash},
				},
				Projection: all,
			},
		},
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(sessions.AttrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	// dynalite does not implement UpdateTimeToLive and answers
	// UnknownOperationException. TTL only deletes items late (up to two days
	// after ttl), which the code under test must not rely on anyway, so the
	// table is still faithful without it. Any other error is real.
	var apiErr smithy.APIError
	if err != nil && !(errors.As(err, &apiErr) && apiErr.ErrorCode() == "UnknownOperationException") {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return nil
}

// PutSessions writes sessions with the encoding production reads
// (sessions.MarshalItem), 25 to a BatchWriteItem call.
func PutSessions(ctx context.Context, client *dynamodb.Client, table string, ss []sessions.Session) error {
	const batchSize = 25 // BatchWriteItem's limit
	for start := 0; start < len(ss); start += batchSize {
		batch := ss[start:min(start+batchSize, len(ss))]
		writes := make([]types.WriteRequest, 0, len(batch))
		for _, s := range batch {
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: sessions.MarshalItem(s)}})
		}
		pending := map[string][]types.WriteRequest{table: writes}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt == 10 {
				return fmt.Errorf("put sessions into %s: %d items still unprocessed", table, len(pending[table]))
			}
			out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("put sessions into %s: %w", table, err)
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

// StartDynalite starts a private, in-memory dynalite on a free port, for a
// test that needs to stop the store mid-test. It returns the endpoint URL
// and a stop function (idempotent; also run at cleanup).
func StartDynalite(t testing.TB) (endpoint string, stop func()) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	cli := filepath.Join(root, "tools", "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("dynalite is not installed (%v); %s", err, startHint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	var output testkit.LockedBuffer
	cmd := exec.Command(node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dynalite: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // a killed process reports its signal: expected
		close(exited)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("private dynalite output:\n%s", output.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			// For example, another process took the port first.
			t.Fatalf("private dynalite exited before listening on %s:\n%s", addr, output.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("private dynalite did not listen on %s within 15s: %v\n%s", addr, err, output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, stop
}

// repoRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePort asks the kernel for an unused port. Another process could take
// it before dynalite binds it; dynalite then exits and StartDynalite fails.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
