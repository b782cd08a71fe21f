package streamer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

// TableQuerier is the DynamoDB call the readiness probe makes;
// *dynamodb.Client satisfies it.
type TableQuerier interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Probe checks that the queue and the session table answer. It uses only
// permissions the streamer already needs: sqs:GetQueueAttributes on the
// queue, and dynamodb:Query on the source-identity index (a one-item query
// for a key no session has), so no dynamodb:DescribeTable grant is needed.
type Probe struct {
	Queue    QueueAPI
	QueueURL string
	Table    TableQuerier
	// TableName and Index name the session table and the GSI queried
	// (sessions.DefaultSourceIdentityIndex when empty).
	TableName string
	Index     string
	// Timeout bounds each check (2 s when zero).
	Timeout time.Duration
}

// probeKey is the source_identity the readiness query asks for; a Sentinel
// SourceIdentity always starts with "sentinel:", so none matches.
const probeKey = "sessionwatch-readiness-probe"

// Check returns nil when both the queue and the table answered.
func (p *Probe) Check(ctx context.Context) error {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	index := p.Index
	if index == "" {
		index = sessions.DefaultSourceIdentityIndex
	}
	// Both at once, each bounded by the timeout, so that a probe answers
	// within it.
	var qerr, terr error
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err := p.Queue.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(p.QueueURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
		}, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
		if err != nil {
			qerr = fmt.Errorf("queue: %w", err)
		}
	})
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err := p.Table.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(p.TableName),
			IndexName:                 aws.String(index),
			KeyConditionExpression:    aws.String("#k = :v"),
			ExpressionAttributeNames:  map[string]string{"#k": sessions.AttrSourceIdentity},
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{":v": &dtypes.AttributeValueMemberS{Value: probeKey}},
			Limit:                     aws.Int32(1),
		}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
		if err != nil {
			terr = fmt.Errorf("session table: %w", err)
		}
	})
	wg.Wait()
	return errors.Join(qerr, terr)
}

// OpsHandler serves /metrics from reg, /healthz (the process is up) and
// /readyz (ready returns nil, and the streamer is not shutting down).
// While degraded (nil: never) returns a description, such as a sink that
// keeps failing, /readyz still answers 200 but its body starts with
// "degraded:" instead of "ready": restarting or taking the task out of
// service would not bring a sink back, and the held messages stay safe on
// the queue either way.
func OpsHandler(reg *prometheus.Registry, ready func(context.Context) error, draining func() bool, degraded func() string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if draining != nil && draining() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: shutting down\n"))
			return
		}
		if err := ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		if degraded != nil {
			if why := degraded(); why != "" {
				_, _ = fmt.Fprintf(w, "degraded: %s\n", why)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
