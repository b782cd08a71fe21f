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

// FuzzUnmarshalItem: whatever a table item holds (strings, numbers or other
// types where strings belong, times in any shape), UnmarshalItem does not
// panic, never takes a session without both times for one that covers
// anything, and a well-formed session survives MarshalItem unchanged.
func FuzzUnmarshalItem(f *testing.F) {
	f.Add("s1", "alice.smith@corp", "revoked", "2026-11-20T09:00:00Z", "2026-11-20T11:00:00.5Z", "2026-11-20T10:00:00Z", "1795168802", byte(0))
	f.Add("", "", "", "", "not a time", "2026-13-40T00:00:00Z", "1.7e9", byte(0xff))
	f.Fuzz(func(t *testing.T, id, user, status, started, expires, updated, ttl string, kinds byte) {
		// Each bit of kinds puts a number where a string belongs (or the
		// reverse, for ttl), as a hand-edited item might.
		val := func(bit int, v string) types.AttributeValue {
			if kinds&(1<<bit) != 0 {
				return &types.AttributeValueMemberN{Value: v}
			}
			return &types.AttributeValueMemberS{Value: v}
		}
		item := map[string]types.AttributeValue{
			AttrID: val(0, id), AttrUser: val(1, user), AttrStatus: val(2, status),
			AttrStartedAt: val(3, started), AttrExpiresAt: val(4, expires), AttrUpdatedAt: val(5, updated),
		}
		if kinds&(1<<6) != 0 {
			item[AttrTTL] = &types.AttributeValueMemberS{Value: ttl}
		} else {
			item[AttrTTL] = &types.AttributeValueMemberN{Value: ttl}
		}
		if kinds&(1<<7) != 0 {
			item[AttrProfile] = &types.AttributeValueMemberNULL{Value: true}
		}
		s := UnmarshalItem(item)
		if (s.StartedAt.IsZero() || s.ExpiresAt.IsZero()) && s.Covers(time.Now(), time.Hour) {
			t.Fatalf("a session without both times covers now: %+v", s)
		}
		if s.StartedAt.IsZero() && !slices.Contains(s.Malformed, AttrStartedAt) {
			t.Fatalf("started_at missing but not reported malformed: %+v", s)
		}
		if len(s.Malformed) > 0 {
			return
		}
		back := UnmarshalItem(MarshalItem(s))
		if back.ID != s.ID || back.User != s.User || back.Status != s.Status || back.TTL != s.TTL ||
			!back.StartedAt.Equal(s.StartedAt) || !back.ExpiresAt.Equal(s.ExpiresAt) || !back.UpdatedAt.Equal(s.UpdatedAt) || len(back.Malformed) > 0 {
			t.Fatalf("round trip changed the session:\n got %+v\nwant %+v", back, s)
		}
	})
}
