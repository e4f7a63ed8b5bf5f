// Command dms-task is both the onEvent and the isComplete handler of the
// custom resources that start, stop and resume the DMS replication task
// around CloudFormation (internal/customresource/dmstask), in lifecycle
// and stopper mode.
//
// Configuration comes from the resources' properties, not the environment.
// AWS clients come from the standard SDK configuration.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/dmstask"
)

func main() {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		// Failing the init phase makes every invocation report the cause.
		logger.Error("dms-task: cannot load the AWS configuration", "error", err)
		os.Exit(1)
	}
	h := &dmstask.Handler{
		DMS:            dms.NewFromConfig(cfg),
		CloudFormation: cloudformation.NewFromConfig(cfg),
	}
	lambda.Start(customresource.Lambda(h, logger))
}
