package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
)

// logGroupProps are the props of every log group the stacks create: the
// configured retention, and deleted with the stack (logs of a deleted
// pipeline have nothing left to explain).
func logGroupProps(retention awslogs.RetentionDays) *awslogs.LogGroupProps {
	return &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	}
}
