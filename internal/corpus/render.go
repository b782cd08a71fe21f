package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// DefaultTopicARN is the SNS topic SNSNotification uses when given none.
const DefaultTopicARN = "arn:aws:sns:us-east-1:111122223333:sessionwatch-cloudtrail"

// EventBridgeEnvelope wraps ev's record as EventBridge delivers it to an SQS
// target. The envelope id is derived from the event ID; source and
// detail-type follow the eventSource (aws.sts, AWS API Call via CloudTrail
// for STS).
func EventBridgeEnvelope(ev Event) []byte {
	source, detailType := "aws.sts", "AWS API Call via CloudTrail"
	if ev.Source == signinSource {
		source, detailType = "aws.signin", "AWS Console Sign In via CloudTrail"
	}
	return marshal(struct {
		Version    string          `json:"version"`
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Account    string          `json:"account"`
		Time       string          `json:"time"`
		Region     string          `json:"region"`
		Resources  []string        `json:"resources"`
		Detail     json.RawMessage `json:"detail"`
	}{
		Version: "0", ID: hashUUID("eventbridge", ev.ID), DetailType: detailType, Source: source,
		Account: ev.Account, Time: ev.Time.UTC().Format(eventTimeLayout), Region: ev.Region,
		Resources: []string{}, Detail: json.RawMessage(ev.Record),
	})
}

// SNSNotification wraps inner (an envelope, a record, an S3 notification)
// as an SNS Notification: Message holds inner as a JSON string. topicARN ""
// means DefaultTopicARN; at is the publish time. MessageId and the (fake)
// signature are derived from the input.
func SNSNotification(inner []byte, topicARN string, at time.Time) []byte {
	if topicARN == "" {
		topicARN = DefaultTopicARN
	}
	region := "us-east-1"
	if parts := strings.Split(topicARN, ":"); len(parts) > 3 && parts[3] != "" {
		region = parts[3]
	}
	id := hashUUID("sns", topicARN, string(inner))
	endpoint := "https://sns." + region + ".amazonaws.com/"
	return marshal(struct {
		Type             string `json:"Type"`
		MessageID        string `json:"MessageId"`
		TopicARN         string `json:"TopicArn"`
		Message          string `json:"Message"`
		Timestamp        string `json:"Timestamp"`
		SignatureVersion string `json:"SignatureVersion"`
		Signature        string `json:"Signature"`
		SigningCertURL   string `json:"SigningCertURL"`
		UnsubscribeURL   string `json:"UnsubscribeURL"`
	}{
		Type: "Notification", MessageID: id, TopicARN: topicARN, Message: string(inner),
		Timestamp:        at.UTC().Format("2006-01-02T15:04:05.000Z"),
		SignatureVersion: "1",
		Signature:        hashBase64(256, "sns-signature", id),
		SigningCertURL:   endpoint + "SimpleNotificationService-" + base62ID(32, "sns-cert", region) + ".pem",
		UnsubscribeURL:   endpoint + "?Action=Unsubscribe&SubscriptionArn=" + topicARN + ":" + hashUUID("sns-subscription", topicARN),
	})
}

// LogFile renders events as a CloudTrail log file, {"Records":[…]},
// gzip-compressed (as the trail writes .json.gz objects) when gz is set.
func LogFile(events []Event, gz bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i, ev := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(ev.Record)
	}
	b.WriteString("]}")
	if !gz {
		return b.Bytes()
	}
	return gzipBytes(b.Bytes())
}

// gzipBytes compresses p; the gzip header carries no name or time, so the
// output is deterministic.
func gzipBytes(p []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(p) // writes to a bytes.Buffer cannot fail
	_ = zw.Close()
	return b.Bytes()
}

// JSONLines renders one record per line (as in testdata/*.jsonl).
func JSONLines(events []Event) []byte {
	var b bytes.Buffer
	for _, ev := range events {
		b.Write(ev.Record)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// S3DeliveryNotification is CloudTrail's own notification of delivered log
// files (published to the trail's SNS topic): {"s3Bucket":…,"s3ObjectKey":[…]}.
// Keys are not encoded.
func S3DeliveryNotification(bucket string, keys []string) []byte {
	if keys == nil {
		keys = []string{}
	}
	return marshal(struct {
		S3Bucket    string   `json:"s3Bucket"`
		S3ObjectKey []string `json:"s3ObjectKey"`
	}{bucket, keys})
}

// S3EventNotification is an S3 event notification (ObjectCreated:Put), one
// record per key. As S3 does, keys are URL-encoded (form encoding: a space
// becomes '+', '+' becomes %2B; '/' is kept); decode them with
// url.QueryUnescape. at is the event time.
func S3EventNotification(bucket string, keys []string, at time.Time) []byte {
	type object struct {
		Key       string `json:"key"`
		ETag      string `json:"eTag"`
		Sequencer string `json:"sequencer"`
	}
	type s3Entity struct {
		SchemaVersion   string `json:"s3SchemaVersion"`
		ConfigurationID string `json:"configurationId"`
		Bucket          struct {
			Name          string            `json:"name"`
			OwnerIdentity map[string]string `json:"ownerIdentity"`
			ARN           string            `json:"arn"`
		} `json:"bucket"`
		Object object `json:"object"`
	}
	type entry struct {
		EventVersion      string            `json:"eventVersion"`
		EventSource       string            `json:"eventSource"`
		AWSRegion         string            `json:"awsRegion"`
		EventTime         string            `json:"eventTime"`
		EventName         string            `json:"eventName"`
		UserIdentity      map[string]string `json:"userIdentity"`
		RequestParameters map[string]string `json:"requestParameters"`
		ResponseElements  map[string]string `json:"responseElements"`
		S3                s3Entity          `json:"s3"`
	}
	records := make([]entry, 0, len(keys))
	for _, k := range keys {
		e := entry{
			EventVersion: "2.1", EventSource: "aws:s3", AWSRegion: DefaultRegion,
			EventTime:         at.UTC().Format("2006-01-02T15:04:05.000Z"),
			EventName:         "ObjectCreated:Put",
			UserIdentity:      map[string]string{"principalId": "AWS:" + awsID("AROA", 17, "cloudtrail-delivery") + ":regionalDeliverySession"},
			RequestParameters: map[string]string{"sourceIPAddress": "203.0.113.200"},
			ResponseElements: map[string]string{
				"x-amz-request-id": awsID("", 16, "s3-request", bucket, k),
				"x-amz-id-2":       hashBase64(48, "s3-id2", bucket, k),
			},
		}
		e.S3.SchemaVersion, e.S3.ConfigurationID = "1.0", "sessionwatch-trail-objects"
		e.S3.Bucket.Name, e.S3.Bucket.ARN = bucket, "arn:aws:s3:::"+bucket
		e.S3.Bucket.OwnerIdentity = map[string]string{"principalId": awsID("A", 13, "s3-owner", bucket)}
		d := digest("s3-etag", bucket, k)
		e.S3.Object = object{
			Key:       S3KeyEscape(k),
			ETag:      hexString(d[:16]),
			Sequencer: strings.ToUpper(hexString(d[16:25])),
		}
		records = append(records, e)
	}
	return marshal(struct {
		Records []entry `json:"Records"`
	}{records})
}

// S3KeyEscape encodes an object key as S3 event notifications do.
func S3KeyEscape(key string) string {
	return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
}

func hexString(p []byte) string {
	b := make([]byte, 0, 2*len(p))
	for _, c := range p {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}
