// Package cli holds what both commands share on their command line: flags
// that also read SESSIONWATCH_* environment variables, durations with days,
// and points in time given as a duration ago or a timestamp.
package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// MaxDays is the most days a duration holds: time.Duration counts
// nanoseconds in an int64 (about 292 years).
const MaxDays = math.MaxInt64 / int64(day)

// ParseDuration reads a Go duration that may start with days: "7d", "1d12h",
// "90m", "30s".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	in := s
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil && !isRange(err) {
			return 0, fmt.Errorf("duration %q: want e.g. 7d, 1d12h, 90m", in)
		}
		if err != nil || n > uint64(MaxDays) {
			return 0, fmt.Errorf("duration %q: at most %dd (about 292 years)", in, MaxDays)
		}
		days = time.Duration(n) * day
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 7d, 1d12h, 90m", in)
	}
	if d > 0 && days > math.MaxInt64-d {
		return 0, fmt.Errorf("duration %q: at most %dd (about 292 years)", in, MaxDays)
	}
	return days + d, nil
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// Duration is a flag.Value that accepts days.
type Duration struct{ D *time.Duration }

func (d Duration) String() string {
	if d.D == nil {
		return ""
	}
	return FormatDuration(*d.D)
}

func (d Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d.D = v
	return nil
}

// FormatDuration prints a duration the way people write one, and the way
// ParseDuration reads it back: whole days as "Nd" and no zero units ("90d",
// "1d12h", "1h", "2m30s", "1.5s", "0s").
func FormatDuration(d time.Duration) string {
	if d < 0 {
		if d == math.MinInt64 {
			return d.String()
		}
		return "-" + FormatDuration(-d)
	}
	var b strings.Builder
	if d >= day {
		fmt.Fprintf(&b, "%dd", d/day)
		d %= day
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d %= time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d %= time.Minute
	}
	if d > 0 || b.Len() == 0 {
		b.WriteString(d.String()) // "30s", "1.5s", "250ms", "0s"
	}
	return b.String()
}

// ParseTime reads a point in time: a duration ago ("7d", "90m"), an RFC 3339
// timestamp, or a date (YYYY-MM-DD, UTC midnight).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		if strings.Contains(err.Error(), "at most") {
			return time.Time{}, err // a duration, too long: say how long may be
		}
		return time.Time{}, fmt.Errorf("time %q: want a duration ago (7d, 1d12h), an RFC 3339 timestamp or a date", s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("time %q: negative duration", s)
	}
	return now.Add(-d).UTC(), nil
}
