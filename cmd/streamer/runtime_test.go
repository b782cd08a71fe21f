package main

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

func TestRuntimeDefaultsYieldToTheEnvironment(t *testing.T) {
	const gcPercent, memLimit = 77, 123 << 20 // what the "environment" left
	restoreGC := debug.SetGCPercent(gcPercent)
	restoreLimit := debug.SetMemoryLimit(memLimit)
	t.Cleanup(func() {
		debug.SetGCPercent(restoreGC)
		debug.SetMemoryLimit(restoreLimit)
	})
	for _, tc := range []struct {
		name          string
		env           map[string]string
		wantGCPercent int
		wantLimit     int64
		wantOwn       bool // the limit is the streamer's to move
	}{
		{"neither set", nil, defaultGCPercent, defaultMemoryLimit, true},
		{"GOGC set", map[string]string{"GOGC": "77"}, gcPercent, defaultMemoryLimit, true},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "123MiB"}, defaultGCPercent, memLimit, false},
		{"both set", map[string]string{"GOGC": "77", "GOMEMLIMIT": "123MiB"}, gcPercent, memLimit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(gcPercent)
			debug.SetMemoryLimit(memLimit)
			if own := runtimeDefaults(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }); own != tc.wantOwn {
				t.Errorf("own memory limit = %v, want %v", own, tc.wantOwn)
			}
			gotGC := debug.SetGCPercent(gcPercent)
			if gotGC != tc.wantGCPercent {
				t.Errorf("GC percent = %d, want %d", gotGC, tc.wantGCPercent)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit = %d, want %d", got, tc.wantLimit)
			}
		})
	}
}

// TestSoftLimitFollowsTheReplica: the default soft limit grows with the
// session replica (twice its bytes beside the default), and
// followReplicaMemory moves it as the replica grows.
func TestSoftLimitFollowsTheReplica(t *testing.T) {
	restore := debug.SetMemoryLimit(defaultMemoryLimit)
	t.Cleanup(func() { debug.SetMemoryLimit(restore) })
	for _, tc := range []struct {
		bytes, want int64
	}{
		{0, defaultMemoryLimit},
		{-1, defaultMemoryLimit},
		{644 << 20, defaultMemoryLimit + 1288<<20}, // about 2,000,000 sessions at 322 B
	} {
		if got := replicaMemoryLimit(tc.bytes); got != tc.want {
			t.Errorf("replicaMemoryLimit(%d) = %d, want %d", tc.bytes, got, tc.want)
		}
	}

	var size atomic.Int64
	size.Store(10 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); followReplicaMemory(ctx, size.Load, time.Millisecond) }()
	wait := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for debug.SetMemoryLimit(-1) != want {
			if time.Now().After(deadline) {
				t.Fatalf("memory limit %d, want %d", debug.SetMemoryLimit(-1), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait(defaultMemoryLimit + 20<<20)
	size.Store(300 << 20)
	wait(defaultMemoryLimit + 600<<20)
	cancel()
	<-done
}
