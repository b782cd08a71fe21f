package streamsfake_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"

	"github.com/sessionwatch/sessionwatch/internal/streamsfake"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// start serves a fake and returns the real SDK client pointed at it through
// AWS_ENDPOINT_URL_DYNAMODB_STREAMS; the client retries only a dropped
// connection, so every API error reaches the test as sent.
func start(t *testing.T) (*streamsfake.Server, *dynamodbstreams.Client) {
	t.Helper()
	srv := streamsfake.New(streamsfake.Config{Now: func() time.Time { return now }})
	t.Cleanup(srv.Close)
	cfg := testenv.FakeAWSConfig(t, srv.Env())
	cfg.Retryer = testenv.ConnectionRetryOnly
	return srv, dynamodbstreams.NewFromConfig(cfg)
}

func item(id, status string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		"id":     &ddbtypes.AttributeValueMemberS{Value: id},
		"status": &ddbtypes.AttributeValueMemberS{Value: status},
		"ttl":    &ddbtypes.AttributeValueMemberN{Value: "1700000000"},
		"tags":   &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{&ddbtypes.AttributeValueMemberBOOL{Value: true}, &ddbtypes.AttributeValueMemberNULL{Value: true}}},
		"meta":   &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{"b": &ddbtypes.AttributeValueMemberB{Value: []byte{1, 2}}}},
		"set":    &ddbtypes.AttributeValueMemberSS{Value: []string{"a", "b"}},
	}
}

func key(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: id}}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func iter(t *testing.T, c *dynamodbstreams.Client, arn, shard string, kind types.ShardIteratorType, seq string) *string {
	t.Helper()
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: aws.String(shard), ShardIteratorType: kind}
	if seq != "" {
		in.SequenceNumber = aws.String(seq)
	}
	out, err := c.GetShardIterator(context.Background(), in)
	if err != nil {
		t.Fatalf("GetShardIterator %s %s: %v", kind, seq, err)
	}
	return out.ShardIterator
}

// readAll reads a shard from it until the shard ends or a read is empty,
// Limit records a call, and returns the records' ids and whether the shard
// ended (no NextShardIterator).
func readAll(t *testing.T, c *dynamodbstreams.Client, it *string, limit int32) (ids []string, ended bool) {
	t.Helper()
	for range 100 {
		out, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(limit)})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		for _, r := range out.Records {
			ids = append(ids, string(r.EventName)+":"+r.Dynamodb.Keys["id"].(*types.AttributeValueMemberS).Value)
		}
		if out.NextShardIterator == nil {
			return ids, true
		}
		if len(out.Records) == 0 {
			return ids, false
		}
		it = out.NextShardIterator
	}
	t.Fatal("shard never ended nor went empty")
	return nil, false
}

func TestDescribeStreamPages(t *testing.T) {
	srv, c := start(t)
	st := srv.AddStream(streamsfake.StreamConfig{Table: "sessions", Shards: 3, ViewType: types.StreamViewTypeNewImage})
	first := st.OpenShards()[0]
	child := st.Rollover(first)
	all := append([]string{first}, st.OpenShards()...)
	for _, limit := range []int32{1, 2, 3, 4, 100} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []string
			var start *string
			pages := 0
			for {
				out, err := c.DescribeStream(context.Background(), &dynamodbstreams.DescribeStreamInput{
					StreamArn: aws.String(st.ARN()), Limit: aws.Int32(limit), ExclusiveStartShardId: start})
				if err != nil {
					t.Fatal(err)
				}
				d := out.StreamDescription
				pages++
				if d.StreamStatus != types.StreamStatusEnabled || d.StreamViewType != types.StreamViewTypeNewImage || aws.ToString(d.TableName) != "sessions" ||
					aws.ToString(d.StreamArn) != st.ARN() || len(d.KeySchema) != 1 || aws.ToString(d.KeySchema[0].AttributeName) != "id" {
					t.Errorf("description %+v", d)
				}
				if len(d.Shards) > int(limit) {
					t.Errorf("page of %d shards over limit %d", len(d.Shards), limit)
				}
				for _, sh := range d.Shards {
					got = append(got, aws.ToString(sh.ShardId))
					closed := sh.SequenceNumberRange.EndingSequenceNumber != nil
					if id := aws.ToString(sh.ShardId); closed != (id == first) || (id == child) != (aws.ToString(sh.ParentShardId) == first) {
						t.Errorf("shard %s: parent %v, ending %v", id, aws.ToString(sh.ParentShardId), closed)
					}
				}
				if d.LastEvaluatedShardId == nil {
					break
				}
				start = d.LastEvaluatedShardId
			}
			if !slices.Equal(got, all) {
				t.Errorf("shards %v, want %v", got, all)
			}
			if want := (len(all) + int(limit) - 1) / int(limit); pages != want {
				t.Errorf("%d pages, want %d", pages, want)
			}
		})
	}
}

