package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/time/rate"
)

// URIHelp lists the sink URIs, for flag usage.
const URIHelp = "stdout, file:PATH, sqs:QUEUE_URL, sns:TOPIC_ARN, eventbridge:BUS, securityhub, webhook:URL, hec:URL; " +
	"prefix FORMAT+ (native+, ocsf+, asff+) to override --format for one sink"

// Open builds a sink from its URI (see URIHelp). Without options it uses
// the defaults of Options; only the first options value is used.
func Open(uri string, opts ...Options) (Sink, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	return open(context.Background(), uri, o, &awsLoader{cfg: o.AWS})
}

// OpenAll builds one sink per URI and returns them as one: a single sink as
// is, several as a Multi, which accepts a finding only when every sink
// accepted it. On error the sinks already built are closed.
func OpenAll(ctx context.Context, uris []string, o Options) (Sink, error) {
	if len(uris) == 0 {
		uris = []string{"stdout"}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	loader := &awsLoader{cfg: o.AWS}
	sinks := make([]Sink, 0, len(uris))
	for _, uri := range uris {
		s, err := open(ctx, uri, o, loader)
		if err != nil {
			for _, opened := range sinks {
				_ = opened.Close(ctx)
			}
			return nil, err
		}
		sinks = append(sinks, s)
	}
	if len(sinks) == 1 {
		return sinks[0], nil
	}
	return NewMulti(sinks...), nil
}

// awsLoader loads the SDK configuration once, for the first AWS sink.
type awsLoader struct {
	once sync.Once
	cfg  *aws.Config
	err  error
}

func (l *awsLoader) get(ctx context.Context) (aws.Config, error) {
	l.once.Do(func() {
		if l.cfg != nil {
			return
		}
		cfg, err := config.LoadDefaultConfig(ctx)
		l.cfg, l.err = &cfg, err
	})
	if l.err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", l.err)
	}
	return *l.cfg, nil
}

// CheckURI checks a sink URI's form (see URIHelp) without opening
// anything or reading secrets, so that a command can refuse a bad --sink
// before it starts.
func CheckURI(uri string) error {
	if uri == "" || uri == "-" {
		return nil
	}
	_, kind, target, err := splitURI(uri, FormatNative)
	if err != nil {
		return fmt.Errorf("sink %s: %w", kindOnly(uri), err)
	}
	switch kind {
	case "stdout", "securityhub":
		return nil
	case "file":
		if target == "" {
			return fmt.Errorf("sink %q: empty path", uri)
		}
	case "sqs", "eventbridge":
		if target == "" {
			return fmt.Errorf("sink %q: missing target (%s)", uri, URIHelp)
		}
	case "sns":
		if !strings.HasPrefix(target, "arn:") {
			return fmt.Errorf("sns sink: want a topic ARN, got %q", target)
		}
	case "webhook", "hec":
		_, err := parseEndpoint(kind, target)
		return err
	default:
		return fmt.Errorf("%w %q (want %s)", ErrUnknownSink, kindOnly(uri), URIHelp)
	}
	return nil
}

// splitURI reads "[FORMAT+]KIND[:TARGET]".
func splitURI(uri string, def Format) (format Format, kind, target string, err error) {
	format = def
	kind, target, _ = strings.Cut(uri, ":")
	if f, rest, ok := strings.Cut(kind, "+"); ok {
		if format, err = ParseFormat(f); err != nil {
			return "", "", "", err
		}
		kind = rest
	}
	return format, kind, target, nil
}

func open(ctx context.Context, uri string, o Options, loader *awsLoader) (Sink, error) {
	if uri == "" || uri == "-" {
		uri = "stdout"
	}
	if err := CheckURI(uri); err != nil {
		return nil, err
	}
	format, kind, target, err := splitURI(uri, o.Format)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", kindOnly(uri), err)
	}
	switch kind {
	case "stdout":
		w := o.Stdout
		s := NewStdout()
		if w != nil {
			s = NewWriter("stdout", w)
		}
		s.format, s.render = format, o.Render
		return s, nil
	case "file":
		return openFile(target, o.File, format, o.Render)
	case "sqs", "sns", "eventbridge", "securityhub":
		cfg, err := loader.get(ctx)
		if err != nil {
			return nil, err
		}
		return openAWS(kind, target, format, cfg, o)
	case "webhook":
		u, err := parseEndpoint(kind, target)
		if err != nil {
			return nil, err
		}
		key, err := o.Webhook.secretSource().load(o.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("webhook sink signing key: %w", err)
		}
		header := http.Header{}
		for k, vs := range o.Webhook.Headers {
			for _, v := range vs {
				header.Add(k, v)
			}
		}
		header.Set("Content-Type", "application/json")
		header.Set("User-Agent", "sessionwatch")
		sigHdr := o.Webhook.SignatureHeader
		if sigHdr == "" {
			sigHdr = DefaultSignatureHeader
		}
		snd := &webhookSender{client: o.httpClient(), url: u, key: key, sigHdr: sigHdr, header: header}
		return newBatchSink("webhook:"+safeURL(target), snd, renderer(format, o.Render), o), nil
	case "hec":
		u, err := parseEndpoint(kind, target)
		if err != nil {
			return nil, err
		}
		token, err := o.HEC.tokenSource().load(o.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("hec sink token: %w", err)
		}
		cfg := o.HEC
		if cfg.Host == "" {
			cfg.Host = hostname()
		}
		if cfg.Source == "" {
			cfg.Source = "sessionwatch"
		}
		if cfg.Sourcetype == "" {
			cfg.Sourcetype = map[Format]string{FormatNative: "sessionwatch:finding", FormatOCSF: "sessionwatch:ocsf", FormatASFF: "sessionwatch:asff"}[format]
		}
		snd := &hecSender{client: o.httpClient(), url: u, token: token}
		return newBatchSink("hec:"+safeURL(target), snd, hecRender(cfg, format, o.Render), o), nil
	default:
		return nil, fmt.Errorf("%w %q (want %s)", ErrUnknownSink, kindOnly(uri), URIHelp)
	}
}

