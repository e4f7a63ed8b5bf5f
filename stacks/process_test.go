package stacks_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/stacks"
)

func TestProcessStackReferenceBucketIsPrivateEncryptedTLSOnlyAndLogged(t *testing.T) {
	for _, v := range shapeVariants {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.ProcessStackName)
			logs := logicalID(t, tmpl, "AWS::S3::Bucket", map[string]any{"LifecycleConfiguration": map[string]any{"Rules": []any{map[string]any{"ExpirationInDays": 365}}}})
			bucket := logicalID(t, tmpl, "AWS::S3::Bucket", map[string]any{"LoggingConfiguration": map[string]any{"LogFilePrefix": "reference-data/"}, "VersioningConfiguration": map[string]any{"Status": "Enabled"}, "BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}}}}})
			all := resources(tmpl, "AWS::S3::Bucket", nil)
			for _, id := range []string{logs, bucket} {
				p := props(all[id])
				wantBlock := map[string]any{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}
				if !reflect.DeepEqual(p["PublicAccessBlockConfiguration"], wantBlock) {
					t.Errorf("bucket %s public access block = %v", id, p["PublicAccessBlockConfiguration"])
				}
				if !strings.Contains(mustMarshal(t, p["BucketEncryption"]), `"SSEAlgorithm":"AES256"`) {
					t.Errorf("bucket %s encryption = %v, want SSE-S3", id, p["BucketEncryption"])
				}
				assertProps(t, tmpl, "AWS::S3::BucketPolicy", map[string]any{
					"Bucket": ref(id),
					"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{match(map[string]any{
						"Effect":    "Deny",
						"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
					})})},
				})
			}
			assertProps(t, tmpl, "AWS::S3::Bucket", map[string]any{
				"LoggingConfiguration": map[string]any{"DestinationBucketName": ref(logs)},
			})
			assertProps(t, tmpl, "Custom::CDKBucketDeployment", map[string]any{
				"DestinationBucketName": ref(bucket),
				"Prune":                 true,
			})
		})
	}
}

// The access-log bucket keeps overwritten and deleted logs' versions for
// 30 days, so the record of reads cannot be erased by a delete.
func TestAccessLogBucketIsVersioned(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.ProcessStackName)
			logs := logicalID(t, tmpl, "AWS::S3::Bucket", map[string]any{"LoggingConfiguration": assertions.Match_Absent()})
			p := props(resources(tmpl, "AWS::S3::Bucket", nil)[logs])
			if got := mustMarshal(t, p["VersioningConfiguration"]); got != `{"Status":"Enabled"}` {
				t.Errorf("access-log bucket versioning = %s, want Enabled", got)
			}
			if got := mustMarshal(t, p["LifecycleConfiguration"]); !strings.Contains(got, `"NoncurrentVersionExpiration":{"NoncurrentDays":30}`) {
				t.Errorf("access-log bucket lifecycle = %s, want noncurrent versions expired after 30 days", got)
			}
		})
	}
}

func TestProcessStackDeploysProductsJSONAndNothingElse(t *testing.T) {
	s := synth(t, lambdaProcessor)
	_, deployment := only(t, s.template(stacks.ProcessStackName), "Custom::CDKBucketDeployment", nil)
	keys := asList(props(deployment)["SourceObjectKeys"])
	if len(keys) != 1 {
		t.Fatalf("source objects = %v, want one asset", keys)
	}
	staged := filepath.Join(s.outdir, "asset."+strings.TrimSuffix(keys[0].(string), ".zip"))
	entries, err := os.ReadDir(staged)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"products.json"}) {
		t.Errorf("the reference data asset holds %v, want only products.json", names)
	}
	got, err := os.ReadFile(filepath.Join(staged, "products.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../reference-data/products.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the deployed products.json differs from reference-data/products.json")
	}
}

// enrichedStreamCase is a variant's enriched stream and OrderEnriched
// billing.
type enrichedStreamCase struct {
	variant variant
	stream  map[string]any
	billing map[string]any
}

// enrichedStreamCases are those other test files register (kda_test.go:
// the two-hop shape's).
var enrichedStreamCases []enrichedStreamCase

