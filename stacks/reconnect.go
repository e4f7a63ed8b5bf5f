package stacks

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/unified-streaming-etl/etl/internal/customresource/dmstask"
)

// DMSReconnectTimeout bounds one reconnection (Lambda's maximum): stopping
// and resuming a task takes a few minutes.
const DMSReconnectTimeout = 15 * time.Minute

// DMSReconnectRetries is how many times Lambda tries a failed reconnection
// again (a transient API error, a task slow to settle) before the alarm is
// all that is left.
const DMSReconnectRetries = 1

// RotationSucceededPattern is the EventBridge pattern of a successful
// rotation of the secret with ARN secretArn: Secrets Manager records
// RotationSucceeded in CloudTrail, which EventBridge delivers as an "AWS
// Service Event via CloudTrail" naming the secret in
// additionalEventData.SecretId.
// https://docs.aws.amazon.com/secretsmanager/latest/userguide/monitoring-eventbridge.html
// https://docs.aws.amazon.com/secretsmanager/latest/userguide/cloudtrail_log_entries.html
func RotationSucceededPattern(secretArn *string) *awsevents.EventPattern {
	return &awsevents.EventPattern{
		Source:     jsii.Strings("aws.secretsmanager"),
		DetailType: jsii.Strings("AWS Service Event via CloudTrail"),
		Detail: &map[string]interface{}{
			"eventSource":         []string{"secretsmanager.amazonaws.com"},
			"eventName":           []string{dmstask.EventRotationSucceeded},
			"additionalEventData": map[string]interface{}{"SecretId": []*string{secretArn}},
		},
	}
}

type taskReconnectProps struct {
	assetDir  string
	secret    awssecretsmanager.ISecret
	task      awsdms.CfnReplicationTask
	retention awslogs.RetentionDays
}

// newTaskReconnect makes the replication task survive a rotation of its
// source secret: DMS reads the secret only when it connects, and
// single-user rotation invalidates the old password at once, so a rule on
// each successful rotation runs a function that stops and resumes the task
// (lambdas/dms-reconnect, dmstask.Handler.OnRotation).
func newTaskReconnect(scope constructs.Construct, p taskReconnectProps) awslambda.Function {
	fn := newGoFunction(scope, "DmsReconnect", goFunctionProps{
		AssetDir:    p.assetDir,
		Description: "After each rotation of the DMS user's secret, stops and resumes the replication task so that it logs in with the new password.",
		MemoryMiB:   CustomResourceMemoryMiB,
		Timeout:     DMSReconnectTimeout,
		Retention:   p.retention,
		Environment: map[string]*string{dmstask.EnvReconnectTaskArn: p.task.Ref()},
	})
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// No resource-level permissions; the handler filters by the ARN.
		Actions:   jsii.Strings("dms:DescribeReplicationTasks"),
		Resources: jsii.Strings("*"),
	}))
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dms:StartReplicationTask", "dms:StopReplicationTask"),
		Resources: &[]*string{p.task.Ref()},
	}))
	cdknag.NagSuppressions_AddResourceSuppressions(fn.Role(), &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("dms:DescribeReplicationTasks supports no resource-level permissions; the handler filters by the task's ARN, and start/stop are allowed on that task only."),
		AppliesTo: &[]interface{}{jsii.String("Resource::*")},
	}}, jsii.Bool(true))
	fn.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{
		RetryAttempts: jsii.Number(DMSReconnectRetries),
		MaxEventAge:   awscdk.Duration_Hours(jsii.Number(1)),
	})
	awsevents.NewRule(scope, jsii.String("ReplicationSecretRotated"), &awsevents.RuleProps{
		Description:  jsii.String("A rotation of the DMS user's secret succeeded: reconnect the replication task."),
		EventPattern: RotationSucceededPattern(p.secret.SecretArn()),
		Targets:      &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn, nil)},
	})
	return fn
}

// newReconnectAlarm fires when a reconnection failed: the task did not run
// again after a rotation, so replication is stopped.
func newReconnectAlarm(scope constructs.Construct, fn awslambda.Function, topic awssns.ITopic) awscloudwatch.Alarm {
	return newAlarmSet(scope, topic).add(alarmSpec{
		id: "DmsReconnectAlarm",
		description: fmt.Sprintf("The DMS task did not come back to running after a rotation of the DMS user's secret (the DmsReconnect function failed, %d retry included); "+
			"replication is stopped. Read the function's log, test the source endpoint's connection in the DMS console, then resume the task.", DMSReconnectRetries),
		metric:    fn.MetricErrors(metricOptions("Sum", CountAlarmPeriod, "reconnection failures")),
		threshold: 1,
		periods:   1,
		// No invocation, no failure.
		missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
}
