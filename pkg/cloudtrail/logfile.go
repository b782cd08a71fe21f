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

// MaxRecordBytes bounds one record, in a log file as on a JSON line;
// CloudTrail records are far smaller (a few KB). It bounds memory too: a
// decoder holds at most about twice this much of one value.
const MaxRecordBytes = 8 << 20

// capSlack is what a JSON decoder may have read past the value it decodes
// (goccy/go-json reads 512 bytes at a time).
const capSlack = 4 << 10

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
//
// A record over MaxRecordBytes ends the file too: the decoder cannot skip a
// value it does not hold.
func Records(r io.Reader) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		cr := &capReader{r: r, limit: MaxRecordBytes + capSlack}
		dec := json.NewDecoder(cr)
		if err := enterRecordsArray(dec); err != nil {
			yield(nil, &FileError{Err: cr.explain(err)})
			return
		}
		for dec.More() {
			start := dec.InputOffset()
			cr.limit = start + MaxRecordBytes + capSlack
			var raw *rawRecord
			if err := dec.Decode(&raw); err != nil {
				var typeErr *json.UnmarshalTypeError
				if errors.As(err, &typeErr) && !cr.over {
					// The value was consumed; only this record is bad.
					if !yield(nil, &SyntaxError{Shape: "log record", Err: err}) {
						return
					}
					continue
				}
				yield(nil, &FileError{Err: cr.explain(&SyntaxError{Shape: "log file", Err: err})})
				return
			}
			if dec.InputOffset()-start > MaxRecordBytes {
				// Within the slack: read whole, but over the cap all the same.
				if !yield(nil, &TooLargeError{Max: MaxRecordBytes}) {
					return
				}
				continue
			}
			if raw == nil {
				if !yield(nil, &NullRecordError{}) {
					return
				}
				continue
			}
			ev, err := raw.toEvent()
			if !yield(ev, err) {
				return
			}
		}
		// A truncated file ends without the closing bracket: report it, or
		// a partial download would pass for a complete one.
		if err := expectDelim(dec, ']'); err != nil {
			yield(nil, &FileError{Err: cr.explain(err)})
		}
	}
}

// capReader fails a read that would go past limit, so that a decoder never
// buffers more than one record's cap.
type capReader struct {
	r           io.Reader
	read, limit int64
	over        bool
}

func (c *capReader) Read(p []byte) (int, error) {
	room := c.limit - c.read
	if room <= 0 {
		c.over = true
		return 0, &TooLargeError{Max: MaxRecordBytes}
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

// explain replaces the decoder's error with the cap's when the cap ended the
// read: "unexpected end of input" would hide the reason.
func (c *capReader) explain(err error) error {
	if c.over {
		return fmt.Errorf("%w; the rest of the file is not read", &TooLargeError{Max: MaxRecordBytes})
	}
	return err
}

// enterRecordsArray positions dec at the first element of the top-level
// "Records" array, skipping any other keys before it.
func enterRecordsArray(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return &SyntaxError{Shape: "log file", Err: err}
	}
	switch tok {
	case json.Delim('['):
		// A bare array of records, as detonation tools (Stratus Red
		// Team) and some exports write them.
		return nil
	case json.Delim('{'):
	default:
		return &ShapeError{Detail: fmt.Sprintf(`log file: want {"Records": [...]} or an array of records, got %v`, tok)}
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
// 1-based line number. A line over MaxRecordBytes yields an error and the
// stream goes on; a read error ends it.
func Lines(r io.Reader, d *Decoder) iter.Seq2[LineMessage, error] {
	return func(yield func(LineMessage, error) bool) {
		for line, err := range SplitLines(r, MaxRecordBytes) {
			if errors.Is(err, ErrLineTooLong) {
				err = &TooLargeError{Max: MaxRecordBytes}
			}
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
