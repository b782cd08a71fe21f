package cloudtrail

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const sampleRecord = `{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:alice","arn":"arn:aws:sts::111122223333:assumed-role/Gateway/alice","accountId":"111122223333","accessKeyId":"ASIAEXAMPLECALLER","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/Gateway","accountId":"111122223333"},"sourceIdentity":"sentinel:alice:direct:0a1b2c3d"}},"eventTime":"2026-11-20T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15","requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/Admin","roleSessionName":"alice","sourceIdentity":"sentinel:alice:direct:0a1b2c3d"},"responseElements":{"credentials":{"accessKeyId":"ASIAEXAMPLEISSUED","sessionToken":"REDACTED"},"assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice"},"sourceIdentity":"sentinel:alice:direct:0a1b2c3d"},"requestID":"req-1","eventID":"evt-1","sharedEventID":"shared-1","eventType":"AwsApiCall","recipientAccountId":"111122223333"}`

func envelope(source, detailType, account, detail string) string {
	return `{"version":"0","id":"env-1","detail-type":"` + detailType + `","source":"` + source + `","account":"` + account + `","time":"2026-11-20T10:00:01Z","region":"eu-west-1","resources":[],"detail":` + detail + `}`
}

func snsWrap(inner string) string {
	b, _ := json.Marshal(inner)
	return `{"Type":"Notification","MessageId":"sns-1","TopicArn":"arn:aws:sns:eu-west-1:111122223333:trail","Message":` + string(b) + `,"Timestamp":"2026-11-20T10:00:02Z","SignatureVersion":"1"}`
}

