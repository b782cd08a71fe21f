package testenv

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// ConnectionRetryOnly is a retryer for tests that must see every throttle
// and API error as the server sent it: it retries only a dropped
// connection, a race in net/http's keep-alive handling that the SDK's
// default retryer also retries (aws/aws-sdk-go-v2#2737). aws.NopRetryer
// would turn that race into a flaky test.
func ConnectionRetryOnly() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		o.RateLimiter = ratelimit.None
	})
}

// FakeAWSConfig points the SDK's default chain at protocol fakes: it sets
// env (AWS_ENDPOINT_URL_<SERVICE> variables) and test credentials and a
// region for the test, and loads the configuration as production does.
func FakeAWSConfig(t testing.TB, env map[string]string) aws.Config {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return cfg
}
