package streamsfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/sessionwatch/sessionwatch/internal/awsjson"
)

const (
	targetPrefix = "DynamoDBStreams_20120810."
	errNamespace = "com.amazonaws.dynamodb.v20120810#"

	maxDescribeLimit = 100
	maxListLimit     = 100
	maxRecordsLimit  = 1000
)

// apiError is an error answered to the client.
type apiError struct {
	code, msg string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func validation(format string, args ...any) *apiError {
	return errorf("ValidationException", format, args...)
}

// ServeHTTP answers one DynamoDB Streams JSON 1.0 call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if r.Method != http.MethodPost || !ok {
		writeError(w, errorf("UnknownOperationException", "want POST with X-Amz-Target %s<Operation>", targetPrefix))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), awsjson.JSON10) {
		writeError(w, errorf("SerializationException", "want Content-Type %s", awsjson.JSON10))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	if q := s.faults[op]; len(q) > 0 {
		s.faults[op] = q[1:]
		writeError(w, errorf(q[0], "injected by streamsfake"))
		return
	}
	var (
		out any
		err *apiError
	)
	dec := json.NewDecoder(r.Body)
	switch op {
	case "DescribeStream":
		var in describeStreamInput
		if err = decode(dec, &in); err == nil {
			out, err = s.describeStream(in)
		}
	case "ListStreams":
		var in listStreamsInput
		if err = decode(dec, &in); err == nil {
			out, err = s.listStreams(in)
		}
	case "GetShardIterator":
		var in getShardIteratorInput
		if err = decode(dec, &in); err == nil {
			out, err = s.getShardIterator(in)
		}
	case "GetRecords":
		var in getRecordsInput
		if err = decode(dec, &in); err == nil {
			out, err = s.getRecords(in)
		}
	default:
		err = errorf("UnknownOperationException", "operation %s is not faked", op)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	awsjson.Write(w, awsjson.JSON10, http.StatusOK, out)
}

func decode(dec *json.Decoder, v any) *apiError {
	if err := dec.Decode(v); err != nil {
		return errorf("SerializationException", "decode request: %v", err)
	}
	return nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	status := http.StatusBadRequest
	if strings.HasPrefix(e.code, "Internal") {
		status = http.StatusInternalServerError
	}
	awsjson.WriteError(w, awsjson.JSON10, status, errNamespace+e.code, e.msg)
}

type describeStreamInput struct {
	StreamArn             string
	Limit                 *int
	ExclusiveStartShardId string
}

type shardOut struct {
	ShardId             string
	ParentShardId       string `json:",omitempty"`
	SequenceNumberRange struct {
		StartingSequenceNumber string
		EndingSequenceNumber   string `json:",omitempty"`
	}
}

func (s *Server) stream(arn string) (*Stream, *apiError) {
	st := s.byARN[arn]
	if st == nil {
		return nil, errorf("ResourceNotFoundException", "Requested resource not found: Stream: %s not found", arn)
	}
	return st, nil
}

func (st *Stream) shard(id string) (*shard, *apiError) {
	for _, sh := range st.shards {
		if sh.id == id {
			return sh, nil
		}
	}
	return nil, errorf("ResourceNotFoundException", "Requested resource not found: Shard does not exist")
}

func limit(v *int, most int) (int, *apiError) {
	if v == nil {
		return most, nil
	}
	if *v < 1 || *v > most {
		return 0, validation("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", *v, most)
	}
	return *v, nil
}

func (s *Server) describeStream(in describeStreamInput) (any, *apiError) {
	st, err := s.stream(in.StreamArn)
	if err != nil {
		return nil, err
	}
	n, err := limit(in.Limit, maxDescribeLimit)
	if err != nil {
		return nil, err
	}
	from := 0
	if in.ExclusiveStartShardId != "" {
		from = -1
		for i, sh := range st.shards {
			if sh.id == in.ExclusiveStartShardId {
				from = i + 1
			}
		}
		if from < 0 {
			return nil, errorf("ResourceNotFoundException", "Requested resource not found: Shard %s does not exist", in.ExclusiveStartShardId)
		}
	}
	shards := []shardOut{}
	last := ""
	for i := from; i < len(st.shards); i++ {
		if len(shards) == n {
			last = shards[n-1].ShardId
			break
		}
		sh := st.shards[i]
		o := shardOut{ShardId: sh.id, ParentShardId: sh.parent}
		o.SequenceNumberRange.StartingSequenceNumber = sh.startSeq.String()
		if sh.closed {
			o.SequenceNumberRange.EndingSequenceNumber = sh.endSeq.String()
		}
		shards = append(shards, o)
	}
	desc := map[string]any{
		"StreamArn": st.arn, "StreamLabel": st.label, "StreamStatus": st.status, "StreamViewType": st.view,
		"TableName": st.table, "CreationRequestDateTime": epoch(st.created), "Shards": shards,
		"KeySchema": keySchema(st.keyAttrs),
	}
	if last != "" {
		desc["LastEvaluatedShardId"] = last
	}
	return map[string]any{"StreamDescription": desc}, nil
}

func keySchema(attrs []string) []map[string]string {
	out := make([]map[string]string, len(attrs))
	for i, a := range attrs {
		kind := "HASH"
		if i > 0 {
			kind = "RANGE"
		}
		out[i] = map[string]string{"AttributeName": a, "KeyType": kind}
	}
	return out
}

func epoch(t time.Time) float64 { return float64(t.Unix()) }

type listStreamsInput struct {
	TableName               string
	Limit                   *int
	ExclusiveStartStreamArn string
}

func (s *Server) listStreams(in listStreamsInput) (any, *apiError) {
	n, err := limit(in.Limit, maxListLimit)
	if err != nil {
		return nil, err
	}
	started := in.ExclusiveStartStreamArn == ""
	streams := []map[string]string{}
	last := ""
	for _, st := range s.streams {
		if !started {
			started = st.arn == in.ExclusiveStartStreamArn
			continue
		}
		if in.TableName != "" && st.table != in.TableName {
			continue
		}
		if len(streams) == n {
			last = streams[n-1]["StreamArn"]
			break
		}
		streams = append(streams, map[string]string{"StreamArn": st.arn, "StreamLabel": st.label, "TableName": st.table})
	}
	if !started {
		return nil, errorf("ResourceNotFoundException", "Requested resource not found: Stream: %s not found", in.ExclusiveStartStreamArn)
	}
	out := map[string]any{"Streams": streams}
	if last != "" {
		out["LastEvaluatedStreamArn"] = last
	}
	return out, nil
}

type getShardIteratorInput struct {
	StreamArn         string
	ShardId           string
	ShardIteratorType types.ShardIteratorType
	SequenceNumber    string
}

// iterator is the state a shard iterator encodes.
type iterator struct {
	ARN    string `json:"a"`
	Shard  string `json:"s"`
	Pos    int    `json:"p"`
	Serial uint64 `json:"n"`
	Issued int64  `json:"t"` // Unix nanoseconds, the fake's clock
}

func (s *Server) issue(st *Stream, sh *shard, pos int) string {
	s.serial++
	b, err := json.Marshal(iterator{ARN: st.arn, Shard: sh.id, Pos: pos, Serial: s.serial, Issued: s.now().UnixNano()})
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) getShardIterator(in getShardIteratorInput) (any, *apiError) {
	st, err := s.stream(in.StreamArn)
	if err != nil {
		return nil, err
	}
	sh, err := st.shard(in.ShardId)
	if err != nil {
		return nil, err
	}
	var pos int
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
		pos = sh.trimmed
	case types.ShardIteratorTypeLatest:
		pos = len(sh.records)
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		seq, ok := new(big.Int).SetString(in.SequenceNumber, 10)
		if !ok || in.SequenceNumber == "" {
			return nil, validation("Invalid SequenceNumber %q for ShardIterator type %s", in.SequenceNumber, in.ShardIteratorType)
		}
		if seq.Cmp(sh.startSeq) < 0 || (sh.closed && seq.Cmp(sh.endSeq) > 0) {
			return nil, validation("Invalid SequenceNumber %s: outside shard %s's range", seq, sh.id)
		}
		after := in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber
		pos = len(sh.records)
		for i, rec := range sh.records {
			if c := rec.seq.Cmp(seq); c > 0 || (c == 0 && !after) {
				pos = i
				break
			}
		}
		if pos < sh.trimmed {
			return nil, errorf("TrimmedDataAccessException", "Sequence number %s is beyond the trim horizon of shard %s", seq, sh.id)
		}
	default:
		return nil, validation("1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint", in.ShardIteratorType)
	}
	return map[string]string{"ShardIterator": s.issue(st, sh, pos)}, nil
}

