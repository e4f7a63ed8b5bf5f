package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"
)

// tableProps are the props of the pipeline's tables, keyed by partition
// and sort key: encrypted with the pipeline's customer managed key (its
// policy and CloudTrail record who reads the data, and disabling it locks
// the data), point-in-time recovery on, on-demand billing unless the
// caller sets capacity, and deleted with the stack: both tables hold
// derived data a DMS full load rebuilds from the source.
func tableProps(key awskms.IKey, partition, sort *awsdynamodb.Attribute) *awsdynamodb.TableProps {
	return &awsdynamodb.TableProps{
		PartitionKey:  partition,
		SortKey:       sort,
		BillingMode:   awsdynamodb.BillingMode_PAY_PER_REQUEST,
		Encryption:    awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey: key,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	}
}

// withBilling sets a table's capacity mode from the configuration.
func withBilling(p *awsdynamodb.TableProps, cfg Config) *awsdynamodb.TableProps {
	if cfg.DynamoBilling == BillingProvisioned {
		p.BillingMode = awsdynamodb.BillingMode_PROVISIONED
		p.ReadCapacity = jsii.Number(float64(cfg.DynamoReadCapacity))
		p.WriteCapacity = jsii.Number(float64(cfg.DynamoWriteCapacity))
	}
	return p
}