func TestDecodeMessageShapes(t *testing.T) {
	validEnvelope := envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333", sampleRecord)
	ctNotice := `{"s3Bucket":"trail-bucket","s3ObjectKey":["AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/a.json.gz","AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/20/d.json.gz"]}`
	s3Notice := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"trail-bucket"},"object":{"key":"AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/my+file%3D1.json.gz"}}}]}`
	tests := []struct {
		name    string
		body    string
		cfg     Config
		shape   Shape
		inner   Shape
		id      string
		event   bool
		objects []ObjectRef
		wantErr error
		errText string
	}{
		{name: "bare record", body: sampleRecord, shape: ShapeRecord, event: true},
		{name: "eventbridge envelope", body: validEnvelope, shape: ShapeEnvelope, id: "env-1", event: true},
		{name: "sns of envelope", body: snsWrap(validEnvelope), shape: ShapeSNS, inner: ShapeEnvelope, id: "env-1", event: true},
		{name: "sns of record", body: snsWrap(sampleRecord), shape: ShapeSNS, inner: ShapeRecord, id: "sns-1", event: true},
		{name: "cloudtrail delivery notice skips digests", body: ctNotice, shape: ShapeCloudTrailNotice,
			objects: []ObjectRef{{Bucket: "trail-bucket", Key: "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/a.json.gz"}}},
		{name: "sns of cloudtrail notice", body: snsWrap(ctNotice), shape: ShapeSNS, inner: ShapeCloudTrailNotice, id: "sns-1",
			objects: []ObjectRef{{Bucket: "trail-bucket", Key: "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/a.json.gz"}}},
		{name: "s3 event notice url-decodes keys", body: s3Notice, shape: ShapeS3EventNotice,
			objects: []ObjectRef{{Bucket: "trail-bucket", Key: "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/my file=1.json.gz"}}},
		{name: "envelope from another source", body: envelope("aws.iam", "AWS API Call via CloudTrail", "111122223333", sampleRecord),
			shape: ShapeEnvelope, wantErr: ErrRejected, errText: "source"},
		{name: "another service's envelope is out of scope", body: envelope("aws.s3", "AWS API Call via CloudTrail", "111122223333",
			`{"eventTime":"2026-11-20T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","recipientAccountId":"111122223333"}`),
			shape: ShapeEnvelope, wantErr: ErrOutOfScope, errText: "aws.s3 PutObject"},
		{name: "another service's non-CloudTrail event is out of scope", body: envelope("aws.s3", "Object Created", "111122223333", `{"bucket":{"name":"b"}}`),
			shape: ShapeEnvelope, wantErr: ErrOutOfScope, errText: "aws.s3 Object Created"},
		{name: "sts envelope of another service's record", body: envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333",
			strings.Replace(sampleRecord, `"eventSource":"sts.amazonaws.com"`, `"eventSource":"iam.amazonaws.com"`, 1)),
			shape: ShapeEnvelope, event: true, wantErr: ErrRejected, errText: "event evt-1 (AssumeRole): detail.eventSource"},
		{name: "envelope and record accounts disagree", body: envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333",
			strings.Replace(sampleRecord, `"recipientAccountId":"111122223333"`, `"recipientAccountId":"444455556666"`, 1)),
			shape: ShapeEnvelope, event: true, wantErr: ErrRejected, errText: `event evt-1 (AssumeRole): detail.recipientAccountId is "444455556666", want the envelope's account 111122223333`},
		{name: "allowlisted envelope of a record of another account", cfg: Config{Accounts: []string{"111122223333"}},
			body: envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333",
				strings.Replace(sampleRecord, `"recipientAccountId":"111122223333"`, `"recipientAccountId":"444455556666"`, 1)),
			shape: ShapeEnvelope, event: true, wantErr: ErrRejected, errText: "recipientAccountId"},
		{name: "envelope with another detail-type", body: envelope("aws.sts", "AWS Console Sign In via CloudTrail", "111122223333", sampleRecord),
			shape: ShapeEnvelope, wantErr: ErrRejected, errText: "detail-type"},
		{name: "envelope from an account outside the allowlist", body: validEnvelope, cfg: Config{Accounts: []string{"999999999999"}},
			shape: ShapeEnvelope, wantErr: ErrRejected, errText: "account"},
		{name: "envelope from an allowlisted account", body: validEnvelope, cfg: Config{Accounts: []string{"111122223333"}},
			shape: ShapeEnvelope, id: "env-1", event: true},
		{name: "bare record outside the allowlist", body: sampleRecord, cfg: Config{Accounts: []string{"999999999999"}},
			shape: ShapeRecord, event: true, wantErr: ErrRejected, errText: "recipientAccountId"},
		{name: "other event name", body: strings.Replace(sampleRecord, `"eventName":"AssumeRole"`, `"eventName":"GetCallerIdentity"`, 1),
			shape: ShapeRecord, event: true, wantErr: ErrOutOfScope, errText: "event name"},
		{name: "assume root enabled by config", body: strings.Replace(sampleRecord, `"eventName":"AssumeRole"`, `"eventName":"AssumeRoot"`, 1),
			cfg: Config{EventNames: []string{"AssumeRoot"}}, shape: ShapeRecord, event: true},
		{name: "wrong event source", body: strings.Replace(sampleRecord, `"eventSource":"sts.amazonaws.com"`, `"eventSource":"signin.amazonaws.com"`, 1),
			shape: ShapeRecord, event: true, wantErr: ErrOutOfScope, errText: "eventSource"},
		{name: "not json", body: `{"eventName":`, wantErr: ErrMalformed},
		{name: "json array", body: `[1,2]`, wantErr: ErrMalformed},
		{name: "unknown object", body: `{"hello":"world"}`, wantErr: ErrMalformed, errText: "shape"},
		{name: "record with an unreadable time", body: strings.Replace(sampleRecord, `"eventTime":"2026-11-20T10:00:00Z"`, `"eventTime":"yesterday"`, 1),
			wantErr: ErrMalformed, errText: `event evt-1 (AssumeRole): eventTime "yesterday" is not a time (want RFC 3339, e.g. 2006-01-02T15:04:05Z)`},
		{name: "record without time", body: strings.Replace(sampleRecord, `"eventTime":"2026-11-20T10:00:00Z",`, ``, 1),
			wantErr: ErrMalformed, errText: "event evt-1 (AssumeRole): no eventTime"},
		{name: "record with a null time", body: strings.Replace(sampleRecord, `"eventTime":"2026-11-20T10:00:00Z"`, `"eventTime":null`, 1),
			wantErr: ErrMalformed, errText: "event evt-1 (AssumeRole): no eventTime"},
		{name: "record with an empty time and no id", body: strings.Replace(strings.Replace(sampleRecord, `"eventTime":"2026-11-20T10:00:00Z"`, `"eventTime":""`, 1), `"eventID":"evt-1",`, ``, 1),
			wantErr: ErrMalformed, errText: "AssumeRole event without an eventID: no eventTime"},
		{name: "null record", body: " null\n", wantErr: ErrMalformed, errText: "a null record"},
		{name: "exporter time with a zone", body: strings.Replace(sampleRecord, `"eventTime":"2026-11-20T10:00:00Z"`, `"eventTime":"2026-11-20 10:00:00Z"`, 1),
			shape: ShapeRecord, event: true},
		{name: "exporter time with an offset", body: strings.Replace(sampleRecord, `"eventTime":"2026-11-20T10:00:00Z"`, `"eventTime":"2026-11-20 11:00:00.5+01:00"`, 1),
			shape: ShapeRecord, event: true},
		{name: "envelope without detail", body: `{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","account":"1"}`,
			shape: ShapeEnvelope, wantErr: ErrMalformed},
		{name: "sns with broken inner json", body: `{"Type":"Notification","MessageId":"m","Message":"{nope"}`, shape: ShapeSNS, wantErr: ErrMalformed},
		{name: "sns subscription confirmation", body: `{"Type":"SubscriptionConfirmation","MessageId":"m","Message":"confirm"}`, wantErr: ErrMalformed, errText: "SubscriptionConfirmation"},
		{name: "sns inside sns", body: snsWrap(snsWrap(sampleRecord)), shape: ShapeSNS, wantErr: ErrMalformed, errText: "inside"},
		{name: "s3 event record without s3", body: `{"Records":[{"eventSource":"aws:s3"}]}`, wantErr: ErrMalformed},
		{name: "cloudtrail notice without keys", body: `{"s3Bucket":"b"}`, shape: ShapeCloudTrailNotice, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := NewDecoder(tt.cfg).DecodeMessage([]byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				for _, other := range []error{ErrMalformed, ErrRejected, ErrOutOfScope} {
					if other != tt.wantErr && errors.Is(err, other) {
						t.Errorf("error %v also matches %v", err, other)
					}
				}
				if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q does not mention %q", err, tt.errText)
				}
			} else if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tt.shape != "" && msg.Shape != tt.shape {
				t.Errorf("shape %q, want %q", msg.Shape, tt.shape)
			}
			if msg.Inner != tt.inner {
				t.Errorf("inner %q, want %q", msg.Inner, tt.inner)
			}
			if tt.id != "" && msg.ID != tt.id {
				t.Errorf("id %q, want %q", msg.ID, tt.id)
			}
			if (msg.Event != nil) != tt.event {
				t.Errorf("event present %v, want %v", msg.Event != nil, tt.event)
			}
			if len(msg.Objects) != len(tt.objects) {
				t.Fatalf("objects %v, want %v", msg.Objects, tt.objects)
			}
			for i := range tt.objects {
				if msg.Objects[i] != tt.objects[i] {
					t.Errorf("object %d %v, want %v", i, msg.Objects[i], tt.objects[i])
				}
			}
		})
	}
}