type getRecordsInput struct {
	ShardIterator string
	Limit         *int
}

func (s *Server) getRecords(in getRecordsInput) (any, *apiError) {
	n, err := limit(in.Limit, maxRecordsLimit)
	if err != nil {
		return nil, err
	}
	var it iterator
	raw, decErr := base64.RawURLEncoding.DecodeString(in.ShardIterator)
	if decErr != nil || json.Unmarshal(raw, &it) != nil {
		return nil, validation("Invalid ShardIterator")
	}
	st, err := s.stream(it.ARN)
	if err != nil {
		return nil, err
	}
	sh, err := st.shard(it.Shard)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if issued := time.Unix(0, it.Issued); it.Serial < s.expiredBefore || now.Sub(issued) > IteratorLifetime {
		return nil, errorf("ExpiredIteratorException", "Iterator expired. The iterator was created at time %s while right now it is %s.",
			issued.UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123))
	}
	if it.Pos < sh.trimmed {
		return nil, errorf("TrimmedDataAccessException", "The operation attempted to read past the oldest stream record in shard %s", sh.id)
	}
	end := min(it.Pos+n, len(sh.records))
	recs := make([]map[string]any, 0, end-it.Pos)
	for _, rec := range sh.records[it.Pos:end] {
		recs = append(recs, st.wireRecord(rec))
	}
	out := map[string]any{"Records": recs}
	if !sh.closed || end < len(sh.records) {
		out["NextShardIterator"] = s.issue(st, sh, end)
	}
	return out, nil
}

func (st *Stream) wireRecord(rec record) map[string]any {
	ddb := map[string]any{
		"ApproximateCreationDateTime": epoch(rec.at), "Keys": rec.keys, "SequenceNumber": rec.seq.String(),
		"SizeBytes": rec.size, "StreamViewType": st.view,
	}
	if rec.newImg != nil {
		ddb["NewImage"] = rec.newImg
	}
	if rec.oldImg != nil {
		ddb["OldImage"] = rec.oldImg
	}
	return map[string]any{
		"eventID": fmt.Sprintf("%032x", rec.seq), "eventName": rec.name, "eventVersion": "1.1",
		"eventSource": "aws:dynamodb", "awsRegion": st.srv.cfg.Region, "dynamodb": ddb,
	}
}
