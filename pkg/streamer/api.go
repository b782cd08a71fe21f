package streamer

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// QueueAPI is the part of the SQS client the streamer calls; *sqs.Client
// satisfies it. IAM: sqs:ReceiveMessage, sqs:DeleteMessage,
// sqs:ChangeMessageVisibility and sqs:GetQueueAttributes (readiness only).
type QueueAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// ObjectAPI fetches CloudTrail log objects named by S3 notifications;
// *s3.Client satisfies it. IAM: s3:GetObject on the trail bucket.
type ObjectAPI interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Classifier decides verdicts; *classify.Classifier satisfies it. A store
// failure is an error matching classify.ErrStore.
type Classifier interface {
	Classify(ctx context.Context, ev *cloudtrail.Event) (classify.Result, error)
	Recheck(ctx context.Context, ev *cloudtrail.Event) (classify.Result, error)
}
