package memory

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

func TestSessions(t *testing.T) {
	ctx := context.Background()
	a1 := sessions.Session{ID: "a1", User: "alice", SourceIdentity: "sentinel:alice:direct:00000001"}
	a2 := sessions.Session{ID: "a2", User: "alice"} // no SourceIdentity: found by user only
	b1 := sessions.Session{ID: "b1", User: "bob", SourceIdentity: "sentinel:bob:direct:00000002"}
	m := NewSessions([]sessions.Session{b1, a1, a2})
	for _, tc := range []struct {
		name string
		read func() ([]sessions.Session, error)
		want []sessions.Session
	}{
		{"by source identity", func() ([]sessions.Session, error) { return m.BySourceIdentity(ctx, a1.SourceIdentity) }, []sessions.Session{a1}},
		{"unknown source identity", func() ([]sessions.Session, error) { return m.BySourceIdentity(ctx, "sentinel:eve:direct:00000003") }, nil},
		{"empty source identity", func() ([]sessions.Session, error) { return m.BySourceIdentity(ctx, "") }, nil},
		{"by user", func() ([]sessions.Session, error) { return m.ByUser(ctx, "alice") }, []sessions.Session{a1, a2}},
		{"unknown user", func() ([]sessions.Session, error) { return m.ByUser(ctx, "eve") }, nil},
	} {
		got, err := tc.read()
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if got := m.Reads(); got != 5 {
		t.Errorf("Reads() = %d, want 5", got)
	}
	if names, err := m.UserNames(ctx); err != nil || !reflect.DeepEqual(names, []string{"alice", "bob"}) {
		t.Errorf("UserNames() = %v, %v; want [alice bob]", names, err)
	}
	if got := m.Reads(); got != 5 {
		t.Errorf("UserNames counted as a read: Reads() = %d", got)
	}
}

func finding(event string) sink.Finding {
	return sink.Finding{FindingID: "f-" + event, Event: sink.EventInfo{ID: event}}
}

func TestSink(t *testing.T) {
	batch := []sink.Finding{finding("e1"), finding("e2"), finding("e3")}
	for _, tc := range []struct {
		name      string
		setup     func(*Sink)
		wantKept  []string      // event ids recorded
		wantError map[int]error // failed indexes
	}{
		{"accepts everything", func(*Sink) {}, []string{"e1", "e2", "e3"}, nil},
		{"failing", func(s *Sink) { s.SetFailing(true, false) }, nil, map[int]error{0: ErrSinkFailing, 1: ErrSinkFailing, 2: ErrSinkFailing}},
		{"failing but kept", func(s *Sink) { s.SetFailing(true, true) }, []string{"e1", "e2", "e3"}, map[int]error{0: ErrSinkFailing, 1: ErrSinkFailing, 2: ErrSinkFailing}},
		{"recovered", func(s *Sink) { s.SetFailing(true, true); s.SetFailing(false, false) }, []string{"e1", "e2", "e3"}, nil},
		{"rejects one", func(s *Sink) { s.Reject(func(f sink.Finding) bool { return f.Event.ID == "e2" }) }, []string{"e1", "e3"}, map[int]error{1: ErrRejected}},
		{"rejects none again", func(s *Sink) { s.Reject(func(sink.Finding) bool { return true }); s.Reject(nil) }, []string{"e1", "e2", "e3"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSink("mem")
			tc.setup(s)
			err := s.Write(context.Background(), batch)
			var be *sink.BatchError
			switch {
			case tc.wantError == nil && err != nil:
				t.Fatalf("Write: %v, want nil", err)
			case tc.wantError != nil && (!errors.As(err, &be) || be.Sink != "mem" || !reflect.DeepEqual(be.Failed, tc.wantError)):
				t.Fatalf("Write: %v, want a BatchError of sink mem failing %v", err, tc.wantError)
			}
			var kept []string
			for _, f := range s.Findings() {
				kept = append(kept, f.Event.ID)
			}
			if !reflect.DeepEqual(kept, tc.wantKept) || s.Writes() != 1 || s.Name() != "mem" {
				t.Errorf("kept %v after %d writes (name %q), want %v after 1 (mem)", kept, s.Writes(), s.Name(), tc.wantKept)
			}
		})
	}
}
