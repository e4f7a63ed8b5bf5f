package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"
)

// streamProps are the props of the pipeline's Kinesis streams: encrypted
// with the pipeline key, the configured retention and capacity.
func streamProps(capacity StreamCapacity, retentionHours int, key awskms.IKey) *awskinesis.StreamProps {
	props := &awskinesis.StreamProps{
		Encryption:      awskinesis.StreamEncryption_KMS,
		EncryptionKey:   key,
		RetentionPeriod: awscdk.Duration_Hours(jsii.Number(float64(retentionHours))),
		// Transit, not storage: records live for the retention period only,
		// the raw archive keeps them, and a stream left behind by `cdk
		// destroy` bills per shard hour (aws-cdk-lib retains streams unless
		// told otherwise).
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	}
	if capacity.OnDemand {
		props.StreamMode = awskinesis.StreamMode_ON_DEMAND
	} else {
		props.StreamMode = awskinesis.StreamMode_PROVISIONED
		props.ShardCount = jsii.Number(float64(capacity.Shards))
	}
	return props
}
