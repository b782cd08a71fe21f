package main

import (
	"runtime/debug"
	"testing"
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
	}{
		{"neither set", nil, defaultGCPercent, defaultMemoryLimit},
		{"GOGC set", map[string]string{"GOGC": "77"}, gcPercent, defaultMemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "123MiB"}, defaultGCPercent, memLimit},
		{"both set", map[string]string{"GOGC": "77", "GOMEMLIMIT": "123MiB"}, gcPercent, memLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(gcPercent)
			debug.SetMemoryLimit(memLimit)
			runtimeDefaults(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
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
