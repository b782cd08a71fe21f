package corpus_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
)

func small(t *testing.T) *corpus.Corpus {
	t.Helper()
	return generate(t, corpus.Config{Seed: 11, Events: 40, OutOfScope: 6})
}

func TestEventBridgeEnvelope(t *testing.T) {
	t.Parallel()
	c := small(t)
	ids := map[string]bool{}
	for _, ev := range c.All() {
		raw := corpus.EventBridgeEnvelope(ev)
		var env struct {
			Version    string          `json:"version"`
			ID         string          `json:"id"`
			DetailType string          `json:"detail-type"`
			Source     string          `json:"source"`
			Account    string          `json:"account"`
			Time       string          `json:"time"`
			Region     string          `json:"region"`
			Resources  []string        `json:"resources"`
			Detail     json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%s: %v", ev.ID, err)
		}
		wantSource, wantType := "aws.sts", "AWS API Call via CloudTrail"
		if ev.Source == "signin.amazonaws.com" {
			wantSource, wantType = "aws.signin", "AWS Console Sign In via CloudTrail"
		}
		if env.Version != "0" || env.Source != wantSource || env.DetailType != wantType || env.Account != ev.Account ||
			env.Region != ev.Region || env.Time != ev.Time.Format(time.RFC3339) || !uuidRE.MatchString(env.ID) {
			t.Errorf("%s: envelope %s", ev.ID, raw)
		}
		if env.Resources == nil || !bytes.Contains(raw, []byte(`"resources":[]`)) {
			t.Errorf("%s: resources not an empty array", ev.ID)
		}
		if !bytes.Equal(env.Detail, ev.Record) {
			t.Errorf("%s: detail differs from the record", ev.ID)
		}
		if ids[env.ID] {
			t.Errorf("%s: envelope id %s repeated", ev.ID, env.ID)
		}
		ids[env.ID] = true
	}
}

type snsMessage struct {
	Type             string
	MessageID        string `json:"MessageId"`
	TopicARN         string `json:"TopicArn"`
	Message          string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	UnsubscribeURL   string
}

func TestSNSNotification(t *testing.T) {
	t.Parallel()
	c := small(t)
	ev := c.Events[0]
	at := time.Date(2025, 6, 2, 11, 0, 0, 123_000_000, time.UTC)
	inners := map[string][]byte{
		"envelope": corpus.EventBridgeEnvelope(ev),
		"record":   ev.Record,
		"delivery": corpus.S3DeliveryNotification("trail-bucket", []string{"AWSLogs/111122223333/CloudTrail/us-east-1/2025/06/02/x.json.gz"}),
		"html":     []byte(`{"a":"<b>&</b>"}`),
	}
	for name, inner := range inners {
		raw := corpus.SNSNotification(inner, "", at)
		var m snsMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Message != string(inner) {
			t.Errorf("%s: Message %q, want %q", name, m.Message, inner)
		}
		if m.Type != "Notification" || !uuidRE.MatchString(m.MessageID) || m.TopicARN != corpus.DefaultTopicARN ||
			m.Timestamp != "2025-06-02T11:00:00.123Z" || m.SignatureVersion != "1" || m.Signature == "" ||
			!strings.HasPrefix(m.SigningCertURL, "https://sns.us-east-1.amazonaws.com/") || m.UnsubscribeURL == "" {
			t.Errorf("%s: notification %s", name, raw)
		}
		if !bytes.Equal(raw, corpus.SNSNotification(inner, "", at)) {
			t.Errorf("%s: not deterministic", name)
		}
	}
	raw := corpus.SNSNotification(ev.Record, "arn:aws:sns:eu-west-1:444455556666:trail", at)
	var m snsMessage
	if err := json.Unmarshal(raw, &m); err != nil || m.TopicARN != "arn:aws:sns:eu-west-1:444455556666:trail" ||
		!strings.HasPrefix(m.SigningCertURL, "https://sns.eu-west-1.amazonaws.com/") {
		t.Errorf("custom topic: %s (%v)", raw, err)
	}
}

