package customresource

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Main is the whole main function of a custom-resource Lambda named name:
// it logs through lambdacontext's logger (JSON with the request ID when the
// function's log format is JSON), loads the AWS configuration once, builds
// the handler's clients from it with newHandler and serves the Provider
// framework's requests through Lambda. Configuration comes from the
// resource's properties, not the environment.
func Main(name string, newHandler func(aws.Config) Handler) {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		// Failing the init phase makes every invocation report the cause.
		logger.Error(name+": cannot load the AWS configuration", "error", err)
		os.Exit(1)
	}
	lambda.Start(Lambda(newHandler(cfg), logger))
}
