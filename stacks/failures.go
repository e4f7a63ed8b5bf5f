package stacks

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// The failure bucket: where the event source mappings put the batches
// Lambda gave up on, records included (docs/design.md §5.6).
const (
	// FailureRetention is how long a failure record stays: the replay
	// window, in which `etl replay --failures` may still put its records
	// back, plus two weeks to investigate what is left after it.
	FailureRetention = ReplayWindow + 14*24*time.Hour
	// FailureNoncurrentDays keeps an overwritten or deleted failure
	// record recoverable for a week.
	FailureNoncurrentDays = 7
	// FailureMetricsFilterID names the bucket's request metrics
	// configuration (the whole bucket), the FilterId dimension of its
	// AWS/S3 request metrics.
	FailureMetricsFilterID = "EntireBucket"
	// FailureAccessLogsPrefix is where its server access logs go in the
	// access-log bucket.
	FailureAccessLogsPrefix = "failures/"
)

// newFailureBucket creates the mappings' on-failure destination:
// encrypted with the pipeline key like the streams whose records it
// holds, private and TLS-only, versioned, access-logged like the other
// buckets, its objects expiring after FailureRetention. Like the
// dead-letter queues it is deleted (emptied first) with the stack.
func newFailureBucket(scope constructs.Construct, key awskms.IKey, accessLogs awss3.IBucket) awss3.Bucket {
	props := pipelineKeyBucketProps(key)
	props.ServerAccessLogsBucket = accessLogs
	props.ServerAccessLogsPrefix = jsii.String(FailureAccessLogsPrefix)
	props.LifecycleRules = &[]*awss3.LifecycleRule{{
		Expiration:                          awscdk.Duration_Days(jsii.Number(FailureRetention.Hours() / 24)),
		NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(FailureNoncurrentDays)),
		AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
	}}
	// Request metrics (PutRequests) for the alarm: only Lambda writes
	// here, so any PUT is a batch given up on.
	// https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html
	// (docs/aws-facts.md §5)
	props.Metrics = &[]*awss3.BucketMetrics{{Id: jsii.String(FailureMetricsFilterID)}}
	props.RemovalPolicy = awscdk.RemovalPolicy_DESTROY
	props.AutoDeleteObjects = jsii.Bool(true)
	return awss3.NewBucket(scope, jsii.String("FailureBucket"), props)
}

// s3FailureDestination is an event source mapping's on-failure
// destination in the failure bucket. CDK's S3OnFailureDestination grants
// the function read and write (and delete) on the whole bucket; Lambda
// documents only s3:PutObject and s3:ListBucket, plus kms:GenerateDataKey
// with a customer managed key, so this grants exactly those.
// https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
// https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html
// (docs/aws-facts.md §5)
type s3FailureDestination struct {
	bucket awss3.IBucket
	key    awskms.IKey
}

// Bind implements awslambda.IEventSourceDlq.
func (d *s3FailureDestination) Bind(_ awslambda.IEventSourceMapping, handler awslambda.IFunction) *awslambda.DlqDestinationConfig {
	grantFailureWrites(handler.Role(), d.bucket, d.key)
	return &awslambda.DlqDestinationConfig{Destination: d.bucket.BucketArn()}
}

// grantFailureWrites lets role (a mapped function's) write failure
// records: what Lambda documents for an S3 on-failure destination.
func grantFailureWrites(role awsiam.IRole, bucket awss3.IBucket, key awskms.IKey) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:PutObject"),
		Resources: &[]*string{bucket.ArnForObjects(jsii.String("*"))},
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("s3:ListBucket"),
		Resources: &[]*string{bucket.BucketArn()},
	}))
	key.Grant(role, jsii.String("kms:GenerateDataKey"))
	suppressFailureObjects(role)
}

// addFailureBucket pages when a batch lands in the failure bucket.
func (pm *processMonitor) addFailureBucket() {
	set, d, m := pm.set, pm.d, pm.processMonitoring
	d.section("Failure bucket", "Batches the event source mappings gave up on, with their records.")
	// S3 request metrics of the bucket's metrics configuration, reported
	// per minute; Sum of PutRequests counts the objects Lambda wrote.
	// https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html
	// https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudwatch-monitoring.html
	puts := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:  jsii.String("AWS/S3"),
		MetricName: jsii.String("PutRequests"),
		DimensionsMap: &map[string]*string{
			"BucketName": m.failures.BucketName(),
			"FilterId":   jsii.String(FailureMetricsFilterID),
		},
		Statistic: jsii.String("Sum"),
		Period:    awscdk.Duration_Seconds(jsii.Number(CountAlarmPeriod.Seconds())),
		Label:     jsii.String("failure records written"),
	})
	alarm := set.add(alarmSpec{
		id: "FailureBucketAlarm",
		description: fmt.Sprintf("An event source mapping gave up on a batch and wrote it, with its records, to the failure bucket. "+
			"Read the function's log for the cause and fix it, then put the records back with `etl replay --failures s3://<FailureBucketName>/`; "+
			"records older than the %d-day replay window are refused, and failure records expire after %d days.",
			int(ReplayWindow/(24*time.Hour)), int(FailureRetention/(24*time.Hour))),
		metric:    puts,
		threshold: 1,
		periods:   1,
		// A period without a PUT has nothing to report.
		missing: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	d.graph("Failure records written", []awscloudwatch.IMetric{puts}, alarm)
}

// suppressFailureObjects accepts the object wildcard of the failure
// writes on a role.
func suppressFailureObjects(role awsiam.IRole) {
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("On-failure destination: Lambda names each failure record object itself (aws/lambda/<mapping UUID>/<shard>/<time>-<UUID>), " +
			"so s3:PutObject names every object of the failure bucket, and nothing else."),
		AppliesTo: &[]interface{}{&cdknag.RegexAppliesTo{
			Regex: jsii.String(`/^Resource::<FailureBucket[0-9A-F]{8}\.Arn>\/\*$/g`),
		}},
	}}, jsii.Bool(true))
}
