package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
)

// privateBucketProps are the props every bucket of the stacks starts
// from: no public access, TLS-only requests, ACLs disabled (the bucket
// owner owns every object) and versioning, so an overwrite or delete can
// be undone. Callers add encryption, retention and logging.
func privateBucketProps() *awss3.BucketProps {
	return &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:         jsii.Bool(true),
	}
}

// pipelineKeyBucketProps is a private bucket encrypted with the pipeline
// key (SSE-KMS), with an S3 Bucket Key: one data key per bucket instead
// of a KMS request per object.
func pipelineKeyBucketProps(key awskms.IKey) *awss3.BucketProps {
	p := privateBucketProps()
	p.Encryption = awss3.BucketEncryption_KMS
	p.EncryptionKey = key
	p.BucketKeyEnabled = jsii.Bool(true)
	return p
}

// s3ManagedBucketProps is a private bucket encrypted with S3-managed keys
// (SSE-S3), for what a customer managed key cannot serve: server access
// log targets, and objects a service reads without a key grant.
func s3ManagedBucketProps() *awss3.BucketProps {
	p := privateBucketProps()
	p.Encryption = awss3.BucketEncryption_S3_MANAGED
	return p
}
