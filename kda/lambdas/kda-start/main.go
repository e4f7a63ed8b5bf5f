// Command kda-start is both the onEvent and the isComplete handler of the
// custom resource that starts the Kinesis Data Analytics SQL application
// (processor=kda-sql; kda/start).
//
// Configuration comes from the resource's properties, not the environment.
// AWS credentials and Region come from the standard SDK configuration;
// AWS_ENDPOINT_URL_KINESIS_ANALYTICS overrides the service endpoint.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/kda/start"
)

func main() {
	customresource.Main("kda-start", func(cfg aws.Config) customresource.Handler {
		return &kdastart.Handler{KDA: kdastart.NewClient(cfg)}
	})
}
