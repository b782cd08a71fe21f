package sessions

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/singleflight"
)

// joinFlight runs fn once for all concurrent callers with the same key and
// reports whether this caller shared another caller's call instead of
// running fn itself.
//
// The shared call runs under the context of the caller that started it. A
// caller that gets that context's error while its own context is live tries
// once more, rather than fail for someone else's reason.
func joinFlight[T any](ctx context.Context, group *singleflight.Group, key string, fn func(context.Context) (T, error)) (val T, shared bool, err error) {
	for attempt := 0; ; attempt++ {
		ran := false // set by fn's goroutine before the result is sent
		results := group.DoChan(key, func() (any, error) {
			ran = true
			return fn(ctx)
		})
		select {
		case <-ctx.Done():
			var zero T
			return zero, false, fmt.Errorf("sessions: %w", context.Cause(ctx))
		case r := <-results:
			if r.Err != nil {
				if !ran && attempt == 0 && ctx.Err() == nil &&
					(errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded)) {
					continue
				}
				var zero T
				return zero, !ran, r.Err
			}
			return r.Val.(T), !ran, nil
		}
	}
}
