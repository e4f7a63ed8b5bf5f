package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// CommonStackProps configures the common stack.
type CommonStackProps struct {
	awscdk.StackProps
	Config Config
}

// CommonStack holds what the data and process stacks share: the encryption
// key and the unified order stream DMS writes to.
type CommonStack struct {
	awscdk.Stack
	// Key encrypts the streams, queues, tables, database storage and DMS
	// storage of all three stacks.
	Key awskms.IKey
	// OrderStream is the unified order stream: every DMS change record of
	// orders.order and orders.order_item, partitioned by orderId.
	OrderStream awskinesis.IStream
	// AlarmTopic receives every alarm of the pipeline, on ALARM and on OK.
	AlarmTopic awssns.ITopic
}

// NewCommonStack creates the common stack.
func NewCommonStack(scope constructs.Construct, id string, props CommonStackProps) *CommonStack {
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	cfg := props.Config

	key := awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the unified streaming ETL pipeline's streams, queues, tables and databases."),
		EnableKeyRotation: jsii.Bool(true),
		PendingWindow:     awscdk.Duration_Days(jsii.Number(KeyDeletionWindowDays)),
		// Retained: data encrypted with it (snapshots, backups) may outlive
		// the stack.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		// Replaces the default policy (the account may do anything): the
		// account administers the key, only the pipeline's roles and
		// cfg.KeyUsers use it (keypolicy.go).
		Policy: pipelineKeyPolicy(stack, cfg),
	})

	orderStream := newStream(stack, "OrderStream", cfg.UnifiedStream, cfg.StreamRetentionHours, key)

	alarmTopic := newAlarmTopic(stack, cfg)
	addOutputs(stack, []output{
		{"OrderStreamName", "The unified order stream DMS writes change records to.", orderStream.StreamName()},
		{"AlarmTopicArn", "The topic every alarm of the pipeline notifies; subscribe to it (or set context alarmEmail).", alarmTopic.TopicArn()},
	})

	return &CommonStack{Stack: stack, Key: key, OrderStream: orderStream, AlarmTopic: alarmTopic}
}

// newStream creates a KMS-encrypted Kinesis stream with the given capacity.
func newStream(scope constructs.Construct, id string, capacity StreamCapacity, retentionHours int, key awskms.IKey) awskinesis.Stream {
	stream := awskinesis.NewStream(scope, jsii.String(id), streamProps(capacity, retentionHours, key))
	cdknag.NagSuppressions_AddResourceSuppressions(stream, &[]*cdknag.NagPackSuppression{customerKeyStream()}, nil)
	return stream
}

// customerKeyStream accepts the warning about a customer managed key on a
// Kinesis stream.
func customerKeyStream() *cdknag.NagPackSuppression {
	return &cdknag.NagPackSuppression{
		Id: jsii.String("AwsSolutions-KDS3"),
		Reason: jsii.String("Deliberate: one customer managed key protects every store of the pipeline (docs/design.md §6), " +
			"so its key policy and CloudTrail govern access to the change data; the per-request KMS cost is accepted."),
	}
}

// stackProps returns the props shared by the three stacks: their fixed
// names and, when given, the environment.
func stackProps(name, description string, env *awscdk.Environment) awscdk.StackProps {
	return awscdk.StackProps{
		StackName:   jsii.String(name),
		Description: jsii.String(fmt.Sprintf("Unified streaming ETL: %s", description)),
		Env:         env,
	}
}

// sourceConditions are the confused-deputy conditions of a service role's
// trust policy: the service may assume the role only on behalf of this
// account's resources of the given service (aws:SourceArn's account and
// aws:SourceAccount must agree).
// https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html
func sourceConditions(stack awscdk.Stack, service, resource string) *map[string]any {
	return &map[string]any{
		"StringEquals": map[string]any{"aws:SourceAccount": stack.Account()},
		"ArnLike": map[string]any{"aws:SourceArn": awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("arn:"), stack.Partition(), jsii.String(":" + service + ":"), stack.Region(), jsii.String(":"), stack.Account(), jsii.String(":" + resource),
		})},
	}
}

// viaService is the condition that a KMS permission is used only through
// the given service (its endpoint in the stack's region), on the caller's
// behalf.
// https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
func viaService(stack awscdk.Stack, service string) *map[string]any {
	return &map[string]any{"StringEquals": map[string]any{
		"kms:ViaService": awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String(service + "."), stack.Region(), jsii.String(".amazonaws.com")}),
	}}
}

// output is a stack output.
type output struct {
	id, description string
	value           *string
}

func addOutputs(stack awscdk.Stack, outputs []output) {
	for _, o := range outputs {
		awscdk.NewCfnOutput(stack, jsii.String(o.id), &awscdk.CfnOutputProps{Description: jsii.String(o.description), Value: o.value})
	}
}

// forEachResource calls f with every CloudFormation resource of type typ
// in scope's tree.
func forEachResource(scope constructs.IConstruct, typ string, f func(awscdk.CfnResource)) {
	for _, c := range *scope.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if r, ok := c.(awscdk.CfnResource); ok && *r.CfnResourceType() == typ {
			f(r)
		}
	}
}
