// Command schema-setup is the onEvent handler (no isComplete) of the
// custom resource that applies sql/ordersdb-setup.sql to the orders
// database (internal/customresource/schemasetup). It runs in the VPC and
// reaches Secrets Manager through its VPC endpoint.
//
// Configuration comes from the resource's properties, not the environment.
// AWS clients come from the standard SDK configuration.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
)

func main() {
	customresource.Main("schema-setup", func(cfg aws.Config) customresource.Handler {
		return &schemasetup.Handler{Secrets: secretsmanager.NewFromConfig(cfg)}
	})
}
