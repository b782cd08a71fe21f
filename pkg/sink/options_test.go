package sink

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestOptionsValidate: Validate reports each bad field and changes nothing;
// the zero options are valid and take the defaults.
func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want []string // in the error; none is valid
	}{
		{"zero", Options{}, nil},
		{"a format", Options{Format: FormatASFF}, nil},
		{"negative waits take defaults", Options{Batch: BatchConfig{MaxWait: -time.Second}}, nil},
		{"unknown format", Options{Format: "xml"}, []string{`"xml"`}},
		{"negative batch size", Options{Batch: BatchConfig{MaxItems: -1}}, []string{"batch size -1"}},
		{"both", Options{Format: "xml", Batch: BatchConfig{MaxItems: -1}}, []string{`"xml"`, "batch size -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.o
			err := tc.o.Validate()
			if !reflect.DeepEqual(tc.o, before) {
				t.Errorf("Validate changed the options: %+v, was %+v", tc.o, before)
			}
			if len(tc.want) == 0 && err != nil || len(tc.want) > 0 && err == nil {
				t.Fatalf("Validate: %v, want errors about %q", err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v, want it to name %s", err, w)
				}
			}
		})
	}
	d := Options{}.withDefaults()
	if d.Format != FormatNative || d.Batch.MaxWait != 200*time.Millisecond || d.Batch.MaxInFlight != 2 || d.Retry.MaxAttempts != 5 ||
		d.EventBridge.Source != "sessionwatch" || d.SecurityHub.CallsPerSecond != 10 || d.Observer == nil || d.Log == nil {
		t.Errorf("withDefaults: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("the defaults are not valid: %v", err)
	}
}
