package streamer

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Config. The command line uses the same values.
const (
	DefaultPollers           = 4
	DefaultWorkers           = 32
	DefaultMaxInFlight       = 1000
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultOrphanGrace       = 2 * time.Minute
	DefaultShutdownTimeout   = 25 * time.Second
	DefaultWaitTime          = 20 * time.Second
	DefaultFlushInterval     = time.Second
	DefaultRetryInitial      = 500 * time.Millisecond
	DefaultRetryMax          = 30 * time.Second
	DefaultRetryHold         = 5 * time.Minute
	// DefaultVerdictLogInterval is how often the verdict log is written
	// (sooner when half of MaxInFlight waits for it).
	DefaultVerdictLogInterval = time.Minute
)

// Limits SQS sets.
const (
	// MaxBatch is the most messages one ReceiveMessage returns and the
	// most entries one DeleteMessageBatch or ChangeMessageVisibilityBatch
	// takes.
	MaxBatch = 10
	// MaxVisibilityTimeout is SQS's ceiling for a visibility timeout.
	MaxVisibilityTimeout = 12 * time.Hour
	// MaxOrphanGrace bounds the hold: a message's visibility cannot be
	// extended past 12 hours after it was received, and a longer hold
	// would only delay a real finding.
	MaxOrphanGrace = time.Hour
)

// Config configures a Streamer. Zero fields take the defaults above, except
// OrphanGrace, whose zero means "emit orphaned findings at once".
type Config struct {
	// QueueURL is the queue to consume (required).
	QueueURL string
	// Pollers is the number of concurrent long polls.
	Pollers int
	// Workers is the number of deliveries advanced concurrently.
	Workers int
	// MaxInFlight caps the messages received and not yet deleted or
	// released; a poller waits for a free slot before receiving.
	MaxInFlight int
	// VisibilityTimeout is asked for on every receive (whole seconds); the
	// heartbeat extends messages still in flight when less than half of it
	// is left.
	VisibilityTimeout time.Duration
	// OrphanGrace is how long after its event an orphaned verdict waits for
	// its session to appear before it is re-checked with a fresh store read
	// and emitted. 0 emits at once.
	OrphanGrace time.Duration
	// ShutdownTimeout bounds Run's shutdown, from the end of its context to
	// its return.
	ShutdownTimeout time.Duration
	// WaitTime is the long-poll wait of a receive (at most 20 s).
	WaitTime time.Duration
	// FlushInterval is the longest a delete or release waits for a batch of
	// ten to fill.
	FlushInterval time.Duration
	// RetryInitial and RetryMax bound the exponential back-off between
	// retries after a store, sink or S3 failure.
	RetryInitial, RetryMax time.Duration
	// RetryHold is how long after receiving it a failing message is held
	// and retried in the process; after that it is released with its next
	// back-off as visibility timeout.
	RetryHold time.Duration
	// VerdictLogInterval is the longest a message whose findings are safe
	// waits for the verdict log (Deps.VerdictLog) to be written before it
	// is deleted; a flush also starts once half of MaxInFlight waits (or
	// fewer, when that would leave the pollers no room for a batch).
	VerdictLogInterval time.Duration
	// SilenceAfter: an expected account and region that sent no event for
	// longer is silent (sessionwatch_streamer_silent_regions). Expected:
	// every pair seen so far, and each of ExpectRegions in each of
	// ExpectAccounts (every account seen, when empty).
	SilenceAfter   time.Duration
	ExpectRegions  []string
	ExpectAccounts []string
}

// Validate reports a configuration the Streamer cannot use. It changes
// nothing: a zero field is checked as the default it takes.
func (c Config) Validate() error { return c.validate(true) }

// withDefaults is c with each zero field that has a default set to it.
func (c Config) withDefaults() Config {
	if c.Pollers == 0 {
		c.Pollers = DefaultPollers
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.WaitTime == 0 {
		c.WaitTime = DefaultWaitTime
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryHold == 0 {
		c.RetryHold = DefaultRetryHold
	}
	if c.VerdictLogInterval == 0 {
		c.VerdictLogInterval = DefaultVerdictLogInterval
	}
	if c.SilenceAfter == 0 {
		c.SilenceAfter = DefaultSilenceAfter
	}
	return c
}

// validate is Validate; a Processor, which is handed its messages, needs no
// queue URL.
func (c Config) validate(needQueue bool) error {
	c = c.withDefaults()
	var errs []error
	if needQueue && c.QueueURL == "" {
		errs = append(errs, errors.New("queue URL is required"))
	}
	if c.Pollers < 1 {
		errs = append(errs, fmt.Errorf("pollers %d: want at least 1", c.Pollers))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers %d: want at least 1", c.Workers))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d: want at least 1", c.MaxInFlight))
	}
	if c.VisibilityTimeout < time.Second || c.VisibilityTimeout > MaxVisibilityTimeout || c.VisibilityTimeout%time.Second != 0 {
		errs = append(errs, fmt.Errorf("visibility timeout %v: want whole seconds from 1s to %v", c.VisibilityTimeout, MaxVisibilityTimeout))
	}
	if c.OrphanGrace < 0 || c.OrphanGrace > MaxOrphanGrace {
		errs = append(errs, fmt.Errorf("orphan grace %v: want 0 to %v", c.OrphanGrace, MaxOrphanGrace))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %v is negative", c.ShutdownTimeout))
	}
	if c.WaitTime < time.Second || c.WaitTime > 20*time.Second {
		errs = append(errs, fmt.Errorf("wait time %v: want 1s to 20s", c.WaitTime))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("flush interval %v is negative", c.FlushInterval))
	}
	if c.RetryInitial < 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, fmt.Errorf("retry back-off %v..%v: want 0 <= initial <= max", c.RetryInitial, c.RetryMax))
	}
	if c.RetryHold < 0 {
		errs = append(errs, fmt.Errorf("retry hold %v is negative", c.RetryHold))
	}
	if c.VerdictLogInterval < time.Second || c.VerdictLogInterval > 10*time.Minute {
		errs = append(errs, fmt.Errorf("verdict log interval %v: want 1s to 10m", c.VerdictLogInterval))
	}
	if c.SilenceAfter < time.Minute {
		errs = append(errs, fmt.Errorf("silence after %v: want at least 1m", c.SilenceAfter))
	}
	for _, r := range c.ExpectRegions {
		if !regionPattern.MatchString(r) {
			errs = append(errs, fmt.Errorf("expected region %q: not a region name", r))
		}
	}
	for _, a := range c.ExpectAccounts {
		if !accountPattern.MatchString(a) {
			errs = append(errs, fmt.Errorf("expected account %q: want 12 digits", a))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("streamer: config: %w", err)
	}
	return nil
}

// batchSize is how many messages a poller asks for at once.
func (c Config) batchSize() int { return min(MaxBatch, c.MaxInFlight) }

// visibilitySeconds is VisibilityTimeout as SQS takes it.
func (c Config) visibilitySeconds() int32 { return int32(c.VisibilityTimeout / time.Second) }
