package stacks

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// rawArchive is the optional raw CDC archive (context dataLake): every
// record of the unified stream, as DMS wrote it and followed by a newline,
// in gzipped objects under raw/yyyy/MM/dd/HH/ (the hour it reached the
// stream, UTC).
// Replaying an hour means reading its objects back into the stream.
type rawArchive struct {
	bucket   awss3.Bucket
	delivery awskinesisfirehose.DeliveryStream
}

type rawArchiveProps struct {
	source awskinesis.IStream
	// key encrypts the archive, as it encrypts the stream it copies.
	key        awskms.IKey
	accessLogs awss3.IBucket
	retention  awslogs.RetentionDays
}

func newRawArchive(scope constructs.Construct, p rawArchiveProps) rawArchive {
	bucket := newRawArchiveBucket(scope, p)
	logs := awslogs.NewLogGroup(scope, jsii.String("RawArchiveDeliveryLogs"), logGroupProps(p.retention))
	destinationRole := newRawArchiveDestinationRole(scope, p, bucket, logs)
	delivery := awskinesisfirehose.NewDeliveryStream(scope, jsii.String("RawArchive"), &awskinesisfirehose.DeliveryStreamProps{
		Source: awskinesisfirehose.NewKinesisStreamSource(p.source),
		Destination: awskinesisfirehose.NewS3Bucket(bucket, &awskinesisfirehose.S3BucketProps{
			DataOutputPrefix:  jsii.String(ArchivePrefix),
			ErrorOutputPrefix: jsii.String(ArchiveErrorPrefix),
			BufferingInterval: awscdk.Duration_Seconds(jsii.Number(ArchiveBufferInterval.Seconds())),
			BufferingSize:     awscdk.Size_Mebibytes(jsii.Number(ArchiveBufferMiB)),
			Compression:       awskinesisfirehose.Compression_GZIP(),
			EncryptionKey:     p.key,
			LoggingConfig:     awskinesisfirehose.NewEnableLogging(logs),
			// DMS records carry no separator; a newline after each lets a
			// replay split an object back into records.
			Processors: &[]awskinesisfirehose.IDataProcessor{awskinesisfirehose.NewAppendDelimiterToRecordProcessor()},
			Role:       destinationRole.WithoutPolicyUpdates(nil),
		}),
	})
	// Firehose checks its permissions when the stream is created.
	delivery.Node().AddDependency(destinationRole)

	fixRawArchiveDelivery(scope, logs, delivery)
	return rawArchive{bucket: bucket, delivery: delivery}
}

// newRawArchiveBucket creates the archive bucket: encrypted with the
// pipeline key like the stream it copies, tiered as it ages, and kept by
// `cdk destroy`.
func newRawArchiveBucket(scope constructs.Construct, p rawArchiveProps) awss3.Bucket {
	props := pipelineKeyBucketProps(p.key)
	props.ServerAccessLogsBucket = p.accessLogs
	props.ServerAccessLogsPrefix = jsii.String("raw-archive/")
	props.LifecycleRules = &[]*awss3.LifecycleRule{{
		Transitions: &[]*awss3.Transition{
			{StorageClass: awss3.StorageClass_INFREQUENT_ACCESS(), TransitionAfter: awscdk.Duration_Days(jsii.Number(ArchiveInfrequentAccessDays))},
			{StorageClass: awss3.StorageClass_GLACIER_INSTANT_RETRIEVAL(), TransitionAfter: awscdk.Duration_Days(jsii.Number(ArchiveGlacierDays))},
		},
		NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(ArchiveNoncurrentDays)),
		AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(7)),
	}}
	// The archive is the pipeline's history: unlike the derived tables,
	// it survives `cdk destroy`.
	props.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	return awss3.NewBucket(scope, jsii.String("RawArchiveBucket"), props)
}

// newRawArchiveDestinationRole creates the role Firehose writes the
// archive with.
func newRawArchiveDestinationRole(scope constructs.Construct, p rawArchiveProps, bucket awss3.Bucket, logs awslogs.LogGroup) awsiam.Role {
	// The construct grants the source role read on the stream (and decrypt
	// with its key). Its destination grants (s3:DeleteObject* and
	// kms:ReEncrypt* among them) go nowhere: the destination role is
	// passed without policy updates and holds exactly the actions Firehose
	// documents for an S3 destination, KMS only through S3 in this Region.
	// https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-s3
	stack := awscdk.Stack_Of(scope)
	destinationRole := awsiam.NewRole(scope, jsii.String("RawArchiveDestinationRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("firehose.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{"StringEquals": map[string]any{"sts:ExternalId": stack.Account()}},
		}),
		Description: jsii.String("Firehose: write the raw archive objects, encrypted with the pipeline key, and log delivery errors."),
	})
	destinationRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
			"s3:ListBucketMultipartUploads", "s3:PutObject"),
		Resources: &[]*string{bucket.BucketArn(), bucket.ArnForObjects(jsii.String("*"))},
	}))
	destinationRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
		Resources:  &[]*string{p.key.KeyArn()},
		Conditions: viaService(stack, "s3"),
	}))
	logs.GrantWrite(destinationRole)
	cdknag.NagSuppressions_AddResourceSuppressions(destinationRole, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("Firehose names the archive objects (prefix, hour, random suffix): object actions on the archive bucket's objects, as Firehose documents for an S3 destination."),
		AppliesTo: &[]interface{}{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<RawArchiveBucket[0-9A-F]{8}\.Arn>\/\*$/g`)}},
	}}, jsii.Bool(true))
	return destinationRole
}

// fixRawArchiveDelivery adjusts what the delivery stream construct
// creates: its log stream goes with its log group, its roles require the
// external ID Firehose passes, and the unused CIDR mapping is removed.
func fixRawArchiveDelivery(scope constructs.Construct, logs awslogs.LogGroup, delivery awskinesisfirehose.DeliveryStream) {
	stack := awscdk.Stack_Of(scope)
	// The construct creates the delivery's log stream with aws-cdk-lib's
	// default removal policy, retain; it goes with its log group.
	for _, c := range *logs.Node().Children() {
		if stream, ok := c.(awslogs.LogStream); ok {
			stream.ApplyRemovalPolicy(awscdk.RemovalPolicy_DESTROY)
		}
	}

	// Firehose assumes its roles passing this account's ID as the external
	// ID; the roles the construct creates require it.
	// https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-s3
	forEachResource(delivery, "AWS::IAM::Role", func(role awscdk.CfnResource) {
		role.AddPropertyOverride(jsii.String("AssumeRolePolicyDocument.Statement.0.Condition"), map[string]any{
			"StringEquals": map[string]any{"sts:ExternalId": awscdk.Stack_Of(scope).Account()},
		})
	})

	// The construct adds a mapping of Firehose's IP ranges for its
	// connections (used by VPC destinations), which this stream has none
	// of: CloudFormation validation rejects the unreferenced mapping.
	for _, c := range *stack.Node().Children() {
		if strings.HasSuffix(*c.Node().Id(), "aws-kinesisfirehose.CidrBlocks") {
			stack.Node().TryRemoveChild(c.Node().Id())
		}
	}

	cdknag.NagSuppressions_AddResourceSuppressions(delivery, &[]*cdknag.NagPackSuppression{
		{
			Id: jsii.String("AwsSolutions-KDF1"),
			Reason: jsii.String("Firehose cannot encrypt a delivery stream whose source is a Kinesis stream; the records stay encrypted with the pipeline key " +
				"in the source stream and in the archive bucket (SSE-KMS), and travel over TLS in between."),
		},
	}, jsii.Bool(true))
}
