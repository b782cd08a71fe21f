package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// SessionReader is what the Cache reads through; *Store satisfies it.
type SessionReader interface {
	BySourceIdentity(ctx context.Context, sourceIdentity string) ([]Session, error)
	ByUser(ctx context.Context, rawUser string) ([]Session, error)
}

// Defaults for CacheConfig.
const (
	DefaultCacheCapacity    = 100_000
	DefaultCacheExpireAfter = 10 * time.Minute
)

// CacheConfig sizes the Cache. Zero fields take their defaults.
type CacheConfig struct {
	// Capacity is the most entries kept (least recently used go first).
	Capacity int
	// ExpireAfter drops entries this long after they were fetched, to free
	// memory; it must be at least the longest maxAge callers pass (the
	// Matcher's PositiveTTL), or entries vanish before they are used.
	//
	// golang-lru v2.0.7 runs a janitor goroutine for this that cannot be
	// stopped, so build one Cache per process, not per request.
	ExpireAfter time.Duration
}

// Validate reports a configuration the Cache cannot use.
func (c CacheConfig) Validate() error {
	var errs []error
	if c.Capacity < 0 {
		errs = append(errs, fmt.Errorf("capacity %d is negative", c.Capacity))
	}
	if c.ExpireAfter < 0 {
		errs = append(errs, fmt.Errorf("expire-after %v is negative", c.ExpireAfter))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sessions: cache config: %w", err)
	}
	return nil
}

func (c CacheConfig) withDefaults() CacheConfig {
	if c.Capacity == 0 {
		c.Capacity = DefaultCacheCapacity
	}
	if c.ExpireAfter == 0 {
		c.ExpireAfter = DefaultCacheExpireAfter
	}
	return c
}

// Entry is one cached answer: the sessions a read returned and when that
// read started (so its data is at least this fresh). Sessions is shared
// between callers: read it, never modify it.
type Entry struct {
	Sessions  []Session
	FetchedAt time.Time

	index *entryIndex // nil for an Entry built by hand: lookups then scan
	// view, when set, answers instead of Sessions (which is then nil): an
	// Entry of the replica (replicaReader), which never leaves the package.
	view entryView
}

// entryView answers the Matcher's questions of an Entry from elsewhere than
// a slice of Sessions, each in a new slice.
type entryView interface {
	all() []Session
	withSourceIdentity(si string) []Session
	covering(at time.Time, skew time.Duration) []Session
}

// CacheStats counts Cache reads since it was built.
// Lookups = Hits + Misses; a miss either made a query or, when Coalesced,
// shared one already in flight for the same key.
type CacheStats struct {
	Lookups   uint64
	Hits      uint64
	Misses    uint64
	Coalesced uint64
	Queries   uint64 // reads of the underlying store
	Errors    uint64 // lookups that returned an error
}

// Cache is a read-through cache over a SessionReader. Each read names the
// oldest answer it accepts (maxAge), so one cache serves both the long TTL
// of positive answers and the short TTL of negative ones. Concurrent misses
// for one key make one query. Errors are never cached.
type Cache struct {
	reader  SessionReader
	entries *expirable.LRU[cacheKey, Entry]
	flights singleflight.Group
	now     func() time.Time

	lookups, hits, misses, coalesced, queries, errs atomic.Uint64
}

type cacheKind byte

const (
	kindSourceIdentity cacheKind = 's'
	kindUser           cacheKind = 'u'
)

type cacheKey struct {
	kind  cacheKind
	value string
}

// NewCache returns a Cache over reader.
func NewCache(reader SessionReader, cfg CacheConfig) (*Cache, error) {
	if reader == nil {
		return nil, errors.New("sessions: cache: nil reader")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Cache{
		reader:  reader,
		entries: expirable.NewLRU[cacheKey, Entry](cfg.Capacity, nil, cfg.ExpireAfter),
		now:     time.Now,
	}, nil
}

// BySourceIdentity returns the sessions recorded with this SourceIdentity,
// from an entry younger than maxAge or else from the store. maxAge <= 0
// always queries.
func (c *Cache) BySourceIdentity(ctx context.Context, sourceIdentity string, maxAge time.Duration) (Entry, error) {
	return c.get(ctx, cacheKey{kindSourceIdentity, sourceIdentity}, maxAge)
}

// ByUser returns the sessions of the raw user name, from an entry younger
// than maxAge or else from the store. maxAge <= 0 always queries.
func (c *Cache) ByUser(ctx context.Context, rawUser string, maxAge time.Duration) (Entry, error) {
	return c.get(ctx, cacheKey{kindUser, rawUser}, maxAge)
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() CacheStats {
	return CacheStats{
		Lookups:   c.lookups.Load(),
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Coalesced: c.coalesced.Load(),
		Queries:   c.queries.Load(),
		Errors:    c.errs.Load(),
	}
}

func (c *Cache) get(ctx context.Context, key cacheKey, maxAge time.Duration) (Entry, error) {
	c.lookups.Add(1)
	if e, ok := c.entries.Get(key); ok && c.now().Sub(e.FetchedAt) < maxAge {
		c.hits.Add(1)
		return e, nil
	}
	c.misses.Add(1)
	e, shared, err := joinFlight(ctx, &c.flights, string(key.kind)+":"+key.value,
		func(ctx context.Context) (Entry, error) { return c.query(ctx, key) })
	if shared {
		c.coalesced.Add(1)
	}
	if err != nil {
		c.errs.Add(1)
		return Entry{}, err
	}
	return e, nil
}

func (c *Cache) query(ctx context.Context, key cacheKey) (Entry, error) {
	c.queries.Add(1)
	started := c.now()
	var (
		found []Session
		err   error
	)
	switch key.kind {
	case kindSourceIdentity:
		found, err = c.reader.BySourceIdentity(ctx, key.value)
	case kindUser:
		found, err = c.reader.ByUser(ctx, key.value)
	}
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Sessions: found, FetchedAt: started}
	if key.kind == kindUser {
		// Only user lists are searched (by SourceIdentity and by time);
		// an exact answer is used whole.
		e = newEntry(found, started)
	}
	c.entries.Add(key, e)
	return e, nil
}