func TestProcessStackEnrichedStreamAndTable(t *testing.T) {
	tests := append([]enrichedStreamCase{
		// With enrichedStream=true. PROVISIONED is CloudFormation's default, so CDK leaves BillingMode out.
		{customized, map[string]any{"ShardCount": 4}, map[string]any{
			"ProvisionedThroughput": map[string]any{"ReadCapacityUnits": 300, "WriteCapacityUnits": 3000},
		}},
	}, enrichedStreamCases...)
	for _, tt := range tests {
		t.Run(string(tt.variant), func(t *testing.T) {
			tmpl := synth(t, tt.variant).template(stacks.ProcessStackName)
			stream := map[string]any{"StreamEncryption": map[string]any{"EncryptionType": "KMS", "KeyId": importOf("Key")}}
			for k, v := range tt.stream {
				stream[k] = v
			}
			assertProps(t, tmpl, "AWS::Kinesis::Stream", stream)
			table := map[string]any{
				"KeySchema": []any{
					map[string]any{"AttributeName": "orderId", "KeyType": "HASH"},
					map[string]any{"AttributeName": "itemId", "KeyType": "RANGE"},
				},
				"AttributeDefinitions": []any{
					map[string]any{"AttributeName": "orderId", "AttributeType": "N"},
					map[string]any{"AttributeName": "itemId", "AttributeType": "N"},
				},
				"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
				"SSESpecification":                 map[string]any{"SSEEnabled": true, "SSEType": "KMS", "KMSMasterKeyId": importOf("Key")},
			}
			for k, v := range tt.billing {
				table[k] = v
			}
			assertProps(t, tmpl, "AWS::DynamoDB::Table", table)
		})
	}
}

// goFunctions returns the project's functions (built from lambdas/), not
// the handlers CDK adds for its own custom resources.
func goFunctions(tmpl interface {
	FindResources(*string, interface{}) *map[string]*map[string]interface{}
}) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range *tmpl.FindResources(jsii.String("AWS::Lambda::Function"), nil) {
		if (*r)["Properties"].(map[string]any)["Handler"] == "bootstrap" {
			out[id] = *r
		}
	}
	return out
}

// expectedFunctions are the process stack's Go functions per variant;
// kda_test.go adds its own.
var expectedFunctions = map[variant][]string{
	lambdaProcessor: {"Enrich"},
	customized:      {"Enrich"},
}

func TestEveryFunctionIsGoOnGravitonWithJSONLogsTracingAndRetention(t *testing.T) {
	for v, names := range expectedFunctions {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			fns := goFunctions(tmpl)
			if len(fns) != len(names) {
				t.Errorf("%d Go functions, want %v", len(fns), names)
			}
			for _, name := range names {
				var id string
				for fid := range fns {
					if strings.HasPrefix(fid, name) {
						id = fid
					}
				}
				if id == "" {
					t.Errorf("no %s function", name)
					continue
				}
				p := props(fns[id])
				if p["Runtime"] != "provided.al2023" || !reflect.DeepEqual(p["Architectures"], []any{"arm64"}) {
					t.Errorf("%s runs %v on %v, want provided.al2023 on arm64", name, p["Runtime"], p["Architectures"])
				}
				if !reflect.DeepEqual(p["TracingConfig"], map[string]any{"Mode": "Active"}) {
					t.Errorf("%s tracing = %v, want Active", name, p["TracingConfig"])
				}
				logging, _ := p["LoggingConfig"].(map[string]any)
				if logging["LogFormat"] != "JSON" {
					t.Errorf("%s log format = %v, want JSON", name, logging["LogFormat"])
				}
				group, _ := logging["LogGroup"].(map[string]any)
				groupID, _ := group["Ref"].(string)
				if _, ok := resources(tmpl, "AWS::Logs::LogGroup", map[string]any{"RetentionInDays": s.cfg.LogRetentionDays})[groupID]; !ok {
					t.Errorf("%s logs to %v, not to a log group of its own with %d days' retention", name, group, s.cfg.LogRetentionDays)
				}
				roleID := p["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
				if r := resources(tmpl, "AWS::IAM::Role", nil)[roleID]; props(r)["ManagedPolicyArns"] != nil {
					t.Errorf("%s's role has managed policies %v; it should have only grants", name, props(r)["ManagedPolicyArns"])
				}
			}
		})
	}
}

