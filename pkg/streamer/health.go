package streamer

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// sinkHealth is whether a sink's last write failed, since when and why.
type sinkHealth struct {
	mu    sync.Mutex
	since time.Time // zero while the sink accepts findings
	err   string
}

// fail records a failed write at now and returns since when the sink fails.
func (h *sinkHealth) fail(now time.Time, err error) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		h.since = now
	}
	if err != nil {
		h.err = err.Error()
	}
	return h.since
}

// ok records a write every finding of which was accepted, and reports
// whether the sink was failing until then.
func (h *sinkHealth) ok() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := !h.since.IsZero()
	h.since, h.err = time.Time{}, ""
	return was
}

// SinkFailure is a sink whose last write did not accept every finding.
type SinkFailure struct {
	Sink  string
	Since time.Time // the first failed write of this outage
	Err   string    // the last write's error
}

// FailingSinks lists the sinks failing now, in --sink order.
func (s *engine) FailingSinks() []SinkFailure {
	var out []SinkFailure
	for j, h := range s.health {
		h.mu.Lock()
		if !h.since.IsZero() {
			out = append(out, SinkFailure{Sink: s.sinks[j].Name(), Since: h.since, Err: h.err})
		}
		h.mu.Unlock()
	}
	return out
}

// Degraded describes the failing sinks for /readyz ("" when none fails).
func (s *engine) Degraded() string {
	fs := s.FailingSinks()
	if len(fs) == 0 {
		return ""
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("sink %s failing since %s: %s", f.Sink, f.Since.UTC().Format(time.RFC3339), f.Err)
	}
	return strings.Join(parts, "; ")
}
