package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// JSONLines writes findings as native JSON, one per line. Each Write hands
// the whole batch to the OS in one call, so a finding counts as accepted once
// it has left the process's buffers; on a short write the lines that made it
// out are accepted and the rest reported failed.
type JSONLines struct {
	name string
	mu   sync.Mutex
	w    io.Writer
	file *os.File // set when the sink owns a file: synced and closed by Close
	buf  bytes.Buffer
	ends []int
}

// NewStdout writes to standard output.
func NewStdout() *JSONLines { return &JSONLines{name: "stdout", w: os.Stdout} }

// NewWriter writes to w (tests, pipes).
func NewWriter(name string, w io.Writer) *JSONLines { return &JSONLines{name: name, w: w} }

// OpenFile appends to path, creating it with mode 0600 (findings name
// principals and keys).
func OpenFile(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open file sink: %w", err)
	}
	return &JSONLines{name: "file:" + path, w: f, file: f}, nil
}

// Name identifies the sink in logs and metrics.
func (s *JSONLines) Name() string { return s.name }

// Write encodes and writes findings.
func (s *JSONLines) Write(ctx context.Context, findings []Finding) error {
	if len(findings) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return failAll(s.name, len(findings), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Reset()
	s.ends = s.ends[:0]
	enc := json.NewEncoder(&s.buf)
	enc.SetEscapeHTML(false)
	var failed map[int]error
	for i := range findings {
		if err := enc.Encode(&findings[i]); err != nil {
			if failed == nil {
				failed = map[int]error{}
			}
			failed[i] = fmt.Errorf("encode finding: %w", err)
		}
		s.ends = append(s.ends, s.buf.Len())
	}
	n, err := s.w.Write(s.buf.Bytes())
	if err != nil {
		if failed == nil {
			failed = map[int]error{}
		}
		for i, end := range s.ends {
			if end > n { // this line did not fully leave the process
				failed[i] = fmt.Errorf("write: %w", err)
			}
		}
	}
	if failed != nil {
		return &BatchError{Sink: s.name, Failed: failed}
	}
	return nil
}

// Close syncs and closes an owned file; stdout is left open.
func (s *JSONLines) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	syncErr := s.file.Sync()
	closeErr := s.file.Close()
	s.file = nil
	if syncErr != nil {
		return fmt.Errorf("sync %s: %w", s.name, syncErr)
	}
	if closeErr != nil {
		return fmt.Errorf("close %s: %w", s.name, closeErr)
	}
	return nil
}
