package cli

import (
	"fmt"

	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
)

// SDKLogger routes the AWS SDK's own log lines (config.WithLogger) through
// log as JSON lines with component "aws-sdk": the SDK's Warn is a warning,
// its Debug a debug line, anything else info.
func SDKLogger(log zerolog.Logger) logging.Logger {
	return sdkLogger{log: log.With().Str("component", "aws-sdk").Logger()}
}

type sdkLogger struct{ log zerolog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := zerolog.InfoLevel
	switch c {
	case logging.Warn:
		level = zerolog.WarnLevel
	case logging.Debug:
		level = zerolog.DebugLevel
	}
	l.log.WithLevel(level).Msg(fmt.Sprintf(format, v...))
}
