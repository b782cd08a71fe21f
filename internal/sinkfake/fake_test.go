package sinkfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/sessionwatch/sessionwatch/internal/testenv"
)

// These tests hold the fakes to the services' limits and wire formats,
// using the real SDK clients: a fake that accepted what the service
// refuses would let a sink bug through.

func cfg(endpoint string) aws.Config {
	return aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Retryer: testenv.ConnectionRetryOnly,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func finding(id string, size int) string {
	return fmt.Sprintf(`{"finding_id":%q,"pad":%q}`, id, strings.Repeat("x", size))
}

func TestSNSLimits(t *testing.T) {
	topic := "arn:aws:sns:us-east-1:111122223333:t"
	f := NewSNS(t, topic)
	c := sns.NewFromConfig(cfg(f.URL))
	ctx := context.Background()
	entries := func(n, size int) []snstypes.PublishBatchRequestEntry {
		var out []snstypes.PublishBatchRequestEntry
		for i := 0; i < n; i++ {
			out = append(out, snstypes.PublishBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), Message: aws.String(finding(fmt.Sprint("f", i), size))})
		}
		return out
	}
	out, err := c.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: entries(10, 10)})
	if err != nil || len(out.Successful) != 10 || len(f.Received()) != 10 {
		t.Fatalf("10 entries: %v %+v", err, out)
	}
	for name, tc := range map[string]struct {
		in   *sns.PublishBatchInput
		code string
	}{
		"11 entries":    {&sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: entries(11, 10)}, "TooManyEntriesInBatchRequest"},
		"over 256 KiB":  {&sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: entries(2, 130*1024)}, "BatchRequestTooLong"},
		"unknown topic": {&sns.PublishBatchInput{TopicArn: aws.String(topic + "x"), PublishBatchRequestEntries: entries(1, 1)}, "NotFound"},
		"same ids": {&sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: []snstypes.PublishBatchRequestEntry{
			{Id: aws.String("a"), Message: aws.String("m")}, {Id: aws.String("a"), Message: aws.String("m")},
		}}, "BatchEntryIdsNotDistinct"},
	} {
		if _, err := c.PublishBatch(ctx, tc.in); apiCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	// Per-entry results and throttling reach the SDK as the service's would.
	f.Reject("f1")
	f.FailOnce("f2")
	out, err = c.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: entries(3, 1)})
	if err != nil || len(out.Successful) != 1 || len(out.Failed) != 2 || !out.Failed[0].SenderFault || out.Failed[1].SenderFault {
		t.Errorf("partial: %v %+v", err, out)
	}
	f.Throttle(1, 0)
	if _, err := c.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: entries(1, 1)}); apiCode(err) != "Throttled" {
		t.Errorf("throttle: %v", err)
	}
	// An unsigned request is refused.
	resp, err := http.Post(f.URL, "application/x-www-form-urlencoded", strings.NewReader("Action=PublishBatch&Version=2010-03-31"))
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned: %v %v", err, resp)
	}
}

func TestEventBridgeLimits(t *testing.T) {
	f := NewEventBridge(t, "security")
	c := eventbridge.NewFromConfig(cfg(f.URL))
	ctx := context.Background()
	entries := func(n, size int) []ebtypes.PutEventsRequestEntry {
		var out []ebtypes.PutEventsRequestEntry
		for i := 0; i < n; i++ {
			out = append(out, ebtypes.PutEventsRequestEntry{EventBusName: aws.String("security"), Source: aws.String("sessionwatch"),
				DetailType: aws.String("sessionwatch finding"), Detail: aws.String(finding(fmt.Sprint("f", i), size))})
		}
		return out
	}
	out, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries(10, 10)})
	if err != nil || out.FailedEntryCount != 0 || len(f.Received()) != 10 {
		t.Fatalf("10 entries: %v %+v", err, out)
	}
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries(11, 10)}); apiCode(err) != "ValidationException" {
		t.Errorf("11 entries: %v", err)
	}
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries(2, 130*1024)}); apiCode(err) != "ValidationException" {
		t.Errorf("over 256 KiB: %v", err)
	}
	bad := entries(3, 1)
	bad[0].Detail = aws.String("[1,2]")
	bad[1].Source = aws.String("aws.sts")
	out, err = c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: bad})
	if err != nil || out.FailedEntryCount != 2 || aws.ToString(out.Entries[0].ErrorCode) != "MalformedDetail" ||
		aws.ToString(out.Entries[1].ErrorCode) != "NotAuthorizedForSourceException" || aws.ToString(out.Entries[2].EventId) == "" {
		t.Errorf("per-entry: %v %+v", err, out)
	}
	other := entries(1, 1)
	other[0].EventBusName = aws.String("nope")
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: other}); apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("unknown bus: %v", err)
	}
	f.Throttle(1, 0)
	if _, err := c.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries(1, 1)}); apiCode(err) != "ThrottlingException" {
		t.Errorf("throttle: %v", err)
	}
	if len(f.Malformed()) != 2 {
		t.Errorf("malformed %q", f.Malformed())
	}
}

