package sink

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rs/zerolog"
)

// Options configure the sinks that Open and OpenAll build. The zero value
// works: native format, default batching and retries, the SDK's default AWS
// configuration, secrets from their SESSIONWATCH_ variables.
type Options struct {
	// Format renders findings for sinks that carry any format (stdout,
	// file, sqs, sns, eventbridge, webhook, hec); a URI's own "FORMAT+"
	// prefix wins. Security Hub always takes ASFF.
	Format Format
	// Render configures OCSF and ASFF renderings.
	Render RenderConfig

	// AWS is the SDK configuration of the AWS sinks; nil loads the default
	// chain (AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>, credentials) once.
	AWS *aws.Config
	// HTTPClient sends webhook and HEC requests; nil uses a client with
	// sane timeouts. Its Timeout, if set, bounds each request.
	HTTPClient *http.Client
	// Stdout is where "stdout" writes; nil is os.Stdout.
	Stdout io.Writer

	Batch       BatchConfig
	Retry       RetryConfig
	File        FileConfig
	Webhook     WebhookConfig
	HEC         HECConfig
	EventBridge EventBridgeConfig
	SecurityHub SecurityHubConfig

	// LookupEnv reads secrets' environment variables; nil is os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Log receives retries and give-ups (never a secret); nil logs nothing.
	Log *zerolog.Logger
	// Observer counts deliveries for metrics; nil counts nothing. Its
	// labels are sink names (which never hold a secret or a URL path) and a
	// fixed set of reasons.
	Observer Observer
}

// BatchConfig sets when a network sink sends: at MaxItems findings or
// MaxWait after the first pending one, whichever comes first, and on Close.
// Write blocks until its findings were delivered or failed, so a caller
// acknowledges only what a sink accepted.
type BatchConfig struct {
	// MaxItems caps a batch; 0 uses the sink's per-call limit (10 for SQS,
	// SNS and EventBridge, 100 for Security Hub and HEC, 10 for webhook).
	// A larger value is cut to the limit.
	MaxItems int
	// MaxWait is how long a finding may wait for others; default 200ms.
	MaxWait time.Duration
	// MaxInFlight is how many batches a sink sends at once; default 2.
	MaxInFlight int
}

// RetryConfig sets retries of throttled, timed-out and failing calls and of
// items a service reported as failed but retryable. Waits grow
// exponentially with ±50% jitter; a Retry-After from the service wins when
// longer.
type RetryConfig struct {
	MaxAttempts     int           // per call, first included; default 5
	InitialInterval time.Duration // first wait; default 200ms
	MaxInterval     time.Duration // longest backoff wait; default 10s
	MaxElapsed      time.Duration // no retry starts later than this; default 1m
	CallTimeout     time.Duration // each attempt; default 30s
	MaxRetryAfter   time.Duration // longest Retry-After honoured; default 2m
}

// EventBridgeConfig sets the event envelope.
type EventBridgeConfig struct {
	Source     string // default "sessionwatch"
	DetailType string // default "sessionwatch finding"
}

// SecurityHubConfig sets the Security Hub sink.
type SecurityHubConfig struct {
	// CallsPerSecond caps BatchImportFindings calls; default and maximum 10.
	CallsPerSecond float64
}

// Observer is the metrics hook of the sinks.
type Observer interface {
	// Delivered counts findings a sink accepted.
	Delivered(sink string, n int)
	// Failed counts findings a sink gave up on, by reason.
	Failed(sink, reason string, n int)
	// Retried counts one retry of a call, by reason.
	Retried(sink, reason string)
}

// Reasons an Observer is given: a fixed set, safe as metric labels.
const (
	ReasonThrottled   = "throttled"
	ReasonServerError = "server_error"
	ReasonTimeout     = "timeout"
	ReasonNetwork     = "network"
	ReasonItem        = "item_failed"
	ReasonRejected    = "rejected"
	ReasonTooLarge    = "too_large"
	ReasonCanceled    = "canceled"
)

// Validate reports options no sink can use. It changes nothing: a zero
// field is checked as the default it takes.
func (o Options) Validate() error {
	var errs []error
	if o.Format != "" {
		if _, err := ParseFormat(string(o.Format)); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Batch.MaxItems < 0 {
		errs = append(errs, fmt.Errorf("batch size %d: want 0 (the per-call limit) or more", o.Batch.MaxItems))
	}
	return errors.Join(errs...)
}

// withDefaults is o with each unset (zero or negative) field that has a
// default set to it.
func (o Options) withDefaults() Options {
	if o.Format == "" {
		o.Format = FormatNative
	}
	if o.Batch.MaxWait <= 0 {
		o.Batch.MaxWait = 200 * time.Millisecond
	}
	if o.Batch.MaxInFlight <= 0 {
		o.Batch.MaxInFlight = 2
	}
	r := &o.Retry
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 5
	}
	if r.InitialInterval <= 0 {
		r.InitialInterval = 200 * time.Millisecond
	}
	if r.MaxInterval <= 0 {
		r.MaxInterval = 10 * time.Second
	}
	if r.MaxElapsed <= 0 {
		r.MaxElapsed = time.Minute
	}
	if r.CallTimeout <= 0 {
		r.CallTimeout = 30 * time.Second
	}
	if r.MaxRetryAfter <= 0 {
		r.MaxRetryAfter = 2 * time.Minute
	}
	if o.EventBridge.Source == "" {
		o.EventBridge.Source = "sessionwatch"
	}
	if o.EventBridge.DetailType == "" {
		o.EventBridge.DetailType = "sessionwatch finding"
	}
	if o.SecurityHub.CallsPerSecond <= 0 || o.SecurityHub.CallsPerSecond > 10 {
		o.SecurityHub.CallsPerSecond = 10
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Log == nil {
		nop := zerolog.Nop()
		o.Log = &nop
	}
	return o
}

type nopObserver struct{}

func (nopObserver) Delivered(string, int)      {}
func (nopObserver) Failed(string, string, int) {}
func (nopObserver) Retried(string, string)     {}
