package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/ops"
)

// awsClients are the AWS APIs the operator commands call, each as the
// small interface its caller takes.
type awsClients struct {
	CloudFormation ops.CloudFormation
	SecretsManager ops.SecretsManager
	S3             enrich.ObjectGetter
	DynamoDB       ops.DynamoDB
	Kinesis        ops.Kinesis
	// Objects lists and reads S3 objects (etl replay); SQS receives and
	// deletes dead letters (etl replay).
	Objects ops.S3
	SQS     ops.SQS
	// StackResources lists the stacks' resources (etl key-users).
	StackResources ops.StackResources
}

// newAWSClients builds the SDK clients from the configuration. It is the
// one seam through which tests substitute in-memory fakes.
var newAWSClients = func(cfg aws.Config) awsClients {
	objects := s3.NewFromConfig(cfg, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	cf := cloudformation.NewFromConfig(cfg)
	return awsClients{
		CloudFormation: cf,
		StackResources: cf,
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		// Whether the catalogue object has a checksum to validate depends
		// on the tool that uploaded it; the SDK's warning when it has none
		// is noise.
		S3:       objects,
		DynamoDB: dynamodb.NewFromConfig(cfg),
		Kinesis:  kinesis.NewFromConfig(cfg),
		Objects:  objects,
		SQS:      sqs.NewFromConfig(cfg),
	}
}

// loadAWSClients loads the SDK's standard configuration (environment,
// profile, SSO, instance role; AWS_ENDPOINT_URL_<SERVICE> for emulators),
// insisting on a Region, whose absence the SDK reports confusingly, and
// builds the clients from it.
func loadAWSClients(ctx context.Context) (awsClients, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return awsClients{}, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return awsClients{}, errors.New("no AWS Region: set AWS_REGION, or a region in your AWS_PROFILE")
	}
	return newAWSClients(cfg), nil
}

// orderStreamFromStack sets *stream to the unified stream's name from the
// common stack's outputs when commonStack is named (etl resend, replay,
// verify take --stream or --common-stack).
func orderStreamFromStack(ctx context.Context, clients awsClients, commonStack string, stream *string) error {
	if commonStack == "" {
		return nil
	}
	outputs, err := ops.StackOutputs(ctx, clients.CloudFormation, commonStack)
	if err != nil {
		return err
	}
	*stream, err = outputs.Get(ops.OutputOrderStreamName)
	return err
}
