package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
)

// item is one finding on its way to a backend.
type item struct {
	idx  int    // index in the Write that submitted it
	id   string // finding id
	body []byte // the finding rendered in the sink's format
	meta findingMeta
	err  error // outcome of the last attempt: nil is accepted
	t    *ticket
}

// findingMeta is what senders put in message attributes and envelopes,
// copied at Write: the caller owns its findings once Write returns.
type findingMeta struct {
	category, severity, account, region, roleARN string
	time                                         time.Time
}

func metaOf(f *Finding) findingMeta {
	return findingMeta{
		category: string(f.Category), severity: f.Severity, account: f.Event.Account, region: f.Event.Region,
		roleARN: f.Target.RoleARN, time: f.DetectedAt,
	}
}

// ItemError is a failure a service reported for one finding of a call.
type ItemError struct {
	Code      string // the service's error code
	Message   string
	Retryable bool // the service says a retry may succeed
}

func (e *ItemError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// ErrTooLarge is the failure of a finding larger than a service accepts;
// it is never retried.
var ErrTooLarge = errors.New("finding larger than the service accepts")

// HTTPError is a non-2xx answer of a webhook or HEC endpoint. It carries no
// URL: URLs of webhooks often embed a token.
type HTTPError struct {
	Status     int
	Text       string // short service text (HEC's "text"), never a request echo
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Text)
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

var extraThrottleCodes = map[string]bool{"Throttled": true, "ThrottledException": true, "TooManyRequests": true, "KMSThrottling": true}
var serverErrorCodes = map[string]bool{
	"InternalError": true, "InternalFailure": true, "InternalException": true, "InternalServerError": true,
	"ServiceUnavailable": true, "ServiceUnavailableException": true, "KMSInternalException": true,
}

// classify says whether an error is worth retrying, and why (a Reason).
func classifyErr(err error) (retryable bool, reason string) {
	if err == nil {
		return false, ""
	}
	var ie *ItemError
	if errors.As(err, &ie) {
		switch {
		case !ie.Retryable:
			return false, ReasonRejected
		case isThrottleCode(ie.Code):
			return true, ReasonThrottled
		default:
			return true, ReasonItem
		}
	}
	if errors.Is(err, ErrTooLarge) {
		return false, ReasonTooLarge
	}
	if errors.Is(err, context.Canceled) {
		return false, ReasonCanceled
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return classifyStatus(he.Status)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if isThrottleCode(code) {
			return true, ReasonThrottled
		}
		if serverErrorCodes[code] {
			return true, ReasonServerError
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		if ok, reason := classifyStatus(re.HTTPStatusCode()); ok {
			return ok, reason
		}
		if apiErr != nil {
			return false, ReasonRejected
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true, ReasonTimeout
	}
	if (retry.RetryableConnectionError{}).IsErrorRetryable(err) == aws.TrueTernary {
		return true, ReasonNetwork
	}
	return false, ReasonRejected
}

func isThrottleCode(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok || extraThrottleCodes[code]
}

func classifyStatus(status int) (bool, string) {
	switch {
	case status == http.StatusTooManyRequests:
		return true, ReasonThrottled
	case status == http.StatusRequestTimeout:
		return true, ReasonTimeout
	case status >= 500:
		return true, ReasonServerError
	default:
		return false, ReasonRejected
	}
}

// retryAfter is the wait a service asked for, if any.
func retryAfter(err error, now time.Time) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return parseRetryAfter(re.Response.Header.Get("Retry-After"), now)
	}
	return 0
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retrier delivers a call's items, retrying the failed retryable ones.
type retrier struct {
	name string
	cfg  RetryConfig
	obs  Observer
	log  *zerolog.Logger
}

// sendFunc makes one call for items. A non-nil error fails the whole call;
// otherwise it sets err on each item the service did not accept.
type sendFunc func(ctx context.Context, items []*item) error

// deliver leaves each item's outcome in item.err.
func (r *retrier) deliver(ctx context.Context, items []*item, send sendFunc) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     r.cfg.InitialInterval,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         r.cfg.MaxInterval,
	}
	bo.Reset()
	start := time.Now()
	pending := items
	for attempt := 1; ; attempt++ {
		for _, it := range pending {
			it.err = nil
		}
		callCtx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
		err := send(callCtx, pending)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
			}
			for _, it := range pending {
				it.err = err
			}
		}
		if ctx.Err() != nil {
			return
		}
		var again []*item
		var wait time.Duration
		var reason string
		for _, it := range pending {
			if ok, why := classifyErr(it.err); ok {
				again = append(again, it)
				reason = why
				wait = max(wait, retryAfter(it.err, time.Now()))
			}
		}
		if len(again) == 0 {
			return
		}
		if attempt >= r.cfg.MaxAttempts || time.Since(start) >= r.cfg.MaxElapsed {
			r.log.Warn().Str("sink", r.name).Int("attempts", attempt).Int("findings", len(again)).
				Str("reason", reason).Err(again[0].err).Msg("giving up on findings")
			return
		}
		wait = min(max(wait, bo.NextBackOff()), r.cfg.MaxRetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return // the caller will have given up before the retry
		}
		r.obs.Retried(r.name, reason)
		r.log.Warn().Str("sink", r.name).Int("attempt", attempt).Int("findings", len(again)).
			Str("reason", reason).Dur("wait", wait).Err(again[0].err).Msg("retrying findings")
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			for _, it := range again {
				it.err = fmt.Errorf("%w (waiting to retry: %v)", context.Cause(ctx), it.err)
			}
			return
		}
		pending = again
	}
}