func TestDecodeRecordFields(t *testing.T) {
	msg, err := NewDecoder(Config{}).DecodeMessage([]byte(envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333", sampleRecord)))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		ID: "evt-1", Name: "AssumeRole", Source: "sts.amazonaws.com",
		Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), Region: "eu-west-1", Account: "111122223333",
		RequestID: "req-1", SharedEventID: "shared-1", SourceIP: "198.51.100.7", UserAgent: "aws-cli/2.15",
		Caller: Identity{Type: "AssumedRole", ARN: "arn:aws:sts::111122223333:assumed-role/Gateway/alice", PrincipalID: "AROAEXAMPLE:alice",
			AccountID: "111122223333", AccessKeyID: "ASIAEXAMPLECALLER", SessionIssuerARN: "arn:aws:iam::111122223333:role/Gateway"},
		SourceIdentity: "sentinel:alice:direct:0a1b2c3d", SourceIdentityOrigin: OriginResponse,
		TargetRoleARN: "arn:aws:iam::111122223333:role/Admin", RoleSessionName: "alice",
		AssumedRoleARN: "arn:aws:sts::111122223333:assumed-role/Admin/alice", AccessKeyID: "ASIAEXAMPLEISSUED",
	}
	if *msg.Event != want {
		t.Errorf("got  %+v\nwant %+v", *msg.Event, want)
	}
	if msg.Event.DedupKey() != "req-1" {
		t.Errorf("dedup key %q", msg.Event.DedupKey())
	}
}

