package stacks_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/unified-streaming-etl/etl/stacks"
)

// failureBucket returns the logical ID and resource of the failure bucket:
// the one bucket with a request metrics configuration.
func failureBucket(t *testing.T, tmpl assertions.Template) (string, map[string]any) {
	t.Helper()
	return only(t, tmpl, "AWS::S3::Bucket", map[string]any{
		"MetricsConfigurations": []any{map[string]any{"Id": stacks.FailureMetricsFilterID}},
	})
}

// The on-failure destination keeps the records of a batch Lambda gives up
// on (docs/aws-facts.md §5): encrypted with the pipeline key, private,
// TLS-only, versioned, access-logged, and kept longer than the replay
// window.
func TestFailureBucketIsEncryptedPrivateLoggedAndOutlivesTheReplayWindow(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			id, bucket := failureBucket(t, tmpl)
			var accessLogs string
			for bid := range resources(tmpl, "AWS::S3::Bucket", nil) {
				if strings.HasPrefix(bid, "AccessLogsBucket") {
					accessLogs = bid
				}
			}
			assertProps(t, tmpl, "AWS::S3::Bucket", map[string]any{
				"MetricsConfigurations": []any{map[string]any{"Id": stacks.FailureMetricsFilterID}},
				"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{map[string]any{
					"BucketKeyEnabled": true,
					"ServerSideEncryptionByDefault": map[string]any{
						"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": importOf("Key"),
					},
				}}},
				"PublicAccessBlockConfiguration": map[string]any{
					"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
				},
				"OwnershipControls":       map[string]any{"Rules": []any{map[string]any{"ObjectOwnership": "BucketOwnerEnforced"}}},
				"VersioningConfiguration": map[string]any{"Status": "Enabled"},
				"LoggingConfiguration": map[string]any{
					"DestinationBucketName": ref(accessLogs), "LogFilePrefix": stacks.FailureAccessLogsPrefix,
				},
			})
			rules := asList(props(bucket)["LifecycleConfiguration"].(map[string]any)["Rules"])
			if len(rules) != 1 {
				t.Fatalf("lifecycle rules %v, want one", rules)
			}
			rule := rules[0].(map[string]any)
			days, _ := rule["ExpirationInDays"].(float64)
			if window := stacks.ReplayWindow.Hours() / 24; days <= window || days != stacks.FailureRetention.Hours()/24 {
				t.Errorf("failure records expire after %v days, want FailureRetention (%v days), longer than the %v-day replay window", days, stacks.FailureRetention.Hours()/24, window)
			}
			if rule["Status"] != "Enabled" || rule["NoncurrentVersionExpiration"] == nil {
				t.Errorf("lifecycle rule %v: want it enabled and expiring noncurrent versions", rule)
			}
			assertProps(t, tmpl, "AWS::S3::BucketPolicy", map[string]any{
				"Bucket": ref(id),
				"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{match(map[string]any{
					"Effect":    "Deny",
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})})},
			})
		})
	}
}

// Every event source mapping of every shape sends the batches it gives up
// on to the failure bucket, and its function may do exactly what Lambda
// documents for that: s3:PutObject and s3:ListBucket, kms:GenerateDataKey
// with the pipeline key (docs/aws-facts.md §5).
func TestEveryMappingFailsOverToTheFailureBucketWithTheDocumentedPermissions(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			bucket, _ := failureBucket(t, tmpl)
			mappings := resources(tmpl, "AWS::Lambda::EventSourceMapping", nil)
			// processor=lambda maps enrich; processor=kda-sql the sink (KDA
			// reads the unified stream itself).
			if len(mappings) != 1 {
				t.Fatalf("%d event source mappings, want 1", len(mappings))
			}
			for id, m := range mappings {
				p := props(m)
				dest := mustMarshal(t, p["DestinationConfig"])
				if dest != mustMarshal(t, map[string]any{"OnFailure": map[string]any{"Destination": getAtt(bucket, "Arn")}}) {
					t.Errorf("%s: on-failure destination %s, want the failure bucket %s", id, dest, bucket)
				}
				fn := p["FunctionName"].(map[string]any)["Ref"].(string)
				statements := policyOf(t, tmpl, fn)
				var s3Actions []string
				for _, st := range statements {
					if !strings.Contains(mustMarshal(t, st["Resource"]), bucket) {
						continue
					}
					for _, a := range asList(st["Action"]) {
						s3Actions = append(s3Actions, a.(string))
					}
				}
				slices.Sort(s3Actions)
				if !slices.Equal(s3Actions, []string{"s3:ListBucket", "s3:PutObject"}) {
					t.Errorf("%s may %v on the failure bucket, want exactly s3:ListBucket and s3:PutObject", fn, s3Actions)
				}
				objects := mustMarshal(t, map[string]any{"Fn::Join": []any{"", []any{getAtt(bucket, "Arn"), "/*"}}})
				if !allows(t, statements, "s3:PutObject", objects) {
					t.Errorf("%s may not put objects in the failure bucket", fn)
				}
				if !allows(t, statements, "kms:GenerateDataKey", "Key") {
					t.Errorf("%s may not generate data keys with the pipeline key", fn)
				}
			}
		})
	}
}

// The operator tool finds the bucket through the stack's output, and the
// alarm runbook says how to recover.
func TestFailureBucketIsAStackOutputAndInTheRunbook(t *testing.T) {
	s := synth(t, lambdaProcessor)
	tmpl := s.template(stacks.ProcessStackName)
	bucket, _ := failureBucket(t, tmpl)
	outputs := templateJSON(tmpl)["Outputs"].(map[string]any)
	out, ok := outputs["FailureBucketName"].(map[string]any)
	if !ok || mustMarshal(t, out["Value"]) != mustMarshal(t, ref(bucket)) {
		t.Errorf("output FailureBucketName = %v, want the failure bucket's name", out)
	}
	runbook := readmeSection(t, "### Alarms: what they mean, what to do")
	var row string
	for _, line := range strings.Split(runbook, "\n") {
		if strings.HasPrefix(line, "| `FailureBucket`") {
			row = line
		}
	}
	if !strings.Contains(row, "etl replay") || !strings.Contains(row, "--process-stack "+stacks.ProcessStackName) {
		t.Errorf("the alarm runbook has no FailureBucket row with its `etl replay --process-stack` command (the stack's failure bucket): %q", row)
	}
	if days := int(stacks.FailureRetention / (24 * time.Hour)); !strings.Contains(row, strconv.Itoa(days)+" days") {
		t.Errorf("the FailureBucket row does not say records are kept %d days: %q", days, row)
	}
}
