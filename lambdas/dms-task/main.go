// Command dms-task is both the onEvent and the isComplete handler of the
// custom resources that start, stop and resume the DMS replication task
// around CloudFormation (internal/customresource/dmstask), in lifecycle
// and stopper mode.
//
// Configuration comes from the resources' properties, not the environment.
// AWS clients come from the standard SDK configuration.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/dmstask"
)

func main() {
	customresource.Main("dms-task", func(cfg aws.Config) customresource.Handler {
		return &dmstask.Handler{
			DMS:            dms.NewFromConfig(cfg),
			CloudFormation: cloudformation.NewFromConfig(cfg),
		}
	})
}
