// Command dms-roles is both the onEvent and the isComplete handler of the
// custom resources that create DMS's account-wide service roles
// (dms-vpc-role, dms-cloudwatch-logs-role) only where the account has none,
// and never delete them (internal/customresource/dmsroles).
//
// Configuration comes from the resources' properties, not the environment.
// AWS clients come from the standard SDK configuration.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/dmsroles"
)

func main() {
	customresource.Main("dms-roles", func(cfg aws.Config) customresource.Handler {
		return &dmsroles.Handler{IAM: iam.NewFromConfig(cfg)}
	})
}
