package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// JSONLines writes findings one per line, in the native format unless
// built with another. Each Write hands the whole batch to the OS in one
// call, so a finding counts as accepted once it has left the process's
// buffers; on a short write the lines that made it out are accepted and the
// rest reported failed. A file sink also syncs to disk on its flush
// interval, before rotating, and on Close.
type JSONLines struct {
	name   string
	format Format
	render RenderConfig

	mu   sync.Mutex
	w    io.Writer
	file *os.File // set when the sink owns a file: synced and closed by Close
	path string
	cfg  FileConfig
	size int64 // bytes in the current file
	now  func() time.Time
	buf  bytes.Buffer
	ends []int

	dirty     bool // written since the last sync
	stopSync  chan struct{}
	syncDone  chan struct{}
	syncErr   error
	closeOnce sync.Once
}

// FileConfig sets the file sink's durability and rotation.
type FileConfig struct {
	// SyncInterval is how often written lines are synced to disk; default
	// 1s. Close always syncs.
	SyncInterval time.Duration
	// MaxBytes rotates the file before a write would take it past this
	// size: it is renamed PATH.<UTC time> and a new PATH is started.
	// 0 never rotates.
	MaxBytes int64
	// MaxBackups is how many rotated files are kept (oldest removed
	// first); 0 keeps all.
	MaxBackups int
}

// NewStdout writes to standard output.
func NewStdout() *JSONLines { return NewWriter("stdout", os.Stdout) }

// NewWriter writes native JSON lines to w (tests, pipes).
func NewWriter(name string, w io.Writer) *JSONLines {
	return &JSONLines{name: name, w: w, format: FormatNative, now: time.Now}
}

// OpenFile appends native JSON lines to path, creating it with mode 0600
// (findings name principals and keys).
func OpenFile(path string) (*JSONLines, error) {
	return openFile(path, FileConfig{}, FormatNative, RenderConfig{})
}

func openFile(path string, cfg FileConfig, format Format, rc RenderConfig) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open file sink: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open file sink: %w", err)
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	s := &JSONLines{
		name: "file:" + path, format: format, render: rc, w: f, file: f, path: path, cfg: cfg,
		size: st.Size(), now: time.Now, stopSync: make(chan struct{}), syncDone: make(chan struct{}),
	}
	go s.syncLoop()
	return s, nil
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
	if s.w == nil {
		return failAll(s.name, len(findings), ErrClosed)
	}
	s.buf.Reset()
	s.ends = s.ends[:0]
	var failed map[int]error
	fail := func(i int, err error) {
		if failed == nil {
			failed = map[int]error{}
		}
		failed[i] = err
	}
	for i := range findings {
		line, err := Render(&findings[i], s.format, s.render)
		if err != nil {
			fail(i, err)
		} else {
			s.buf.Write(line)
			s.buf.WriteByte('\n')
		}
		s.ends = append(s.ends, s.buf.Len())
	}
	if s.file != nil && s.cfg.MaxBytes > 0 && s.size > 0 && s.size+int64(s.buf.Len()) > s.cfg.MaxBytes {
		// A rotation that failed but left the file open (the rename,
		// say) lets the file grow past MaxBytes rather than hold back
		// findings; it is tried again on the next write.
		if err := s.rotate(); err != nil && s.w == nil {
			return failAll(s.name, len(findings), err)
		}
	}
	n, err := s.w.Write(s.buf.Bytes())
	s.size += int64(n)
	s.dirty = s.dirty || n > 0
	if err != nil {
		for i, end := range s.ends {
			if end > n && failed[i] == nil { // this line did not fully leave the process
				fail(i, fmt.Errorf("write: %w", err))
			}
		}
	}
	if failed != nil {
		return &BatchError{Sink: s.name, Failed: failed}
	}
	return nil
}

// rotate syncs and renames the current file and opens a new one. Called
// with mu held.
func (s *JSONLines) rotate() error {
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("sync before rotation: %w", err)
	}
	// Rename while the file is still open (its descriptor follows it), so
	// that a failed rename leaves the sink writing where it was.
	at := s.now().UTC()
	rotated := s.path + "." + at.Format("20060102T150405.000000000Z")
	for _, err := os.Lstat(rotated); err == nil; _, err = os.Lstat(rotated) { // never overwrite a backup
		at = at.Add(time.Nanosecond)
		rotated = s.path + "." + at.Format("20060102T150405.000000000Z")
	}
	if err := os.Rename(s.path, rotated); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	if err := s.file.Close(); err != nil {
		s.w, s.file = nil, nil
		return fmt.Errorf("close after rotation: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		s.w, s.file = nil, nil
		return fmt.Errorf("reopen after rotation: %w", err)
	}
	s.w, s.file, s.size, s.dirty = f, f, 0, false
	if s.cfg.MaxBackups > 0 {
		s.pruneBackups()
	}
	return nil
}

func (s *JSONLines) pruneBackups() {
	matches, err := filepath.Glob(s.path + ".*")
	if err != nil {
		return
	}
	var backups []string
	for _, m := range matches {
		if len(m) == len(s.path)+1+len("20060102T150405.000000000Z") && strings.HasSuffix(m, "Z") {
			backups = append(backups, m)
		}
	}
	sort.Strings(backups) // the time stamp sorts oldest first
	for len(backups) > s.cfg.MaxBackups {
		_ = os.Remove(backups[0])
		backups = backups[1:]
	}
}

func (s *JSONLines) syncLoop() {
	defer close(s.syncDone)
	tick := time.NewTicker(s.cfg.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.mu.Lock()
			if s.file != nil && s.dirty {
				if err := s.file.Sync(); err != nil {
					s.syncErr = errors.Join(s.syncErr, err)
				}
				s.dirty = false
			}
			s.mu.Unlock()
		case <-s.stopSync:
			return
		}
	}
}

// Close syncs and closes an owned file; stdout is left open.
func (s *JSONLines) Close(context.Context) error {
	if s.stopSync == nil { // not a file: nothing to sync or close
		return nil
	}
	var err error
	s.closeOnce.Do(func() {
		if s.stopSync != nil {
			close(s.stopSync)
			<-s.syncDone
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.file == nil {
			return
		}
		syncErr := s.file.Sync()
		closeErr := s.file.Close()
		s.file, s.w = nil, nil
		switch {
		case syncErr != nil:
			err = fmt.Errorf("sync %s: %w", s.name, syncErr)
		case closeErr != nil:
			err = fmt.Errorf("close %s: %w", s.name, closeErr)
		case s.syncErr != nil:
			err = fmt.Errorf("sync %s: %w", s.name, s.syncErr)
		}
	})
	return err
}
