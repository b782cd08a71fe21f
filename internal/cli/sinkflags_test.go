package cli

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSinkFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := AddSinkFlags(fs, "stdout")
	env := map[string]string{"SESSIONWATCH_SINK": "file:/tmp/a,hec:https://splunk.example:8088/services/collector/event", "SESSIONWATCH_FORMAT": "ocsf"}
	if err := Parse(fs, []string{"--webhook-header", "X-Team: secops", "--hec-index", "sec"}, envMap(env)); err != nil {
		t.Fatal(err)
	}
	o, err := f.Options()
	if err != nil {
		t.Fatal(err)
	}
	if got := f.URIs(); len(got) != 2 || got[1] != "hec:https://splunk.example:8088/services/collector/event" {
		t.Errorf("URIs %v", got)
	}
	if o.Format != sink.FormatOCSF || o.HEC.Index != "sec" || o.HEC.Token.Env != sink.EnvHECToken || o.Webhook.Headers.Get("X-Team") != "secops" {
		t.Errorf("options %+v", o)
	}
	// No flag may take a secret's variable: Parse would feed it to the flag.
	fs.VisitAll(func(fl *flag.Flag) {
		if n := EnvName(fl.Name); n == sink.EnvHECToken || n == sink.EnvWebhookSecret {
			t.Errorf("flag --%s would read the secret variable %s", fl.Name, n)
		}
	})
	if err := fs.Parse([]string{"--format", "cef"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Options(); err == nil {
		t.Error("--format cef accepted")
	}
}

// TestSinkFlagsView: a command's own --format value (the backfill's table)
// takes stdout: no default sink, no stdout sink, native for the others.
func TestSinkFlagsView(t *testing.T) {
	table := SinkView{Name: "table", Help: "a table for people on stdout"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		view    string
		format  sink.Format
		uris    []string
		wantErr string
	}{
		{name: "default", view: "", format: sink.FormatNative, uris: []string{"stdout"}},
		{name: "sink format", args: []string{"--format", "ocsf"}, format: sink.FormatOCSF, uris: []string{"stdout"}},
		{name: "view", args: []string{"--format", "table"}, view: "table", format: sink.FormatNative},
		{name: "view from the environment, any case", env: map[string]string{"SESSIONWATCH_FORMAT": "Table"}, view: "table", format: sink.FormatNative},
		{name: "view and a file sink", args: []string{"--format", "table", "--sink", "file:/tmp/f.jsonl"}, view: "table",
			format: sink.FormatNative, uris: []string{"file:/tmp/f.jsonl"}},
		{name: "view and stdout", args: []string{"--format", "table", "--sink", "stdout"}, view: "table", wantErr: "cannot share it with --sink stdout"},
		{name: "view and formatted stdout", args: []string{"--format", "table", "--sink", "ocsf+stdout"}, view: "table", wantErr: "cannot share"},
		{name: "unknown", args: []string{"--format", "cef"}, wantErr: "want native, ocsf, asff, table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			f := AddSinkFlags(fs, "stdout", table)
			if err := Parse(fs, tt.args, envMap(tt.env)); err != nil {
				t.Fatal(err)
			}
			if got := f.View(); got != tt.view {
				t.Errorf("View() = %q, want %q", got, tt.view)
			}
			o, err := f.Options()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Options() error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Format != tt.format || !slices.Equal(f.URIs(), tt.uris) {
				t.Errorf("format %q URIs %q, want %q %q", o.Format, f.URIs(), tt.format, tt.uris)
			}
		})
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	AddSinkFlags(fs, "stdout", table)
	if usage := fs.Lookup("format").Usage; !strings.Contains(usage, "table: a table for people on stdout") {
		t.Errorf("--format usage does not describe the view: %s", usage)
	}
}
