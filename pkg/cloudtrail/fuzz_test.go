package cloudtrail

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func addPublicSeeds(f *testing.F) {
	for _, file := range []string{"assume_role_records.jsonl", "other_sts_records.jsonl", "pipeline_records.jsonl"} {
		fh, err := os.Open(filepath.Join(publicDir, file))
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f.Add(append([]byte(nil), sc.Bytes()...))
		}
		fh.Close()
	}
}

// FuzzDecodeMessage: any input decodes or fails with exactly one of the
// error classes, and a decoded message is internally consistent.
func FuzzDecodeMessage(f *testing.F) {
	addPublicSeeds(f)
	env := envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333", sampleRecord)
	for _, s := range []string{sampleRecord, env, snsWrap(env), snsWrap(sampleRecord),
		`{"s3Bucket":"b","s3ObjectKey":["k.json.gz"]}`,
		`{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"a%2Bb"}}}]}`,
		`{}`, `null`, `"x"`, `{"detail":null}`, `{"Type":"Notification","MessageId":"1","Message":"null"}`} {
		f.Add([]byte(s))
	}
	d := NewDecoder(Config{Accounts: []string{"111122223333", "123456789012"}, EventNames: append(DefaultEventNames(), PipelineEventNames()...)})
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := d.DecodeMessage(body)
		classes := 0
		for _, class := range []error{ErrMalformed, ErrRejected, ErrOutOfScope} {
			if errors.Is(err, class) {
				classes++
			}
		}
		if err != nil && classes != 1 {
			t.Fatalf("error %v matches %d classes", err, classes)
		}
		if err == nil {
			if msg.Event == nil && len(msg.Objects) == 0 {
				t.Fatalf("no event and no objects: %+v", msg)
			}
			if msg.Event != nil && msg.Event.Time.IsZero() {
				t.Fatalf("event without time")
			}
			for _, o := range msg.Objects {
				if o.Bucket == "" || o.Key == "" || IsDigestKey(o.Key) {
					t.Fatalf("bad object ref %+v", o)
				}
			}
		}
	})
}

// FuzzRecords: a log file of any content terminates without panicking and
// yields either events with times or errors.
func FuzzRecords(f *testing.F) {
	f.Add([]byte(`{"Records":[` + sampleRecord + `]}`))
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(`{"x":1,"Records":[{"eventTime":"2026-01-01 00:00:00"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Uncompressed(strings.NewReader(string(body)))
		if err != nil {
			return
		}
		for ev, err := range Records(r) {
			if err == nil && (ev == nil || ev.Time.IsZero()) {
				t.Fatalf("event without time and without error")
			}
		}
	})
}
