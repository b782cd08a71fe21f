package cloudtrailfake_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/sessionwatch/sessionwatch/internal/cloudtrailfake"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func record(account, region, name, id string, t time.Time) []byte {
	return fmt.Appendf(nil, `{"eventVersion":"1.08","eventID":%q,"eventName":%q,"eventSource":"sts.amazonaws.com","eventTime":%q,"awsRegion":%q,"recipientAccountId":%q,"readOnly":false,"userIdentity":{"type":"IAMUser","userName":"alice","arn":"arn:aws:iam::%s:user/alice","accessKeyId":"AKIAEXAMPLE"},"resources":[{"type":"AWS::IAM::Role","ARN":"arn:aws:iam::%s:role/Admin"}]}`,
		id, name, t.Format(time.RFC3339), region, account, account, account)
}

// start serves a fake and returns an SDK configuration pointed at it. Unless
// retries is set, the SDK retries only a dropped connection: throttles and
// API errors reach the test as sent.
func start(t *testing.T, cfg cloudtrailfake.Config, retries bool) (*cloudtrailfake.Server, aws.Config) {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	srv := cloudtrailfake.New(cfg)
	t.Cleanup(srv.Close)
	awsCfg := testenv.FakeAWSConfig(t, srv.Env())
	if !retries {
		awsCfg.Retryer = testenv.ConnectionRetryOnly
	}
	return srv, awsCfg
}

