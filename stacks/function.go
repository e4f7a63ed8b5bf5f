package stacks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/unified-streaming-etl/etl/internal/lambdabuild"
)

// Function names: each is built from lambdas/<name> into
// <LambdaDir>/<name>/bootstrap.
const (
	FunctionSink   = "sink"
	FunctionEnrich = "enrich"
	// The custom resource handlers (customresources.go).
	FunctionSchemaSetup = "schema-setup"
	FunctionDMSTask     = "dms-task"
	FunctionDMSRoles    = "dms-roles"
	// FunctionDMSReconnect reconnects the DMS task after a rotation.
	FunctionDMSReconnect = "dms-reconnect"
)

// functionAsset returns the asset directory of a built function, or an
// error saying how to build it.
func functionAsset(lambdaDir, name string) (string, error) {
	dir := filepath.Join(lambdaDir, name)
	if _, err := os.Stat(filepath.Join(dir, lambdabuild.BinaryName)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("function %q is not built: %s/%s is missing (run `make lambdas`)", name, dir, lambdabuild.BinaryName)
		}
		return "", fmt.Errorf("function %q: %w", name, err)
	}
	return dir, nil
}

type goFunctionProps struct {
	AssetDir    string
	Description string
	MemoryMiB   int
	Timeout     time.Duration
	Environment map[string]*string
	Retention   awslogs.RetentionDays
	// Vpc, when set, places the function in Subnets with SecurityGroup.
	Vpc           awsec2.IVpc
	Subnets       *awsec2.SubnetSelection
	SecurityGroup awsec2.ISecurityGroup
}

// newGoFunction creates a Go function on provided.al2023/arm64 with JSON
// logs, active tracing and its own log group and role. The role gets only
// write access to that log group; callers add the rest through grants.
func newGoFunction(scope constructs.Construct, id string, p goFunctionProps) awslambda.Function {
	logGroup := awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), logGroupProps(p.Retention))
	// A role of our own instead of AWSLambdaBasicExecutionRole, which may
	// write to every log group of the account.
	role := awsiam.NewRole(scope, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(p.Description),
	})
	logGroup.GrantWrite(role)

	props := &awslambda.FunctionProps{
		Description:   jsii.String(p.Description),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  awslambda.Architecture_ARM_64(),
		Handler:       jsii.String(lambdabuild.BinaryName),
		Code:          awslambda.Code_FromAsset(jsii.String(p.AssetDir), nil),
		MemorySize:    jsii.Number(float64(p.MemoryMiB)),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(p.Timeout.Seconds())),
		Environment:   &p.Environment,
		Role:          role,
		LogGroup:      logGroup,
		LoggingFormat: awslambda.LoggingFormat_JSON,
		Tracing:       awslambda.Tracing_ACTIVE,
	}
	if p.Vpc != nil {
		props.Vpc = p.Vpc
		props.VpcSubnets = p.Subnets
		props.SecurityGroups = &[]awsec2.ISecurityGroup{p.SecurityGroup}
		grantNetworkInterfaces(role, p.Vpc, p.Subnets, p.SecurityGroup)
	}
	fn := awslambda.NewFunction(scope, jsii.String(id), props)
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so their resource is '*'."),
		AppliesTo: &[]interface{}{jsii.String("Resource::*")},
	}}, jsii.Bool(true))
	suppressKeyGrantWildcards(role)
	return fn
}

// grantNetworkInterfaces lets Lambda manage a VPC function's network
// interfaces with its execution role, as the Lambda developer guide lists
// (docs/aws-facts.md §12): ec2:CreateNetworkInterface only in the
// function's subnets with its security group (EC2 authorizes that action on
// the new interface, the subnet and each security group, so naming ours
// keeps interfaces out of every other subnet and group of the account);
// ec2:DeleteNetworkInterface on all of this account's and Region's EC2
// resources, as the guide requires for that action; the secondary-address
// actions on network interfaces only, their one resource type.
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html
func grantNetworkInterfaces(role awsiam.Role, vpc awsec2.IVpc, subnets *awsec2.SubnetSelection, sg awsec2.ISecurityGroup) {
	stack := awscdk.Stack_Of(role)
	ec2Arn := func(resource, name string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("ec2"), Resource: jsii.String(resource), ResourceName: jsii.String(name),
		})
	}
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"),
		Resources: jsii.Strings("*"),
	}))
	createOn := []*string{ec2Arn("network-interface", "*"), ec2Arn("security-group", *sg.SecurityGroupId())}
	for _, id := range *vpc.SelectSubnets(subnets).SubnetIds {
		createOn = append(createOn, ec2Arn("subnet", *id))
	}
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("CreateInterfacesInTheFunctionsSubnets"),
		Actions:   jsii.Strings("ec2:CreateNetworkInterface"),
		Resources: &createOn,
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ec2:DeleteNetworkInterface"),
		Resources: &[]*string{ec2Arn("*", "*")},
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"),
		Resources: &[]*string{ec2Arn("network-interface", "*")},
	}))
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Network interfaces of a VPC function: ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets support no resource-level permissions; " +
			"Lambda creates interfaces with IDs not known in advance (creation is limited to the function's subnets and security group) " +
			"and the Lambda developer guide requires ec2:DeleteNetworkInterface on all of the account's EC2 resources in the Region."),
		AppliesTo: &[]interface{}{
			jsii.String("Resource::*"),
			jsii.String("Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:*/*"),
			jsii.String("Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*"),
		},
	}}, jsii.Bool(true))
}