// policyOf returns the statements of the default policy of the function
// whose logical ID starts with name.
func policyOf(t *testing.T, tmpl assertions.Template, name string) []map[string]any {
	t.Helper()
	for id, fn := range goFunctions(tmpl) {
		if !strings.HasPrefix(id, name) {
			continue
		}
		roleID := props(fn)["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
		policy := logicalID(t, tmpl, "AWS::IAM::Policy", map[string]any{"Roles": []any{ref(roleID)}})
		return iamStatements(tmpl)[policy]
	}
	t.Fatalf("no function %s", name)
	return nil
}

// allows reports whether statements allow action on a resource whose
// JSON mentions resource.
func allows(t *testing.T, statements []map[string]any, action, resource string) bool {
	for _, st := range statements {
		if st["Effect"] == "Allow" && slices.Contains(asList(st["Action"]), any(action)) && strings.Contains(mustMarshal(t, st["Resource"]), resource) {
			return true
		}
	}
	return false
}

// The sink of the two-hop shape (docs/design.md §1.1); the one-hop shapes
// have none (TestDefaultShapeIsOneHop).
func TestSinkWritesTheTableAndReadsTheEnrichedStream(t *testing.T) {
	for _, v := range twoHopVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			table := orderEnrichedID
			var sinkID string
			for id := range goFunctions(tmpl) {
				if strings.HasPrefix(id, "Sink") {
					sinkID = id
				}
			}
			_, fn := only(t, tmpl, "AWS::Lambda::Function", map[string]any{"Handler": "bootstrap", "Environment": map[string]any{"Variables": map[string]any{
				sink.EnvTableName: ref(table),
			}}})
			dlqRef, _ := props(fn)["Environment"].(map[string]any)["Variables"].(map[string]any)[dlq.EnvURL].(map[string]any)
			dlqID, _ := dlqRef["Ref"].(string)
			if dlqID == "" {
				t.Fatalf("sink has no %s", dlq.EnvURL)
			}
			stream := logicalID(t, tmpl, "AWS::Kinesis::Stream", nil)
			assertEventSource(t, s, tmpl, sinkID, getAtt(stream, "Arn"), dlqID)

			statements := policyOf(t, tmpl, "Sink")
			// Exactly these: TestFunctionsMayCallExactlyTheTableActionsTheirHandlersUse.
			for _, a := range []string{"dynamodb:PutItem", "dynamodb:DeleteItem"} {
				if !allows(t, statements, a, table) {
					t.Errorf("sink may not %s on the OrderEnriched table", a)
				}
			}
			if !allows(t, statements, "sqs:SendMessage", dlqID) {
				t.Error("sink may not send to its dead-letter queue")
			}
			if !allows(t, statements, "kinesis:GetRecords", stream) {
				t.Error("sink may not read the enriched stream")
			}
			if !allows(t, statements, "kms:Decrypt", "Key") {
				t.Error("sink may not decrypt with the pipeline key")
			}
		})
	}
}

// assertEventSource checks the event source mapping of docs/design.md §5.3 from
// source to function fn, failing over to the failure bucket, and fn's
// dead-letter queue dlq.
func assertEventSource(t *testing.T, s *synthesized, tmpl assertions.Template, fn string, source any, dlq string) map[string]any {
	t.Helper()
	failures := logicalID(t, tmpl, "AWS::S3::Bucket", map[string]any{"MetricsConfigurations": []any{map[string]any{"Id": stacks.FailureMetricsFilterID}}})
	_, esm := only(t, tmpl, "AWS::Lambda::EventSourceMapping", map[string]any{
		"FunctionName":               ref(fn),
		"EventSourceArn":             source,
		"StartingPosition":           "TRIM_HORIZON",
		"BatchSize":                  s.cfg.BatchSize,
		"ParallelizationFactor":      s.cfg.ParallelizationFactor,
		"BisectBatchOnFunctionError": true,
		"MaximumRetryAttempts":       stacks.EventSourceRetryAttempts,
		"MaximumRecordAgeInSeconds":  stacks.EventSourceMaxRecordAge.Seconds(),
		"FunctionResponseTypes":      []any{"ReportBatchItemFailures"},
		"DestinationConfig":          map[string]any{"OnFailure": map[string]any{"Destination": getAtt(failures, "Arn")}},
	})
	assertProps(t, tmpl, "AWS::SQS::Queue", map[string]any{"KmsMasterKeyId": importOf("Key"), "MessageRetentionPeriod": 1209600})
	assertProps(t, tmpl, "AWS::SQS::QueuePolicy", map[string]any{
		"Queues": []any{ref(dlq)},
		"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{match(map[string]any{
			"Effect":    "Deny",
			"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
		})})},
	})
	return props(esm)
}