func TestSourceIdentityOrigin(t *testing.T) {
	tests := []struct {
		name   string
		req    string
		resp   string
		ctx    string
		want   string
		origin Origin
	}{
		{name: "response wins", req: "r", resp: "p", ctx: "c", want: "p", origin: OriginResponse},
		{name: "request next", req: "r", ctx: "c", want: "r", origin: OriginRequest},
		{name: "inherited by role chaining", ctx: "c", want: "c", origin: OriginSessionContext},
		{name: "none", want: "", origin: OriginNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := map[string]any{
				"eventTime": "2026-11-20T10:00:00Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
				"userIdentity":      map[string]any{"type": "AssumedRole", "sessionContext": map[string]any{"sourceIdentity": tt.ctx}},
				"requestParameters": map[string]any{"roleArn": "arn:aws:iam::1:role/x", "sourceIdentity": tt.req},
				"responseElements":  map[string]any{"sourceIdentity": tt.resp},
			}
			b, _ := json.Marshal(rec)
			msg, err := NewDecoder(Config{}).DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Event.SourceIdentity != tt.want || msg.Event.SourceIdentityOrigin != tt.origin {
				t.Errorf("got %q from %q, want %q from %q", msg.Event.SourceIdentity, msg.Event.SourceIdentityOrigin, tt.want, tt.origin)
			}
		})
	}
}

