package classify

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestSentinelParser(t *testing.T) {
	p, err := NewParser("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in       string
		want     ParsedIdentity
		nearMiss bool
		reason   string // substring of the error
	}{
		{in: "sentinel:alice:direct:0a1b2c3d", want: ParsedIdentity{User: "alice", Marker: "direct", RequestID: "0a1b2c3d"}},
		{in: "sentinel:bob42:deadbeef:01234567", want: ParsedIdentity{User: "bob42", Marker: "deadbeef", RequestID: "01234567"}},
		{in: "sentinel:alice:0a1b2c3d", want: ParsedIdentity{User: "alice", RequestID: "0a1b2c3d"}},
		{in: "sentinel:ABCDEFGHIJ0123456789:direct:0a1b2c3d", want: ParsedIdentity{User: "ABCDEFGHIJ0123456789", Marker: "direct", RequestID: "0a1b2c3d"}},
		{in: "JohnDoe", reason: `does not start with "sentinel:"`},
		{in: "", reason: "does not start"},
		{in: "okta:alice", reason: "does not start"},
		{in: "Sentinel:alice:direct:0a1b2c3d", reason: "does not start"},
		{in: "sentinel:alice:direct:XYZ12345", nearMiss: true, reason: "request-id"},
		{in: "sentinel:alice:direct:0A1B2C3D", nearMiss: true, reason: "request-id"},
		{in: "sentinel:alice:direct:0a1b2c3", nearMiss: true, reason: "request-id"},
		{in: "sentinel:alice:direct", nearMiss: true, reason: "request-id"},
		{in: "sentinel:alice", nearMiss: true, reason: "fields"},
		{in: "sentinel:alice:direct:0a1b2c3d:extra", nearMiss: true, reason: "fields"},
		{in: "sentinel:alice:indirect:0a1b2c3d", nearMiss: true, reason: "marker"},
		{in: "sentinel:ABCDEFGHIJ0123456789X:direct:0a1b2c3d", nearMiss: true, reason: "user"},
		{in: "sentinel:al.ice:direct:0a1b2c3d", nearMiss: true, reason: "user"},
		{in: "sentinel::direct:0a1b2c3d", nearMiss: true, reason: "user"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := p.Parse(tt.in)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.want.Value = tt.in
				if got != tt.want {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrFormat) {
				t.Fatalf("got %v, want a FormatError", err)
			}
			if fe.NearMiss != tt.nearMiss || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q near miss %v; want near miss %v mentioning %q", err, fe.NearMiss, tt.nearMiss, tt.reason)
			}
			if tt.nearMiss && !strings.HasPrefix(err.Error(), "near miss") {
				t.Errorf("near miss not called out: %q", err)
			}
		})
	}
}

func TestCustomPattern(t *testing.T) {
	// STS allows [\w+=,.@-] in a SourceIdentity, with no ':'; a broker may
	// use another separator.
	p, err := NewParser(`^broker\.(?P<user>[a-z]+)\.(?P<request_id>[0-9]{6})$`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Parse("broker.carol.123456")
	if err != nil || got.User != "carol" || got.RequestID != "123456" || got.Marker != "" {
		t.Errorf("got %+v, %v", got, err)
	}
	_, err = p.Parse("broker.carol.12")
	var fe *FormatError
	if !errors.As(err, &fe) || !fe.NearMiss || !strings.Contains(err.Error(), `"broker."`) {
		t.Errorf("near miss not reported: %v", err)
	}
	_, err = p.Parse("sentinel:carol:direct:0a1b2c3d")
	if !errors.As(err, &fe) || fe.NearMiss {
		t.Errorf("foreign value reported as near miss: %v", err)
	}

	for _, bad := range []string{`^(?P<name>x)$`, `(`} {
		if _, err := NewParser(bad); err == nil {
			t.Errorf("NewParser(%q) accepted", bad)
		}
	}
}

// FuzzSentinelParser checks the hand-written parser against the pattern it
// implements: the two accept exactly the same strings, with the same parts.
func FuzzSentinelParser(f *testing.F) {
	for _, s := range []string{"sentinel:alice:direct:0a1b2c3d", "sentinel:alice:0a1b2c3d", "sentinel:a:deadbeef:01234567",
		"sentinel:alice:direct:XYZ12345", "sentinel:", "sentinel:::", "JohnDoe", "sentinel:alice:direct:0a1b2c3d\n"} {
		f.Add(s)
	}
	re := regexp.MustCompile(SentinelPattern)
	p, err := NewParser("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, si string) {
		got, err := p.Parse(si)
		m := re.FindStringSubmatch(si)
		if (m != nil) != (err == nil) {
			t.Fatalf("%q: regexp match %v, parser error %v", si, m != nil, err)
		}
		if m == nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("%q: error %v is not ErrFormat", si, err)
			}
			return
		}
		want := ParsedIdentity{Value: si, User: m[re.SubexpIndex("user")], Marker: m[re.SubexpIndex("marker")], RequestID: m[re.SubexpIndex("request_id")]}
		if got != want {
			t.Fatalf("%q: got %+v, want %+v", si, got, want)
		}
	})
}
