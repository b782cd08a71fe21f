package sessions_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// The property (issue 12): on generated session histories written to the
// table by concurrent writers while a Replica re-scans it, the verdict the
// streamer gets through the ReplicaFinder once the answer is final (or from
// its Query fallback) equals the verdict of the Query path (a Matcher over
// the Store) read after every write has completed.
//
// The histories are generated per user ("stories": users never share a
// session, so one user's writes cannot change another user's verdicts) and
// are well-behaved the way the replica's contract requires: a write that
// changes an event's verdict completes before the event is final (its time
// plus the clock skew; plus the orphan grace for the orphan re-check), as
// when the broker stamps updated_at when it writes and records a session
// when it issues it. Revocations, expiries and updates may come at any time
// (stamped when written, they cannot change the verdict of an earlier
// event); a create or a delete must complete before its deadline, and a
// story whose writer missed one (an overloaded machine) is left out and
// counted. Events are received once they are at least the skew old, and an
// orphaned one is re-checked after the orphan grace, as the streamer holds
// it: so an answer the ReplicaFinder takes from its fallback (the Query
// path, read then) is held to the same verdict too.

const (
	propSkew  = time.Second // the clock skew (MatcherConfig, classify)
	propGrace = time.Second // the orphan grace
	// propGuard is the least time between a write's issue and its deadline.
	propGuard = 400 * time.Millisecond
)

type propOpKind string

const (
	propCreate propOpKind = "create"
	propUpdate propOpKind = "update"
	propRevoke propOpKind = "revoke"
	propExpire propOpKind = "expire"
	propDelete propOpKind = "delete"
)

// propOp is one write of a story, issued at wall time at.
type propOp struct {
	kind     propOpKind
	at       time.Time
	id       string
	create   sessions.Session // propCreate: the session, stamped when written
	deadline time.Time        // zero: none; else the write must complete before it
	// done is when the write completed (set by the writer).
	done time.Time
}

// propEvent is one AssumeRole call of a story's user, asked of the finder
// at wall time ask.
type propEvent struct {
	id             string
	sourceIdentity string
	at             time.Time
	ask            time.Time
}

type propStory struct {
	user    string // sanitised
	initial []sessions.Session
	ops     []propOp
	events  []propEvent
}

// edge returns an offset near one of the edges the matcher and the
// classifier compare at: the clock skew either side, the event itself, or
// far away.
func edge(rng *rand.Rand) time.Duration {
	const ms = time.Millisecond
	edges := []time.Duration{-propSkew - ms, -propSkew + ms, -ms, ms, propSkew - ms, propSkew + ms, -time.Hour, time.Hour}
	return edges[rng.IntN(len(edges))]
}

func hex8(rng *rand.Rand) string { return fmt.Sprintf("%08x", rng.Uint32()) }

