package cloudtrail

import (
	"bytes"
	"fmt"
	json "github.com/goccy/go-json"
	"net/url"
	"strings"
	"sync"
)

// Shape is the kind of message found on the queue.
type Shape string

const (
	ShapeEnvelope         Shape = "eventbridge"
	ShapeRecord           Shape = "record"
	ShapeSNS              Shape = "sns"
	ShapeCloudTrailNotice Shape = "cloudtrail-s3-notification"
	ShapeS3EventNotice    Shape = "s3-event-notification"
)

// What an EventBridge envelope must say to be accepted, and the eventSource
// of an STS call: the EventBridge rule matches on the same values (the
// Terraform contract test checks that).
const (
	EnvelopeSource     = "aws.sts"
	EnvelopeDetailType = "AWS API Call via CloudTrail"
	STSEventSource     = "sts.amazonaws.com"
)

const digestFolder = "CloudTrail-Digest/"

// DefaultEventNames are the STS calls classified unless configured otherwise.
func DefaultEventNames() []string {
	return []string{"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"}
}

// ObjectRef names a CloudTrail log object to fetch.
type ObjectRef struct {
	Bucket string
	Key    string
}

// Message is one decoded queue message: either a CloudTrail record (Event)
// or references to log objects (Objects).
type Message struct {
	// Shape is the outermost shape; Inner is the shape inside an SNS
	// notification (empty otherwise).
	Shape Shape
	Inner Shape
	// ID is the envelope's or SNS notification's id, when there is one.
	ID      string
	Event   *Event
	Objects []ObjectRef
}

// Config controls validation. The zero value accepts every account and the
// default event names.
type Config struct {
	// Accounts, when not empty, is the allowlist of account ids an envelope
	// (or a record outside an envelope) may come from.
	Accounts []string
	// EventNames in scope; DefaultEventNames when empty.
	EventNames []string
	// IncludeServiceCallers classifies calls made by AWS services
	// (userIdentity.type "AWSService": Lambda, ECS, EMR assuming their
	// execution roles). They never carry a SourceIdentity and are no
	// bypass by a person, so by default they are out of scope.
	IncludeServiceCallers bool
}

// Decoder decodes and validates messages. It is safe for concurrent use.
type Decoder struct {
	accounts       map[string]struct{}
	eventNames     map[string]struct{}
	serviceCallers bool
	// pool recycles decode targets: a rawMessage is large, and one per
	// message would be most of the decoder's garbage.
	pool sync.Pool
}

// NewDecoder builds a Decoder from cfg.
func NewDecoder(cfg Config) *Decoder {
	d := &Decoder{eventNames: map[string]struct{}{}, serviceCallers: cfg.IncludeServiceCallers}
	d.pool.New = func() any { return new(rawMessage) }
	if len(cfg.Accounts) > 0 {
		d.accounts = make(map[string]struct{}, len(cfg.Accounts))
		for _, a := range cfg.Accounts {
			d.accounts[a] = struct{}{}
		}
	}
	names := cfg.EventNames
	if len(names) == 0 {
		names = DefaultEventNames()
	}
	for _, n := range names {
		d.eventNames[n] = struct{}{}
	}
	return d
}

// rawMessage holds the top-level fields of every intake shape, so that one
// decode both detects the shape and reads it.
type rawMessage struct {
	rawRecord

	// EventBridge envelope.
	ID         string     `json:"id"`
	DetailType string     `json:"detail-type"`
	Source     string     `json:"source"`
	Account    string     `json:"account"`
	Detail     *rawRecord `json:"detail"`

	// SNS notification.
	Type      string `json:"Type"`
	MessageID string `json:"MessageId"`
	Message   string `json:"Message"`
	TopicArn  string `json:"TopicArn"`

	// CloudTrail delivery notification.
	S3Bucket    string   `json:"s3Bucket"`
	S3ObjectKey []string `json:"s3ObjectKey"`

	// S3 event notification.
	Records []s3EventRecord `json:"Records"`
}

type s3EventRecord struct {
	EventSource string `json:"eventSource"`
	S3          *struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key string `json:"key"`
		} `json:"object"`
	} `json:"s3"`
}

