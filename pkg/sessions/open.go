package sessions

// Config wires a Store, its Cache, the user Directory and the Matcher.
// Zero fields take their defaults; Store.Table is required.
type Config struct {
	Store     StoreConfig
	Cache     CacheConfig
	Directory DirectoryConfig
	Matcher   MatcherConfig
}

// Finder is the wired session lookup: Lookup comes from the Matcher; the
// Cache and Directory are exposed for their metrics.
type Finder struct {
	*Matcher
	Cache     *Cache
	Directory *Directory
}

// Open builds the session lookup the classifier uses: a Matcher over a
// cached Store, with a Directory of raw user names. Build one per process:
// the cache runs a janitor goroutine.
func Open(client DynamoDBAPI, cfg Config) (*Finder, error) {
	store, err := NewStore(client, cfg.Store)
	if err != nil {
		return nil, err
	}
	// Entries must outlive the longest age the Matcher accepts.
	if cfg.Matcher.PositiveTTL > cfg.Cache.ExpireAfter && (cfg.Cache.ExpireAfter != 0 || cfg.Matcher.PositiveTTL > DefaultCacheExpireAfter) {
		cfg.Cache.ExpireAfter = cfg.Matcher.PositiveTTL
	}
	cache, err := NewCache(store, cfg.Cache)
	if err != nil {
		return nil, err
	}
	dir, err := NewDirectory(store, cfg.Directory)
	if err != nil {
		return nil, err
	}
	m, err := NewMatcher(cache, dir, cfg.Matcher)
	if err != nil {
		return nil, err
	}
	return &Finder{Matcher: m, Cache: cache, Directory: dir}, nil
}
