package sessions

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// replicaState is the replica's table: every session held compactly, with
// the indexes the Matcher's two questions need (which sessions carry this
// SourceIdentity; which of this user's cover this time). It is not safe for
// concurrent use: the Replica guards it.
//
// Only what pkg/classify and pkg/sink read is kept: id, user, profile,
// status, source_identity, started_at, expires_at, updated_at, revoked_by,
// revoked_reason (and whether created_at is set, since an item without it
// is not in gsi-user). server_instance_id, last_access_at, created_at's
// value, ttl and Session.Malformed are left out.
type replicaState struct {
	recs  []replicaRec
	free  []int32 // slots of removed sessions, reused first
	byID  map[string]int32
	bySI  map[string]int32 // head of a chain through replicaRec.nextSI
	users map[string]*userSessions

	// rawBySan maps a sanitised user to the raw names seen under it, as the
	// Directory does; names are never dropped (a name without sessions
	// matches nothing).
	rawBySan map[string][]string

	strs   []string // interned user, profile and status values; strs[0] = ""
	strIdx map[string]uint32

	live     int
	keyBytes int64 // bytes of replicaRec.key strings, for the estimate

	// bulk defers sorting the user lists to finish (the initial load).
	bulk bool
}

// replicaRec is one session. Times are Unix nanoseconds, noTime when zero;
// a time that does not survive that round trip exactly (outside 1678-2262,
// or not in UTC) is also kept whole in extra.
type replicaRec struct {
	key                       string // id followed by source identity: one allocation
	idLen                     uint32
	user, profile, status     uint32
	started, expires, updated int64
	nextSI                    int32 // next session with this source identity; -1 ends
	gen                       uint16
	flags                     recFlags
	extra                     *recExtra
}

type recFlags uint8

const (
	// flagUserIndexed: the item has a string user and created_at, so it is
	// in gsi-user and the Query path's user lists.
	flagUserIndexed recFlags = 1 << iota
)

// recExtra holds what few sessions have.
type recExtra struct {
	revokedBy, revokedReason string
	exactTimes               bool
	startedAt, expiresAt     time.Time
	updatedAt                time.Time
}

// userSessions lists the positions of one raw user's sessions, ordered by
// started_at then id. maxSpan is the longest expires - started among those
// with both times (never shrunk on removal, which only costs pruning);
// unbounded says one was too long to prune by.
type userSessions struct {
	recs      []int32
	maxSpan   int64
	unbounded bool
}

const noTime = math.MinInt64

func newReplicaState(sizeHint int) *replicaState {
	return &replicaState{
		recs:     make([]replicaRec, 0, sizeHint),
		byID:     make(map[string]int32, sizeHint),
		bySI:     make(map[string]int32, sizeHint),
		users:    map[string]*userSessions{},
		rawBySan: map[string][]string{},
		strs:     []string{""},
		strIdx:   map[string]uint32{"": 0},
	}
}

func (st *replicaState) intern(s string) uint32 {
	if i, ok := st.strIdx[s]; ok {
		return i
	}
	s = strings.Clone(s) // not a substring of a decoded item
	i := uint32(len(st.strs))
	st.strs = append(st.strs, s)
	st.strIdx[s] = i
	return i
}

// toNanos returns t as Unix nanoseconds and whether that converts back to
// exactly t.
func toNanos(t time.Time) (int64, bool) {
	if t.IsZero() {
		return noTime, true
	}
	n := t.UnixNano()
	return n, n != noTime && fromNanos(n) == t
}