// generateStories returns the stories of one seed, with every event at a
// whole second (as CloudTrail records it) from base on, base at least
// 2 s after start (the writers' start) so that a create can be written
// before its session starts.
func generateStories(seed uint64, start time.Time) []propStory {
	rng := rand.New(rand.NewPCG(seed, seed^0x5e55))
	base := start.Truncate(time.Second).Add(3 * time.Second)
	// Raw names per sanitised user: Sentinel stores the raw name, the
	// SourceIdentity carries the sanitised one.
	users := [][]string{
		{"alice"}, {"bob", "bob"}, {"alice.smith@corp", "alicesmithcorp"}, {"carol"},
		{"Dave.O", "DaveO"}, {"erin"}, {"frank"}, {"gina"},
	}
	var stories []propStory
	n := 0
	for ui, raw := range users {
		st := propStory{user: sessions.SanitizeUser(raw[0])}
		si := func() string { return "sentinel:" + st.user + ":direct:" + hex8(rng) }
		var times []time.Time
		for _, k := range rng.Perm(3)[:1+rng.IntN(3)] {
			times = append(times, base.Add(time.Duration(k)*time.Second))
		}
		slices.SortFunc(times, time.Time.Compare)
		first := times[0]
		pick := func() time.Time { return times[rng.IntN(len(times))] }
		newID := func() string { n++; return fmt.Sprintf("p%d-%d", seed, n) }
		sess := func(started, expires time.Time, sourceIdentity string) sessions.Session {
			return sessions.Session{
				ID: newID(), User: raw[rng.IntN(len(raw))], Profile: "prod", Status: sessions.StatusActive,
				SourceIdentity: sourceIdentity, StartedAt: started, ExpiresAt: expires,
				CreatedAt: started, UpdatedAt: started.Add(time.Millisecond), LastAccessAt: started,
				TTL: expires.Add(time.Hour).Unix(),
			}
		}
		var sis []string // SourceIdentities events may carry

		if ui == len(users)-1 {
			// A session written after its event, within the orphan grace:
			// the first answer is orphaned, the re-check finds it.
			ev := propEvent{id: newID(), sourceIdentity: si(), at: first}
			s := sess(first.Add(-time.Duration(rng.IntN(900))*time.Millisecond), first.Add(time.Hour), ev.sourceIdentity)
			deadline := ev.at.Add(propSkew + propGrace)
			st.ops = append(st.ops, propOp{kind: propCreate, id: s.ID, create: s, deadline: deadline,
				at: ev.at.Add(propSkew).Add(time.Duration(rng.Int64N(int64(propGrace - propGuard))))})
			ev.ask = ev.at.Add(propSkew + time.Duration(rng.Int64N(int64(500*time.Millisecond))))
			st.events = append(st.events, ev)
			stories = append(stories, st)
			continue
		}

		// Sessions in the table from the start, times at the edges.
		for range rng.IntN(4) {
			started, expires := pick().Add(edge(rng)), pick().Add(edge(rng))
			if expires.Before(started) {
				started, expires = expires, started
			}
			id := ""
			switch r := rng.IntN(6); {
			case r == 0:
				// no SourceIdentity: found by user and time only
			case r == 1 && len(sis) > 0:
				id = sis[rng.IntN(len(sis))] // shared with another session
			default:
				id = si()
			}
			s := sess(started, expires, id)
			if rng.IntN(3) == 0 {
				s.Status, s.UpdatedAt, s.RevokedBy = sessions.StatusRevoked, pick().Add(edge(rng)), "secops"
			}
			if rng.IntN(8) == 0 {
				s.CreatedAt = time.Time{} // not in gsi-user
			}
			st.initial = append(st.initial, s)
			if id != "" {
				sis = append(sis, id)
			}
		}

		// Writes while the replica runs, around the events' times.
		existing := func() string {
			if len(st.initial) == 0 {
				return ""
			}
			return st.initial[rng.IntN(len(st.initial))].ID
		}
		deleted := map[string]bool{}
		for range rng.IntN(4) {
			t := pick()
			switch kind := []propOpKind{propCreate, propCreate, propUpdate, propRevoke, propRevoke, propExpire, propDelete}[rng.IntN(7)]; kind {
			case propCreate:
				sourceIdentity := si()
				s := sess(t.Add(propSkew+edge(rng)%(2*propSkew)), t.Add(time.Hour), sourceIdentity)
				if rng.IntN(3) == 0 {
					s.ExpiresAt = t.Add(edge(rng))
					if s.ExpiresAt.Before(s.StartedAt) {
						s.ExpiresAt = s.StartedAt.Add(time.Second)
					}
				}
				// Complete before the session starts, and before any event
				// carrying its SourceIdentity is final.
				deadline := s.StartedAt
				ev := propEvent{id: newID(), sourceIdentity: sourceIdentity, at: t}
				if d := ev.at.Add(propSkew); d.Before(deadline) {
					deadline = d
				}
				st.ops = append(st.ops, propOp{kind: kind, id: s.ID, create: s, deadline: deadline,
					at: deadline.Add(-propGuard - time.Duration(rng.IntN(300))*time.Millisecond)})
				st.events = append(st.events, ev)
			case propDelete:
				id := existing()
				if id == "" || deleted[id] {
					continue
				}
				deleted[id] = true
				// Before the first event of the user is final.
				deadline := first.Add(propSkew)
				at := t.Add([]time.Duration{-200 * time.Millisecond, 200 * time.Millisecond}[rng.IntN(2)])
				if latest := deadline.Add(-propGuard); at.After(latest) {
					at = latest
				}
				st.ops = append(st.ops, propOp{kind: kind, id: id, at: at, deadline: deadline})
			default:
				id := existing()
				if id == "" {
					continue
				}
				offsets := []time.Duration{-propSkew - 300*time.Millisecond, -propSkew + 300*time.Millisecond, -200 * time.Millisecond, 200 * time.Millisecond}
				st.ops = append(st.ops, propOp{kind: kind, id: id, at: t.Add(offsets[rng.IntN(len(offsets))])})
			}
		}
		slices.SortStableFunc(st.ops, func(a, b propOp) int { return a.at.Compare(b.at) })

		// Events: each time, with a known SourceIdentity or a new one
		// (matched by user and time).
		for _, t := range times {
			sourceIdentity := si()
			if len(sis) > 0 && rng.IntN(2) == 0 {
				sourceIdentity = sis[rng.IntN(len(sis))]
			}
			st.events = append(st.events, propEvent{id: newID(), sourceIdentity: sourceIdentity, at: t})
		}
		for i := range st.events {
			st.events[i].ask = st.events[i].at.Add(propSkew + time.Duration(rng.Int64N(int64(500*time.Millisecond))))
		}
		stories = append(stories, st)
	}
	return stories
}

