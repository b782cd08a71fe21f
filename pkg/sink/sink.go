package sink

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Sink delivers findings. Write returns nil when every finding was accepted,
// or a *BatchError naming the ones that were not; a caller retries only
// those. Close flushes and releases the sink.
type Sink interface {
	Name() string
	Write(ctx context.Context, findings []Finding) error
	Close(ctx context.Context) error
}

// BatchError reports per-item failures of one Write, keyed by the index of
// the finding in the batch.
type BatchError struct {
	Sink   string
	Failed map[int]error
}

func (e *BatchError) Error() string {
	idx := make([]int, 0, len(e.Failed))
	for i := range e.Failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var first error
	if len(idx) > 0 {
		first = e.Failed[idx[0]]
	}
	return fmt.Sprintf("sink %s: %d finding(s) not accepted, first (#%d): %v", e.Sink, len(idx), firstOr(idx, -1), first)
}

// Unwrap exposes the item errors to errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		out = append(out, err)
	}
	return out
}

func firstOr(xs []int, def int) int {
	if len(xs) == 0 {
		return def
	}
	return xs[0]
}

// failAll marks every finding of a batch as failed with err.
func failAll(name string, n int, err error) *BatchError {
	be := &BatchError{Sink: name, Failed: make(map[int]error, n)}
	for i := 0; i < n; i++ {
		be.Failed[i] = err
	}
	return be
}

// ErrUnknownSink is returned by Open for an unsupported URI.
var ErrUnknownSink = errors.New("unknown sink")
