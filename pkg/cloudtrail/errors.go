package cloudtrail

import (
	"errors"
	"fmt"
)

// The error classes a caller acts on. Every error the package returns
// matches exactly one of them with errors.Is.
var (
	// ErrMalformed: the message is not something sessionwatch can read
	// (invalid JSON, an unknown shape, a record without a usable time). The
	// streamer leaves such a message for the queue's redrive policy.
	ErrMalformed = errors.New("malformed message")
	// ErrRejected: a well-formed message that must not be trusted (an
	// envelope from another source or detail-type, an account outside the
	// allowlist). Counted and dropped unclassified.
	ErrRejected = errors.New("rejected message")
	// ErrOutOfScope: a genuine record of an event sessionwatch does not
	// classify. Counted and acknowledged.
	ErrOutOfScope = errors.New("event out of scope")
)

// SyntaxError wraps a JSON decoding failure with the shape being decoded.
type SyntaxError struct {
	Shape Shape
	Err   error
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("decode %s: %v", e.Shape, e.Err)
}
func (e *SyntaxError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// FileError is the last error Records yields: the log file cannot be read on
// from there (invalid JSON, no Records array, truncated). Every other error
// Records yields is about one record, and the records after it are read.
type FileError struct{ Err error }

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// ShapeError reports a JSON value that matches none of the intake shapes.
type ShapeError struct{ Detail string }

func (e *ShapeError) Error() string   { return "unrecognised message shape: " + e.Detail }
func (e *ShapeError) Is(t error) bool { return t == ErrMalformed }

// FieldError reports a record field that cannot be used.
type FieldError struct {
	Field string
	Value string
	Err   error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("field %s %q: %v", e.Field, truncate(e.Value, 64), e.Err)
}
func (e *FieldError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// EventTimeError reports a record whose eventTime is missing or unreadable,
// naming the event so that an operator can find it.
type EventTimeError struct {
	EventID   string
	EventName string
	Value     string // as the record had it; empty when missing or null
	Err       error
}

func (e *EventTimeError) Error() string {
	return fmt.Sprintf("%s: %v", describeEvent(e.EventID, e.EventName), e.Err)
}
func (e *EventTimeError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// TooLargeError reports a record over the cap for one record, on a JSON line
// or in a log file.
type TooLargeError struct{ Max int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("record over %d bytes, the cap for one record", e.Max)
}
func (e *TooLargeError) Is(t error) bool { return t == ErrMalformed || t == ErrLineTooLong }

// NullRecordError is a JSON null where a record belongs.
type NullRecordError struct{}

func (*NullRecordError) Error() string   { return "a null record" }
func (*NullRecordError) Is(t error) bool { return t == ErrMalformed }

// describeEvent names a record in an error message by what it has.
func describeEvent(id, name string) string {
	switch {
	case id != "" && name != "":
		return fmt.Sprintf("event %s (%s)", truncate(id, 64), truncate(name, 64))
	case id != "":
		return "event " + truncate(id, 64)
	case name != "":
		return truncate(name, 64) + " event without an eventID"
	default:
		return "a record without an eventID or eventName"
	}
}

// RejectError says which envelope or record property failed validation.
type RejectError struct {
	Field string // "source", "detail-type", "account", "detail.recipientAccountId", ...
	Got   string
	Want  string
	// Event, when the record was read, names it in the message.
	Event *Event
}

func (e *RejectError) Error() string {
	if e.Event != nil {
		return fmt.Sprintf("rejected %s: %s is %q, want %s", describeEvent(e.Event.ID, e.Event.Name), e.Field, truncate(e.Got, 64), e.Want)
	}
	return fmt.Sprintf("rejected: %s is %q, want %s", e.Field, truncate(e.Got, 64), e.Want)
}
func (e *RejectError) Is(t error) bool { return t == ErrRejected }

// ScopeError says why a record is not classified.
type ScopeError struct {
	EventSource string
	EventName   string
	Reason      string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("out of scope: %s %s: %s", truncate(e.EventSource, 64), truncate(e.EventName, 64), e.Reason)
}
func (e *ScopeError) Is(t error) bool { return t == ErrOutOfScope }

// truncate bounds attacker-supplied strings quoted in error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
