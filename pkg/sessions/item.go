package sessions

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names of Sentinel's session table.
const (
	AttrID               = "id"
	AttrUser             = "user"
	AttrProfile          = "profile"
	AttrServerInstanceID = "server_instance_id"
	AttrStatus           = "status"
	AttrSourceIdentity   = "source_identity"
	AttrStartedAt        = "started_at"
	AttrLastAccessAt     = "last_access_at"
	AttrExpiresAt        = "expires_at"
	AttrCreatedAt        = "created_at"
	AttrUpdatedAt        = "updated_at"
	AttrTTL              = "ttl"
	AttrRevokedBy        = "revoked_by"
	AttrRevokedReason    = "revoked_reason"
)

// MarshalItem encodes a session the way Sentinel stores it: times as RFC 3339
// strings with fractional seconds, ttl as a number. Empty strings, zero times
// and a zero ttl are omitted, because DynamoDB rejects an empty string as a
// GSI key (user, created_at, source_identity) even though emulators accept it.
func MarshalItem(s Session) map[string]types.AttributeValue {
	item := make(map[string]types.AttributeValue, 14)
	putString := func(name, v string) {
		if v != "" {
			item[name] = &types.AttributeValueMemberS{Value: v}
		}
	}
	putTime := func(name string, t time.Time) {
		if !t.IsZero() {
			item[name] = &types.AttributeValueMemberS{Value: t.Format(time.RFC3339Nano)}
		}
	}
	putString(AttrID, s.ID)
	putString(AttrUser, s.User)
	putString(AttrProfile, s.Profile)
	putString(AttrServerInstanceID, s.ServerInstanceID)
	putString(AttrStatus, s.Status)
	putString(AttrSourceIdentity, s.SourceIdentity)
	putTime(AttrStartedAt, s.StartedAt)
	putTime(AttrLastAccessAt, s.LastAccessAt)
	putTime(AttrExpiresAt, s.ExpiresAt)
	putTime(AttrCreatedAt, s.CreatedAt)
	putTime(AttrUpdatedAt, s.UpdatedAt)
	if s.TTL != 0 {
		item[AttrTTL] = &types.AttributeValueMemberN{Value: strconv.FormatInt(s.TTL, 10)}
	}
	putString(AttrRevokedBy, s.RevokedBy)
	putString(AttrRevokedReason, s.RevokedReason)
	return item
}

// UnmarshalItem decodes one item of the session table.
//
// It decodes every attribute it can rather than rejecting the item: a
// session the classifier can see, even partly, yields a better finding than a
// session silently dropped (which would read as "orphaned"). Attributes that
// are present but unparseable, and started_at or expires_at when missing, are
// listed in Session.Malformed and left zero. A zero StartedAt or ExpiresAt
// never covers an event (see Covers) and a zero ExpiresAt is in the past, so
// a malformed session is never taken for a valid one.
func UnmarshalItem(item map[string]types.AttributeValue) Session {
	var s Session
	malformed := func(name string) {
		if !slices.Contains(s.Malformed, name) {
			s.Malformed = append(s.Malformed, name)
		}
	}
	str := func(name string) string {
		switch v := item[name].(type) {
		case nil, *types.AttributeValueMemberNULL:
			return ""
		case *types.AttributeValueMemberS:
			return v.Value
		default:
			malformed(name)
			return ""
		}
	}
	tm := func(name string, required bool) time.Time {
		v := str(name)
		if v == "" {
			if required {
				malformed(name)
			}
			return time.Time{}
		}
		t, err := parseTime(v)
		if err != nil {
			malformed(name)
		}
		return t
	}
	s.ID = str(AttrID)
	s.User = str(AttrUser)
	s.Profile = str(AttrProfile)
	s.ServerInstanceID = str(AttrServerInstanceID)
	s.Status = str(AttrStatus)
	s.SourceIdentity = str(AttrSourceIdentity)
	s.StartedAt = tm(AttrStartedAt, true)
	s.LastAccessAt = tm(AttrLastAccessAt, false)
	s.ExpiresAt = tm(AttrExpiresAt, true)
	s.CreatedAt = tm(AttrCreatedAt, false)
	s.UpdatedAt = tm(AttrUpdatedAt, false)
	s.RevokedBy = str(AttrRevokedBy)
	s.RevokedReason = str(AttrRevokedReason)
	switch v := item[AttrTTL].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberN:
		ttl, err := parseEpochSeconds(v.Value)
		if err != nil {
			malformed(AttrTTL)
		}
		s.TTL = ttl
	default:
		malformed(AttrTTL)
	}
	return s
}

// parseTime reads RFC 3339 with or without fractional seconds (Go's parser
// accepts a fraction even when the layout has none; RFC3339Nano says so
// explicitly).
func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time %q: %w", v, err)
	}
	return t, nil
}

// parseEpochSeconds reads a DynamoDB number holding epoch seconds; some
// writers store it with a fraction.
func parseEpochSeconds(v string) (int64, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("parse epoch seconds %q: %w", v, err)
	}
	return int64(f), nil
}
