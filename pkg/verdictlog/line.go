// Package verdictlog writes and reads the verdict log: one JSON line per
// event the streamer classified (tracked ones included), batched into
// gzip objects of one minute per streamer, so that a reconciliation against
// CloudTrail can list what the stream never saw. The schema
// (sessionwatch.verdicts/v1) and the object layout are documented in
// docs/VERDICTLOG.md.
package verdictlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Schema is the value of every line's "schema" field. A change that alters
// the meaning of a field bumps it; new optional fields do not, and readers
// ignore fields they do not know.
const Schema = "sessionwatch.verdicts/v1"

// Entry is one classified event.
type Entry struct {
	EventID   string    // CloudTrail eventID
	EventTime time.Time // CloudTrail eventTime
	Account   string    // recipientAccountId
	Region    string    // awsRegion
	EventName string    // AssumeRole, AssumeRoleWithSAML, ...
	Verdict   string    // classify.Verdict: tracked, no_source_identity, ...
	// FindingID is the finding_id of the finding the event produced
	// (classify.FindingID), empty when it produced none.
	FindingID string
}

// line is the wire form of an Entry.
type line struct {
	Schema    string `json:"schema"`
	EventID   string `json:"event_id"`
	EventTime string `json:"event_time"`
	Account   string `json:"account"`
	Region    string `json:"region"`
	EventName string `json:"event_name"`
	Verdict   string `json:"verdict"`
	FindingID string `json:"finding_id,omitempty"`
}

// validate reports what makes e unfit for the log: the fields a reader
// needs to match an event and the time range RFC 3339 can hold.
func (e *Entry) validate() error {
	switch {
	case e.EventID == "":
		return errors.New("no event_id")
	case e.Verdict == "":
		return errors.New("no verdict")
	case e.EventTime.IsZero():
		return errors.New("no event_time")
	}
	if y := e.EventTime.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("event_time year %d outside RFC 3339", y)
	}
	return nil
}

// AppendLine appends e as one JSON line, newline included, to b.
func AppendLine(b []byte, e Entry) ([]byte, error) {
	if err := e.validate(); err != nil {
		return b, fmt.Errorf("verdict log entry %q: %w", e.EventID, err)
	}
	j, err := json.Marshal(line{
		Schema:    Schema,
		EventID:   e.EventID,
		EventTime: e.EventTime.UTC().Format(time.RFC3339Nano),
		Account:   e.Account,
		Region:    e.Region,
		EventName: e.EventName,
		Verdict:   e.Verdict,
		FindingID: e.FindingID,
	})
	if err != nil {
		return b, fmt.Errorf("verdict log entry %q: %w", e.EventID, err)
	}
	return append(append(b, j...), '\n'), nil
}

// DecodeLine reads one line (without its newline). It refuses another
// schema, a line without event_id, event_time or verdict, and a time that
// is not RFC 3339; fields it does not know are ignored.
func DecodeLine(b []byte) (Entry, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Entry{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if l.Schema != Schema {
		return Entry{}, fmt.Errorf("schema %q, want %q", l.Schema, Schema)
	}
	if l.EventTime == "" {
		return Entry{}, errors.New("no event_time")
	}
	t, err := time.Parse(time.RFC3339Nano, l.EventTime)
	if err != nil {
		return Entry{}, fmt.Errorf("event_time: %w", err)
	}
	e := Entry{EventID: l.EventID, EventTime: t.UTC(), Account: l.Account, Region: l.Region,
		EventName: l.EventName, Verdict: l.Verdict, FindingID: l.FindingID}
	if err := e.validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}
