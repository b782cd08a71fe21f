package cloudtrail

import (
	json "github.com/goccy/go-json"
)

// DecodeRecord decodes one bare CloudTrail record, such as the
// CloudTrailEvent string of a LookupEvents result, with the same decoder
// as log files use: one decode, no shape detection. It neither applies the
// account allowlist nor the scope check: see Decoder.CheckRecord.
func DecodeRecord(b []byte) (*Event, error) {
	var raw rawRecord
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, &SyntaxError{Shape: ShapeRecord, Err: err}
	}
	if !raw.present() {
		return nil, &ShapeError{Detail: "not a CloudTrail record"}
	}
	return raw.toEvent()
}
