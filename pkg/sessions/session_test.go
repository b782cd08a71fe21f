package sessions

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestSanitizeUser(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"alice", "alice"},
		{"alice.smith@corp", "alicesmithcorp"},
		{"Bob_Jones-2", "BobJones2"},
		{"", ""},
		{"@.-_", ""},
		{"abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrst"}, // first 20
		{"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u", "abcdefghijklmnopqrst"},
		{"josé.müller", "josmller"}, // non-ASCII letters dropped
		{"１２３abc", "abc"},           // full-width digits dropped
	}
	for _, tt := range tests {
		if got := SanitizeUser(tt.raw); got != tt.want {
			t.Errorf("SanitizeUser(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestParseStrategies(t *testing.T) {
	tests := []struct {
		in      string
		want    []Strategy
		wantErr bool
	}{
		{in: "exact,user-time", want: []Strategy{StrategyExact, StrategyUserTime}},
		{in: "user-time, exact", want: []Strategy{StrategyUserTime, StrategyExact}},
		{in: "exact", want: []Strategy{StrategyExact}},
		{in: "exact,exact,", want: []Strategy{StrategyExact}},
		{in: "", wantErr: true},
		{in: " , ", wantErr: true},
		{in: "exact,fuzzy", wantErr: true},
		{in: "EXACT", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseStrategies(tt.in)
		if tt.wantErr {
			var se *StrategyError
			if !errors.As(err, &se) {
				t.Errorf("ParseStrategies(%q) error = %v, want a *StrategyError", tt.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseStrategies(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSessionCovers(t *testing.T) {
	start := time.Date(2026, 5, 1, 10, 0, 0, 500_000_000, time.UTC)
	end := start.Add(time.Hour)
	s := Session{StartedAt: start, ExpiresAt: end}
	tests := []struct {
		name string
		s    Session
		at   time.Time
		skew time.Duration
		want bool
	}{
		{"inside", s, start.Add(time.Minute), 0, true},
		{"at start", s, start, 0, true},
		{"at expiry", s, end, 0, true},
		{"whole second before start, no skew", s, start.Truncate(time.Second), 0, false},
		{"whole second before start, skew", s, start.Truncate(time.Second), time.Minute, true},
		{"after expiry within skew", s, end.Add(59 * time.Second), time.Minute, true},
		{"after expiry beyond skew", s, end.Add(61 * time.Second), time.Minute, false},
		{"no start", Session{ExpiresAt: end}, start, time.Minute, false},
		{"no expiry", Session{StartedAt: start}, start, time.Minute, false},
	}
	for _, tt := range tests {
		if got := tt.s.Covers(tt.at, tt.skew); got != tt.want {
			t.Errorf("%s: Covers = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSessionRevoked(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if got, ok := (Session{Status: StatusRevoked, UpdatedAt: at}).Revoked(); !ok || !got.Equal(at) {
		t.Errorf("revoked session: Revoked() = %v, %v; want %v, true", got, ok, at)
	}
	if _, ok := (Session{Status: StatusActive, UpdatedAt: at}).Revoked(); ok {
		t.Error("active session reported revoked")
	}
}
