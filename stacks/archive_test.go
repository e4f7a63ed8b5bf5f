package stacks_test

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/unified-streaming-etl/etl/stacks"
)

// archiveBucket returns the raw archive bucket: the one encrypted with
// KMS that is not the failure bucket (which has request metrics).
func archiveBucket(t *testing.T, tmpl assertions.Template) (string, map[string]any) {
	t.Helper()
	return only(t, tmpl, "AWS::S3::Bucket", map[string]any{"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
		map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "aws:kms"}},
	}}, "MetricsConfigurations": assertions.Match_Absent()})
}

func TestRawArchiveBucketIsPrivateEncryptedTLSOnlyTieredAndKept(t *testing.T) {
	for _, v := range shapeVariants {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.ProcessStackName)
			id, bucket := archiveBucket(t, tmpl)
			p := props(bucket)
			if got := mustMarshal(t, p["BucketEncryption"]); !strings.Contains(got, `"KMSMasterKeyID":{"Fn::ImportValue":"UnifiedStreamETLCommonStack:ExportsOutputFnGetAttKey`) || !strings.Contains(got, `"BucketKeyEnabled":true`) {
				t.Errorf("archive encryption = %s, want the pipeline key with a bucket key", got)
			}
			wantBlock := map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}
			if !reflect.DeepEqual(p["PublicAccessBlockConfiguration"], wantBlock) {
				t.Errorf("public access block = %v", p["PublicAccessBlockConfiguration"])
			}
			assertProps(t, tmpl, "AWS::S3::BucketPolicy", map[string]any{
				"Bucket": ref(id),
				"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{match(map[string]any{
					"Effect": "Deny", "Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})})},
			})
			assertResource(t, tmpl, "AWS::S3::Bucket", map[string]any{
				"DeletionPolicy": "Retain",
				"Properties": map[string]any{
					"VersioningConfiguration": map[string]any{"Status": "Enabled"},
					"LoggingConfiguration":    map[string]any{"LogFilePrefix": "raw-archive/"},
					"LifecycleConfiguration": map[string]any{"Rules": []any{match(map[string]any{
						"Status": "Enabled",
						"Transitions": []any{
							map[string]any{"StorageClass": "STANDARD_IA", "TransitionInDays": stacks.ArchiveInfrequentAccessDays},
							map[string]any{"StorageClass": "GLACIER_IR", "TransitionInDays": stacks.ArchiveGlacierDays},
						},
						"NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": stacks.ArchiveNoncurrentDays},
					})}},
				},
			})
			if found := *tmpl.FindOutputs(ptr("RawArchiveBucketName"), nil); len(found) != 1 {
				t.Error("the process stack does not output the archive bucket's name")
			}
		})
	}
}

func TestRawArchiveDeliversTheUnifiedStreamPartitionedByHour(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.ProcessStackName)
	bucket, _ := archiveBucket(t, tmpl)
	_, stream := only(t, tmpl, "AWS::KinesisFirehose::DeliveryStream", nil)
	p := props(stream)
	if p["DeliveryStreamType"] != "KinesisStreamAsSource" {
		t.Errorf("delivery stream type = %v", p["DeliveryStreamType"])
	}
	source := p["KinesisStreamSourceConfiguration"].(map[string]any)
	if !strings.Contains(mustMarshal(t, source["KinesisStreamARN"]), "OrderStream") {
		t.Errorf("source = %v, want the unified order stream", source["KinesisStreamARN"])
	}
	dest := p["ExtendedS3DestinationConfiguration"].(map[string]any)
	want := map[string]any{
		"BucketARN":         getAtt(bucket, "Arn"),
		"Prefix":            "raw/!{timestamp:yyyy/MM/dd/HH}/",
		"ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/",
		"CompressionFormat": "GZIP",
		"BufferingHints":    map[string]any{"IntervalInSeconds": float64(900), "SizeInMBs": float64(128)},
		"ProcessingConfiguration": map[string]any{"Enabled": true, "Processors": []any{
			map[string]any{"Type": "AppendDelimiterToRecord", "Parameters": []any{}},
		}},
	}
	for k, w := range want {
		if !reflect.DeepEqual(dest[k], w) {
			t.Errorf("%s = %v, want %v", k, dest[k], w)
		}
	}
	if !strings.Contains(mustMarshal(t, dest["EncryptionConfiguration"]), "ExportsOutputFnGetAttKey") {
		t.Errorf("encryption = %v, want the pipeline key", dest["EncryptionConfiguration"])
	}
	logging := dest["CloudWatchLoggingOptions"].(map[string]any)
	group, _ := logging["LogGroupName"].(map[string]any)["Ref"].(string)
	if logging["Enabled"] != true || len(resources(tmpl, "AWS::Logs::LogGroup", map[string]any{"RetentionInDays": 30})[group]) == 0 {
		t.Errorf("delivery errors are not logged to a log group with retention: %v", logging)
	}
}

