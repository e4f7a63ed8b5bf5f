// Command enrich is the join processor Lambda (docs/design.md §4): DMS change
// records from the unified order stream in, enriched order-items written to
// OrderEnriched (and, when OUTPUT_STREAM is set, published on the enriched
// stream), join state in DynamoDB. It only wires clients; the logic is in
// internal/enrich.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

func main() {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	h, err := setup(context.Background(), logger)
	if err != nil {
		// Failing the init phase makes Lambda report the cause and start
		// a fresh environment on the next invocation.
		logger.Error("enrich: init failed", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func setup(ctx context.Context, logger *slog.Logger) (*enrich.Handler, error) {
	cfg, err := enrich.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger
	// Connections kept for every OrderEnriched write in flight.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(sink.HTTPClient()))
	if err != nil {
		return nil, err
	}
	// The handler retries DynamoDB, Kinesis and SQS calls itself, bounded
	// by the invocation deadline; SDK retries on top would multiply them.
	// S3 keeps them: catalogue reads do not go through internal/retry.
	noRetries := retry.WithoutSDKRetries(awsCfg)
	products, err := enrich.NewReference(cfg.ReferenceDataURI, s3.NewFromConfig(awsCfg), enrich.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	// Loaded during init so that a missing catalogue fails the cold start
	// instead of the first batch.
	if _, err := products.Catalogue(ctx); err != nil {
		return nil, err
	}
	var sender dlq.Sender // nil: dead letters are logged
	if cfg.DLQURL != "" {
		sender = dlq.NewSQS(sqs.NewFromConfig(noRetries), cfg.DLQURL)
	}
	db := dynamodb.NewFromConfig(noRetries)
	return enrich.New(cfg, enrich.Deps{
		DB:       db,
		Table:    db,
		Stream:   kinesis.NewFromConfig(noRetries),
		Products: products,
		DLQ:      sender,
	})
}
