package corpus

import (
	"cmp"
	"slices"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// Corpus is a generated set of CloudTrail events with the session table that
// explains them.
type Corpus struct {
	// Config is the configuration the corpus was generated from, defaults
	// applied (Now, Retention and the rest as used).
	Config Config
	// Sessions is the session table, ordered by StartedAt.
	Sessions []sessions.Session
	// Events are the in-scope events, ordered by time (then ID).
	Events []Event
	// Ignored are the out-of-scope events (Expected ""), ordered by time.
	Ignored []Event
}

// Event is one CloudTrail record and what the classifier must make of it.
// The fields other than Record restate values found in the record, or
// describe how the generator built it; Record is the source of truth.
type Event struct {
	ID            string // eventID
	RequestID     string // requestID; empty for the console sign-in record
	SharedEventID string // sharedEventID, when the record has one
	Name          string // eventName
	Source        string // eventSource
	Region        string // awsRegion
	Account       string // recipientAccountId
	Time          time.Time
	ErrorCode     string
	// Expected is the verdict the classifier must give; "" for Ignored.
	Expected classify.Verdict
	// Case labels the scenario, "<verdict>/<kind>" (for example
	// "tracked/user-time-raw-name"), to make test failures readable.
	Case string
	// SourceIdentity is the value the classifier must read ("" if none),
	// and SourceIdentityOrigin the JSON path it comes from:
	// "responseElements.sourceIdentity", "requestParameters.sourceIdentity"
	// or "userIdentity.sessionContext.sourceIdentity".
	SourceIdentity       string
	SourceIdentityOrigin string
	// SessionID is the session the generator built the event around (for
	// tracked, revoked and expired events); other sessions may match too.
	SessionID string
	// Record is the bare CloudTrail record, compact JSON.
	Record []byte
}

// Generate builds the corpus cfg describes.
func Generate(cfg Config) (*Corpus, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := newGenerator(cfg)
	if err := g.run(); err != nil {
		return nil, err
	}
	c := &Corpus{Config: cfg, Events: g.events, Ignored: g.ignored}
	sortEvents(c.Events)
	sortEvents(c.Ignored)
	c.Sessions = make([]sessions.Session, len(g.sessions))
	for i, s := range g.sessions {
		c.Sessions[i] = *s
	}
	slices.SortStableFunc(c.Sessions, func(a, b sessions.Session) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	return c, nil
}

func sortEvents(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
}

// Expected maps the ID of every in-scope event to its expected verdict,
// tracked included (use Verdict.IsFinding to keep findings only). Ignored
// events are not in it. The two copies of a cross-account call have
// distinct IDs and the same verdict (and the same finding_id).
func (c *Corpus) Expected() map[string]classify.Verdict {
	m := make(map[string]classify.Verdict, len(c.Events))
	for _, ev := range c.Events {
		m[ev.ID] = ev.Expected
	}
	return m
}

// Counts returns the number of in-scope events per expected verdict.
func (c *Corpus) Counts() map[classify.Verdict]int {
	m := map[classify.Verdict]int{}
	for _, ev := range c.Events {
		m[ev.Expected]++
	}
	return m
}

// Findings returns the in-scope events expected to produce a finding.
func (c *Corpus) Findings() []Event {
	var out []Event
	for _, ev := range c.Events {
		if ev.Expected.IsFinding() {
			out = append(out, ev)
		}
	}
	return out
}

// All returns the in-scope and ignored events together, ordered by time:
// what a trail would deliver.
func (c *Corpus) All() []Event {
	all := slices.Concat(c.Events, c.Ignored)
	sortEvents(all)
	return all
}

// Span returns the oldest and newest event times (in-scope and ignored);
// both zero for an empty corpus. A backfill covering [oldest, newest] sees
// every event.
func (c *Corpus) Span() (oldest, newest time.Time) {
	for i, ev := range slices.Concat(c.Events, c.Ignored) {
		if i == 0 || ev.Time.Before(oldest) {
			oldest = ev.Time
		}
		if i == 0 || ev.Time.After(newest) {
			newest = ev.Time
		}
	}
	return oldest, newest
}