// run executes the story's writes in order, each at its time, from the
// story's own model of its sessions, and records when each completed.
func (st *propStory) run(ctx context.Context, client *dynamodb.Client, table string) error {
	model := map[string]sessions.Session{}
	for _, s := range st.initial {
		model[s.ID] = s
	}
	for i := range st.ops {
		op := &st.ops[i]
		if d := time.Until(op.at); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		now := time.Now().UTC()
		s, ok := model[op.id]
		switch op.kind {
		case propCreate:
			s, ok = op.create, true
			s.CreatedAt, s.UpdatedAt = now, now
		case propUpdate:
			ok = ok && s.Status == sessions.StatusActive
			s.Profile, s.LastAccessAt, s.UpdatedAt = "prod-updated", now, now
		case propRevoke:
			ok = ok && s.Status == sessions.StatusActive
			s.Status, s.UpdatedAt, s.RevokedBy, s.RevokedReason = sessions.StatusRevoked, now, "secops", "property test"
		case propExpire:
			ok = ok && s.Status == sessions.StatusActive && s.ExpiresAt.After(now)
			s.ExpiresAt, s.UpdatedAt = now, now
		case propDelete:
			if !ok {
				continue
			}
			if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
				Key: map[string]types.AttributeValue{sessions.AttrID: &types.AttributeValueMemberS{Value: op.id}}}); err != nil {
				return fmt.Errorf("delete %s: %w", op.id, err)
			}
			delete(model, op.id)
			op.done = time.Now()
			continue
		}
		if !ok {
			continue // nothing to do to this session any more
		}
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: sessions.MarshalItem(s)}); err != nil {
			return fmt.Errorf("%s %s: %w", op.kind, op.id, err)
		}
		model[s.ID] = s
		op.done = time.Now()
	}
	return nil
}

// late returns the writes that completed after their deadline.
func (st *propStory) late() []string {
	var out []string
	for _, op := range st.ops {
		if !op.deadline.IsZero() && !op.done.IsZero() && !op.done.Before(op.deadline) {
			out = append(out, fmt.Sprintf("%s %s %v late", op.kind, op.id, op.done.Sub(op.deadline)))
		}
	}
	return out
}

// describe prints the story relative to ev's time: the history that can
// change ev's verdict (no other story's writes can).
func (st *propStory) describe(ev propEvent) string {
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "T" + fmt.Sprintf("%+v", t.Sub(ev.at))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "event %s: user %s, SourceIdentity %s, T=%s, asked at %s\n", ev.id, st.user, ev.sourceIdentity, ev.at.Format(time.RFC3339), rel(ev.ask))
	for _, s := range st.initial {
		fmt.Fprintf(&b, "  initial %s user=%q si=%q status=%s started=%s expires=%s updated=%s created=%v\n",
			s.ID, s.User, s.SourceIdentity, s.Status, rel(s.StartedAt), rel(s.ExpiresAt), rel(s.UpdatedAt), !s.CreatedAt.IsZero())
	}
	for _, op := range st.ops {
		fmt.Fprintf(&b, "  %s %s issued %s done %s", op.kind, op.id, rel(op.at), rel(op.done))
		if op.kind == propCreate {
			s := op.create
			fmt.Fprintf(&b, " (user=%q si=%q started=%s expires=%s)", s.User, s.SourceIdentity, rel(s.StartedAt), rel(s.ExpiresAt))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// waitingFinder asks the ReplicaFinder again after each NotFinalError's
// RetryAfter, as the streamer holds the event: its answer is the final one
// (or the fallback's).
type waitingFinder struct{ f *sessions.ReplicaFinder }

func (w waitingFinder) Lookup(ctx context.Context, q sessions.Query) (sessions.Result, error) {
	for {
		r, err := w.f.Lookup(ctx, q)
		var nf *sessions.NotFinalError
		if !errors.As(err, &nf) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return sessions.Result{}, ctx.Err()
		case <-time.After(nf.RetryAfter):
		}
	}
}

// verdict classifies ev as the streamer does: the first answer, and for an
// orphaned one the re-check (a fresh read), held, when hold, until the
// orphan grace has passed since ev was received.
func verdict(ctx context.Context, c *classify.Classifier, ev propEvent, hold bool) (classify.Verdict, error) {
	e := &cloudtrail.Event{ID: ev.id, Name: "AssumeRole", Time: ev.at, SourceIdentity: ev.sourceIdentity,
		SourceIdentityOrigin: cloudtrail.OriginResponse, RequestID: ev.id}
	r, err := c.Classify(ctx, e)
	if err == nil && r.Verdict == classify.Orphaned {
		if hold {
			time.Sleep(time.Until(ev.ask.Add(propGrace)))
		}
		r, err = c.Recheck(ctx, e)
	}
	return r.Verdict, err
}

func TestIntegrationReplicaPropertySameVerdictAsQueryPath(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			testReplicaProperty(t, seed)
		})
	}
}