func TestRoleFromErrorMessage(t *testing.T) {
	tests := map[string]string{
		"User: arn:aws:iam::1:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::1:role/target": "arn:aws:iam::1:role/target",
		"User: x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::1:role/t because no":               "arn:aws:iam::1:role/t",
		"Access denied": "",
		"not authorized on resource: arn:aws:s3:::bucket/x": "",
	}
	for msg, want := range tests {
		if got := roleFromErrorMessage(msg); got != want {
			t.Errorf("roleFromErrorMessage(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestRecordsStreamsLogFiles(t *testing.T) {
	other := strings.Replace(sampleRecord, `"eventID":"evt-1"`, `"eventID":"evt-2"`, 1)
	broken := strings.Replace(sampleRecord, `"eventTime":"2026-11-20T10:00:00Z"`, `"eventTime":"never"`, 1)
	typeErr := `{"eventTime":"2026-11-20T10:00:00Z","eventName":["not","a","string"]}`
	log := `{"Records":[` + sampleRecord + `,` + broken + `,` + typeErr + `,` + other + `]}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(log))
	zw.Close()

	for name, body := range map[string][]byte{"plain": []byte(log), "gzip": gz.Bytes()} {
		t.Run(name, func(t *testing.T) {
			r, err := Uncompressed(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			var errs int
			for ev, err := range Records(r) {
				if err != nil {
					if !errors.Is(err, ErrMalformed) {
						t.Errorf("error %v is not ErrMalformed", err)
					}
					// One bad record: the stream goes on, and says so by type.
					var fileErr *FileError
					if errors.As(err, &fileErr) {
						t.Errorf("one record's error %v is a FileError", err)
					}
					errs++
					continue
				}
				ids = append(ids, ev.ID)
			}
			if strings.Join(ids, ",") != "evt-1,evt-2" || errs != 2 {
				t.Errorf("ids %v, errors %d; want evt-1,evt-2 and 2", ids, errs)
			}
		})
	}
}

func TestRecordsRejectsNonLogs(t *testing.T) {
	for name, body := range map[string]string{
		"no records key":          `{"foo":[1]}`,
		"truncated array":         `[` + sampleRecord,
		"a number":                `5`,
		"truncated":               `{"Records":[` + sampleRecord,
		"records first then skip": `{"Other":{"a":[1,2]},"Records":5}`,
	} {
		t.Run(name, func(t *testing.T) {
			var gotErr error
			for _, err := range Records(strings.NewReader(body)) {
				if err != nil {
					gotErr = err
				}
			}
			var fileErr *FileError
			if !errors.Is(gotErr, ErrMalformed) || !errors.As(gotErr, &fileErr) {
				t.Errorf("got %v, want a FileError that is ErrMalformed", gotErr)
			}
		})
	}
}

// TestRecordsReadsABareArray: a file that is an array of records (Stratus
// Red Team's detonation logs, some exports) is read record by record, not
// counted as one malformed file.
func TestRecordsReadsABareArray(t *testing.T) {
	second := strings.Replace(sampleRecord, `"eventID":"evt-1"`, `"eventID":"evt-2"`, 1)
	var ids []string
	for ev, err := range Records(strings.NewReader(" [" + sampleRecord + ",\n" + second + "]\n")) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	if strings.Join(ids, ",") != "evt-1,evt-2" {
		t.Errorf("read %v, want evt-1,evt-2", ids)
	}
}

func TestLines(t *testing.T) {
	body := sampleRecord + "\n\n" + envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333", sampleRecord) + "\n" + `{"bad":` + "\n"
	var shapes []Shape
	var lastErr error
	var lastLine int
	for lm, err := range Lines(strings.NewReader(body), NewDecoder(Config{})) {
		if err != nil {
			lastErr, lastLine = err, lm.Line
			continue
		}
		shapes = append(shapes, lm.Shape)
	}
	if len(shapes) != 2 || shapes[0] != ShapeRecord || shapes[1] != ShapeEnvelope {
		t.Errorf("shapes %v", shapes)
	}
	if !errors.Is(lastErr, ErrMalformed) || lastLine != 4 || !strings.Contains(lastErr.Error(), "line 4") {
		t.Errorf("last error %v at line %d, want malformed at line 4", lastErr, lastLine)
	}
}

// TestRecordsNullAndOversizeRecords: a null in a log file is "a null
// record", the records after it are read; a record over MaxRecordBytes ends
// the file with the cap named, as an over-long JSON line names it.
func TestRecordsNullAndOversizeRecords(t *testing.T) {
	huge := strings.Replace(sampleRecord, `"userAgent":"aws-cli/2.15"`, `"userAgent":"`+strings.Repeat("x", MaxRecordBytes-len(sampleRecord)+len("aws-cli/2.15")+1)+`"`, 1)
	hugest := strings.Replace(sampleRecord, `"userAgent":"aws-cli/2.15"`, `"userAgent":"`+strings.Repeat("x", 6*MaxRecordBytes)+`"`, 1)
	tests := []struct {
		name     string
		log      string
		ids      string
		errs     []string
		fileErrs int
	}{
		{"null record", `{"Records":[null,` + sampleRecord + `]}`, "evt-1", []string{"a null record"}, 0},
		{"record just over the cap", `{"Records":[` + sampleRecord + `,` + huge + `,` + sampleRecord + `]}`, "evt-1,evt-1",
			[]string{"record over 8388608 bytes, the cap for one record"}, 0},
		{"record far over the cap", `{"Records":[` + sampleRecord + `,` + hugest + `,` + sampleRecord + `]}`, "evt-1",
			[]string{"record over 8388608 bytes, the cap for one record; the rest of the file is not read"}, 1},
		{"record at the cap", `{"Records":[` + strings.Replace(sampleRecord, `"userAgent":"aws-cli/2.15"`,
			`"userAgent":"`+strings.Repeat("x", MaxRecordBytes-len(sampleRecord)+len("aws-cli/2.15")-2)+`"`, 1) + `]}`, "evt-1", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids, errs []string
			fileErrs := 0
			for ev, err := range Records(strings.NewReader(tt.log)) {
				if err != nil {
					errs = append(errs, err.Error())
					if !errors.Is(err, ErrMalformed) {
						t.Errorf("error %v is not ErrMalformed", err)
					}
					var fe *FileError
					if errors.As(err, &fe) {
						fileErrs++
					}
					continue
				}
				ids = append(ids, ev.ID)
			}
			if strings.Join(ids, ",") != tt.ids || !slices.Equal(errs, tt.errs) || fileErrs != tt.fileErrs {
				t.Errorf("ids %v errors %q (%d file errors); want %s, %q, %d", ids, errs, fileErrs, tt.ids, tt.errs, tt.fileErrs)
			}
		})
	}
}

// TestLinesCapIsTheRecordCap: an over-long JSON line says the same as an
// oversize log-file record, and the lines after it are read.
func TestLinesCapIsTheRecordCap(t *testing.T) {
	huge := strings.Replace(sampleRecord, `"userAgent":"aws-cli/2.15"`, `"userAgent":"`+strings.Repeat("x", MaxRecordBytes+1)+`"`, 1)
	var errs []string
	var ids []string
	for lm, err := range Lines(strings.NewReader(huge+"\n"+sampleRecord+"\n"), NewDecoder(Config{})) {
		if err != nil {
			errs = append(errs, err.Error())
			var tl *TooLargeError
			if !errors.As(err, &tl) || !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is not a TooLargeError", err)
			}
			continue
		}
		ids = append(ids, lm.Event.ID)
	}
	want := []string{"decode json lines: line 1: record over 8388608 bytes, the cap for one record"}
	if !slices.Equal(errs, want) || strings.Join(ids, ",") != "evt-1" {
		t.Errorf("errors %q ids %v; want %q and evt-1", errs, ids, want)
	}
}

// TestParseEventTime: the forms CloudTrail and exporters write, to the
// instant, and words rather than Go layouts when none fits.
func TestParseEventTime(t *testing.T) {
	at := time.Date(2021, 5, 20, 15, 53, 47, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{"2021-05-20T15:53:47Z", at, ""},
		{"2021-05-20T17:53:47+02:00", at, ""},
		{"2021-05-20 15:53:47", at, ""},
		{"2021-05-20 15:53:47Z", at, ""},
		{"2021-05-20 15:53:47.250Z", at.Add(250 * time.Millisecond), ""},
		{"", time.Time{}, "no eventTime"},
		{"20210520", time.Time{}, `eventTime "20210520" is not a time (want RFC 3339, e.g. 2006-01-02T15:04:05Z)`},
	}
	for _, tt := range tests {
		got, err := parseEventTime(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr || strings.Contains(err.Error(), "2006-01-02T15:04:05.999999999Z07:00") {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("%q: got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestContentKeyWithoutIDs: records without eventID, requestID or
// sharedEventID get a key from their content: the same record the same key,
// two different calls two keys, and an id, when present, wins.
func TestContentKeyWithoutIDs(t *testing.T) {
	noIDs := func(rec string) *Event {
		for _, id := range []string{`"requestID":"req-1",`, `"eventID":"evt-1",`, `"sharedEventID":"shared-1",`} {
			rec = strings.Replace(rec, id, "", 1)
		}
		ev, err := DecodeRecord([]byte(rec))
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	a := noIDs(sampleRecord)
	a2 := noIDs(sampleRecord)
	later := noIDs(strings.Replace(sampleRecord, `10:00:00Z`, `10:00:01Z`, 1))
	otherRole := noIDs(strings.Replace(sampleRecord, `role/Admin"`, `role/Audit"`, 1))
	if !a.KeyedByContent() || !strings.HasPrefix(a.DedupKey(), "content:") {
		t.Fatalf("key %q, keyed by content %v", a.DedupKey(), a.KeyedByContent())
	}
	if a.DedupKey() != a2.DedupKey() {
		t.Errorf("the same record has two keys")
	}
	if a.DedupKey() == later.DedupKey() || a.DedupKey() == otherRole.DedupKey() || later.DedupKey() == otherRole.DedupKey() {
		t.Errorf("different calls share a key: %s %s %s", a.DedupKey(), later.DedupKey(), otherRole.DedupKey())
	}
	withID, err := DecodeRecord([]byte(sampleRecord))
	if err != nil {
		t.Fatal(err)
	}
	if withID.KeyedByContent() || withID.DedupKey() != "req-1" {
		t.Errorf("record with ids keyed %q", withID.DedupKey())
	}
}
