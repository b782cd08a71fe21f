package streamer

import (
	"strings"
	"testing"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// TestFatalRecordsError: the streamer drops one unusable record of a log
// object and reads on, but sends an object it cannot read on to the redrive
// policy. The two are told apart by cloudtrail's error type, not its text.
func TestFatalRecordsError(t *testing.T) {
	const good = `{"eventVersion":"1.08","eventTime":"2026-11-20T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventID":"e1","recipientAccountId":"111122223333"}`
	tests := []struct {
		name      string
		log       string
		wantFatal []bool // per error Records yields, in order
	}{
		{"one record of the wrong type", `{"Records":[` + good + `,{"eventName":["x"]},` + good + `]}`, []bool{false}},
		{"one record without a time", `{"Records":[{"eventName":"AssumeRole"},` + good + `]}`, []bool{false}},
		{"truncated", `{"Records":[` + good, []bool{true}},
		{"invalid JSON inside", `{"Records":[` + good + `,{"a":}]}`, []bool{true}},
		{"no Records array", `{"Other":[]}`, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []bool
			for _, err := range cloudtrail.Records(strings.NewReader(tt.log)) {
				if err != nil {
					got = append(got, fatalRecordsError(err))
				}
			}
			if len(got) != len(tt.wantFatal) {
				t.Fatalf("errors %v, want %v", got, tt.wantFatal)
			}
			for i := range got {
				if got[i] != tt.wantFatal[i] {
					t.Errorf("error %d fatal = %v, want %v", i, got[i], tt.wantFatal[i])
				}
			}
		})
	}
}
