package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// UserNameLister lists the raw user names in the session table; *Store
// satisfies it.
type UserNameLister interface {
	UserNames(ctx context.Context) ([]string, error)
}

// Defaults for DirectoryConfig.
const (
	DefaultDirectoryRefreshInterval    = 10 * time.Minute
	DefaultDirectoryMinRefreshInterval = 30 * time.Second
)

// DirectoryConfig sets how often the Directory re-reads user names. Zero
// fields take their defaults.
type DirectoryConfig struct {
	// RefreshInterval: a lookup finding the directory older than this
	// refreshes it first.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two reads of the user
	// names, however many lookups miss: each read scans the user index.
	MinRefreshInterval time.Duration
}

// Validate reports a configuration the Directory cannot use.
func (c DirectoryConfig) Validate() error {
	var errs []error
	if c.RefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("refresh interval %v is negative", c.RefreshInterval))
	}
	if c.MinRefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("minimum refresh interval %v is negative", c.MinRefreshInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sessions: directory config: %w", err)
	}
	return nil
}

func (c DirectoryConfig) withDefaults() DirectoryConfig {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultDirectoryRefreshInterval
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = DefaultDirectoryMinRefreshInterval
	}
	return c
}

// DirectoryStats counts Directory refreshes since it was built.
type DirectoryStats struct {
	Refreshes     uint64 // reads of the user names, failed or not
	RefreshErrors uint64
	RateLimited   uint64 // refreshes wanted but skipped for MinRefreshInterval
	Users         int    // sanitised names in the current directory
}

// Directory maps a sanitised user name (what a SourceIdentity carries) to
// the raw names stored in the table: "alicesmithcorp" -> "alice.smith@corp".
// It reads the names lazily, when a lookup finds it older than
// RefreshInterval or misses a name, at most once per MinRefreshInterval, and
// runs no goroutine of its own.
type Directory struct {
	lister  UserNameLister
	cfg     DirectoryConfig
	now     func() time.Time
	flights singleflight.Group

	mu          sync.RWMutex
	rawNames    map[string][]string // sanitised -> raw, sorted
	loadedAt    time.Time           // start of the last successful read
	attemptedAt time.Time           // start of the last read, failed or not
	lastErr     error               // of the last read; nil once one succeeds

	refreshes, refreshErrors, rateLimited atomic.Uint64
}

// NewDirectory returns an empty Directory over lister; the first lookup
// fills it.
func NewDirectory(lister UserNameLister, cfg DirectoryConfig) (*Directory, error) {
	if lister == nil {
		return nil, errors.New("sessions: directory: nil lister")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Directory{lister: lister, cfg: cfg.withDefaults(), now: time.Now}, nil
}

// RawNames returns the raw user names whose sanitised form is user, or none.
//
// A directory older than RefreshInterval, or one that lacks user, is
// refreshed first (rate-limited). If that refresh fails, names the old
// directory has are still returned; a name it lacks is an error, never
// "none", since the refresh that could have found it did not happen.
func (d *Directory) RawNames(ctx context.Context, user string) ([]string, error) {
	names, found, loadedAt := d.lookup(user)
	if found && d.now().Sub(loadedAt) < d.cfg.RefreshInterval {
		return names, nil
	}
	_, err := d.Refresh(ctx)
	if names, found, _ = d.lookup(user); found {
		return names, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raw names of %q: %w", user, err)
	}
	return nil, nil
}

// Refresh re-reads the user names unless the last read started less than
// MinRefreshInterval ago; it reports whether it loaded new ones. Concurrent calls
// share one read. While rate-limited after a failed read, it returns that
// failure again, so that no caller mistakes an unreadable table for a
// directory without the name.
func (d *Directory) Refresh(ctx context.Context) (refreshed bool, err error) {
	refreshed, _, err = joinFlight(ctx, &d.flights, "refresh", d.refresh)
	return refreshed, err
}

// Stats returns a snapshot of the counters.
func (d *Directory) Stats() DirectoryStats {
	d.mu.RLock()
	users := len(d.rawNames)
	d.mu.RUnlock()
	return DirectoryStats{
		Refreshes:     d.refreshes.Load(),
		RefreshErrors: d.refreshErrors.Load(),
		RateLimited:   d.rateLimited.Load(),
		Users:         users,
	}
}

func (d *Directory) lookup(user string) (names []string, found bool, loadedAt time.Time) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	names, found = d.rawNames[user]
	return names, found, d.loadedAt
}

func (d *Directory) refresh(ctx context.Context) (bool, error) {
	started := d.now()
	d.mu.Lock()
	if !d.attemptedAt.IsZero() && started.Sub(d.attemptedAt) < d.cfg.MinRefreshInterval {
		err := d.lastErr
		d.mu.Unlock()
		d.rateLimited.Add(1)
		return false, err
	}
	previousAttempt := d.attemptedAt
	d.attemptedAt = started
	d.mu.Unlock()

	d.refreshes.Add(1)
	raw, err := d.lister.UserNames(ctx)
	if err != nil {
		d.refreshErrors.Add(1)
		err = fmt.Errorf("sessions: refresh user directory: %w", err)
		d.mu.Lock()
		if ctx.Err() != nil {
			// The caller gave up: that says nothing about the table, so
			// neither rate-limit the next caller nor replay this error to it.
			d.attemptedAt = previousAttempt
		} else {
			d.lastErr = err
		}
		d.mu.Unlock()
		return false, err
	}
	byUser := make(map[string][]string, len(raw))
	for _, name := range raw {
		if s := SanitizeUser(name); s != "" && !slices.Contains(byUser[s], name) {
			byUser[s] = append(byUser[s], name)
		}
	}
	for _, names := range byUser {
		slices.Sort(names)
	}
	d.mu.Lock()
	d.rawNames, d.loadedAt, d.lastErr = byUser, started, nil
	d.mu.Unlock()
	return true, nil
}
