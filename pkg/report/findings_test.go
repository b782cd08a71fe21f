package report

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// writeNative renders findings as the file sink does.
func writeNative(t testing.TB, fs []sink.Finding) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := sink.NewWriter("test", &buf)
	if err := w.Write(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadFindings(t *testing.T) {
	want := tableFindings()
	file := writeNative(t, want)
	// A blank line, a foreign line, a line of another schema and a partial
	// last line (a file still being written) among the findings.
	lines := strings.SplitAfter(string(file), "\n")
	mixed := lines[0] + "\n" + `{"hello":"world"}` + "\n" + lines[1] + `{"schema":"other/v9","finding_id":"x"}` + "\n" +
		strings.Join(lines[2:], "") + lines[0][:40]

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(mixed))
	zw.Close()

	for name, input := range map[string][]byte{"plain": []byte(mixed), "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			var got []sink.Finding
			var badLines []int
			for f, err := range ReadFindings(bytes.NewReader(input)) {
				var le *LineError
				switch {
				case errors.As(err, &le):
					badLines = append(badLines, le.Line)
				case err != nil:
					t.Fatal(err)
				default:
					got = append(got, f)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("read %d findings, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].FindingID != want[i].FindingID || !got[i].Event.Time.Equal(want[i].Event.Time) ||
					got[i].SourceIdentity.Value != want[i].SourceIdentity.Value || got[i].Principal.ARN != want[i].Principal.ARN {
					t.Errorf("finding %d: %+v, want %+v", i, got[i], want[i])
				}
			}
			if len(badLines) != 3 || badLines[0] != 3 || badLines[1] != 5 || badLines[2] != 8 {
				t.Errorf("bad lines %v, want [3 5 8]", badLines)
			}
		})
	}
}

func TestReadFindingsLineTooLong(t *testing.T) {
	// A line over the limit in the middle: it is reported and skipped,
	// and the findings after it are still read.
	findings := tableFindings()
	input := writeNative(t, findings[:1])
	input = append(input, bytes.Repeat([]byte("x"), MaxFindingLine+1)...)
	input = append(input, '\n')
	input = append(input, writeNative(t, findings[1:])...)
	var n int
	var lineErrs []int
	for _, err := range ReadFindings(bytes.NewReader(input)) {
		var le *LineError
		switch {
		case err == nil:
			n++
		case errors.As(err, &le):
			lineErrs = append(lineErrs, le.Line)
		default:
			t.Fatal(err)
		}
	}
	if n != len(findings) || len(lineErrs) != 1 || lineErrs[0] != 2 {
		t.Errorf("read %d findings (want %d), line errors at %v (want [2])", n, len(findings), lineErrs)
	}
}

// FuzzReadFindings: any input, plain or gzipped, yields findings and line
// errors without panicking; every finding it yields has the schema, an id
// and an event time, and reads back the same once written again.
func FuzzReadFindings(f *testing.F) {
	f.Add(writeNative(f, tableFindings()))
	f.Add([]byte(`{"schema":"sessionwatch.finding/v1","finding_id":"x","event":{"time":"2026-11-27T00:00:00Z"}}` + "\n\n" + `{"hello":"world"}`))
	f.Add([]byte(`{"schema":"sessionwatch.finding/v1","finding_id":"x","event":null,"session":null}`))
	f.Add([]byte{0x1f, 0x8b, 0x08})
	f.Fuzz(func(t *testing.T, input []byte) {
		for fd, err := range ReadFindings(bytes.NewReader(input)) {
			if err != nil {
				continue
			}
			if fd.Schema != sink.Schema || fd.FindingID == "" || fd.Event.Time.IsZero() {
				t.Fatalf("yielded an invalid finding: %+v", fd)
			}
			b, err := json.Marshal(fd)
			if err != nil {
				t.Fatalf("a finding read does not marshal: %v", err)
			}
			n := 0
			for again, err := range ReadFindings(bytes.NewReader(b)) {
				if err != nil {
					t.Fatalf("a finding written again does not read back: %v\n%s", err, b)
				}
				if again.FindingID != fd.FindingID || !again.Event.Time.Equal(fd.Event.Time) {
					t.Fatalf("read back %q at %v, want %q at %v", again.FindingID, again.Event.Time, fd.FindingID, fd.Event.Time)
				}
				n++
			}
			if n != 1 {
				t.Fatalf("read back %d findings, want 1", n)
			}
		}
	})
}
