// Command kda-start is both the onEvent and the isComplete handler of the
// custom resource that starts the Kinesis Data Analytics SQL application
// (processor=kda-sql; internal/customresource/kdastart).
//
// Configuration comes from the resource's properties, not the environment.
// AWS credentials and Region come from the standard SDK configuration;
// AWS_ENDPOINT_URL_KINESIS_ANALYTICS overrides the service endpoint.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/kdastart"
)

func main() {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		// Failing the init phase makes every invocation report the cause.
		logger.Error("kda-start: cannot load the AWS configuration", "error", err)
		os.Exit(1)
	}
	h := &kdastart.Handler{KDA: kdastart.NewClient(cfg)}
	lambda.Start(customresource.Lambda(h, logger))
}
