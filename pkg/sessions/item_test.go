package sessions

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func TestMarshalItemRoundTrip(t *testing.T) {
	start := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC)
	want := Session{
		ID:               "sess-1",
		User:             "alice.smith@corp",
		Profile:          "prod-admin",
		ServerInstanceID: "srv-1",
		Status:           StatusRevoked,
		SourceIdentity:   "sentinel:alicesmithcorp:direct:a1b2c3d4",
		StartedAt:        start,
		LastAccessAt:     start.Add(time.Minute),
		ExpiresAt:        start.Add(time.Hour),
		CreatedAt:        start,
		UpdatedAt:        start.Add(30 * time.Minute),
		TTL:              start.Add(48 * time.Hour).Unix(),
		RevokedBy:        "security",
		RevokedReason:    "laptop lost",
	}
	got := UnmarshalItem(MarshalItem(want))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestMarshalItemOmitsEmpty(t *testing.T) {
	item := MarshalItem(Session{ID: "x", User: "bob", StartedAt: time.Unix(0, 1)})
	var names []string
	for name := range item {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{AttrID, AttrStartedAt, AttrUser}; !slices.Equal(names, want) {
		t.Errorf("attributes = %v, want %v (empty strings, zero times and ttl omitted)", names, want)
	}
}

func TestUnmarshalItem(t *testing.T) {
	tests := []struct {
		name          string
		item          map[string]types.AttributeValue
		wantStart     time.Time
		wantExpiry    time.Time
		wantTTL       int64
		wantMalformed []string
	}{
		{
			name: "whole seconds",
			item: map[string]types.AttributeValue{
				AttrID: s("a"), AttrStartedAt: s("2026-05-01T10:00:00Z"), AttrExpiresAt: s("2026-05-01T11:00:00+02:00"),
				AttrTTL: n("1777777777"),
			},
			wantStart:  time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC),
			wantExpiry: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
			wantTTL:    1777777777,
		},
		{
			name: "fractional seconds and fractional ttl",
			item: map[string]types.AttributeValue{
				AttrID: s("a"), AttrStartedAt: s("2026-05-01T10:00:00.123Z"), AttrExpiresAt: s("2026-05-01T11:00:00.123456789Z"),
				AttrTTL: n("1777777777.5"),
			},
			wantStart:  time.Date(2026, 5, 1, 10, 0, 0, 123_000_000, time.UTC),
			wantExpiry: time.Date(2026, 5, 1, 11, 0, 0, 123456789, time.UTC),
			wantTTL:    1777777777,
		},
		{
			name: "unparseable expiry",
			item: map[string]types.AttributeValue{
				AttrID: s("a"), AttrStartedAt: s("2026-05-01T10:00:00Z"), AttrExpiresAt: s("tomorrow"),
			},
			wantStart:     time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC),
			wantMalformed: []string{AttrExpiresAt},
		},
		{
			name:          "missing times",
			item:          map[string]types.AttributeValue{AttrID: s("a"), AttrUser: s("bob")},
			wantMalformed: []string{AttrStartedAt, AttrExpiresAt},
		},
		{
			name: "wrong types; NULL is absent",
			item: map[string]types.AttributeValue{
				AttrID: s("a"), AttrStartedAt: n("1777777777"), AttrExpiresAt: s("2026-05-01T11:00:00Z"),
				AttrTTL: s("soon"), AttrRevokedBy: &types.AttributeValueMemberNULL{Value: true},
				AttrUpdatedAt: s("yesterday"),
			},
			wantExpiry:    time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC),
			wantMalformed: []string{AttrStartedAt, AttrUpdatedAt, AttrTTL},
		},
	}
	for _, tt := range tests {
		got := UnmarshalItem(tt.item)
		if got.ID != "a" {
			t.Errorf("%s: ID = %q, want a", tt.name, got.ID)
		}
		if !got.StartedAt.Equal(tt.wantStart) || !got.ExpiresAt.Equal(tt.wantExpiry) {
			t.Errorf("%s: times = %v .. %v, want %v .. %v", tt.name, got.StartedAt, got.ExpiresAt, tt.wantStart, tt.wantExpiry)
		}
		if got.TTL != tt.wantTTL {
			t.Errorf("%s: TTL = %d, want %d", tt.name, got.TTL, tt.wantTTL)
		}
		if !slices.Equal(got.Malformed, tt.wantMalformed) {
			t.Errorf("%s: Malformed = %v, want %v", tt.name, got.Malformed, tt.wantMalformed)
		}
		if len(tt.wantMalformed) > 0 && got.Covers(tt.wantStart.Add(time.Minute), time.Minute) {
			t.Errorf("%s: a malformed session covers an event", tt.name)
		}
	}
}
