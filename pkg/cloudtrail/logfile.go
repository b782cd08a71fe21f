package cloudtrail

import (
	"bufio"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"io"
	"iter"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// MaxLineBytes bounds one JSON line; CloudTrail records are far smaller.
const MaxLineBytes = 8 << 20

// Readers reused across log files: a gzip reader and its buffers are some
// 100 KB, allocated per file otherwise. klauspost/compress's gzip inflates
// about half again as fast as the standard library's.
var (
	bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
	gzReaders  = sync.Pool{New: func() any { return new(gzip.Reader) }}
)

// OpenLog returns r, gunzipped when it starts with the gzip magic, through
// pooled readers; release returns them to the pools once the caller is done
// reading.
func OpenLog(r io.Reader) (rd io.Reader, release func(), err error) {
	br := bufReaders.Get().(*bufio.Reader)
	br.Reset(r)
	releaseBuf := func() {
		br.Reset(nil)
		bufReaders.Put(br)
	}
	head, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		releaseBuf()
		return nil, nil, fmt.Errorf("read log header: %w", err)
	}
	if len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
		return br, releaseBuf, nil
	}
	zr := gzReaders.Get().(*gzip.Reader)
	if err := zr.Reset(br); err != nil {
		releaseBuf()
		return nil, nil, &SyntaxError{Shape: "gzip", Err: err}
	}
	return zr, func() {
		gzReaders.Put(zr)
		releaseBuf()
	}, nil
}

// Uncompressed is OpenLog for a caller that reads once and lets the
// collector have the readers.
func Uncompressed(r io.Reader) (io.Reader, error) {
	rd, _, err := OpenLog(r)
	return rd, err
}

// ReadTracker remembers the first error other than io.EOF that reading R
// returned. A download that breaks surfaces from a JSON decoder as a syntax
// error; Err tells it (worth a retry) from a broken file (not).
type ReadTracker struct {
	R   io.Reader
	err error
}

func (t *ReadTracker) Read(p []byte) (int, error) {
	n, err := t.R.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	return n, err
}

// Err is the first read error other than io.EOF, or nil.
func (t *ReadTracker) Err() error { return t.err }

// Records streams the records of a CloudTrail log file ({"Records":[…]}),
// one decode per record, without holding the file in memory. A record that
// cannot be used yields an error and the stream goes on; invalid JSON or a
// file that is not a log yields a *FileError and ends it.
func Records(r io.Reader) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		dec := json.NewDecoder(r)
		if err := enterRecordsArray(dec); err != nil {
			yield(nil, &FileError{Err: err})
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
				yield(nil, &FileError{Err: &SyntaxError{Shape: "log file", Err: err}})
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
			yield(nil, &FileError{Err: err})
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
