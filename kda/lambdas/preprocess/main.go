// Command preprocess is the input-preprocessing Lambda of the KDA SQL
// application (processor=kda-sql): it turns the DMS records on the order
// stream into flat records (docs/design.md §3.3). Build it as bootstrap for
// provided.al2023 with -tags lambda.norpc.
package main

import (
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/unified-streaming-etl/etl/kda/preprocess"
)

func main() {
	// JSON lines carrying the request id when the function's log format is
	// JSON; AWS_LAMBDA_LOG_LEVEL=DEBUG also logs each dropped record.
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	// The handler takes raw payloads (it is a lambda.Handler): reading the
	// event with encoding/json would cost more than preprocessing it.
	lambda.Start(preprocess.New(logger))
}
