package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/internal/sinkfake"
	"github.com/sessionwatch/sessionwatch/internal/testkit"
)

// recordingObserver keeps every label it is given.
type recordingObserver struct {
	mu     sync.Mutex
	labels []string
}

func (o *recordingObserver) add(labels ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.labels = append(o.labels, labels...)
}
func (o *recordingObserver) Delivered(sink string, _ int)      { o.add(sink) }
func (o *recordingObserver) Failed(sink, reason string, _ int) { o.add(sink, reason) }
func (o *recordingObserver) Retried(sink, reason string)       { o.add(sink, reason) }
func (o *recordingObserver) all() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.labels, "\n")
}

// TestSecretsNeverLeak drives the HEC and webhook sinks through wrong
// credentials, server errors, throttling, an unreachable endpoint and a
// timeout, with debug logging and an observer, and checks that no secret
// (HEC token, webhook key, a secret header, a token in the webhook URL's
// path or query) appears in any log line, error message, sink name or
// metric label.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		hecToken    = "HEC-TOKEN-5f2b9c"
		webhookKey  = "WEBHOOK-KEY-77aa01"
		headerValue = "Bearer HEADER-SECRET-3c4d"
		pathToken   = "PATH-TOKEN-e9e9"
		queryToken  = "QUERY-TOKEN-1b1b"
	)
	secrets := []string{hecToken, webhookKey, headerValue, "HEADER-SECRET-3c4d", pathToken, queryToken}

	var logs testkit.LockedBuffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	obs := &recordingObserver{}
	var texts []string // every error message and name seen
	keyFile := filepath.Join(t.TempDir(), "webhook.key")
	if err := os.WriteFile(keyFile, []byte(webhookKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Options{
		Log: &log, Observer: obs,
		LookupEnv: testEnv(map[string]string{EnvHECToken: hecToken}),
		Webhook:   WebhookConfig{Secret: SecretSource{File: keyFile}, Headers: map[string][]string{"Authorization": {headerValue}}},
		Batch:     BatchConfig{MaxWait: 10 * time.Millisecond},
		Retry:     RetryConfig{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, CallTimeout: 300 * time.Millisecond},
	}
	write := func(s Sink, ctx context.Context) {
		t.Helper()
		texts = append(texts, s.Name())
		if err := s.Write(ctx, testFindings("secret", 3)); err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			var be *BatchError
			if errors.As(err, &be) {
				for _, e := range be.Failed {
					texts = append(texts, e.Error())
				}
			}
		}
	}
	open := func(uri string) Sink {
		t.Helper()
		s, err := Open(uri, base)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	}

	// HEC: a receiver that wants another token, then one that is busy.
	wrongHEC := sinkfake.NewHEC(t, "another-token")
	write(open("hec:"+wrongHEC.URL+"/services/collector/event"), context.Background())
	busyHEC := sinkfake.NewHEC(t, hecToken)
	busyHEC.Throttle(10, 0)
	write(open("hec:"+busyHEC.URL+"/services/collector/event"), context.Background())

	// Webhook: a receiver with another key; a throttling one; one that
	// hangs; and an unreachable one. The URL carries tokens.
	secretPath := "/hooks/" + pathToken + "?token=" + queryToken
	wrongHook := sinkfake.NewWebhook(t, []byte("another-key"), DefaultSignatureHeader)
	write(open("webhook:"+wrongHook.URL+secretPath), context.Background())
	slowHook := sinkfake.NewWebhook(t, []byte(webhookKey), DefaultSignatureHeader)
	slowHook.Throttle(10, 0)
	write(open("webhook:"+slowHook.URL+secretPath), context.Background())
	slowHook.Throttle(0, 0)
	slowHook.Delay(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	write(open("webhook:"+slowHook.URL+secretPath), ctx)
	cancel()
	gone := sinkfake.NewWebhook(t, []byte(webhookKey), DefaultSignatureHeader)
	goneURL := gone.URL
	gone.Close()
	write(open("webhook:"+goneURL+secretPath), context.Background())

	// Configuration errors name the variable, the file or the host only.
	for _, o := range []Options{
		{LookupEnv: testEnv(nil)},
		{LookupEnv: testEnv(nil), HEC: HECConfig{Token: SecretSource{File: filepath.Join(t.TempDir(), "missing")}}},
	} {
		if _, err := Open("hec:https://splunk.example:8088/services/collector/event?"+queryToken, o); err == nil {
			t.Error("HEC sink opened without a token")
		} else {
			texts = append(texts, err.Error())
		}
	}
	if _, err := Open("webhook:ftp://"+pathToken+"@hooks.example/"+pathToken, base); err == nil {
		t.Error("ftp webhook accepted")
	} else {
		texts = append(texts, err.Error())
	}

	// The secret types print nothing.
	sec := newSecret(webhookKey)
	holder := struct{ k Secret }{sec}
	js, _ := json.Marshal(map[string]any{"k": sec})
	texts = append(texts, fmt.Sprintf("%v %+v %#v %s %v %+v", sec, sec, sec, sec, holder, holder), string(js))

	if len(texts) < 10 || logs.String() == "" || obs.all() == "" {
		t.Fatalf("the scenarios produced too little to check: %d texts, %d log bytes, labels %q", len(texts), len(logs.String()), obs.all())
	}
	for _, secret := range secrets {
		for _, text := range texts {
			if strings.Contains(text, secret) {
				t.Errorf("secret %q in error or name: %s", secret, text)
			}
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("secret %q in logs:\n%s", secret, logs.String())
		}
		if strings.Contains(obs.all(), secret) {
			t.Errorf("secret %q in metric labels: %s", secret, obs.all())
		}
	}
	// The checks looked at real failures.
	joined := strings.Join(texts, "\n")
	for _, want := range []string{"HTTP 403", "HTTP 401", "HTTP 429", "deadline exceeded", "connection refused", EnvHECToken} {
		if !strings.Contains(joined, want) {
			t.Errorf("no error mentions %q; errors:\n%s", want, joined)
		}
	}
}

func TestSecretSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testEnv(map[string]string{"TOKEN": "from-env"})
	if s, err := (SecretSource{Env: "TOKEN", File: file}).load(env); err != nil || s.reveal() != "from-file" {
		t.Errorf("file wins: %q %v", s.reveal(), err)
	}
	if s, err := (SecretSource{Env: "TOKEN"}).load(env); err != nil || s.reveal() != "from-env" {
		t.Errorf("env: %q %v", s.reveal(), err)
	}
	if _, err := (SecretSource{Env: "NOPE"}).load(env); !errors.Is(err, ErrNoSecret) {
		t.Errorf("missing env: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := (SecretSource{File: empty}).load(env); !errors.Is(err, ErrNoSecret) {
		t.Errorf("empty file: %v", err)
	}
}
