package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// referenceData is the product catalogue: the reference bucket, the
// deployment of reference-data/products.json into it, and the bucket its
// access logs (and the raw archive's) go to.
type referenceData struct {
	accessLogs awss3.Bucket
	bucket     awss3.Bucket
	// deployment puts the products object in the bucket; whatever reads
	// it at start-up waits for it.
	deployment awss3deployment.BucketDeployment
	// uri is s3://<bucket>/products.json.
	uri *string
}

func newReferenceData(stack awscdk.Stack, cfg Config, dir string, retention awslogs.RetentionDays) *referenceData {
	r := &referenceData{accessLogs: newAccessLogsBucket(stack, cfg)}
	// A copy of reference-data/ in the repository: deleted, every version
	// of its objects first, by `cdk destroy`. SSE-S3: the product
	// catalogue is not sensitive, and KDA reads it with no key grant to
	// manage.
	props := s3ManagedBucketProps()
	props.RemovalPolicy = awscdk.RemovalPolicy_DESTROY
	props.AutoDeleteObjects = jsii.Bool(true)
	props.ServerAccessLogsBucket = r.accessLogs
	props.ServerAccessLogsPrefix = jsii.String("reference-data/")
	r.bucket = awss3.NewBucket(stack, jsii.String("ReferenceDataBucket"), props)
	r.deployment = awss3deployment.NewBucketDeployment(stack, jsii.String("ReferenceData"), &awss3deployment.BucketDeploymentProps{
		Sources: &[]awss3deployment.ISource{awss3deployment.Source_Asset(jsii.String(dir), &awss3assets.AssetOptions{
			Exclude: jsii.Strings("*", "!"+ReferenceDataKey),
		})},
		DestinationBucket: r.bucket,
		Prune:             jsii.Bool(true),
		LogGroup:          awslogs.NewLogGroup(stack, jsii.String("ReferenceDataDeploymentLogs"), logGroupProps(retention)),
	})
	r.uri = awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("s3://"), r.bucket.BucketName(), jsii.String("/" + ReferenceDataKey),
	})
	return r
}

// newAccessLogsBucket creates the bucket of the server access logs.
//
// The access logs are the audit trail of the raw archive, which
// `cdk destroy` keeps: with the archive (dataLake=true) they are kept
// too, and the kept archive goes on logging into them. Without it they
// only record reads of the reference data, deleted with the stack.
func newAccessLogsBucket(stack awscdk.Stack, cfg Config) awss3.Bucket {
	// S3 server access log delivery supports only SSE-S3 targets.
	props := s3ManagedBucketProps()
	props.RemovalPolicy, props.AutoDeleteObjects = awscdk.RemovalPolicy_RETAIN, jsii.Bool(false)
	if !cfg.DataLake {
		props.RemovalPolicy, props.AutoDeleteObjects = awscdk.RemovalPolicy_DESTROY, jsii.Bool(true)
	}
	// Versioned so a principal that can delete objects cannot erase the
	// record of its reads; the versions an expiry or deletion leaves go 30
	// days later.
	props.LifecycleRules = &[]*awss3.LifecycleRule{{
		Expiration:                  awscdk.Duration_Days(jsii.Number(365)),
		NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(30)),
	}}
	bucket := awss3.NewBucket(stack, jsii.String("AccessLogsBucket"), props)
	cdknag.NagSuppressions_AddResourceSuppressions(bucket, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-S1"),
		Reason: jsii.String("This bucket receives the reference bucket's server access logs; logging it into itself would loop."),
	}}, nil)
	return bucket
}