func TestLogFileAndJSONLines(t *testing.T) {
	t.Parallel()
	c := small(t)
	all := c.All()
	for _, gz := range []bool{false, true} {
		body := corpus.LogFile(all, gz)
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		var f struct{ Records []json.RawMessage }
		if err := json.Unmarshal(body, &f); err != nil {
			t.Fatalf("gz=%v: %v", gz, err)
		}
		if len(f.Records) != len(all) {
			t.Fatalf("gz=%v: %d records, want %d", gz, len(f.Records), len(all))
		}
		for i, r := range f.Records {
			if !bytes.Equal(r, all[i].Record) {
				t.Fatalf("gz=%v: record %d differs", gz, i)
			}
		}
	}
	if got := string(corpus.LogFile(nil, false)); got != `{"Records":[]}` {
		t.Errorf("empty log file %s", got)
	}

	sc := bufio.NewScanner(bytes.NewReader(corpus.JSONLines(all)))
	sc.Buffer(nil, 1<<20)
	n := 0
	for ; sc.Scan(); n++ {
		if !bytes.Equal(sc.Bytes(), all[n].Record) || !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d differs", n)
		}
	}
	if n != len(all) {
		t.Fatalf("%d lines, want %d", n, len(all))
	}
}

func TestS3Notifications(t *testing.T) {
	t.Parallel()
	keys := []string{
		"AWSLogs/111122223333/CloudTrail/us-east-1/2025/06/02/111122223333_CloudTrail_us-east-1_20250602T1105Z_abcdEFGH12345678.json.gz",
		"archive prefix/with space+plus/a=b&c:d.json.gz",
		"AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2025/06/02/digest.json.gz",
	}

	var d struct {
		S3Bucket    string   `json:"s3Bucket"`
		S3ObjectKey []string `json:"s3ObjectKey"`
	}
	if err := json.Unmarshal(corpus.S3DeliveryNotification("trail-bucket", keys), &d); err != nil {
		t.Fatal(err)
	}
	if d.S3Bucket != "trail-bucket" || strings.Join(d.S3ObjectKey, "\n") != strings.Join(keys, "\n") {
		t.Errorf("delivery notification %+v", d)
	}
	if got := string(corpus.S3DeliveryNotification("b", nil)); got != `{"s3Bucket":"b","s3ObjectKey":[]}` {
		t.Errorf("empty delivery notification %s", got)
	}

	at := time.Date(2025, 6, 2, 11, 5, 0, 0, time.UTC)
	raw := corpus.S3EventNotification("trail-bucket", keys, at)
	var e struct {
		Records []struct {
			EventSource string `json:"eventSource"`
			EventName   string `json:"eventName"`
			EventTime   string `json:"eventTime"`
			S3          struct {
				Bucket struct {
					Name string `json:"name"`
					ARN  string `json:"arn"`
				} `json:"bucket"`
				Object struct {
					Key string `json:"key"`
				} `json:"object"`
			} `json:"s3"`
		}
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	if len(e.Records) != len(keys) {
		t.Fatalf("%d records, want %d", len(e.Records), len(keys))
	}
	for i, r := range e.Records {
		if r.EventSource != "aws:s3" || !strings.HasPrefix(r.EventName, "ObjectCreated:") || r.EventTime != "2025-06-02T11:05:00.000Z" ||
			r.S3.Bucket.Name != "trail-bucket" || r.S3.Bucket.ARN != "arn:aws:s3:::trail-bucket" {
			t.Errorf("record %d: %+v", i, r)
		}
		got, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil || got != keys[i] {
			t.Errorf("key %q unescapes to %q (%v), want %q", r.S3.Object.Key, got, err, keys[i])
		}
	}
	if k := e.Records[1].S3.Object.Key; k != "archive+prefix/with+space%2Bplus/a%3Db%26c%3Ad.json.gz" {
		t.Errorf("encoded key %q", k)
	}
	if k := e.Records[0].S3.Object.Key; k != keys[0] {
		t.Errorf("plain key encoded as %q", k)
	}
}
