// Package streamsfake serves a protocol-level fake of DynamoDB Streams
// (JSON 1.0: DescribeStream, ListStreams, GetShardIterator, GetRecords) for
// tests that drive the real aws-sdk-go-v2 dynamodbstreams client. There is
// no DynamoDB Streams emulator here: dynalite has none.
//
// The fake holds streams of shards. Each open shard owns a range of key
// hashes, so every write to an item lands in the one open shard of its
// partition, in order, as in DynamoDB. Tests write items (Stream.Put,
// Stream.Delete: INSERT, MODIFY or REMOVE, with the images the stream's
// view type carries), reshard (Stream.Rollover closes a shard and starts
// one child, Stream.Split two), trim records (Stream.Trim), expire
// iterators (Server.ExpireIterators, or Server.Advance past their 15
// minutes), remove a stream, and queue errors (Server.FailNext). Production
// code never imports this package.
package streamsfake

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Defaults of Config.
const (
	DefaultAccount = "111122223333"
	DefaultRegion  = "us-east-1"
	// IteratorLifetime is how long a shard iterator stays valid, by the
	// fake's clock (DynamoDB: 15 minutes).
	IteratorLifetime = 15 * time.Minute
)

// Config sets up a Server. The zero value works.
type Config struct {
	Now     func() time.Time // the fake's clock before Advance; default time.Now
	Account string           // in stream ARNs; default DefaultAccount
	Region  string           // in stream ARNs and records; default DefaultRegion
}

// Server is the DynamoDB Streams endpoint.
type Server struct {
	cfg Config

	mu      sync.Mutex
	offset  time.Duration // Advance
	streams []*Stream     // creation order
	byARN   map[string]*Stream
	seq     *big.Int // the last sequence number handed out
	serial  uint64   // of the last iterator issued
	// expiredBefore: iterators with a lower serial are expired.
	expiredBefore uint64
	faults        map[string][]string // operation → error codes to answer, in order
	calls         map[string]int

	http *httptest.Server
}

// New starts a Server on a loopback port. Close it when done.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	s := &Server{cfg: cfg, byARN: map[string]*Stream{}, faults: map[string][]string{}, calls: map[string]int{},
		seq: new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil)}
	s.http = httptest.NewServer(s)
	return s
}

// URL is the endpoint.
func (s *Server) URL() string { return s.http.URL }

// Close stops the server.
func (s *Server) Close() { s.http.Close() }

// Env returns the SDK's variable that points the dynamodbstreams client at
// the server.
func (s *Server) Env() map[string]string {
	return map[string]string{"AWS_ENDPOINT_URL_DYNAMODB_STREAMS": s.URL()}
}

// now is the fake's clock.
func (s *Server) now() time.Time { return s.cfg.Now().Add(s.offset) }

// Advance moves the fake's clock forward by d (iterators issued more than
// IteratorLifetime before it expire).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// ExpireIterators makes every iterator issued so far expired.
func (s *Server) ExpireIterators() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiredBefore = s.serial + 1
}

// FailNext makes the next n calls of op (GetRecords, GetShardIterator,
// DescribeStream, ListStreams) answer the error code (for example
// LimitExceededException or InternalServerError: status 500 for codes
// starting with Internal, 400 otherwise).
func (s *Server) FailNext(op, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[op] = append(s.faults[op], code)
	}
}

// ClearFaults drops the errors FailNext queued and not answered yet.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// Calls returns how many calls of op the server has answered, errors
// included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// nextSeq hands out the next sequence number.
func (s *Server) nextSeq() *big.Int {
	s.seq = new(big.Int).Add(s.seq, big.NewInt(1))
	return s.seq
}

// StreamConfig describes a stream to add.
type StreamConfig struct {
	Table    string               // required
	ViewType types.StreamViewType // default NEW_AND_OLD_IMAGES
	Shards   int                  // open shards at the start; default 1
	KeyAttrs []string             // the table's key attributes; default id
	Label    string               // the ARN's last part; default from the clock
}

// Stream is one table's stream.
type Stream struct {
	srv      *Server
	arn      string
	label    string
	table    string
	view     types.StreamViewType
	status   types.StreamStatus
	keyAttrs []string
	created  time.Time
	shards   []*shard // creation order
	items    map[string]map[string]ddbtypes.AttributeValue
}

type shard struct {
	id, parent       string
	lo, hi           uint32 // the key hashes it owns while open, inclusive
	startSeq, endSeq *big.Int
	records          []record
	trimmed          int // records[:trimmed] are gone
	closed           bool
}

