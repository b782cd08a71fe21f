package sessions

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// benchSession returns the i-th of a generated population shaped like
// Sentinel's table: users of about benchSessionsPerUser sessions each, a
// UUID id, a Sentinel SourceIdentity (direct or through a server), one of
// five profiles, one session in twenty revoked with who and why.
func benchSession(rng *rand.Rand, i int, users []string, base time.Time) Session {
	raw := users[i%len(users)]
	start := base.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
	marker := "direct"
	if i%3 == 0 {
		marker = fmt.Sprintf("srv%08x", rng.Uint32())
	}
	s := Session{
		ID:             fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff),
		User:           raw,
		Profile:        []string{"dev", "staging", "prod-readonly", "prod-admin", "billing"}[i%5],
		Status:         StatusActive,
		SourceIdentity: "sentinel:" + SanitizeUser(raw) + ":" + marker + ":" + fmt.Sprintf("%08x", rng.Uint32()),
		StartedAt:      start,
		ExpiresAt:      start.Add(time.Duration(1+rng.IntN(12)) * time.Hour),
		UpdatedAt:      start.Add(time.Duration(rng.IntN(3600)) * time.Second),
	}
	if i%20 == 0 {
		s.Status, s.RevokedBy, s.RevokedReason = StatusRevoked, "secops@corp.example", "credential reported leaked"
	}
	return s
}

// BenchmarkReplicaMemory measures the heap the replica holds per session:
// heap in use after a GC, less the same before, over the sessions loaded.
// Run it alone (it is not part of make test):
//
//	go test ./pkg/sessions -run '^$' -bench ReplicaMemory -benchtime 1x
func BenchmarkReplicaMemory(b *testing.B) {
	for _, n := range []int{1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				perSession, estimate := measureReplicaMemory(n)
				b.ReportMetric(perSession, "B/session")
				b.ReportMetric(estimate, "estimated-B/session")
			}
		})
	}
}

func measureReplicaMemory(n int) (perSession, estimate float64) {
	const perUser = 40 // tens of sessions a user, as issue 12's realistic corpus
	rng := rand.New(rand.NewPCG(12, 1))
	users := make([]string, n/perUser)
	for i := range users {
		users[i] = fmt.Sprintf("user%05d.%s@corp.example", i, []string{"smith", "jones", "garcia", "chen"}[i%4])
	}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := newReplicaState(0)
	st.bulk = true
	for i := range n {
		st.put(benchSession(rng, i, users, base), true, 1)
	}
	st.finish()
	users = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st.live != n {
		panic(fmt.Sprintf("replica holds %d sessions, want %d", st.live, n))
	}
	perSession = float64(after.HeapInuse-before.HeapInuse) / float64(n)
	estimate = float64(st.bytes()) / float64(n)
	runtime.KeepAlive(st)
	return perSession, estimate
}
