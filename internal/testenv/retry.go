package testenv

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
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
