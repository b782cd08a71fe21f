package sessions

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// blockingScans answers each Scan with one page that has a next page, once
// release is closed, and records whether the request's context ended while
// it was in flight.
type blockingScans struct {
	started  chan struct{}
	release  chan struct{}
	calls    int
	canceled bool
}

func (b *blockingScans) Scan(ctx context.Context, _ *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	b.calls++
	if b.calls > 1 {
		return &dynamodb.ScanOutput{}, nil
	}
	close(b.started)
	<-b.release
	b.canceled = ctx.Err() != nil
	return &dynamodb.ScanOutput{LastEvaluatedKey: map[string]types.AttributeValue{AttrID: &types.AttributeValueMemberS{Value: "next"}}}, nil
}

func (b *blockingScans) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errors.New("the replica does not query")
}

// TestReplicaScanStopsBetweenPages: a scan whose context ends (a shutdown)
// lets the request in flight finish and stops before the next page, rather
// than aborting the request.
func TestReplicaScanStopsBetweenPages(t *testing.T) {
	db := &blockingScans{started: make(chan struct{}), release: make(chan struct{})}
	r, err := NewReplica(db, ReplicaConfig{Store: StoreConfig{Table: "sessions"}, ScanSegments: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Load(ctx) }()
	<-db.started
	cancel()
	time.Sleep(20 * time.Millisecond) // an aborting client would end the request now
	close(db.release)
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Load did not return after its context ended")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Load = %v, want context.Canceled", err)
	}
	if db.canceled || db.calls != 1 {
		t.Errorf("request in flight cancelled: %v; %d Scan calls, want 1 (no page after the end)", db.canceled, db.calls)
	}
}
