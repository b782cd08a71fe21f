package testkit

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	var n atomic.Int32
	Eventually(t, 5*time.Second, "three polls", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("cond called %d times, want 3", got)
	}
}

// failRecorder records Fatalf instead of ending the test.
type failRecorder struct {
	testing.TB
	msg string
}

func (f *failRecorder) Helper() {}
func (f *failRecorder) Fatalf(format string, args ...any) {
	f.msg = format
	if len(args) > 1 {
		f.msg = args[1].(string)
	}
}

func TestEventuallyFailsNamingWhat(t *testing.T) {
	r := &failRecorder{TB: t}
	start := time.Now()
	calls := 0
	Eventually(r, 30*time.Millisecond, "the impossible", func() bool {
		calls++
		// Fatalf does not stop a recorder: end the loop once it was called.
		return r.msg != ""
	})
	if r.msg != "the impossible" || time.Since(start) < 30*time.Millisecond || calls < 2 {
		t.Errorf("failure %q after %v and %d calls; want \"the impossible\" after 30ms", r.msg, time.Since(start), calls)
	}
}

func TestLockedBufferConcurrentWrites(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 800) {
		t.Errorf("buffer holds %d bytes, want 800", len(got))
	}
}
