package cloudtrail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
)

// ErrLineTooLong is the error of a line longer than the limit given to
// SplitLines; the lines after it are still read.
var ErrLineTooLong = errors.New("line too long")

// Line is one non-blank line of a JSON-lines stream, trimmed of white space.
// Bytes is only valid until the next line is read.
type Line struct {
	N     int // 1-based line number
	Bytes []byte
}

// SplitLines streams the non-blank lines of r. A line longer than max bytes
// yields Line{N} with an error wrapping ErrLineTooLong and is skipped, and
// the stream goes on (bufio.Scanner would stop there, silently dropping the
// rest of the file); a read error yields an error and ends it.
func SplitLines(r io.Reader, max int) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		br := bufio.NewReaderSize(r, 64<<10)
		var (
			buf     []byte
			tooLong bool
			n       int
		)
		for {
			chunk, err := br.ReadSlice('\n')
			if !tooLong {
				if len(buf)+len(bytes.TrimRight(chunk, "\r\n")) > max {
					tooLong, buf = true, buf[:0]
				} else {
					buf = append(buf, chunk...)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue // the same line goes on
			}
			if err != nil && !errors.Is(err, io.EOF) {
				yield(Line{N: n + 1}, err)
				return
			}
			if len(chunk) > 0 || len(buf) > 0 || tooLong {
				n++
				switch b := bytes.TrimSpace(buf); {
				case tooLong:
					if !yield(Line{N: n}, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, max)) {
						return
					}
				case len(b) > 0:
					if !yield(Line{N: n, Bytes: b}, nil) {
						return
					}
				}
			}
			if err != nil { // io.EOF
				return
			}
			buf, tooLong = buf[:0], false
		}
	}
}