func TestListStreamsPages(t *testing.T) {
	srv, c := start(t)
	var want []string
	for i := range 5 {
		table := "sessions"
		if i%2 == 1 {
			table = "other"
		}
		st := srv.AddStream(streamsfake.StreamConfig{Table: table, Label: fmt.Sprint("label-", i)})
		if table == "sessions" {
			want = append(want, st.ARN())
		}
	}
	for _, limit := range []int32{1, 2, 10} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []string
			var start *string
			for range 10 {
				out, err := c.ListStreams(context.Background(), &dynamodbstreams.ListStreamsInput{
					TableName: aws.String("sessions"), Limit: aws.Int32(limit), ExclusiveStartStreamArn: start})
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range out.Streams {
					got = append(got, aws.ToString(s.StreamArn))
				}
				if start = out.LastEvaluatedStreamArn; start == nil {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("streams %v, want %v", got, want)
			}
		})
	}
}

func TestRecordsCarryTheViewTypesImages(t *testing.T) {
	tests := []struct {
		view           types.StreamViewType
		newImg, oldImg [3]bool // INSERT, MODIFY, REMOVE
	}{
		{types.StreamViewTypeKeysOnly, [3]bool{}, [3]bool{}},
		{types.StreamViewTypeNewImage, [3]bool{true, true, false}, [3]bool{}},
		{types.StreamViewTypeOldImage, [3]bool{}, [3]bool{false, true, true}},
		{types.StreamViewTypeNewAndOldImages, [3]bool{true, true, false}, [3]bool{false, true, true}},
	}
	for _, tt := range tests {
		t.Run(string(tt.view), func(t *testing.T) {
			srv, c := start(t)
			st := srv.AddStream(streamsfake.StreamConfig{Table: "sessions", ViewType: tt.view})
			st.Put(item("s1", "active"))
			st.Put(item("s1", "revoked"))
			st.Delete(key("s1"))
			out, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{
				ShardIterator: iter(t, c, st.ARN(), st.OpenShards()[0], types.ShardIteratorTypeTrimHorizon, "")})
			if err != nil {
				t.Fatal(err)
			}
			names := []types.OperationType{types.OperationTypeInsert, types.OperationTypeModify, types.OperationTypeRemove}
			if len(out.Records) != 3 {
				t.Fatalf("%d records, want 3", len(out.Records))
			}
			prev := ""
			for i, r := range out.Records {
				d := r.Dynamodb
				if r.EventName != names[i] || d.StreamViewType != tt.view || aws.ToString(r.EventSource) != "aws:dynamodb" || d.ApproximateCreationDateTime == nil ||
					!d.ApproximateCreationDateTime.Equal(now) || d.Keys["id"].(*types.AttributeValueMemberS).Value != "s1" {
					t.Errorf("record %d: %+v %+v", i, r, d)
				}
				if seq := aws.ToString(d.SequenceNumber); seq <= prev {
					t.Errorf("record %d: sequence %s not after %s", i, seq, prev)
				} else {
					prev = seq
				}
				if (d.NewImage != nil) != tt.newImg[i] || (d.OldImage != nil) != tt.oldImg[i] {
					t.Errorf("record %d: new image %v old image %v, want %v %v", i, d.NewImage != nil, d.OldImage != nil, tt.newImg[i], tt.oldImg[i])
				}
			}
			if tt.newImg[1] {
				img := out.Records[1].Dynamodb.NewImage
				if img["status"].(*types.AttributeValueMemberS).Value != "revoked" || img["ttl"].(*types.AttributeValueMemberN).Value != "1700000000" ||
					!img["tags"].(*types.AttributeValueMemberL).Value[0].(*types.AttributeValueMemberBOOL).Value ||
					string(img["meta"].(*types.AttributeValueMemberM).Value["b"].(*types.AttributeValueMemberB).Value) != "\x01\x02" ||
					!slices.Equal(img["set"].(*types.AttributeValueMemberSS).Value, []string{"a", "b"}) {
					t.Errorf("MODIFY's new image %+v", img)
				}
			}
			if tt.oldImg[1] {
				if got := out.Records[1].Dynamodb.OldImage["status"].(*types.AttributeValueMemberS).Value; got != "active" {
					t.Errorf("MODIFY's old image status %q", got)
				}
			}
		})
	}
}