// kindOnly is the part of a URI before its target, safe to quote.
func kindOnly(uri string) string {
	kind, _, _ := strings.Cut(uri, ":")
	return kind
}

func openAWS(kind, target string, format Format, cfg aws.Config, o Options) (Sink, error) {
	// One retry policy, ours: it retries single failed items, honours
	// Retry-After and stops at the caller's deadline. The SDK's own
	// retryer would multiply attempts.
	noRetry := func() aws.Retryer { return aws.NopRetryer{} }
	name := kind + ":" + target
	switch kind {
	case "sqs":
		api := sqs.NewFromConfig(cfg, func(so *sqs.Options) { so.Retryer = noRetry() })
		snd := newSQSSender(api, target, format)
		return newBatchSink(name, snd, renderer(format, o.Render), o), nil
	case "sns":
		api := sns.NewFromConfig(cfg, func(so *sns.Options) { so.Retryer = noRetry() })
		snd := newSNSSender(api, target, format)
		return newBatchSink(name, snd, renderer(format, o.Render), o), nil
	case "eventbridge":
		api := eventbridge.NewFromConfig(cfg, func(eo *eventbridge.Options) { eo.Retryer = noRetry() })
		snd := &eventBridgeSender{api: api, bus: target, source: o.EventBridge.Source, detailType: o.EventBridge.DetailType}
		return newBatchSink(name, snd, renderer(format, o.Render), o), nil
	default: // securityhub: always ASFF
		rc := o.Render
		if target != "" { // securityhub:REGION overrides the SDK's region
			cfg.Region = target
		}
		if rc.Region == "" {
			rc.Region = cfg.Region
		}
		api := securityhub.NewFromConfig(cfg, func(so *securityhub.Options) { so.Retryer = noRetry() })
		snd := &securityHubSender{api: api, limiter: rate.NewLimiter(rate.Limit(o.SecurityHub.CallsPerSecond), 1)}
		return newBatchSink(strings.TrimSuffix(name, ":"), snd, renderer(FormatASFF, rc), o), nil
	}
}

func renderer(format Format, rc RenderConfig) func(*Finding) ([]byte, error) {
	return func(f *Finding) ([]byte, error) { return Render(f, format, rc) }
}

func (o Options) httpClient() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return defaultHTTPClient()
}

func (c WebhookConfig) secretSource() SecretSource {
	if c.Secret.Env == "" && c.Secret.File == "" {
		return SecretSource{Env: EnvWebhookSecret}
	}
	return c.Secret
}

func (c HECConfig) tokenSource() SecretSource {
	if c.Token.Env == "" && c.Token.File == "" {
		return SecretSource{Env: EnvHECToken}
	}
	return c.Token
}

// Multi fans findings out to several sinks. A finding is accepted only when
// every sink accepted it; a failed Write reports the union of the sinks'
// failed indexes, so the caller retries those findings on every sink (the
// ones that had accepted receive a duplicate, which the finding id dedupes).
type Multi struct {
	sinks []Sink
}

// NewMulti fans out to sinks, written concurrently.
func NewMulti(sinks ...Sink) *Multi { return &Multi{sinks: sinks} }

// Sinks returns the sinks fanned out to.
func (m *Multi) Sinks() []Sink { return m.sinks }

// Name lists the sinks' names.
func (m *Multi) Name() string {
	names := make([]string, len(m.sinks))
	for i, s := range m.sinks {
		names[i] = s.Name()
	}
	return "multi(" + strings.Join(names, ",") + ")"
}

// Write writes to every sink at once and merges their failures.
func (m *Multi) Write(ctx context.Context, findings []Finding) error {
	if len(findings) == 0 {
		return nil
	}
	errs := make([]error, len(m.sinks))
	var wg sync.WaitGroup
	for i, s := range m.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Write(ctx, findings)
		}()
	}
	wg.Wait()
	var failed map[int]error
	for i, err := range errs {
		if err == nil {
			continue
		}
		if failed == nil {
			failed = map[int]error{}
		}
		name := m.sinks[i].Name()
		var be *BatchError
		if !errors.As(err, &be) { // not per item: every finding failed on this sink
			be = failAll(name, len(findings), err)
		}
		for idx, e := range be.Failed {
			e = fmt.Errorf("%s: %w", name, e)
			if prev, ok := failed[idx]; ok {
				e = errors.Join(prev, e)
			}
			failed[idx] = e
		}
	}
	if failed != nil {
		return &BatchError{Sink: m.Name(), Failed: failed}
	}
	return nil
}

// Close closes every sink, flushing what they hold.
func (m *Multi) Close(ctx context.Context) error {
	errs := make([]error, len(m.sinks))
	var wg sync.WaitGroup
	for i, s := range m.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Close(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
