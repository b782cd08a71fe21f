package cloudtrail

import (
	"errors"
	"reflect"
	"testing"
)

// TestDecodeRecordMatchesDecodeMessage: a bare record decodes to the same
// Event either way, so LookupEvents results and queue messages agree.
func TestDecodeRecordMatchesDecodeMessage(t *testing.T) {
	d := NewDecoder(Config{})
	for id, rec := range publicRecords(t, "assume_role_records.jsonl") {
		msg, _ := d.DecodeMessage(rec) // out of scope still yields the event
		ev, err := DecodeRecord(rec)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if !reflect.DeepEqual(ev, msg.Event) {
			t.Errorf("%s: DecodeRecord\n%+v\nDecodeMessage\n%+v", id, ev, msg.Event)
		}
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	for name, in := range map[string]string{
		"invalid JSON": `{"eventTime":`,
		"not a record": `{"foo":1}`,
		"bad time":     `{"eventName":"AssumeRole","eventTime":"yesterday"}`,
		"array":        `[1,2]`,
	} {
		if _, err := DecodeRecord([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}