func asff(id, account string) shtypes.AwsSecurityFinding {
	return shtypes.AwsSecurityFinding{
		SchemaVersion: aws.String("2018-10-08"), Id: aws.String(id), AwsAccountId: aws.String(account),
		ProductArn:  aws.String("arn:aws:securityhub:us-east-1:" + account + ":product/" + account + "/default"),
		GeneratorId: aws.String("g"), Types: []string{"TTPs/Defense Evasion/x"},
		CreatedAt: aws.String("2026-11-20T10:00:00.000Z"), UpdatedAt: aws.String("2026-11-20T10:00:00.000Z"),
		Severity: &shtypes.Severity{Label: shtypes.SeverityLabelHigh}, Title: aws.String("t"), Description: aws.String("d"),
		Resources: []shtypes.Resource{{Type: aws.String("AwsIamRole"), Id: aws.String("arn:aws:iam::1:role/r")}},
	}
}

func TestSecurityHubLimits(t *testing.T) {
	const account = "111122223333"
	f := NewSecurityHub(t, account, "us-east-1")
	c := securityhub.NewFromConfig(cfg(f.URL))
	ctx := context.Background()
	many := func(n int) []shtypes.AwsSecurityFinding {
		var out []shtypes.AwsSecurityFinding
		for i := 0; i < n; i++ {
			out = append(out, asff(fmt.Sprint("f", i), account))
		}
		return out
	}
	out, err := c.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: many(100)})
	if err != nil || aws.ToInt32(out.SuccessCount) != 100 {
		t.Fatalf("100 findings: %v %+v", err, out)
	}
	if _, err := c.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: many(101)}); apiCode(err) != "InvalidInputException" {
		t.Errorf("101 findings: %v", err)
	}
	big := asff("big", account)
	big.Description = aws.String(strings.Repeat("d", 241*1024))
	foreign := asff("foreign", "999988887777")
	longTitle := asff("long-title", account)
	longTitle.Title = aws.String(strings.Repeat("t", 257))
	out, err = c.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: []shtypes.AwsSecurityFinding{big, foreign, longTitle, asff("ok", account)}})
	if err != nil || aws.ToInt32(out.FailedCount) != 3 || aws.ToInt32(out.SuccessCount) != 1 {
		t.Fatalf("invalid findings: %v %+v", err, out)
	}
	codes := map[string]string{}
	for _, ff := range out.FailedFindings {
		codes[aws.ToString(ff.Id)] = aws.ToString(ff.ErrorCode)
	}
	if codes["big"] != "InvalidInput" || codes["foreign"] != "AccessDeniedException" || codes["long-title"] != "InvalidInput" {
		t.Errorf("codes %v", codes)
	}
	// A finding without a required attribute is refused (the SDK checks
	// Title itself, so this one goes around it).
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/findings/import", strings.NewReader(`{"Findings":[{"Id":"no-title","SchemaVersion":"2018-10-08"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20261120/us-east-1/securityhub/aws4_request")
	req.Header.Set("X-Amz-Date", "20261120T100000Z")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		FailedFindings []struct{ Id, ErrorCode string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if len(raw.FailedFindings) != 1 || raw.FailedFindings[0].ErrorCode != "InvalidInput" {
		t.Errorf("finding without Title: %+v", raw)
	}
	// More than 10 calls in a second are refused.
	throttled := 0
	for i := 0; i < 25; i++ {
		if _, err := c.BatchImportFindings(ctx, &securityhub.BatchImportFindingsInput{Findings: many(1)}); apiCode(err) == "TooManyRequestsException" {
			throttled++
		}
	}
	if throttled == 0 || f.RateViolations() != throttled {
		t.Errorf("25 calls at once: %d throttled, %d violations", throttled, f.RateViolations())
	}
}

