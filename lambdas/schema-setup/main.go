// Command schema-setup is the onEvent handler (no isComplete) of the
// custom resource that applies sql/ordersdb-setup.sql to the orders
// database (internal/customresource/schemasetup). It runs in the VPC and
// reaches Secrets Manager through its VPC endpoint.
//
// Configuration comes from the resource's properties, not the environment.
// AWS clients come from the standard SDK configuration.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
)

func main() {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		// Failing the init phase makes every invocation report the cause.
		logger.Error("schema-setup: cannot load the AWS configuration", "error", err)
		os.Exit(1)
	}
	h := &schemasetup.Handler{Secrets: secretsmanager.NewFromConfig(cfg)}
	lambda.Start(customresource.Lambda(h, logger))
}
