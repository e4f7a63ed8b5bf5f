// Command sink is the Lambda that writes enriched order-items from the
// enriched Kinesis stream to DynamoDB (internal/sink).
//
// Environment: TABLE_NAME (required) names the OrderEnriched table;
// DLQ_URL (optional) is the SQS queue for records that can never be
// written, which are logged instead when it is unset. AWS clients come
// from the standard SDK configuration, so AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_SQS point them at emulators.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

func main() {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	h, err := newHandler(context.Background(), logger)
	if err != nil {
		// Failing the init phase makes Lambda report the cause on every
		// invocation instead of silently dropping batches.
		logger.Error("sink: cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func newHandler(ctx context.Context, logger *slog.Logger) (*sink.Handler, error) {
	table := os.Getenv("TABLE_NAME")
	if table == "" {
		return nil, errors.New("environment variable TABLE_NAME is not set")
	}
	// One connection per write in flight, kept between invocations; the
	// SDK's default keeps only 10 idle per host and would reconnect (with
	// a TLS handshake) for the rest of every batch.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = 2 * sink.DefaultConcurrency
		tr.MaxIdleConnsPerHost = 2 * sink.DefaultConcurrency
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(httpClient))
	if err != nil {
		return nil, err
	}
	// internal/retry is the only retry layer (bounded by the invocation's
	// deadline); the SDK's own retries would multiply its attempts.
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })

	var dead dlq.Sender = dlq.Log{Logger: logger}
	if url := os.Getenv("DLQ_URL"); url != "" {
		queue := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} })
		dead = dlq.NewSQS(queue, url)
	}
	return sink.New(sink.Config{
		TableName: table,
		Source:    lambdacontext.FunctionName,
		Logger:    logger,
	}, db, dead)
}