// suppressKeyGrantWildcards accepts the KMS action families CDK grants
// (stream, queue and table grants on an encrypted resource) on a role.
func suppressKeyGrantWildcards(role awsiam.IRole) {
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Generated by CDK grants on the pipeline's customer managed key: kms:GenerateDataKey* and kms:ReEncrypt* " +
			"name action families of that single key (the resource is its ARN), needed to write to and read from the encrypted stream, queue or table."),
		AppliesTo: &[]interface{}{jsii.String("Action::kms:GenerateDataKey*"), jsii.String("Action::kms:ReEncrypt*")},
	}}, jsii.Bool(true))
}

// suppressObjectReadWildcards accepts the S3 action families of
// bucket.GrantRead(role, key) on a role.
func suppressObjectReadWildcards(role awsiam.IRole, what string) {
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Generated by a CDK read grant scoped to " + what + ": s3:GetObject*, s3:GetBucket* and s3:List* " +
			"are read-only action families on that object key and its bucket."),
		AppliesTo: &[]interface{}{jsii.String("Action::s3:GetObject*"), jsii.String("Action::s3:GetBucket*"), jsii.String("Action::s3:List*")},
	}}, jsii.Bool(true))
}

// newDeadLetterQueue creates an encrypted, TLS-only queue for records a
// function could not process.
func newDeadLetterQueue(scope constructs.Construct, id string, key awskms.IKey) awssqs.Queue {
	queue := awssqs.NewQueue(scope, jsii.String(id), deadLetterQueueProps(key))
	cdknag.NagSuppressions_AddResourceSuppressions(queue, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is itself the dead-letter queue: where the function sends records it cannot process, with the reason (batches the event source mapping gives up on go to the failure bucket)."),
	}}, nil)
	return queue
}

// streamEventSource is the event source mapping of docs/design.md §5.3 for
// fn on a Kinesis stream: TRIM_HORIZON (so the full load is not skipped),
// the configured batch size and parallelization, bisect on error, bounded
// retries and record age, partial batch responses, and the batches it
// gives up on, records included, to the failure bucket (failures.go).
// With consumer=efo it reads through an enhanced fan-out consumer of
// its own (docs/design.md §5.5).
func streamEventSource(fn awslambda.Function, stream awskinesis.IStream, cfg Config, failures *s3FailureDestination) awslambda.IEventSource {
	props := &awslambdaeventsources.KinesisEventSourceProps{
		StartingPosition:        awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:               jsii.Number(float64(cfg.BatchSize)),
		ParallelizationFactor:   jsii.Number(float64(cfg.ParallelizationFactor)),
		BisectBatchOnError:      jsii.Bool(true),
		RetryAttempts:           jsii.Number(EventSourceRetryAttempts),
		MaxRecordAge:            awscdk.Duration_Seconds(jsii.Number(EventSourceMaxRecordAge.Seconds())),
		ReportBatchItemFailures: jsii.Bool(true),
		OnFailure:               failures,
	}
	if cfg.Consumer != ConsumerEFO {
		return awslambdaeventsources.NewKinesisEventSource(stream, props)
	}
	// One consumer per mapped stream (AWS::Kinesis::StreamConsumer), named
	// after the function's unique ID in the stack; consumer names need
	// only be unique within their stream. The event source grants the
	// function what Lambda needs to read through it: DescribeStreamConsumer
	// and SubscribeToShard on the consumer, and the stream's read actions
	// (and its key's decrypt).
	// https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
	// https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-create.html
	// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kinesis-streamconsumer.html
	// (docs/aws-facts.md §5)
	consumer := awskinesis.NewStreamConsumer(fn.Stack(), jsii.String(*fn.Node().Id()+"Consumer"), &awskinesis.StreamConsumerProps{
		Stream:             stream,
		StreamConsumerName: awscdk.Names_UniqueId(fn),
	})
	return awslambdaeventsources.NewKinesisConsumerEventSource(consumer, props)
}

// functionAssets returns the asset directories of the named functions.
func functionAssets(lambdaDir string, names ...string) (map[string]string, error) {
	assets := map[string]string{}
	for _, name := range names {
		dir, err := functionAsset(lambdaDir, name)
		if err != nil {
			return nil, err
		}
		assets[name] = dir
	}
	return assets, nil
}