func fromNanos(n int64) time.Time {
	if n == noTime {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (r *replicaRec) id() string             { return r.key[:r.idLen] }
func (r *replicaRec) sourceIdentity() string { return r.key[r.idLen:] }

// put inserts or replaces the session s.ID, marking it with gen. createdAt
// says the item has a created_at (for gsi-user membership).
func (st *replicaState) put(s Session, createdAt bool, gen uint16) {
	if s.ID == "" {
		return // the partition key: an item always has one
	}
	if pos, ok := st.byID[s.ID]; ok {
		st.remove(pos)
	}
	rec := replicaRec{
		key:     s.ID + s.SourceIdentity,
		idLen:   uint32(len(s.ID)),
		user:    st.intern(s.User),
		profile: st.intern(s.Profile),
		status:  st.intern(s.Status),
		nextSI:  -1,
		gen:     gen,
	}
	var ok1, ok2, ok3 bool
	rec.started, ok1 = toNanos(s.StartedAt)
	rec.expires, ok2 = toNanos(s.ExpiresAt)
	rec.updated, ok3 = toNanos(s.UpdatedAt)
	if s.RevokedBy != "" || s.RevokedReason != "" || !ok1 || !ok2 || !ok3 {
		rec.extra = &recExtra{revokedBy: s.RevokedBy, revokedReason: s.RevokedReason}
		if !ok1 || !ok2 || !ok3 {
			// Kept whole; the record sorts first and its user list is
			// searched without pruning.
			rec.extra.exactTimes = true
			rec.extra.startedAt, rec.extra.expiresAt, rec.extra.updatedAt = s.StartedAt, s.ExpiresAt, s.UpdatedAt
			rec.started, rec.expires, rec.updated = noTime, noTime, noTime
		}
	}
	if s.User != "" && createdAt {
		rec.flags |= flagUserIndexed
	}

	var pos int32
	if n := len(st.free); n > 0 {
		pos, st.free = st.free[n-1], st.free[:n-1]
		st.recs[pos] = rec
	} else {
		pos = int32(len(st.recs))
		st.recs = append(st.recs, rec)
	}
	r := &st.recs[pos]
	st.live++
	st.keyBytes += int64(len(r.key))
	st.byID[r.id()] = pos
	if si := r.sourceIdentity(); si != "" {
		if head, ok := st.bySI[si]; ok {
			r.nextSI = head
		}
		st.bySI[si] = pos
	}
	if r.flags&flagUserIndexed != 0 {
		st.addToUser(pos)
	}
}

// delete removes the session id, if held.
func (st *replicaState) delete(id string) {
	if pos, ok := st.byID[id]; ok {
		st.remove(pos)
	}
}

// remove deletes the session at pos from every index and frees its slot.
func (st *replicaState) remove(pos int32) {
	r := &st.recs[pos]
	delete(st.byID, r.id())
	if si := r.sourceIdentity(); si != "" {
		st.unlinkSI(si, pos)
	}
	if r.flags&flagUserIndexed != 0 {
		st.removeFromUser(pos)
	}
	st.live--
	st.keyBytes -= int64(len(r.key))
	*r = replicaRec{nextSI: -1}
	st.free = append(st.free, pos)
}

func (st *replicaState) unlinkSI(si string, pos int32) {
	head := st.bySI[si]
	if head == pos {
		if next := st.recs[pos].nextSI; next >= 0 {
			st.bySI[si] = next
		} else {
			delete(st.bySI, si)
		}
		return
	}
	for p := head; p >= 0; p = st.recs[p].nextSI {
		if st.recs[p].nextSI == pos {
			st.recs[p].nextSI = st.recs[pos].nextSI
			return
		}
	}
}

// compareRecs orders a user's sessions: by started_at (missing first), then
// id.
func (st *replicaState) compareRecs(a, b int32) int {
	ra, rb := &st.recs[a], &st.recs[b]
	return cmp.Or(cmp.Compare(ra.started, rb.started), strings.Compare(ra.id(), rb.id()))
}

func (st *replicaState) addToUser(pos int32) {
	r := &st.recs[pos]
	name := st.strs[r.user]
	u := st.users[name]
	if u == nil {
		u = &userSessions{}
		st.users[name] = u
		san := SanitizeUser(name)
		if san != "" && !slices.Contains(st.rawBySan[san], name) {
			st.rawBySan[san] = append(st.rawBySan[san], name)
			slices.Sort(st.rawBySan[san])
		}
	}
	switch {
	case r.extra != nil && r.extra.exactTimes:
		u.unbounded = true
	case r.started == noTime || r.expires == noTime:
		// covers nothing
	case r.started < 0 && r.expires > math.MaxInt64+r.started, r.expires-r.started > int64(longestSpan):
		u.unbounded = true // the span overflows, or is too long to prune by
	case r.expires-r.started > u.maxSpan:
		u.maxSpan = r.expires - r.started
	}
	if st.bulk {
		u.recs = append(u.recs, pos)
		return
	}
	i, _ := slices.BinarySearchFunc(u.recs, pos, st.compareRecs)
	u.recs = slices.Insert(u.recs, i, pos)
}

func (st *replicaState) removeFromUser(pos int32) {
	u := st.users[st.strs[st.recs[pos].user]]
	if u == nil {
		return
	}
	if st.bulk {
		if i := slices.Index(u.recs, pos); i >= 0 {
			u.recs = slices.Delete(u.recs, i, i+1)
		}
		return
	}
	if i, found := slices.BinarySearchFunc(u.recs, pos, st.compareRecs); found {
		u.recs = slices.Delete(u.recs, i, i+1)
	}
}

// finish ends a bulk load: the user lists are sorted once.
func (st *replicaState) finish() {
	if !st.bulk {
		return
	}
	st.bulk = false
	for _, u := range st.users {
		slices.SortFunc(u.recs, st.compareRecs)
	}
}

// sweep removes every session not written in generation gen (those a full
// re-scan did not see) and returns how many it removed.
func (st *replicaState) sweep(gen uint16) int {
	n := 0
	for pos := range st.recs {
		r := &st.recs[pos]
		if r.key != "" && r.gen != gen {
			st.remove(int32(pos))
			n++
		}
	}
	return n
}

// session returns the session at pos as a Session.
func (st *replicaState) session(pos int32) Session {
	r := &st.recs[pos]
	s := Session{
		ID:             r.id(),
		SourceIdentity: r.sourceIdentity(),
		User:           st.strs[r.user],
		Profile:        st.strs[r.profile],
		Status:         st.strs[r.status],
		StartedAt:      fromNanos(r.started),
		ExpiresAt:      fromNanos(r.expires),
		UpdatedAt:      fromNanos(r.updated),
	}
	if x := r.extra; x != nil {
		s.RevokedBy, s.RevokedReason = x.revokedBy, x.revokedReason
		if x.exactTimes {
			s.StartedAt, s.ExpiresAt, s.UpdatedAt = x.startedAt, x.expiresAt, x.updatedAt
		}
	}
	return s
}

// covers is Session.Covers on the compact record.
func (r *replicaRec) covers(at int64, atTime time.Time, skew time.Duration) bool {
	if r.extra != nil && r.extra.exactTimes {
		return Session{StartedAt: r.extra.startedAt, ExpiresAt: r.extra.expiresAt}.Covers(atTime, skew)
	}
	if r.started == noTime || r.expires == noTime {
		return false
	}
	return at >= satAdd(r.started, -int64(skew)) && at <= satAdd(r.expires, int64(skew))
}

// satAdd returns a + b, saturated at the int64 limits (b is a duration).
func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// withSourceIdentity returns the sessions carrying si, of the raw user
// name when user is not "" (and then only those in gsi-user), ordered by
// started_at then id.
func (st *replicaState) withSourceIdentity(si, user string, userOnly bool) []Session {
	var pos []int32
	for p, ok := st.bySI[si]; ok && p >= 0; p = st.recs[p].nextSI {
		r := &st.recs[p]
		if userOnly && (r.flags&flagUserIndexed == 0 || st.strs[r.user] != user) {
			continue
		}
		pos = append(pos, p)
	}
	return st.sessionsAt(pos, true)
}

// userCovering returns the sessions of the raw user name (those in
// gsi-user) whose [started_at - skew, expires_at + skew] holds at, ordered
// by started_at then id, up to the first one that is not revoked: that one
// makes the event tracked whatever the others say (the classifier stops at
// the first valid session), so a user with hundreds of sessions costs a
// lookup a few copies, not hundreds.
func (st *replicaState) userCovering(user string, at time.Time, skew time.Duration) []Session {
	u := st.users[user]
	if u == nil {
		return nil
	}
	atN, ok := toNanos(at)
	if !ok || at.IsZero() {
		// An event time outside int64 nanoseconds: judge every session.
		var pos []int32
		for _, p := range u.recs {
			if st.session(p).Covers(at, skew) {
				pos = append(pos, p)
				if st.valid(p) {
					break
				}
			}
		}
		return st.sessionsAt(pos, false)
	}
	lo := 0
	if !u.unbounded {
		earliest := satAdd(satAdd(atN, -int64(skew)), -u.maxSpan)
		lo, _ = slices.BinarySearchFunc(u.recs, earliest, func(p int32, t int64) int {
			return cmp.Compare(st.recs[p].started, t)
		})
	}
	latest := satAdd(atN, int64(skew))
	var pos []int32
	for _, p := range u.recs[lo:] {
		r := &st.recs[p]
		if r.started > latest {
			break
		}
		if r.covers(atN, at, skew) {
			pos = append(pos, p)
			if st.valid(p) {
				break
			}
		}
	}
	return st.sessionsAt(pos, false)
}

// valid reports whether the session at pos, covering an event, makes it
// tracked: it was never revoked (validAt).
func (st *replicaState) valid(pos int32) bool { return st.strs[st.recs[pos].status] != StatusRevoked }

// userAll returns every session of the raw user name in gsi-user.
func (st *replicaState) userAll(user string) []Session {
	u := st.users[user]
	if u == nil {
		return nil
	}
	return st.sessionsAt(u.recs, false)
}

func (st *replicaState) sessionsAt(pos []int32, sortFirst bool) []Session {
	if len(pos) == 0 {
		return nil
	}
	if sortFirst {
		slices.SortFunc(pos, st.compareRecs)
	}
	out := make([]Session, len(pos))
	for i, p := range pos {
		out[i] = st.session(p)
	}
	return out
}

// rawNames returns the raw names seen for the sanitised user.
func (st *replicaState) rawNames(user string) []string {
	return slices.Clone(st.rawBySan[user])
}

// bytes estimates the heap the state holds: the record slice, the key
// strings (rounded up to the allocator's classes on average by 1/8), the
// two maps (about 56 bytes an entry: a 24-byte slot at the load a grown map
// averages), the user lists and the interned strings.
// BenchmarkReplicaMemory measures the real figure.
func (st *replicaState) bytes() int64 {
	const mapEntry = 56
	n := int64(cap(st.recs))*int64(unsafe.Sizeof(replicaRec{})) +
		st.keyBytes*9/8 +
		int64(len(st.byID)+len(st.bySI))*mapEntry +
		int64(cap(st.free))*4
	for name, u := range st.users {
		n += int64(cap(u.recs))*4 + int64(len(name)) + 64
	}
	for _, s := range st.strs {
		n += int64(len(s)) + 16 + mapEntry
	}
	return n
}
