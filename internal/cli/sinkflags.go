package cli

import (
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// SinkFlags are the sink flags shared by the streamer and the backfill. Each
// has its SESSIONWATCH_ variable through Parse. Secrets have no flag:
// the HEC token and the webhook key come from SESSIONWATCH_HEC_TOKEN and
// SESSIONWATCH_WEBHOOK_SECRET or from the files named by --hec-token-file
// and --webhook-secret-file.
type SinkFlags struct {
	sinks, headers               List
	format                       string
	batchSize                    int
	batchWait, callTimeout       time.Duration
	retries                      int
	fileMaxBytes                 int64
	fileBackups                  int
	fileSync                     time.Duration
	hookKeyFile, hookSigHeader   string
	hecTokenFile, hecIndex       string
	hecSourcetype                string
	securityHubAccount, ebSource string
	ebDetailType                 string
	defaultSink                  string
	views                        []SinkView
}

// A SinkView is a --format value that a command renders itself, for people,
// on stdout (the backfill's table), besides the sink formats. With a view
// selected the default sink is not used (the view takes stdout), a stdout
// sink is refused, and the other sinks take the native format.
type SinkView struct {
	Name string // the --format value
	Help string // what it shows, for the flag's usage
}

// AddSinkFlags registers the sink flags on fs; defaultSink is used when no
// --sink is given. views are the command's own --format values, if any.
func AddSinkFlags(fs *flag.FlagSet, defaultSink string, views ...SinkView) *SinkFlags {
	f := &SinkFlags{defaultSink: defaultSink, views: views}
	fs.Var(&f.sinks, "sink", "where findings go (repeatable; every sink must accept a finding): "+sink.URIHelp)
	formatHelp := "finding format for sinks that carry any: native, ocsf or asff (securityhub is always asff)"
	for _, v := range views {
		formatHelp += "; " + v.Name + ": " + v.Help
	}
	fs.StringVar(&f.format, "format", "native", formatHelp)
	fs.IntVar(&f.batchSize, "sink-batch-size", 0, "findings per call of a network sink (0: the service's limit)")
	fs.DurationVar(&f.batchWait, "sink-batch-wait", 200*time.Millisecond, "longest a finding waits for a batch to fill")
	fs.IntVar(&f.retries, "sink-max-attempts", 5, "attempts per call of a network sink, the first included")
	fs.DurationVar(&f.callTimeout, "sink-call-timeout", 30*time.Second, "timeout of one call of a network sink")
	fs.Int64Var(&f.fileMaxBytes, "file-max-bytes", 0, "rotate a file sink before it grows past this size (0: never)")
	fs.IntVar(&f.fileBackups, "file-max-backups", 0, "rotated files kept per file sink (0: all)")
	fs.DurationVar(&f.fileSync, "file-sync-interval", time.Second, "how often a file sink syncs to disk (and always on exit)")
	fs.StringVar(&f.hookKeyFile, "webhook-secret-file", "", "file holding the webhook HMAC key (default: $"+sink.EnvWebhookSecret+")")
	fs.StringVar(&f.hookSigHeader, "webhook-signature-header", sink.DefaultSignatureHeader, "header carrying the webhook body's HMAC-SHA256")
	fs.Var(&f.headers, "webhook-header", `extra webhook header "Name: value" (repeatable)`)
	fs.StringVar(&f.hecTokenFile, "hec-token-file", "", "file holding the Splunk HEC token (default: $"+sink.EnvHECToken+")")
	fs.StringVar(&f.hecIndex, "hec-index", "", "Splunk index (default: the token's)")
	fs.StringVar(&f.hecSourcetype, "hec-sourcetype", "", "Splunk sourcetype (default: sessionwatch:finding, sessionwatch:ocsf or sessionwatch:asff)")
	fs.StringVar(&f.securityHubAccount, "securityhub-account", "", "account importing ASFF findings: ProductArn and AwsAccountId (default: each event's account)")
	fs.StringVar(&f.ebSource, "eventbridge-source", "sessionwatch", "EventBridge event source")
	fs.StringVar(&f.ebDetailType, "eventbridge-detail-type", "sessionwatch finding", "EventBridge event detail-type")
	return f
}

// URIs are the --sink values, or the default sink when none is given and
// --format names no view (a view takes stdout instead).
func (f *SinkFlags) URIs() []string {
	if f.View() != "" {
		return f.sinks.Values()
	}
	return f.sinks.Values(f.defaultSink)
}

// View returns the view --format names, or "" when it names a sink format
// (or nothing valid: Options reports that).
func (f *SinkFlags) View() string {
	_, view, _ := f.output()
	return view
}

// output reads --format, the one place it is parsed: one of the views
// (the sinks then take the native format) or a sink format.
func (f *SinkFlags) output() (format sink.Format, view string, err error) {
	value := strings.ToLower(strings.TrimSpace(f.format))
	for _, v := range f.views {
		if value == strings.ToLower(v.Name) {
			return sink.FormatNative, v.Name, nil
		}
	}
	if format, err = sink.ParseFormat(f.format); err != nil && len(f.views) > 0 {
		names := make([]string, 0, len(sink.Formats())+len(f.views))
		for _, ff := range sink.Formats() {
			names = append(names, string(ff))
		}
		for _, v := range f.views {
			names = append(names, v.Name)
		}
		return "", "", fmt.Errorf("unknown format %q (want %s)", f.format, strings.Join(names, ", "))
	}
	return format, "", err
}

// Options turns the parsed flags into Options; the caller adds what flags
// do not carry (AWS config, logger, observer, product version, LookupEnv).
func (f *SinkFlags) Options() (sink.Options, error) {
	format, view, err := f.output()
	if err != nil {
		return sink.Options{}, fmt.Errorf("--format: %w", err)
	}
	if view != "" {
		for _, uri := range f.URIs() {
			if sink.IsStdout(uri) {
				return sink.Options{}, fmt.Errorf("--format %s writes to stdout: it cannot share it with --sink %s", view, uri)
			}
		}
	}
	headers := http.Header{}
	for _, h := range f.headers.Values() {
		name, value, err := sink.ParseHeader(h)
		if err != nil {
			return sink.Options{}, fmt.Errorf("--webhook-header: %w", err)
		}
		headers.Add(name, value)
	}
	if f.batchSize < 0 || f.retries < 1 || f.batchWait <= 0 || f.callTimeout <= 0 {
		return sink.Options{}, fmt.Errorf("sink batching: want --sink-batch-size ≥ 0, --sink-max-attempts ≥ 1 and positive durations")
	}
	for _, uri := range f.URIs() {
		if strings.TrimSpace(uri) == "" {
			return sink.Options{}, fmt.Errorf("--sink: empty URI")
		}
	}
	return sink.Options{
		Format:      format,
		Render:      sink.RenderConfig{AccountID: f.securityHubAccount},
		Batch:       sink.BatchConfig{MaxItems: f.batchSize, MaxWait: f.batchWait},
		Retry:       sink.RetryConfig{MaxAttempts: f.retries, CallTimeout: f.callTimeout},
		File:        sink.FileConfig{MaxBytes: f.fileMaxBytes, MaxBackups: f.fileBackups, SyncInterval: f.fileSync},
		Webhook:     sink.WebhookConfig{Secret: sink.SecretSource{Env: sink.EnvWebhookSecret, File: f.hookKeyFile}, SignatureHeader: f.hookSigHeader, Headers: headers},
		HEC:         sink.HECConfig{Token: sink.SecretSource{Env: sink.EnvHECToken, File: f.hecTokenFile}, Index: f.hecIndex, Sourcetype: f.hecSourcetype},
		EventBridge: sink.EventBridgeConfig{Source: f.ebSource, DetailType: f.ebDetailType},
	}, nil
}