func TestLambdaProcessorEnrichJoinsWithStateInDynamoDB(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			state := logicalID(t, tmpl, "AWS::DynamoDB::Table", map[string]any{
				"KeySchema": []any{
					map[string]any{"AttributeName": "pk", "KeyType": "HASH"},
					map[string]any{"AttributeName": "sk", "KeyType": "RANGE"},
				},
				"AttributeDefinitions": []any{
					map[string]any{"AttributeName": "pk", "AttributeType": "S"},
					map[string]any{"AttributeName": "sk", "AttributeType": "S"},
				},
				"TimeToLiveSpecification":          map[string]any{"AttributeName": "ttl", "Enabled": true},
				"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
				"SSESpecification":                 map[string]any{"SSEEnabled": true, "SSEType": "KMS", "KMSMasterKeyId": importOf("Key")},
				"BillingMode":                      "PAY_PER_REQUEST",
			})
			bucket := logicalID(t, tmpl, "AWS::S3::Bucket", map[string]any{"LoggingConfiguration": map[string]any{"LogFilePrefix": "reference-data/"}, "VersioningConfiguration": map[string]any{"Status": "Enabled"}, "BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}}}}})

			enrichID, fn := only(t, tmpl, "AWS::Lambda::Function", map[string]any{"Environment": map[string]any{"Variables": map[string]any{
				enrich.EnvStateTable:       ref(state),
				enrich.EnvTombstoneDays:    jsonNumber(s.cfg.JoinStateTombstoneDays),
				enrich.EnvReferenceDataURI: map[string]any{"Fn::Join": []any{"", []any{"s3://", ref(bucket), "/products.json"}}},
			}}})
			dlqID := props(fn)["Environment"].(map[string]any)["Variables"].(map[string]any)[dlq.EnvURL].(map[string]any)["Ref"].(string)

			// Polling maps the unified stream itself; consumer=efo maps its
			// enhanced fan-out consumer (TestEFOConsumerPerMappedStream).
			var source any = importOf("OrderStream")
			if s.cfg.Consumer == stacks.ConsumerEFO {
				source = getAtt(logicalID(t, tmpl, "AWS::Kinesis::StreamConsumer", nil), "ConsumerARN")
			}
			esm := assertEventSource(t, s, tmpl, enrichID, source, dlqID)
			// Lambda would drop records a filter does not match, non-JSON
			// ones included, before the handler could dead-letter them.
			if criteria, ok := esm["FilterCriteria"]; ok {
				t.Errorf("the enrich mapping filters records (%v); every record must reach the handler", criteria)
			}

			statements := policyOf(t, tmpl, "Enrich")
			grants := []struct{ action, resource string }{
				{"dynamodb:BatchGetItem", state}, {"dynamodb:BatchWriteItem", state}, {"dynamodb:Query", state},
				{"s3:GetObject*", "/products.json"},
				{"sqs:SendMessage", dlqID},
				{"kinesis:GetRecords", "OrderStream"}, {"kms:Decrypt", "Key"}, {"kms:GenerateDataKey*", "Key"},
			}
			for _, g := range grants {
				if !allows(t, statements, g.action, g.resource) {
					t.Errorf("enrich may not %s on %s", g.action, g.resource)
				}
			}
			if n := len(resources(tmpl, "AWS::KinesisAnalytics::Application", nil)); n != 0 {
				t.Errorf("%d KDA applications with processor=lambda", n)
			}
		})
	}
}

func jsonNumber(n int) string { b, _ := json.Marshal(n); return string(b) }