type record struct {
	seq                  *big.Int
	name                 types.OperationType
	keys, newImg, oldImg map[string]any // wire form; nil when absent
	at                   time.Time
	size                 int
}

// AddStream adds an ENABLED stream and returns it.
func (s *Server) AddStream(cfg StreamConfig) *Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg.ViewType == "" {
		cfg.ViewType = types.StreamViewTypeNewAndOldImages
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 1
	}
	if len(cfg.KeyAttrs) == 0 {
		cfg.KeyAttrs = []string{"id"}
	}
	now := s.now()
	if cfg.Label == "" {
		cfg.Label = now.UTC().Format("2006-01-02T15:04:05.000")
		for s.byARN[s.arnOf(cfg.Table, cfg.Label)] != nil {
			cfg.Label += "0"
		}
	}
	st := &Stream{srv: s, arn: s.arnOf(cfg.Table, cfg.Label), label: cfg.Label, table: cfg.Table, view: cfg.ViewType,
		status: types.StreamStatusEnabled, keyAttrs: slices.Clone(cfg.KeyAttrs), created: now,
		items: map[string]map[string]ddbtypes.AttributeValue{}}
	width := (uint64(1) << 32) / uint64(cfg.Shards)
	for i := range cfg.Shards {
		lo := uint64(i) * width
		hi := lo + width - 1
		if i == cfg.Shards-1 {
			hi = 1<<32 - 1
		}
		st.newShard("", uint32(lo), uint32(hi))
	}
	s.streams = append(s.streams, st)
	s.byARN[st.arn] = st
	return st
}

func (s *Server) arnOf(table, label string) string {
	return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/%s", s.cfg.Region, s.cfg.Account, table, label)
}

// RemoveStream deletes the stream: every call naming it answers
// ResourceNotFoundException.
func (s *Server) RemoveStream(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byARN, arn)
	s.streams = slices.DeleteFunc(s.streams, func(st *Stream) bool { return st.arn == arn })
}

// newShard starts an open shard; the caller holds the server's lock.
func (st *Stream) newShard(parent string, lo, hi uint32) *shard {
	start := st.srv.nextSeq()
	sh := &shard{id: fmt.Sprintf("shardId-%020d-%08x", st.srv.now().UnixMilli(), len(st.shards)+1),
		parent: parent, lo: lo, hi: hi, startSeq: start}
	st.shards = append(st.shards, sh)
	return sh
}

// ARN is the stream's ARN.
func (st *Stream) ARN() string { return st.arn }

// SetStatus sets the StreamStatus DescribeStream reports.
func (st *Stream) SetStatus(status types.StreamStatus) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	st.status = status
}

// OpenShards returns the ids of the open shards, in creation order.
func (st *Stream) OpenShards() []string {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	var ids []string
	for _, sh := range st.shards {
		if !sh.closed {
			ids = append(ids, sh.id)
		}
	}
	return ids
}

// Put writes item (it holds the key attributes) as the table would: an
// INSERT when the key is new, else a MODIFY with the old image. It returns
// the record's sequence number and the shard it went to.
func (st *Stream) Put(item map[string]ddbtypes.AttributeValue) (seq, shardID string) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	key := st.keyOf(item)
	name := types.OperationTypeInsert
	old := st.items[key]
	if old != nil {
		name = types.OperationTypeModify
	}
	st.items[key] = item
	return st.appendRecord(key, name, st.keys(item), item, old)
}

// Delete removes the item with the key attributes in key: a REMOVE record
// with the old image. Deleting an item the stream never saw written still
// writes the record (the table's write may predate the stream).
func (st *Stream) Delete(key map[string]ddbtypes.AttributeValue) (seq, shardID string) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	k := st.keyOf(key)
	old := st.items[k]
	delete(st.items, k)
	return st.appendRecord(k, types.OperationTypeRemove, st.keys(key), nil, old)
}

// keys returns the key attributes of item.
func (st *Stream) keys(item map[string]ddbtypes.AttributeValue) map[string]ddbtypes.AttributeValue {
	out := make(map[string]ddbtypes.AttributeValue, len(st.keyAttrs))
	for _, a := range st.keyAttrs {
		if v, ok := item[a]; ok {
			out[a] = v
		}
	}
	return out
}

