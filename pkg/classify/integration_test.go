package classify

import (
	"context"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// TestIntegrationVerdictsAgainstDynalite classifies events against sessions
// stored in dynalite through the real store, cache and directory: the
// time-aware verdicts end to end.
func TestIntegrationVerdictsAgainstDynalite(t *testing.T) {
	ctx := context.Background()
	client := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	at := evTime
	mk := func(id, user, si string, mutate func(*sessions.Session)) sessions.Session {
		s := sessions.Session{ID: id, User: user, Profile: "prod", Status: sessions.StatusActive, SourceIdentity: si,
			StartedAt: at.Add(-time.Hour).Add(250 * time.Millisecond), ExpiresAt: at.Add(time.Hour)}
		s.CreatedAt, s.UpdatedAt = s.StartedAt, s.StartedAt
		if mutate != nil {
			mutate(&s)
		}
		return s
	}
	stored := []sessions.Session{
		mk("valid", "alice", "sentinel:alice:direct:00000001", nil),
		mk("rev-before", "bob", "sentinel:bob:direct:00000002", revokedAt(at.Add(-10*time.Minute))),
		mk("rev-after", "carol", "sentinel:carol:direct:00000003", revokedAt(at.Add(10*time.Minute))),
		mk("expired", "dave", "sentinel:dave:direct:00000004", func(s *sessions.Session) { s.ExpiresAt = at.Add(-20 * time.Minute) }),
		// No source_identity on record: found by user and time, through the
		// raw name "erin.smith@corp" behind the sanitised "erinsmithcorp".
		mk("by-user", "erin.smith@corp", "", nil),
	}
	if err := testenv.PutSessions(ctx, client, table, stored); err != nil {
		t.Fatal(err)
	}
	finder, err := sessions.Open(client, sessions.Config{Store: sessions.StoreConfig{Table: table}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(finder, Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		si      string
		verdict Verdict
		session string
	}{
		{"sentinel:alice:direct:00000001", Tracked, "valid"},
		{"sentinel:bob:direct:00000002", Revoked, "rev-before"},
		{"sentinel:carol:direct:00000003", Tracked, "rev-after"},
		{"sentinel:dave:direct:00000004", Expired, "expired"},
		{"sentinel:erinsmithcorp:direct:00000005", Tracked, "by-user"},
		{"sentinel:frank:direct:00000006", Orphaned, ""},
	}
	for _, tt := range tests {
		t.Run(tt.si, func(t *testing.T) {
			ev := &cloudtrail.Event{ID: tt.si, Name: "AssumeRole", Source: "sts.amazonaws.com", Time: at, RequestID: tt.si,
				SourceIdentity: tt.si, SourceIdentityOrigin: cloudtrail.OriginResponse}
			r, err := c.Classify(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tt.verdict {
				t.Fatalf("verdict %s (%s), want %s", r.Verdict, r.Reason, tt.verdict)
			}
			var got string
			if r.Session != nil {
				got = r.Session.ID
			}
			if got != tt.session {
				t.Errorf("session %q, want %q", got, tt.session)
			}
		})
	}
}
