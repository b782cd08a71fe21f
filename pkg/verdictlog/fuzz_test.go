package verdictlog

import (
	"testing"
)

// FuzzDecodeLine: DecodeLine never panics, and a line it accepts encodes
// and decodes back to the same entry.
func FuzzDecodeLine(f *testing.F) {
	good, _ := AppendLine(nil, entry("e1", t0, "8f0c7e2a-0000-8000-8000-000000000000"))
	f.Add(good[:len(good)-1])
	f.Add([]byte(`{"schema":"sessionwatch.verdicts/v1","event_id":"x","event_time":"2026-12-06T20:59:30+01:00","verdict":"tracked","extra":1}`))
	f.Add([]byte(`{"schema":"sessionwatch.verdicts/v1","event_id":"x","event_time":"9999-12-31T23:59:59.999999999Z","verdict":"tracked"}`))
	f.Add([]byte(`{"schema":"sessionwatch.verdicts/v2"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeLine(b)
		if err != nil {
			return
		}
		out, err := AppendLine(nil, e)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", e, err)
		}
		back, err := DecodeLine(out[:len(out)-1])
		if err != nil {
			t.Fatalf("re-decode %q: %v", out, err)
		}
		if !equalEntries([]Entry{e}, []Entry{back}) {
			t.Fatalf("round trip %+v -> %+v", e, back)
		}
	})
}
