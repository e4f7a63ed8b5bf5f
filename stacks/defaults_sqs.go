package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// deadLetterQueueProps are the props of a dead-letter queue: encrypted
// with the pipeline key, TLS-only, and keeping messages as long as SQS
// allows (DLQRetention), to leave time to replay them.
func deadLetterQueueProps(key awskms.IKey) *awssqs.QueueProps {
	return &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: key,
		EnforceSSL:          jsii.Bool(true),
		RetentionPeriod:     awscdk.Duration_Seconds(jsii.Number(DLQRetention.Seconds())),
	}
}
