package sessions

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// FuzzDecodeStreamRecord checks the stream record decoder against the
// Scan's: a record's new image, whatever its attribute types, decodes to
// the session UnmarshalItem gives for the same item read from the table,
// and applying the record and then a REMOVE of its key leaves the replica
// empty.
func FuzzDecodeStreamRecord(f *testing.F) {
	f.Add("MODIFY", "s1", "alice.smith@corp", "revoked", "sentinel:alice:direct:0a1b2c3d", "2026-11-20T09:00:00Z", "2026-11-20T11:00:00.5Z", "2026-11-20T10:00:00Z", uint16(0))
	f.Add("INSERT", "", "", "", "", "not a time", "2026-13-40T00:00:00Z", "", uint16(0xffff))
	f.Add("REMOVE", "s2", "bob", "active", "", "", "", "", uint16(0x0101))
	f.Fuzz(func(t *testing.T, event, id, user, status, si, started, expires, created string, kinds uint16) {
		// Two bits an attribute choose its type: S, N, a list holding an
		// S, or NULL, as a hand-edited item might have.
		pair := func(bit int, v string) (streamtypes.AttributeValue, types.AttributeValue) {
			switch (kinds >> (2 * bit)) & 3 {
			case 1:
				return &streamtypes.AttributeValueMemberN{Value: v}, &types.AttributeValueMemberN{Value: v}
			case 2:
				return &streamtypes.AttributeValueMemberL{Value: []streamtypes.AttributeValue{&streamtypes.AttributeValueMemberS{Value: v}}},
					&types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: v}}}
			case 3:
				return &streamtypes.AttributeValueMemberNULL{Value: true}, &types.AttributeValueMemberNULL{Value: true}
			}
			return &streamtypes.AttributeValueMemberS{Value: v}, &types.AttributeValueMemberS{Value: v}
		}
		img := map[string]streamtypes.AttributeValue{}
		item := map[string]types.AttributeValue{}
		for i, a := range []struct{ name, v string }{{AttrID, id}, {AttrUser, user}, {AttrStatus, status}, {AttrSourceIdentity, si},
			{AttrStartedAt, started}, {AttrExpiresAt, expires}, {AttrCreatedAt, created}, {AttrUpdatedAt, started}} {
			img[a.name], item[a.name] = pair(i, a.v)
		}
		rec := streamtypes.Record{EventName: streamtypes.OperationType(event), Dynamodb: &streamtypes.StreamRecord{
			Keys: map[string]streamtypes.AttributeValue{AttrID: img[AttrID]}, NewImage: img, SequenceNumber: aws.String("1")}}
		s, hasCreated, remove, err := decodeStreamRecord(rec)
		_, idIsString := item[AttrID].(*types.AttributeValueMemberS)
		switch streamtypes.OperationType(event) {
		case streamtypes.OperationTypeInsert, streamtypes.OperationTypeModify:
			if !idIsString || id == "" {
				if err == nil {
					t.Fatalf("%s without a string id decoded: %+v", event, s)
				}
				return
			}
			if err != nil || remove {
				t.Fatalf("decode %s: %v (remove %v)", event, err, remove)
			}
			want, wantCreated := decodeReplicaItem(item)
			if !reflect.DeepEqual(s, want) || hasCreated != wantCreated {
				t.Fatalf("stream decoded\n  %+v (created %v)\nthe Scan's decode\n  %+v (created %v)", s, hasCreated, want, wantCreated)
			}
			st := newReplicaState(0)
			st.put(s, hasCreated, 1)
			if st.live != 1 {
				t.Fatalf("put: %d sessions held", st.live)
			}
			_, _, remove, err = decodeStreamRecord(streamtypes.Record{EventName: streamtypes.OperationTypeRemove, Dynamodb: rec.Dynamodb})
			if err != nil || !remove {
				t.Fatalf("REMOVE of %q: %v", id, err)
			}
			st.delete(s.ID)
			if st.live != 0 || len(st.byID) != 0 || len(st.bySI) != 0 {
				t.Fatalf("after REMOVE: %d sessions, %d ids, %d source identities", st.live, len(st.byID), len(st.bySI))
			}
		case streamtypes.OperationTypeRemove:
			if idIsString != (err == nil) || (err == nil && (!remove || s.ID != id)) {
				t.Fatalf("REMOVE of %+v: %+v, remove %v, %v", item[AttrID], s, remove, err)
			}
		default:
			if err == nil {
				t.Fatalf("event %q decoded: %+v", event, s)
			}
		}
	})
}