// DecodeMessage detects the shape of body, decodes it once and validates it.
// A record is returned even when it is out of scope, together with an error
// matching ErrOutOfScope, so callers can count it by name.
func (d *Decoder) DecodeMessage(body []byte) (Message, error) {
	if string(bytes.TrimSpace(body)) == "null" {
		return Message{}, &NullRecordError{}
	}
	raw := d.pool.Get().(*rawMessage)
	defer d.release(raw)
	if err := json.Unmarshal(body, raw); err != nil {
		return Message{}, &SyntaxError{Shape: "message", Err: err}
	}
	msg, err := d.fromRaw(raw, false)
	if err != nil || msg.Shape != ShapeSNS {
		return msg, err
	}
	// SNS wraps one of the other shapes as a JSON string: decode that once.
	inner := d.pool.Get().(*rawMessage)
	defer d.release(inner)
	if err := json.Unmarshal([]byte(raw.Message), inner); err != nil {
		return msg, &SyntaxError{Shape: ShapeSNS, Err: err}
	}
	in, err := d.fromRaw(inner, true)
	in.Inner, in.Shape = in.Shape, ShapeSNS
	if in.ID == "" {
		in.ID = raw.MessageID
	}
	return in, err
}

// release clears a decode target and returns it to the pool. Nothing keeps
// a reference into it: toEvent copies what it reads.
func (d *Decoder) release(raw *rawMessage) {
	*raw = rawMessage{}
	d.pool.Put(raw)
}

func (d *Decoder) fromRaw(raw *rawMessage, insideSNS bool) (Message, error) {
	switch {
	case raw.DetailType != "" || raw.Source != "" || raw.Detail != nil:
		return d.fromEnvelope(raw)
	case raw.Type != "" && raw.MessageID != "":
		if insideSNS {
			return Message{}, &ShapeError{Detail: "SNS notification inside an SNS notification"}
		}
		if raw.Type != "Notification" {
			return Message{}, &ShapeError{Detail: fmt.Sprintf("SNS message of type %q", truncate(raw.Type, 64))}
		}
		return Message{Shape: ShapeSNS, ID: raw.MessageID}, nil
	case raw.S3Bucket != "" || raw.S3ObjectKey != nil:
		return cloudTrailNotice(raw)
	case len(raw.Records) > 0:
		return s3EventNotice(raw)
	case raw.EventName != "" || raw.EventSource != "" || raw.EventID != "":
		ev, err := raw.rawRecord.toEvent()
		if err != nil {
			return Message{}, err
		}
		if err := d.checkAccount("recipientAccountId", ev.Account); err != nil {
			return Message{Shape: ShapeRecord, Event: ev}, err
		}
		return Message{Shape: ShapeRecord, Event: ev}, d.InScope(ev)
	default:
		return Message{}, &ShapeError{Detail: "no envelope, record, SNS or S3 notification fields"}
	}
}

func (d *Decoder) fromEnvelope(raw *rawMessage) (Message, error) {
	msg := Message{Shape: ShapeEnvelope, ID: raw.ID}
	if raw.Source != EnvelopeSource {
		if raw.Detail != nil && raw.Detail.EventSource == STSEventSource {
			// An STS record in another source's envelope: forged.
			return msg, &RejectError{Field: "source", Got: raw.Source, Want: `"` + EnvelopeSource + `" for an ` + STSEventSource + " record"}
		}
		// Another service's event (an all-events rule's archive, say): it
		// claims nothing about STS, so it is out of scope, not forged.
		name := raw.DetailType
		if raw.Detail != nil && raw.Detail.EventName != "" {
			name = raw.Detail.EventName
		}
		return msg, &ScopeError{EventSource: raw.Source, EventName: name, Reason: "an EventBridge event of another source than " + EnvelopeSource}
	}
	if raw.DetailType != EnvelopeDetailType {
		return msg, &RejectError{Field: "detail-type", Got: raw.DetailType, Want: `"` + EnvelopeDetailType + `"`}
	}
	if err := d.checkAccount("account", raw.Account); err != nil {
		return msg, err
	}
	if raw.Detail == nil || !raw.Detail.present() {
		return msg, &ShapeError{Detail: "EventBridge envelope without a CloudTrail record in detail"}
	}
	ev, err := raw.Detail.toEvent()
	if err != nil {
		return msg, err
	}
	msg.Event = ev
	// EventBridge derives source from the record's eventSource and account
	// from the account that logged it: a disagreement is a forged or
	// mis-routed envelope, and the record's account is the one it is about.
	if ev.Source != STSEventSource {
		return msg, &RejectError{Field: "detail.eventSource", Got: ev.Source, Want: `"` + STSEventSource + `" in an ` + EnvelopeSource + " envelope", Event: ev}
	}
	if ev.Account != "" && ev.Account != raw.Account {
		return msg, &RejectError{Field: "detail.recipientAccountId", Got: ev.Account, Want: "the envelope's account " + truncate(raw.Account, 64), Event: ev}
	}
	return msg, d.InScope(ev)
}