func TestIteratorTypesAndLimit(t *testing.T) {
	srv, c := start(t)
	st := srv.AddStream(streamsfake.StreamConfig{Table: "sessions"})
	var seqs []string
	for i := range 5 {
		seq, _ := st.Put(item(fmt.Sprint("s", i), "active"))
		seqs = append(seqs, seq)
	}
	shard := st.OpenShards()[0]
	all := []string{"INSERT:s0", "INSERT:s1", "INSERT:s2", "INSERT:s3", "INSERT:s4"}
	tests := []struct {
		kind  types.ShardIteratorType
		seq   string
		limit int32
		want  []string
	}{
		{types.ShardIteratorTypeTrimHorizon, "", 1000, all},
		{types.ShardIteratorTypeTrimHorizon, "", 2, all},
		{types.ShardIteratorTypeLatest, "", 1000, nil},
		{types.ShardIteratorTypeAtSequenceNumber, seqs[2], 1, all[2:]},
		{types.ShardIteratorTypeAfterSequenceNumber, seqs[2], 1000, all[3:]},
		{types.ShardIteratorTypeAfterSequenceNumber, seqs[4], 1000, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.kind, tt.seq, tt.limit), func(t *testing.T) {
			got, ended := readAll(t, c, iter(t, c, st.ARN(), shard, tt.kind, tt.seq), tt.limit)
			if !slices.Equal(got, tt.want) || ended {
				t.Errorf("records %v (ended %v), want %v on an open shard", got, ended, tt.want)
			}
		})
	}
	// A LATEST iterator sees what is written after it.
	it := iter(t, c, st.ARN(), shard, types.ShardIteratorTypeLatest, "")
	st.Put(item("s9", "active"))
	if got, _ := readAll(t, c, it, 1000); !slices.Equal(got, []string{"INSERT:s9"}) {
		t.Errorf("after LATEST: %v", got)
	}
}

