package cloudtrail

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"io"
	"iter"
)

// MaxLineBytes bounds one JSON line; CloudTrail records are far smaller.
const MaxLineBytes = 8 << 20

// Uncompressed returns r, gunzipped when it starts with the gzip magic.
func Uncompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read log header: %w", err)
	}
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &SyntaxError{Shape: "gzip", Err: err}
		}
		return zr, nil
	}
	return br, nil
}

// Records streams the records of a CloudTrail log file ({"Records":[…]}),
// one decode per record, without holding the file in memory. A record that
// cannot be used yields an error and the stream goes on; invalid JSON yields
// an error and ends it.
func Records(r io.Reader) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		dec := json.NewDecoder(r)
		if err := enterRecordsArray(dec); err != nil {
			yield(nil, err)
			return
		}
		for dec.More() {
			var raw rawRecord
			if err := dec.Decode(&raw); err != nil {
				var typeErr *json.UnmarshalTypeError
				if errors.As(err, &typeErr) {
					// The value was consumed; only this record is bad.
					if !yield(nil, &SyntaxError{Shape: "log record", Err: err}) {
						return
					}
					continue
				}
				yield(nil, &SyntaxError{Shape: "log file", Err: err})
				return
			}
			ev, err := raw.toEvent()
			if !yield(ev, err) {
				return
			}
		}
		// A truncated file ends without the closing bracket: report it, or
		// a partial download would pass for a complete one.
		if err := expectDelim(dec, ']'); err != nil {
			yield(nil, err)
		}
	}
}

// enterRecordsArray positions dec at the first element of the top-level
// "Records" array, skipping any other keys before it.
func enterRecordsArray(dec *json.Decoder) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &SyntaxError{Shape: "log file", Err: err}
		}
		key, _ := tok.(string)
		if key == "Records" {
			return expectDelim(dec, '[')
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return &SyntaxError{Shape: "log file", Err: err}
		}
	}
	return &ShapeError{Detail: `log file without a "Records" array`}
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return &SyntaxError{Shape: "log file", Err: err}
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return &ShapeError{Detail: fmt.Sprintf("log file: want %q, got %v", want, tok)}
	}
	return nil
}

// Lines streams a JSON-lines file in which each line is any intake shape
// (usually a bare record). Blank lines are skipped. Each yield carries the
// 1-based line number. A line over MaxLineBytes yields an error and the
// stream goes on; a read error ends it.
func Lines(r io.Reader, d *Decoder) iter.Seq2[LineMessage, error] {
	return func(yield func(LineMessage, error) bool) {
		for line, err := range SplitLines(r, MaxLineBytes) {
			if err != nil {
				if !yield(LineMessage{Line: line.N}, &SyntaxError{Shape: "json lines", Err: fmt.Errorf("line %d: %w", line.N, err)}) {
					return
				}
				continue
			}
			msg, err := d.DecodeMessage(line.Bytes)
			if err != nil {
				err = fmt.Errorf("line %d: %w", line.N, err)
			}
			if !yield(LineMessage{Line: line.N, Message: msg}, err) {
				return
			}
		}
	}
}

// LineMessage is one decoded line of a JSON-lines file.
type LineMessage struct {
	Line int
	Message
}
