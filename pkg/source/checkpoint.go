package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// CheckpointVersion is the version of the checkpoint file format.
const CheckpointVersion = 1

// ErrCheckpointMismatch: the checkpoint belongs to a run of another source.
var ErrCheckpointMismatch = errors.New("checkpoint is for another run")

// Checkpoint records the progress of a run in a file, rewritten atomically
// (a temporary file renamed over it) each time a unit of progress
// completes: per LookupEvents stream (account, region, event name) the
// oldest event time of the last finished page; for an archive or a folder,
// the keys done. A rerun with the same file resumes the run's window where
// it stopped; a finished run's checkpoint starts a new run.
type Checkpoint struct {
	path    string
	writeMu sync.Mutex // one write at a time, so renames land in order

	mu      sync.Mutex
	state   checkpointState
	version uint64 // bumped by every change
	written uint64 // last version on disk
	err     error  // last write error
	changed chan struct{}
	resumed bool
}

type checkpointState struct {
	Version  int                        `json:"version"`
	Source   string                     `json:"source"`
	Scope    string                     `json:"scope,omitempty"`
	Since    time.Time                  `json:"since"`
	Until    time.Time                  `json:"until"`
	Complete bool                       `json:"complete"`
	Updated  time.Time                  `json:"updated"`
	Lookups  map[string]*LookupPosition `json:"lookups,omitempty"`
	Keys     *KeyPosition               `json:"keys,omitempty"`
}

// LookupPosition is how far one LookupEvents stream got. Pages come newest
// first, so what is left is [since, Oldest], less the events at Oldest that
// were already read.
type LookupPosition struct {
	Oldest      time.Time `json:"oldest,omitzero"`
	IDsAtOldest []string  `json:"ids_at_oldest,omitempty"`
	Pages       int64     `json:"pages"`
	Events      int64     `json:"events"`
	Done        bool      `json:"done"`
}

// KeyPosition is the keys done, in listing order: every key up to and
// including Through, and Done past it.
type KeyPosition struct {
	Through string   `json:"done_through,omitempty"`
	Done    []string `json:"done,omitempty"`
}

// OpenCheckpoint reads the checkpoint at path. When it holds an unfinished
// run of the same source and scope, that run's window is resumed (Window
// returns it); otherwise a new run of [since, until) starts. scope names
// what else decides which events a run reads and classifies (regions,
// accounts, event names, filters, …): resuming under another scope would
// skip what the first run left out. A checkpoint of another source, or an
// unfinished one of another scope, is an error: pass another path.
func OpenCheckpoint(path, source, scope string, since, until time.Time) (*Checkpoint, error) {
	c := &Checkpoint{path: path, changed: make(chan struct{}, 1)}
	c.state = checkpointState{Version: CheckpointVersion, Source: source, Scope: scope, Since: since.UTC(), Until: until.UTC()}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var old checkpointState
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if old.Version != CheckpointVersion {
		return nil, fmt.Errorf("checkpoint %s: version %d, want %d", path, old.Version, CheckpointVersion)
	}
	if old.Source != source {
		return nil, fmt.Errorf("%w: %s holds a run of %q, not %q", ErrCheckpointMismatch, path, old.Source, source)
	}
	if old.Complete {
		return c, nil
	}
	if old.Scope != scope {
		return nil, fmt.Errorf("%w: %s holds an unfinished run with %q, not %q (rerun with its flags, or remove the file)", ErrCheckpointMismatch, path, old.Scope, scope)
	}
	// A window that cannot be right (a hand-edited or damaged file) would
	// resume into reading nothing and report success: refuse it.
	if old.Since.IsZero() || !old.Since.Before(old.Until) {
		return nil, fmt.Errorf("checkpoint %s: window %v to %v is empty or unset; remove the file to start again", path, old.Since, old.Until)
	}
	c.state, c.resumed = old, true
	return c, nil
}

// Resumed reports whether an unfinished run is being resumed.
func (c *Checkpoint) Resumed() bool { return c != nil && c.resumed }

// Window is the run's window: the resumed run's, or the one asked for.
func (c *Checkpoint) Window() (since, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Since, c.state.Until
}

// Lookup returns the position of a LookupEvents stream (zero when new).
func (c *Checkpoint) Lookup(stream string) LookupPosition {
	if c == nil {
		return LookupPosition{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.state.Lookups[stream]; p != nil {
		out := *p
		out.IDsAtOldest = slices.Clone(p.IDsAtOldest)
		return out
	}
	return LookupPosition{}
}

// SetLookup records the position of a LookupEvents stream and returns the
// change's version (see Persist).
func (c *Checkpoint) SetLookup(stream string, p LookupPosition) uint64 {
	if c == nil {
		return 0
	}
	return c.update(func(s *checkpointState) {
		if s.Lookups == nil {
			s.Lookups = map[string]*LookupPosition{}
		}
		s.Lookups[stream] = &p
	})
}

// Keys returns the keys done (nil when none).
func (c *Checkpoint) Keys() (through string, done map[string]bool) {
	if c == nil {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Keys == nil {
		return "", nil
	}
	done = map[string]bool{}
	for _, k := range c.state.Keys.Done {
		done[k] = true
	}
	return c.state.Keys.Through, done
}

// SetKeys records the keys done.
func (c *Checkpoint) SetKeys(through string, done []string) uint64 {
	if c == nil {
		return 0
	}
	done = slices.Clone(done)
	slices.Sort(done)
	return c.update(func(s *checkpointState) {
		if s.Keys == nil {
			s.Keys = &KeyPosition{}
		}
		if through != "" {
			s.Keys.Through = through
		}
		s.Keys.Done = done
	})
}

// Complete marks the run finished and writes it at once.
func (c *Checkpoint) Complete() error {
	if c == nil {
		return nil
	}
	c.update(func(s *checkpointState) { s.Complete = true })
	return c.Flush()
}

func (c *Checkpoint) update(f func(*checkpointState)) uint64 {
	c.mu.Lock()
	f(&c.state)
	c.version++
	v := c.version
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return v
}

// Run writes the checkpoint each time it changes, coalescing changes made
// during a write, until ctx ends; then it writes what is left.
func (c *Checkpoint) Run(ctx context.Context) error {
	if c == nil {
		return nil
	}
	for {
		select {
		case <-c.changed:
			if err := c.Flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return c.Flush()
		}
	}
}

// Flush writes the current state if it changed since the last write.
func (c *Checkpoint) Flush() error {
	if c == nil {
		return nil
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	v := c.version
	if v == c.written && c.err == nil {
		c.mu.Unlock()
		return nil
	}
	c.state.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(c.state, "", "  ")
	c.mu.Unlock()
	if err == nil {
		err = writeAtomic(c.path, append(b, '\n'))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	if err == nil && v > c.written {
		c.written = v
	}
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// Persist returns once version v of the state (see SetLookup) is on disk,
// writing it unless a write already did.
func (c *Checkpoint) Persist(v uint64) error {
	if c == nil || v == 0 {
		return nil
	}
	c.mu.Lock()
	done := c.written >= v
	c.mu.Unlock()
	if done {
		return nil
	}
	return c.Flush()
}

// writeAtomic replaces path with data: a temporary file in the same folder,
// synced, then renamed over it, so a reader (or a rerun after a kill) sees
// the old or the new content, never a mix.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