func TestReshardingEndsParentsAndFeedsChildren(t *testing.T) {
	srv, c := start(t)
	st := srv.AddStream(streamsfake.StreamConfig{Table: "sessions"})
	parent := st.OpenShards()[0]
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = fmt.Sprint("s", i)
	}
	it := iter(t, c, st.ARN(), parent, types.ShardIteratorTypeTrimHorizon, "")
	st.Put(item(ids[0], "active"))
	child := st.Rollover(parent)
	a, b := st.Split(child)
	if got := st.OpenShards(); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("open shards %v, want %v", got, []string{a, b})
	}
	inShard := map[string][]string{}
	for _, id := range ids[1:] {
		_, sh := st.Put(item(id, "active"))
		inShard[sh] = append(inShard[sh], "INSERT:"+id)
	}
	if len(inShard[a]) == 0 || len(inShard[b]) == 0 || len(inShard[a])+len(inShard[b]) != len(ids)-1 {
		t.Errorf("writes by shard %v: want both children and no other", inShard)
	}
	got, ended := readAll(t, c, it, 1000)
	if !slices.Equal(got, []string{"INSERT:s0"}) || !ended {
		t.Errorf("parent: %v, ended %v; want its one record and no NextShardIterator", got, ended)
	}
	if got, ended := readAll(t, c, iter(t, c, st.ARN(), child, types.ShardIteratorTypeTrimHorizon, ""), 1000); len(got) != 0 || !ended {
		t.Errorf("rolled-over child: %v, ended %v; want empty and ended", got, ended)
	}
	for _, sh := range []string{a, b} {
		if got, ended := readAll(t, c, iter(t, c, st.ARN(), sh, types.ShardIteratorTypeTrimHorizon, ""), 7); !slices.Equal(got, inShard[sh]) || ended {
			t.Errorf("child %s: %v (ended %v), want %v", sh, got, ended, inShard[sh])
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		call func(*testing.T, *streamsfake.Server, *streamsfake.Stream, *dynamodbstreams.Client) error
		code string
	}{
		{"expired iterator", func(t *testing.T, srv *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			it := iter(t, c, st.ARN(), st.OpenShards()[0], types.ShardIteratorTypeTrimHorizon, "")
			srv.ExpireIterators()
			_, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it})
			return err
		}, "ExpiredIteratorException"},
		{"iterator older than 15 minutes", func(t *testing.T, srv *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			it := iter(t, c, st.ARN(), st.OpenShards()[0], types.ShardIteratorTypeTrimHorizon, "")
			srv.Advance(14 * time.Minute)
			if _, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it}); err != nil {
				t.Errorf("at 14 minutes: %v", err)
			}
			srv.Advance(2 * time.Minute)
			_, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it})
			return err
		}, "ExpiredIteratorException"},
		{"trimmed position", func(t *testing.T, _ *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			it := iter(t, c, st.ARN(), st.OpenShards()[0], types.ShardIteratorTypeTrimHorizon, "")
			st.Trim()
			_, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it})
			return err
		}, "TrimmedDataAccessException"},
		{"iterator at a trimmed sequence number", func(t *testing.T, _ *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			seq, sh := st.Put(item("s9", "active"))
			st.Trim()
			_, err := c.GetShardIterator(context.Background(), &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(st.ARN()), ShardId: aws.String(sh),
				ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(seq)})
			return err
		}, "TrimmedDataAccessException"},
		{"unknown stream", func(_ *testing.T, _ *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			_, err := c.DescribeStream(context.Background(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(st.ARN() + "x")})
			return err
		}, "ResourceNotFoundException"},
		{"unknown shard", func(_ *testing.T, _ *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			_, err := c.GetShardIterator(context.Background(), &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(st.ARN()), ShardId: aws.String("shardId-00000000000000000000-ffffffff"),
				ShardIteratorType: types.ShardIteratorTypeLatest})
			return err
		}, "ResourceNotFoundException"},
		{"removed stream", func(t *testing.T, srv *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			it := iter(t, c, st.ARN(), st.OpenShards()[0], types.ShardIteratorTypeLatest, "")
			srv.RemoveStream(st.ARN())
			_, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it})
			return err
		}, "ResourceNotFoundException"},
		{"limit over 1000", func(t *testing.T, _ *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			it := iter(t, c, st.ARN(), st.OpenShards()[0], types.ShardIteratorTypeLatest, "")
			_, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1001)})
			return err
		}, "ValidationException"},
		{"malformed iterator", func(_ *testing.T, _ *streamsfake.Server, _ *streamsfake.Stream, c *dynamodbstreams.Client) error {
			_, err := c.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String("not-an-iterator")})
			return err
		}, "ValidationException"},
		{"sequence number missing", func(_ *testing.T, _ *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			_, err := c.GetShardIterator(context.Background(), &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(st.ARN()), ShardId: aws.String(st.OpenShards()[0]),
				ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber})
			return err
		}, "ValidationException"},
		{"injected throttle", func(_ *testing.T, srv *streamsfake.Server, st *streamsfake.Stream, c *dynamodbstreams.Client) error {
			srv.FailNext("DescribeStream", "LimitExceededException", 1)
			_, err := c.DescribeStream(context.Background(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(st.ARN())})
			if _, again := c.DescribeStream(context.Background(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(st.ARN())}); again != nil {
				t.Errorf("the call after the injected error: %v", again)
			}
			srv.FailNext("DescribeStream", "InternalServerError", 5)
			srv.ClearFaults()
			if _, again := c.DescribeStream(context.Background(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(st.ARN())}); again != nil {
				t.Errorf("after ClearFaults: %v", again)
			}
			if n := srv.Calls("DescribeStream"); n != 3 {
				t.Errorf("%d DescribeStream calls counted, want 3", n)
			}
			return err
		}, "LimitExceededException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := start(t)
			st := srv.AddStream(streamsfake.StreamConfig{Table: "sessions"})
			st.Put(item("s1", "active"))
			err := tt.call(t, srv, st, c)
			if got := apiCode(err); got != tt.code {
				t.Errorf("error %v (code %q), want %s", err, got, tt.code)
			}
		})
	}
}