func (d *Decoder) checkAccount(field, account string) error {
	if d.accounts == nil {
		return nil
	}
	if _, ok := d.accounts[account]; !ok {
		return &RejectError{Field: field, Got: account, Want: "an allowlisted account"}
	}
	return nil
}

// InScope reports whether ev is an STS call sessionwatch classifies; the
// error says why not.
func (d *Decoder) InScope(ev *Event) error {
	if _, ok := d.eventNames[ev.Name]; !ok {
		return &ScopeError{EventSource: ev.Source, EventName: ev.Name, Reason: "event name not classified"}
	}
	if ev.Source != STSEventSource {
		// An AssumeRole name from another service (a relabelled console
		// sign-in, say) is not an STS call.
		return &ScopeError{EventSource: ev.Source, EventName: ev.Name, Reason: "eventSource is not " + STSEventSource}
	}
	if ev.Caller.Type == "AWSService" && !d.serviceCallers {
		return &ScopeError{EventSource: ev.Source, EventName: ev.Name, Reason: "the caller is an AWS service (" + truncate(ev.Caller.InvokedBy, 64) + ")"}
	}
	return nil
}

// CheckRecord applies the account allowlist and the scope check to a record
// read from a log file (where there is no envelope).
func (d *Decoder) CheckRecord(ev *Event) error {
	if err := d.checkAccount("recipientAccountId", ev.Account); err != nil {
		return err
	}
	return d.InScope(ev)
}

func cloudTrailNotice(raw *rawMessage) (Message, error) {
	msg := Message{Shape: ShapeCloudTrailNotice}
	if raw.S3Bucket == "" || len(raw.S3ObjectKey) == 0 {
		return msg, &ShapeError{Detail: "CloudTrail notification without s3Bucket or s3ObjectKey"}
	}
	for _, key := range raw.S3ObjectKey {
		if IsDigestKey(key) {
			continue
		}
		msg.Objects = append(msg.Objects, ObjectRef{Bucket: raw.S3Bucket, Key: key})
	}
	return msg, nil
}

func s3EventNotice(raw *rawMessage) (Message, error) {
	msg := Message{Shape: ShapeS3EventNotice}
	for i, r := range raw.Records {
		if r.S3 == nil || r.S3.Bucket.Name == "" || r.S3.Object.Key == "" {
			return Message{}, &ShapeError{Detail: fmt.Sprintf("Records[%d] is not an S3 event record", i)}
		}
		// S3 event notifications URL-encode keys, with '+' for spaces.
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return Message{}, &FieldError{Field: fmt.Sprintf("Records[%d].s3.object.key", i), Value: r.S3.Object.Key, Err: err}
		}
		if IsDigestKey(key) {
			continue
		}
		msg.Objects = append(msg.Objects, ObjectRef{Bucket: r.S3.Bucket.Name, Key: key})
	}
	return msg, nil
}

// IsDigestKey reports whether an object key or file path is a CloudTrail
// digest file, which holds hashes, not events.
func IsDigestKey(key string) bool {
	return strings.HasPrefix(key, digestFolder) || strings.Contains(key, "/"+digestFolder)
}
