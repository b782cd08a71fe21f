package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// MaxFindingLine bounds one line of a findings file.
const MaxFindingLine = 1 << 20

// LineError is a line of a findings file that is not a native finding.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("findings line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReadFindings streams the native findings (JSON lines, schema
// sessionwatch.finding/v1, gzipped or not) of a findings file, such as the
// streamer's file sink writes. A line that is not a finding yields a
// *LineError and the stream goes on (the last line of a file still being
// written may be partial); a read error yields an error and ends it. Blank
// lines are skipped. Nothing is deduplicated here: Accumulator.AddFinding
// drops redeliveries.
func ReadFindings(r io.Reader) iter.Seq2[sink.Finding, error] {
	return func(yield func(sink.Finding, error) bool) {
		r, err := cloudtrail.Uncompressed(r)
		if err != nil {
			yield(sink.Finding{}, err)
			return
		}
		for l, err := range cloudtrail.SplitLines(r, MaxFindingLine) {
			if err != nil {
				if errors.Is(err, cloudtrail.ErrLineTooLong) {
					err = &LineError{Line: l.N, Err: err}
				}
				if !yield(sink.Finding{}, err) {
					return
				}
				continue
			}
			// encoding/json, not goccy/go-json: this is no hot path, and
			// goccy v0.12.0 corrupts a struct value it decodes null into.
			var f sink.Finding
			err := json.Unmarshal(l.Bytes, &f)
			switch {
			case err != nil:
				err = &LineError{Line: l.N, Err: err}
			case f.Schema != sink.Schema:
				err = &LineError{Line: l.N, Err: fmt.Errorf("schema %q, want %q", truncateMiddle(f.Schema, 40), sink.Schema)}
			case f.FindingID == "" || f.Event.Time.IsZero():
				err = &LineError{Line: l.N, Err: errors.New("no finding_id or event time")}
			}
			if err != nil {
				if !yield(sink.Finding{}, err) {
					return
				}
				continue
			}
			if !yield(f, nil) {
				return
			}
		}
	}
}
