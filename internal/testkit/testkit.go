// Package testkit holds the helpers that tests across the module share:
// Eventually and a LockedBuffer. It imports nothing of the module, so any
// package's own tests may use it; the in-memory session table and the
// recording sink, which need pkg/sessions and pkg/sink, are in
// internal/testkit/memory. Production code never imports either.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// PollInterval is how often Eventually checks its condition.
const PollInterval = 10 * time.Millisecond

// Eventually polls cond until it holds, and fails the test naming what it
// waited for when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(PollInterval)
	}
}

// LockedBuffer collects output written from other goroutines (a child's
// output copied by exec, a logger, a progress display) for the test to
// read.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
