package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook and HEC limits.
const (
	WebhookMaxPerCall   = 10      // findings posted concurrently, one request each
	WebhookMaxBodyBytes = 1 << 20 // one finding
	HECMaxPerCall       = 100     // events in one HEC request
	HECMaxBodyBytes     = 1 << 20 // one HEC request (Splunk's max_content_length can be lower)
	webhookParallel     = 4
)

// DefaultSignatureHeader carries the webhook body's HMAC-SHA256, as
// "sha256=<hex>".
const DefaultSignatureHeader = "X-Sessionwatch-Signature-256"

// WebhookConfig sets the generic webhook sink.
type WebhookConfig struct {
	// Secret is the HMAC key; default from SESSIONWATCH_WEBHOOK_SECRET.
	// Required: a receiver must be able to tell our findings from forged
	// ones.
	Secret SecretSource
	// SignatureHeader names the signature header; default
	// X-Sessionwatch-Signature-256.
	SignatureHeader string
	// Headers are added to every request (e.g. an API gateway's routing
	// header). They are never logged.
	Headers http.Header
}

// HECConfig sets the Splunk HTTP Event Collector sink.
type HECConfig struct {
	// Token is the HEC token; default from SESSIONWATCH_HEC_TOKEN.
	Token SecretSource
	// Envelope fields; defaults: host = this host's name, source =
	// "sessionwatch", sourcetype = "sessionwatch:finding" (native),
	// "sessionwatch:ocsf" or "sessionwatch:asff". Index is omitted when
	// empty (the token's default index).
	Host, Source, Sourcetype, Index string
}

// ParseHeader reads a "Name: value" header flag.
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
		return "", "", errors.New(`header: want "Name: value"`)
	}
	return http.CanonicalHeaderKey(name), strings.TrimSpace(value), nil
}

// safeURL is a URL without what may be a credential: user info, path and
// query (webhook URLs often carry a token in either). It names a sink in
// logs, errors and metric labels.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "invalid-url"
	}
	return u.Scheme + "://" + u.Host
}

func parseEndpoint(kind, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// Not %q of raw: it may hold a token.
		return nil, fmt.Errorf("%s sink: want an http(s) URL, got %s", kind, safeURL(raw))
	}
	return u, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// A redirect would replay signed bodies and tokens to another
		// address: answer it as a failure instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post sends one request and maps the answer to nil or an error that names
// no URL (http.Client's errors quote the whole URL).
func post(ctx context.Context, client *http.Client, u *url.URL, header http.Header, body []byte, parse func(*http.Response, []byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request to %s: %w", safeURL(u.String()), errors.Unwrap(err))
	}
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post to %s: %w", safeURL(u.String()), err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return parse(resp, text)
}

func statusError(resp *http.Response, text string) *HTTPError {
	return &HTTPError{Status: resp.StatusCode, Text: text, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// --- webhook ---

type webhookSender struct {
	client *http.Client
	url    *url.URL
	key    Secret
	sigHdr string
	header http.Header
}

func (s *webhookSender) limits() callLimits {
	return callLimits{maxItems: WebhookMaxPerCall, maxItemBytes: WebhookMaxBodyBytes}
}

// Sign is the webhook signature of a body: "sha256=" and the hex
// HMAC-SHA256 of the body under key. Receivers compare it in constant time.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (s *webhookSender) send(ctx context.Context, items []*item) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, webhookParallel)
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h := s.header.Clone()
			h.Set(s.sigHdr, Sign([]byte(s.key.reveal()), it.body))
			h.Set("X-Sessionwatch-Finding-Id", it.id)
			it.err = post(ctx, s.client, s.url, h, it.body, func(resp *http.Response, _ []byte) error {
				if resp.StatusCode/100 == 2 {
					return nil
				}
				return statusError(resp, "") // a receiver's body may echo the request
			})
		}()
	}
	wg.Wait()
	return nil
}

// --- Splunk HEC ---

type hecSender struct {
	client *http.Client
	url    *url.URL
	token  Secret
}

func (s *hecSender) limits() callLimits {
	// Each event goes on its own line: the newline counts towards the body.
	return callLimits{maxItems: HECMaxPerCall, maxBytes: HECMaxBodyBytes, maxItemBytes: HECMaxBodyBytes - 1,
		size: func(it *item) int { return len(it.body) + 1 }}
}

// hecEvent is HEC's event envelope.
type hecEvent struct {
	Time       json.Number `json:"time"`
	Host       string      `json:"host,omitempty"`
	Source     string      `json:"source"`
	Sourcetype string      `json:"sourcetype"`
	Index      string      `json:"index,omitempty"`
	Event      any         `json:"event"`
}

// hecRender wraps a rendering in the HEC envelope; time is the detection
// time in epoch seconds with milliseconds.
func hecRender(cfg HECConfig, format Format, rc RenderConfig) func(*Finding) ([]byte, error) {
	return func(f *Finding) ([]byte, error) {
		// One encoding of the envelope with the finding inside: a
		// rendering wrapped as json.RawMessage would be scanned again and
		// HTML-escaped, unlike every other sink's output.
		v, err := view(f, format, rc)
		if err != nil {
			return nil, err
		}
		ms := f.DetectedAt.UnixMilli()
		b, err := encodeJSON(hecEvent{
			Time: json.Number(fmt.Sprintf("%d.%03d", ms/1000, ms%1000)),
			Host: cfg.Host, Source: cfg.Source, Sourcetype: cfg.Sourcetype, Index: cfg.Index, Event: v,
		})
		if err != nil {
			return nil, fmt.Errorf("render %s finding for HEC: %w", format, err)
		}
		return b, nil
	}
}

// hecAnswer is HEC's response body.
type hecAnswer struct {
	Text               string `json:"text"`
	Code               int    `json:"code"`
	InvalidEventNumber *int   `json:"invalid-event-number"`
}

func (s *hecSender) send(ctx context.Context, items []*item) error {
	var body bytes.Buffer
	for _, it := range items {
		body.Write(it.body)
		body.WriteByte('\n')
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "sessionwatch")
	h.Set("Authorization", "Splunk "+s.token.reveal())
	return post(ctx, s.client, s.url, h, body.Bytes(), func(resp *http.Response, text []byte) error {
		var a hecAnswer
		_ = json.Unmarshal(text, &a)
		if resp.StatusCode/100 == 2 && a.Code == 0 {
			return nil
		}
		he := statusError(resp, truncate(a.Text, 200))
		if a.InvalidEventNumber == nil || *a.InvalidEventNumber < 0 || *a.InvalidEventNumber >= len(items) {
			return he
		}
		// HEC stops at the invalid event. Whether the ones before it were
		// indexed is not reported: they are retried (the finding id
		// dedupes), the invalid one is not.
		bad := *a.InvalidEventNumber
		for i, it := range items {
			if i == bad {
				it.err = &ItemError{Code: "hec-" + strconv.Itoa(a.Code), Message: he.Error()}
			} else {
				it.err = &ItemError{Code: "hec-not-indexed", Message: "batch stopped at event " + strconv.Itoa(bad), Retryable: true}
			}
		}
		return nil
	})
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