func TestRawArchiveRolesHoldOnlyWhatDeliveryNeeds(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.ProcessStackName)
	bucket, _ := archiveBucket(t, tmpl)
	_, stream := only(t, tmpl, "AWS::KinesisFirehose::DeliveryStream", nil)
	p := props(stream)
	sourceRole := p["KinesisStreamSourceConfiguration"].(map[string]any)["RoleARN"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	destRole := p["ExtendedS3DestinationConfiguration"].(map[string]any)["RoleARN"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	statementsOf := func(role string) []map[string]any {
		var out []map[string]any
		for id, r := range resources(tmpl, "AWS::IAM::Policy", nil) {
			if strings.Contains(mustMarshal(t, props(r)["Roles"]), `"`+role+`"`) {
				out = append(out, iamStatements(tmpl)[id]...)
			}
		}
		return out
	}
	source, dest := statementsOf(sourceRole), statementsOf(destRole)
	if !allows(t, source, "kinesis:GetRecords", "OrderStream") || !allows(t, source, "kms:Decrypt", "Key") {
		t.Error("the delivery stream may not read and decrypt the unified stream")
	}
	if !allows(t, dest, "s3:PutObject", bucket) || !allows(t, dest, "kms:GenerateDataKey", "Key") {
		t.Error("the delivery stream may not write and encrypt archive objects")
	}
	for _, st := range append(source, dest...) {
		res := mustMarshal(t, st["Resource"])
		for _, a := range asList(st["Action"]) {
			action := a.(string)
			switch {
			case strings.HasPrefix(action, "s3:") && !strings.Contains(res, bucket):
				t.Errorf("%s on %s, beyond the archive bucket", action, res)
			case strings.HasPrefix(action, "kinesis:") && !strings.Contains(res, "OrderStream"):
				t.Errorf("%s on %s, beyond the unified stream", action, res)
			case strings.HasPrefix(action, "kinesis:Put"):
				t.Errorf("the delivery stream may write to the stream (%s)", action)
			}
		}
	}
}

// The destination role holds exactly the actions Firehose documents for an
// S3 destination (no object deletion, no re-encryption), KMS only through
// S3 in the stack's Region, and its log group.
func TestRawArchiveDestinationRoleHoldsExactlyTheDocumentedActions(t *testing.T) {
	tmpl := synth(t, lambdaProcessor).template(stacks.ProcessStackName)
	_, stream := only(t, tmpl, "AWS::KinesisFirehose::DeliveryStream", nil)
	destRole := props(stream)["ExtendedS3DestinationConfiguration"].(map[string]any)["RoleARN"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	var got []string
	for id, r := range resources(tmpl, "AWS::IAM::Policy", nil) {
		if !strings.Contains(mustMarshal(t, props(r)["Roles"]), `"`+destRole+`"`) {
			continue
		}
		for _, st := range iamStatements(tmpl)[id] {
			for _, a := range asList(st["Action"]) {
				action := a.(string)
				got = append(got, action)
				if strings.HasPrefix(action, "kms:") {
					want := `{"StringEquals":{"kms:ViaService":{"Fn::Join":["",["s3.",{"Ref":"AWS::Region"},".amazonaws.com"]]}}}`
					if c := mustMarshal(t, st["Condition"]); c != want {
						t.Errorf("%s with condition %s, want %s", action, c, want)
					}
				}
			}
		}
	}
	sort.Strings(got)
	want := []string{"kms:Decrypt", "kms:GenerateDataKey", "logs:CreateLogStream", "logs:PutLogEvents",
		"s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"}
	if !slices.Equal(got, want) {
		t.Errorf("destination role actions %v, want exactly %v", got, want)
	}
}

func TestRawArchiveIsLeftOutWithDataLakeOff(t *testing.T) {
	s := synth(t, customized)
	if s.cfg.DataLake {
		t.Fatal("the customized variant must turn dataLake off")
	}
	tmpl := s.template(stacks.ProcessStackName)
	if n := len(resources(tmpl, "AWS::KinesisFirehose::DeliveryStream", nil)); n != 0 {
		t.Errorf("%d delivery streams with dataLake=false", n)
	}
	if n := len(resources(tmpl, "AWS::S3::Bucket", nil)); n != 3 {
		t.Errorf("%d buckets with dataLake=false, want the reference bucket, its access logs and the failure bucket", n)
	}
	if found := *tmpl.FindOutputs(ptr("RawArchiveBucketName"), nil); len(found) != 0 {
		t.Error("an archive bucket output with dataLake=false")
	}
}