func testReplicaProperty(t *testing.T, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now().Add(200 * time.Millisecond)
	stories := generateStories(seed, start)
	var initial []sessions.Session
	for _, st := range stories {
		initial = append(initial, st.initial...)
	}
	f := newFixture(t, initial...)
	storeCfg := sessions.StoreConfig{Table: f.table}
	matcherCfg := sessions.MatcherConfig{ClockSkew: propSkew}
	r := newReplica(t, f.client, sessions.ReplicaConfig{Store: storeCfg, Refresh: 50 * time.Millisecond, ScanSegments: 2})
	if err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	runReplica(t, r)
	fallback := newStack(t, f.client, storeCfg, matcherCfg)
	finder, err := sessions.NewReplicaFinder(r, fallback.matcher,
		sessions.ReplicaFinderConfig{Matcher: matcherCfg, OrphanGrace: propGrace, MaxWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	viaReplica, err := classify.New(waitingFinder{finder}, classify.Config{ClockSkew: propSkew})
	if err != nil {
		t.Fatal(err)
	}

	// Writers (one a story) and the streamer's lookups (one an event), all
	// at once.
	type answer struct {
		v   classify.Verdict
		err error
	}
	got := make([][]answer, len(stories))
	var wg sync.WaitGroup
	for i := range stories {
		st := &stories[i]
		got[i] = make([]answer, len(st.events))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.run(ctx, f.client, f.table); err != nil {
				t.Errorf("seed %d: writer of %s: %v", seed, st.user, err)
			}
		}()
		for j, ev := range st.events {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Until(ev.ask))
				v, err := verdict(ctx, viaReplica, ev, true)
				got[i][j] = answer{v, err}
			}()
		}
	}
	wg.Wait()

	// The Query path, read after every write: a new stack, nothing cached.
	after := newStack(t, f.client, storeCfg, matcherCfg)
	viaQuery, err := classify.New(after.matcher, classify.Config{ClockSkew: propSkew})
	if err != nil {
		t.Fatal(err)
	}
	events, skipped := 0, 0
	verdicts := map[classify.Verdict]int{}
	for i, st := range stories {
		if late := st.late(); len(late) > 0 {
			skipped++
			t.Logf("seed %d: story of %s left out, a write missed its deadline: %v", seed, st.user, late)
			continue
		}
		for j, ev := range st.events {
			events++
			want, err := verdict(ctx, viaQuery, ev, false)
			if err != nil {
				t.Fatal(err)
			}
			verdicts[want]++
			if g := got[i][j]; g.err != nil || g.v != want {
				t.Errorf("seed %d: through the replica %q (%v), the Query path after the writes %q; the history:\n%s",
					seed, g.v, g.err, want, st.describe(ev))
			}
		}
	}
	fs := finder.Stats()
	t.Logf("seed %d: %d events in %d stories (%d left out), verdicts %v; finder %+v; replica %+v", seed, events, len(stories), skipped, verdicts, fs, r.Stats())
	// The property says nothing unless the replica answered and events
	// waited for it. (Fallbacks are answers too: the replica falls back
	// when its refreshes run late, as on a loaded machine.)
	if skipped > len(stories)/4 {
		t.Errorf("seed %d: %d of %d stories left out: the writers ran too late to test anything", seed, skipped, len(stories))
	}
	if fs.FromReplica == 0 || fs.NotFinal == 0 {
		t.Errorf("seed %d: finder %+v: want answers from the replica and waits for it", seed, fs)
	}
}