// keyOf is the canonical form of item's key.
func (st *Stream) keyOf(item map[string]ddbtypes.AttributeValue) string {
	var b strings.Builder
	for _, a := range st.keyAttrs {
		v, err := json.Marshal(wireValue(item[a]))
		if err != nil {
			panic(fmt.Sprintf("streamsfake: key %s: %v", a, err))
		}
		b.WriteString(a)
		b.WriteByte('=')
		b.Write(v)
		b.WriteByte(0)
	}
	return b.String()
}

// appendRecord adds a record to the open shard owning key's hash; the
// caller holds the server's lock.
func (st *Stream) appendRecord(key string, name types.OperationType, keys, newImg, oldImg map[string]ddbtypes.AttributeValue) (string, string) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	hash := h.Sum32()
	var sh *shard
	for _, c := range st.shards {
		if !c.closed && c.lo <= hash && hash <= c.hi {
			sh = c
			break
		}
	}
	if sh == nil {
		panic("streamsfake: no open shard owns hash " + fmt.Sprint(hash))
	}
	rec := record{seq: st.srv.nextSeq(), name: name, keys: wireItem(keys), at: st.srv.now()}
	if name != types.OperationTypeRemove && (st.view == types.StreamViewTypeNewImage || st.view == types.StreamViewTypeNewAndOldImages) {
		rec.newImg = wireItem(newImg)
	}
	if oldImg != nil && (st.view == types.StreamViewTypeOldImage || st.view == types.StreamViewTypeNewAndOldImages) {
		rec.oldImg = wireItem(oldImg)
	}
	for _, m := range []map[string]any{rec.keys, rec.newImg, rec.oldImg} {
		if m != nil {
			b, _ := json.Marshal(m)
			rec.size += len(b)
		}
	}
	sh.records = append(sh.records, rec)
	return rec.seq.String(), sh.id
}

// Rollover closes the open shard id and starts one child owning its keys,
// as DynamoDB does every few hours. It returns the child's id.
func (st *Stream) Rollover(id string) string {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	sh := st.openShard(id)
	st.close(sh)
	return st.newShard(sh.id, sh.lo, sh.hi).id
}

// Split closes the open shard id and starts two children, each owning half
// of its keys. It returns their ids.
func (st *Stream) Split(id string) (string, string) {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	sh := st.openShard(id)
	if sh.lo == sh.hi {
		panic("streamsfake: shard " + id + " owns one hash: cannot split")
	}
	st.close(sh)
	mid := sh.lo + (sh.hi-sh.lo)/2
	a := st.newShard(sh.id, sh.lo, mid)
	b := st.newShard(sh.id, mid+1, sh.hi)
	return a.id, b.id
}

func (st *Stream) openShard(id string) *shard {
	for _, sh := range st.shards {
		if sh.id == id {
			if sh.closed {
				panic("streamsfake: shard " + id + " is closed")
			}
			return sh
		}
	}
	panic("streamsfake: no shard " + id)
}

func (st *Stream) close(sh *shard) {
	sh.closed = true
	if n := len(sh.records); n > 0 {
		sh.endSeq = sh.records[n-1].seq
	} else {
		sh.endSeq = st.srv.nextSeq()
	}
}

// Trim drops every record written so far, in every shard, as the 24-hour
// retention does: reading from a position before the trim horizon answers
// TrimmedDataAccessException.
func (st *Stream) Trim() {
	st.srv.mu.Lock()
	defer st.srv.mu.Unlock()
	for _, sh := range st.shards {
		sh.trimmed = len(sh.records)
	}
}

// wireItem encodes an item as DynamoDB JSON.
func wireItem(item map[string]ddbtypes.AttributeValue) map[string]any {
	if item == nil {
		return nil
	}
	out := make(map[string]any, len(item))
	for k, v := range item {
		out[k] = wireValue(v)
	}
	return out
}

// wireValue encodes one attribute value as DynamoDB JSON ({"S":"x"}).
func wireValue(v ddbtypes.AttributeValue) map[string]any {
	switch v := v.(type) {
	case *ddbtypes.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *ddbtypes.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *ddbtypes.AttributeValueMemberB:
		return map[string]any{"B": v.Value} // []byte encodes as base64
	case *ddbtypes.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *ddbtypes.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}
	case *ddbtypes.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *ddbtypes.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	case *ddbtypes.AttributeValueMemberBS:
		return map[string]any{"BS": v.Value}
	case *ddbtypes.AttributeValueMemberM:
		return map[string]any{"M": wireItem(v.Value)}
	case *ddbtypes.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = wireValue(e)
		}
		return map[string]any{"L": l}
	}
	return map[string]any{"NULL": true}
}