func byName(name string) []types.LookupAttribute {
	return []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestPagesNewestFirst(t *testing.T) {
	srv, cfg := start(t, cloudtrailfake.Config{LookupRate: 1000, LookupBurst: 1000}, false)
	var want []string
	for i := range 120 {
		id := fmt.Sprintf("ev-%03d", i)
		at := now.Add(-time.Duration(i) * time.Minute)
		if err := srv.CloudTrail.Add(record(cloudtrailfake.DefaultAccount, "us-east-1", "AssumeRole", id, at)); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	// Noise: another name, another region, another account.
	_ = srv.CloudTrail.Add(record(cloudtrailfake.DefaultAccount, "us-east-1", "GetSessionToken", "other-name", now),
		record(cloudtrailfake.DefaultAccount, "eu-west-1", "AssumeRole", "other-region", now),
		record("444455556666", "us-east-1", "AssumeRole", "other-account", now))

	client := cloudtrail.NewFromConfig(cfg)
	pages := cloudtrail.NewLookupEventsPaginator(client, &cloudtrail.LookupEventsInput{LookupAttributes: byName("AssumeRole")})
	var got []string
	var sizes []int
	var last time.Time
	for pages.HasMorePages() {
		out, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(out.Events))
		for _, e := range out.Events {
			if !last.IsZero() && aws.ToTime(e.EventTime).After(last) {
				t.Errorf("%s is newer than the event before it", aws.ToString(e.EventId))
			}
			last = aws.ToTime(e.EventTime)
			if aws.ToString(e.CloudTrailEvent) == "" || aws.ToString(e.Username) != "alice" || len(e.Resources) != 1 {
				t.Errorf("event %+v lacks its record, user name or resources", e)
			}
			got = append(got, aws.ToString(e.EventId))
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{50, 50, 20}) {
		t.Errorf("pages %v, events %v; want 50, 50, 20 and %v", sizes, got, want)
	}

	// A time range is inclusive at both ends.
	out, err := client.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{LookupAttributes: byName("AssumeRole"),
		StartTime: aws.Time(now.Add(-12 * time.Minute)), EndTime: aws.Time(now.Add(-10 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 3 || aws.ToString(out.Events[0].EventId) != "ev-010" || out.NextToken != nil {
		t.Errorf("range: %d events from %s", len(out.Events), aws.ToString(out.Events[0].EventId))
	}
}

func TestValidation(t *testing.T) {
	srv, cfg := start(t, cloudtrailfake.Config{LookupRate: 1000, LookupBurst: 1000}, false)
	for i := range 3 {
		_ = srv.CloudTrail.Add(record(cloudtrailfake.DefaultAccount, "us-east-1", "AssumeRole", fmt.Sprint("e", i), now.Add(-time.Duration(i)*time.Minute)))
	}
	_ = srv.CloudTrail.Add(record(cloudtrailfake.DefaultAccount, "us-east-1", "AssumeRole", "too-old", now.Add(-91*24*time.Hour)))
	client := cloudtrail.NewFromConfig(cfg)
	ctx := context.Background()
	two := append(byName("AssumeRole"), types.LookupAttribute{AttributeKey: types.LookupAttributeKeyUsername, AttributeValue: aws.String("alice")})
	for name, tc := range map[string]struct {
		in   cloudtrail.LookupEventsInput
		code string
	}{
		"two attributes": {cloudtrail.LookupEventsInput{LookupAttributes: two}, "InvalidLookupAttributesException"},
		"empty value":    {cloudtrail.LookupEventsInput{LookupAttributes: byName("")}, "InvalidLookupAttributesException"},
		"page too large": {cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, "InvalidMaxResultsException"},
		"reversed range": {cloudtrail.LookupEventsInput{StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Hour))}, "InvalidTimeRangeException"},
		"forged token":   {cloudtrail.LookupEventsInput{NextToken: aws.String("eyJ0aW1lIjowfQ")}, "InvalidNextTokenException"},
	} {
		if _, err := client.LookupEvents(ctx, &tc.in); apiCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}

	// A token belongs to its query.
	out, err := client.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: byName("AssumeRole"), MaxResults: aws.Int32(1)})
	if err != nil || out.NextToken == nil {
		t.Fatalf("%v, token %v", err, out.NextToken)
	}
	if _, err := client.LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: byName("AssumeRoleWithSAML"), NextToken: out.NextToken}); apiCode(err) != "InvalidNextTokenException" {
		t.Errorf("token reused for another query: %v", err)
	}

	// Nothing older than 90 days, whatever StartTime says.
	out, err = client.LookupEvents(ctx, &cloudtrail.LookupEventsInput{StartTime: aws.Time(now.Add(-200 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Events {
		if aws.ToString(e.EventId) == "too-old" {
			t.Error("an event past the 90-day horizon was returned")
		}
	}
	if len(out.Events) != 3 {
		t.Errorf("%d events, want 3", len(out.Events))
	}
}

// TestThrottling: calls beyond 2 a second for one account and region get
// ThrottlingException, which the SDK's retryer knows as a throttle; other
// regions have their own bucket.
func TestThrottling(t *testing.T) {
	srv, cfg := start(t, cloudtrailfake.Config{}, false)
	client := cloudtrail.NewFromConfig(cfg)
	ctx := context.Background()
	throttled := 0
	for range 5 {
		_, err := client.LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
		if err == nil {
			continue
		}
		if apiCode(err) != "ThrottlingException" || retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) != aws.TrueTernary {
			t.Fatalf("got %v, want a ThrottlingException the SDK retries as a throttle", err)
		}
		throttled++
	}
	if throttled < 2 {
		t.Errorf("%d of 5 immediate calls throttled, want at least 2 (burst 2)", throttled)
	}
	if _, err := client.LookupEvents(ctx, &cloudtrail.LookupEventsInput{}, func(o *cloudtrail.Options) { o.Region = "eu-west-1" }); err != nil {
		t.Errorf("another region shares the bucket: %v", err)
	}
	// A call retried after a dropped connection counts twice at the fake.
	if st := srv.CloudTrail.Stats(cloudtrailfake.DefaultAccount, "us-east-1"); st.Calls < 5 || st.Throttled < throttled {
		t.Errorf("stats %+v, want at least 5 calls and %d throttled", st, throttled)
	}
}

// TestAssumeRole: credentials from the STS fake read the role's account;
// a role not allowed is AccessDenied.
func TestAssumeRole(t *testing.T) {
	srv, cfg := start(t, cloudtrailfake.Config{LookupRate: 1000, LookupBurst: 1000}, true)
	srv.STS.AllowRole("444455556666", "audit")
	_ = srv.CloudTrail.Add(record("444455556666", "us-east-1", "AssumeRole", "member-event", now),
		record(cloudtrailfake.DefaultAccount, "us-east-1", "AssumeRole", "own-event", now))
	ctx := context.Background()
	stsClient := sts.NewFromConfig(cfg)

	member := cfg.Copy()
	member.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, "arn:aws:iam::444455556666:role/audit"))
	out, err := cloudtrail.NewFromConfig(member).LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 1 || aws.ToString(out.Events[0].EventId) != "member-event" {
		t.Errorf("assumed role read %d events", len(out.Events))
	}
	out, err = cloudtrail.NewFromConfig(cfg).LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
	if err != nil || len(out.Events) != 1 || aws.ToString(out.Events[0].EventId) != "own-event" {
		t.Errorf("own credentials: %v, %d events", err, len(out.Events))
	}

	denied := cfg.Copy()
	denied.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, "arn:aws:iam::777788889999:role/audit"))
	if _, err := denied.Credentials.Retrieve(ctx); apiCode(err) != "AccessDenied" {
		t.Errorf("assuming a role not allowed: %v", err)
	}
	if srv.STS.Calls("444455556666") == 0 {
		t.Error("no AssumeRole call recorded")
	}
}