func TestWebhookAndHECReject(t *testing.T) {
	hook := NewWebhook(t, []byte("k"), "X-Sig")
	body := []byte(`{"finding_id":"a"}`)
	post := func(url, sig string, b []byte, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set("X-Sig", sig)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(hook.URL, "sha256=00", body, nil); code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d", code)
	}
	if code := post(hook.URL, "sha256=86b6f0ac5d1d1f0f1b1d1b8d0f3c4b5a6a7d8e9f0a1b2c3d4e5f60718293a4b5", body, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong signature: %d", code)
	}
	if len(hook.Received()) != 0 {
		t.Error("unsigned finding accepted")
	}

	hec := NewHEC(t, "tok")
	send := func(auth, b string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, hec.URL, strings.NewReader(b))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, _ := send("", `{"event":{}}`); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code, _ := send("Splunk nope", `{"event":{}}`); code != http.StatusForbidden {
		t.Errorf("bad token: %d", code)
	}
	if code, m := send("Splunk tok", `{"event":{"finding_id":"a"}}{"time":1}`); code != http.StatusBadRequest || m["invalid-event-number"] != float64(1) {
		t.Errorf("event without event field: %d %v", code, m)
	}
	if code, m := send("Splunk tok", `{"event":{"finding_id":"a"}}{"event":{"finding_id":"b"}}`); code != http.StatusOK || m["code"] != float64(0) {
		t.Errorf("good batch: %d %v", code, m)
	}
	if got := hec.Counts(); got["a"] != 1 || got["b"] != 1 {
		t.Errorf("indexed %v", got)
	}
}

// TestSQSProxyLimits needs local-aws-sqs (scripts/with-emulators.sh).
func TestSQSProxyLimits(t *testing.T) {
	if os.Getenv("AWS_ENDPOINT_URL_SQS") == "" {
		t.Fatal("AWS_ENDPOINT_URL_SQS is not set; run under scripts/with-emulators.sh")
	}
	ctx := context.Background()
	envCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	direct := sqs.NewFromConfig(envCfg)
	q, err := direct.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprint("proxy-limits-", os.Getpid()))})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl})
	p := NewSQSProxy(t, os.Getenv("AWS_ENDPOINT_URL_SQS"))
	c := sqs.NewFromConfig(cfg(p.URL))
	entries := func(n, size int) []sqstypes.SendMessageBatchRequestEntry {
		var out []sqstypes.SendMessageBatchRequestEntry
		for i := 0; i < n; i++ {
			out = append(out, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String(finding(fmt.Sprint("f", i), size))})
		}
		return out
	}
	if _, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries(11, 1)}); apiCode(err) != "TooManyEntriesInBatchRequest" {
		t.Errorf("11 entries: %v", err)
	}
	if _, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries(5, 220*1024)}); apiCode(err) != "BatchRequestTooLong" {
		t.Errorf("over 1 MiB: %v", err)
	}
	p.FailOnce("f1")
	out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries(3, 1)})
	if err != nil || len(out.Successful) != 2 || len(out.Failed) != 1 || aws.ToString(out.Failed[0].Id) != "1" || out.Failed[0].SenderFault {
		t.Fatalf("partial: %v %+v", err, out)
	}
	got, err := direct.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil || len(got.Messages) != 2 {
		t.Errorf("queue holds %v (%v), want the 2 forwarded messages", got, err)
	}
}
