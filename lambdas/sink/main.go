// Command sink is the Lambda that writes enriched order-items from the
// enriched Kinesis stream to DynamoDB (internal/sink).
//
// Environment (sink.ConfigFromEnv): TABLE_NAME (required) names the
// OrderEnriched table; DLQ_URL (optional) is the SQS queue for records
// that can never be written, which are logged instead when it is unset. AWS clients come
// from the standard SDK configuration, so AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_SQS point them at emulators.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/retry"
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
	cfg, err := sink.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger
	// Connections kept for every OrderEnriched write in flight.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(sink.HTTPClient()))
	if err != nil {
		return nil, err
	}
	// internal/retry is the only retry layer (bounded by the invocation's
	// deadline); the SDK's own retries would multiply its attempts.
	awsCfg = retry.WithoutSDKRetries(awsCfg)

	var dead dlq.Sender = dlq.Log{Logger: logger}
	if cfg.DLQURL != "" {
		dead = dlq.NewSQS(sqs.NewFromConfig(awsCfg), cfg.DLQURL)
	}
	return sink.New(cfg, dynamodb.NewFromConfig(awsCfg), dead)
}
