// Package cli holds what both commands share on their command line: flags
// that also read SESSIONWATCH_* environment variables, durations with days,
// and points in time given as a duration ago or a timestamp.
package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// ParseDuration reads a Go duration that may start with days: "7d", "1d12h",
// "90m", "30s".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("duration %q: bad day count", s)
		}
		days = time.Duration(n) * day
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 7d, 1d12h, 90m", s)
	}
	return days + d, nil
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

// FormatDuration prints whole days as "Nd" so help texts read naturally.
func FormatDuration(d time.Duration) string {
	if d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	if d > day {
		return strconv.FormatInt(int64(d/day), 10) + "d" + (d % day).String()
	}
	return d.String()
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
		return time.Time{}, fmt.Errorf("time %q: want a duration ago (7d, 1d12h), an RFC 3339 timestamp or a date", s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("time %q: negative duration", s)
	}
	return now.Add(-d).UTC(), nil
}
