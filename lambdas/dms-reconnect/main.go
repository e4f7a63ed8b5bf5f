// Command dms-reconnect is the target of the EventBridge rule that matches
// a successful rotation of the replication secret: it stops the DMS task
// and resumes it so that DMS logs in with the new password
// (dmstask.Handler.OnRotation). It fails, and its Errors alarm fires, when
// the task does not come back to running.
//
// The task comes from the environment (dmstask.EnvReconnectTaskArn); AWS
// clients from the standard SDK configuration.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
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
		logger.Error("dms-reconnect: cannot load the AWS configuration", "error", err)
		os.Exit(1)
	}
	h := &dmstask.Handler{DMS: dms.NewFromConfig(cfg)}
	task := os.Getenv(dmstask.EnvReconnectTaskArn)
	lambda.Start(func(ctx context.Context, ev events.CloudWatchEvent) error {
		return h.OnRotation(customresource.WithLogger(ctx, logger), task, ev)
	})
}
