package sessions

import (
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

func stateSession(id, user, si string, start time.Time, dur time.Duration) Session {
	return Session{ID: id, User: user, Profile: "admin", Status: StatusActive, SourceIdentity: si,
		StartedAt: start, ExpiresAt: start.Add(dur), UpdatedAt: start.Add(time.Second)}
}

func stateIDs(ss []Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestReplicaStateKeepsExactTimes(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	plus2 := time.FixedZone("+02:00", 2*3600)
	tests := []struct {
		name string
		s    Session
	}{
		{"utc with nanoseconds", stateSession("a", "u", "si-a", base, time.Hour)},
		{"expiry in year 9999", func() Session {
			s := stateSession("b", "u", "si-b", base, 0)
			s.ExpiresAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
			return s
		}()},
		{"offset zone", stateSession("c", "u", "si-c", base.In(plus2), time.Hour)},
		{"start before 1678", stateSession("d", "u", "si-d", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour)},
		{"no times", Session{ID: "e", User: "u", SourceIdentity: "si-e"}},
		{"revoked", func() Session {
			s := stateSession("f", "u", "si-f", base, time.Hour)
			s.Status, s.RevokedBy, s.RevokedReason = StatusRevoked, "secops", "leak"
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newReplicaState(0)
			st.put(tt.s, true, 1)
			got := st.withSourceIdentity(tt.s.SourceIdentity, "", false)
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.s) {
				t.Fatalf("read back %+v, want %+v", got, tt.s)
			}
			at := tt.s.StartedAt.Add(time.Minute)
			want := tt.s.Covers(at, time.Minute)
			if cov := st.userCovering("u", at, time.Minute); (len(cov) == 1) != want {
				t.Errorf("userCovering = %v, Session.Covers = %v", stateIDs(cov), want)
			}
		})
	}
}

func TestReplicaStateIndexesFollowUpdatesAndRemovals(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	st := newReplicaState(0)
	st.put(stateSession("s1", "alice.smith", "si-shared", t0, time.Hour), true, 1)
	st.put(stateSession("s2", "alice.smith", "si-shared", t0.Add(2*time.Hour), time.Hour), true, 1)
	st.put(stateSession("s3", "alicesmith", "si-3", t0, time.Hour), true, 1)
	st.put(stateSession("s4", "alicesmith", "si-4", t0, time.Hour), false, 1) // no created_at: not in gsi-user

	if got := stateIDs(st.withSourceIdentity("si-shared", "", false)); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Errorf("by source identity = %v, want s1 s2", got)
	}
	if got := st.rawNames("alicesmith"); !slices.Equal(got, []string{"alice.smith", "alicesmith"}) {
		t.Errorf("raw names = %v", got)
	}
	if got := stateIDs(st.userCovering("alicesmith", t0.Add(time.Minute), 0)); !slices.Equal(got, []string{"s3"}) {
		t.Errorf("covering = %v, want s3 only (s4 is not in gsi-user)", got)
	}
	if got := st.withSourceIdentity("si-4", "", false); len(got) != 1 {
		t.Errorf("s4 by source identity = %v, want it (gsi-source-identity has it)", got)
	}

	// s1 moves: new start, new source identity.
	moved := stateSession("s1", "alice.smith", "si-moved", t0.Add(5*time.Hour), time.Hour)
	st.put(moved, true, 2)
	if got := stateIDs(st.withSourceIdentity("si-shared", "", false)); !slices.Equal(got, []string{"s2"}) {
		t.Errorf("after the move, si-shared = %v, want s2", got)
	}
	if got := stateIDs(st.userCovering("alice.smith", t0.Add(time.Minute), 0)); len(got) != 0 {
		t.Errorf("after the move, covering the old time = %v, want none", got)
	}
	if got := stateIDs(st.userCovering("alice.smith", t0.Add(5*time.Hour+time.Minute), 0)); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("after the move, covering the new time = %v, want s1", got)
	}
	if got := stateIDs(st.userAll("alice.smith")); !slices.Equal(got, []string{"s2", "s1"}) {
		t.Errorf("user list = %v, want s2 s1 (by start)", got)
	}
	if st.live != 4 || len(st.recs) != 4 {
		t.Errorf("live %d in %d slots, want 4 in 4 (the update reused its slot)", st.live, len(st.recs))
	}

	// A full read saw s1 and s3 only (gen 2 after re-putting s3).
	st.put(stateSession("s3", "alicesmith", "si-3", t0, time.Hour), true, 2)
	if n := st.sweep(2); n != 2 || st.live != 2 {
		t.Fatalf("sweep removed %d, %d left; want 2 and 2", n, st.live)
	}
	for _, si := range []string{"si-shared", "si-4"} {
		if got := st.withSourceIdentity(si, "", false); len(got) != 0 {
			t.Errorf("%s after the sweep = %v", si, stateIDs(got))
		}
	}
	st.put(stateSession("s5", "bob", "si-5", t0, time.Hour), true, 2)
	if len(st.recs) != 4 {
		t.Errorf("%d slots after re-use, want 4", len(st.recs))
	}
}

func TestReplicaStateBulkLoadSortsOnce(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	st := newReplicaState(0)
	st.bulk = true
	for i, h := range []int{5, 1, 3, 2, 4} {
		s := stateSession(string(rune('a'+i)), "u", "", t0.Add(time.Duration(h)*time.Hour), 90*time.Minute)
		if s.ID == "d" {
			s.Status, s.UpdatedAt = StatusRevoked, s.StartedAt.Add(time.Minute)
		}
		st.put(s, true, 1)
	}
	st.finish()
	if got := stateIDs(st.userAll("u")); !slices.Equal(got, []string{"b", "d", "c", "e", "a"}) {
		t.Errorf("user list %v, want by start", got)
	}
	for _, tt := range []struct {
		at   time.Duration
		want []string
	}{
		{3*time.Hour + time.Minute, []string{"d", "c"}}, // d revoked: on to c, valid
		{4*time.Hour + 10*time.Minute, []string{"c"}},   // c valid: e cannot change the verdict
		{6*time.Hour + 40*time.Minute, nil},
	} {
		if got := stateIDs(st.userCovering("u", t0.Add(tt.at), 0)); !slices.Equal(got, tt.want) {
			t.Errorf("covering at +%v = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestSatAdd(t *testing.T) {
	for _, tt := range []struct{ a, b, want int64 }{
		{1, 2, 3},
		{math.MaxInt64 - 1, 5, math.MaxInt64},
		{math.MinInt64 + 1, -5, math.MinInt64},
		{-5, 3, -2},
	} {
		if got := satAdd(tt.a, tt.b); got != tt.want {
			t.Errorf("satAdd(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
