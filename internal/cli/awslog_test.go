package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
)

// The logger an AWS configuration carries writes the SDK's lines as JSON,
// with the SDK's classification as the level.
func TestSDKLoggerWritesJSONLines(t *testing.T) {
	for _, tc := range []struct {
		class logging.Classification
		level string
	}{
		{logging.Warn, "warn"},
		{logging.Debug, "debug"},
		{logging.Classification("OTHER"), "info"},
	} {
		t.Run(string(tc.class), func(t *testing.T) {
			var buf bytes.Buffer
			log := zerolog.New(&buf).Level(zerolog.DebugLevel)
			cfg, err := config.LoadDefaultConfig(context.Background(), config.WithLogger(SDKLogger(log)),
				config.WithRegion("us-east-1"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Logger.Logf(tc.class, "failed to close HTTP response body, this may affect connection reuse: %s", "EOF")
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
			}
			want := map[string]any{"level": tc.level, "component": "aws-sdk",
				"message": "failed to close HTTP response body, this may affect connection reuse: EOF"}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v (line %q)", k, line[k], v, buf.String())
				}
			}
		})
	}
}
