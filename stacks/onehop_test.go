package stacks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/stacks"
)

// orderEnrichedID is the OrderEnriched table's logical ID.
const orderEnrichedID = "OrderEnrichedA84A32C6"

// dynamoActionsOn lists the DynamoDB actions statements allow on the
// resource whose JSON mentions resource.
func dynamoActionsOn(t *testing.T, statements []map[string]any, resource string) []string {
	var actions []string
	for _, st := range statements {
		if st["Effect"] != "Allow" || !strings.Contains(mustMarshal(t, st["Resource"]), resource) {
			continue
		}
		for _, a := range asList(st["Action"]) {
			if s, _ := a.(string); strings.HasPrefix(s, "dynamodb:") && !slices.Contains(actions, s) {
				actions = append(actions, s)
			}
		}
	}
	slices.Sort(actions)
	return actions
}

// processor=lambda is one hop by default: enrich writes OrderEnriched
// itself, so there is no sink function, no enriched stream and no sink
// queue or mapping (docs/design.md §1.1).
func TestDefaultShapeIsOneHop(t *testing.T) {
	s := synth(t, lambdaProcessor)
	tmpl := s.template(stacks.ProcessStackName)
	for typ, want := range map[string]int{"AWS::Kinesis::Stream": 0, "AWS::SQS::Queue": 1, "AWS::Lambda::EventSourceMapping": 1, "AWS::Kinesis::StreamConsumer": 0} {
		if got := len(resources(tmpl, typ, nil)); got != want {
			t.Errorf("%d %s, want %d", got, typ, want)
		}
	}
	for id := range goFunctions(tmpl) {
		if strings.HasPrefix(id, "Sink") {
			t.Errorf("a sink function %s in the one-hop shape", id)
		}
	}
	if outputs := *tmpl.FindOutputs(ptr("EnrichedStreamName"), nil); len(outputs) != 0 {
		t.Error("an EnrichedStreamName output without an enriched stream")
	}
	env := functionEnvironment(t, tmpl, "Enrich")
	if _, ok := env[enrich.EnvOutputStream]; ok {
		t.Errorf("enrich has %s without an enriched stream", enrich.EnvOutputStream)
	}
	if got := mustMarshal(t, env[enrich.EnvOutputTable]); got != mustMarshal(t, ref(orderEnrichedID)) {
		t.Errorf("enrich's %s = %s, want the OrderEnriched table", enrich.EnvOutputTable, got)
	}
}

// The process stack's description names the enriched stream only where
// the stack has one.
func TestProcessStackDescriptionNamesTheEnrichedStreamOnlyWhenThereIsOne(t *testing.T) {
	for v, want := range map[variant]bool{lambdaProcessor: false, customized: true} {
		t.Run(string(v), func(t *testing.T) {
			desc, _ := templateJSON(synth(t, v).template(stacks.ProcessStackName))["Description"].(string)
			if got := strings.Contains(desc, "enriched stream"); got != want {
				t.Errorf("description %q names the enriched stream: %v, want %v", desc, got, want)
			}
		})
	}
}

// Enrich may make on OrderEnriched exactly the sink's calls, PutItem and
// DeleteItem, and use the key that encrypts it; on its join state only
// what it calls there; no other table.
func TestEnrichWritesOrderEnrichedWithExactlyTheSinksCalls(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.ProcessStackName)
			statements := policyOf(t, tmpl, "Enrich")
			if got, want := dynamoActionsOn(t, statements, orderEnrichedID), []string{"dynamodb:DeleteItem", "dynamodb:PutItem"}; !slices.Equal(got, want) {
				t.Errorf("enrich's actions on OrderEnriched = %v, want %v", got, want)
			}
			if got, want := dynamoActionsOn(t, statements, "JoinState"), []string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query"}; !slices.Equal(got, want) {
				t.Errorf("enrich's actions on its join state = %v, want %v", got, want)
			}
			if got := dynamoActionsOn(t, statements, ""); len(got) != 5 {
				t.Errorf("enrich's DynamoDB actions = %v, want only those on OrderEnriched and its join state", got)
			}
			for _, action := range []string{"kms:Encrypt", "kms:GenerateDataKey*", "kms:Decrypt"} {
				if !allows(t, statements, action, "Key") {
					t.Errorf("enrich may not %s with the pipeline key that encrypts OrderEnriched", action)
				}
			}
		})
	}
}

// enrichedStream=true adds the enriched stream (keeping the logical ID of
// the two-hop shape), and enrich publishes to it: OUTPUT_STREAM and
// kinesis:PutRecords. Still no sink.
func TestEnrichedStreamOptionPublishesEveryChange(t *testing.T) {
	tmpl := synth(t, customized).template(stacks.ProcessStackName)
	id, _ := only(t, tmpl, "AWS::Kinesis::Stream", nil)
	if id != "EnrichedStreamDDC7F55D" {
		t.Errorf("enriched stream %s, want the ID of the two-hop shape", id)
	}
	env := functionEnvironment(t, tmpl, "Enrich")
	if got := mustMarshal(t, env[enrich.EnvOutputStream]); got != mustMarshal(t, ref(id)) {
		t.Errorf("enrich's %s = %s, want the enriched stream", enrich.EnvOutputStream, got)
	}
	if !allows(t, policyOf(t, tmpl, "Enrich"), "kinesis:PutRecords", id) {
		t.Error("enrich may not put records on the enriched stream")
	}
	if outputs := *tmpl.FindOutputs(ptr("EnrichedStreamName"), nil); len(outputs) != 1 {
		t.Error("no EnrichedStreamName output")
	}
	for fn := range goFunctions(tmpl) {
		if strings.HasPrefix(fn, "Sink") {
			t.Errorf("a sink function %s with enrichedStream=true", fn)
		}
	}
}

// consumer=efo puts one enhanced fan-out consumer on each mapped stream and
// points its mapping at the consumer, whose function may subscribe
// through it; consumer=polling maps the streams themselves.
// efoCase is a variant with consumer=efo and, for each mapped function,
// the stream its consumer reads.
type efoCase struct {
	v      variant
	mapped map[string]string
}

// efoCases are those other test files register (kda_test.go).
var efoCases []efoCase

func TestEFOConsumerPerMappedStream(t *testing.T) {
	cases := append([]efoCase{
		{customized, map[string]string{"Enrich": "OrderStream"}},
	}, efoCases...)
	for _, c := range cases {
		t.Run(string(c.v), func(t *testing.T) {
			tmpl := synth(t, c.v).template(stacks.ProcessStackName)
			consumers := resources(tmpl, "AWS::Kinesis::StreamConsumer", nil)
			if len(consumers) != len(c.mapped) {
				t.Fatalf("%d stream consumers, want %d", len(consumers), len(c.mapped))
			}
			mappings := resources(tmpl, "AWS::Lambda::EventSourceMapping", nil)
			for fn, stream := range c.mapped {
				consumer := ""
				for id, r := range consumers {
					if strings.HasPrefix(id, fn) && strings.Contains(mustMarshal(t, props(r)["StreamARN"]), stream) {
						consumer = id
					}
				}
				if consumer == "" {
					t.Errorf("no consumer of %s for %s", stream, fn)
					continue
				}
				found := false
				for _, m := range mappings {
					if strings.Contains(mustMarshal(t, props(m)["FunctionName"]), fn) {
						found = mustMarshal(t, props(m)["EventSourceArn"]) == mustMarshal(t, getAtt(consumer, "ConsumerARN"))
					}
				}
				if !found {
					t.Errorf("%s's mapping does not read through consumer %s", fn, consumer)
				}
				for _, action := range []string{"kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"} {
					if !allows(t, policyOf(t, tmpl, fn), action, consumer) {
						t.Errorf("%s may not %s on %s", fn, action, consumer)
					}
				}
			}
		})
	}
	for _, v := range shapeVariants {
		if n := len(resources(synth(t, v).template(stacks.ProcessStackName), "AWS::Kinesis::StreamConsumer", nil)); n != 0 {
			t.Errorf("%s: %d stream consumers with consumer=polling", v, n)
		}
	}
}

// Bad values of the new keys fail synth naming the key and its values.
func TestLoadConfigRejectsBadShapeSettings(t *testing.T) {
	for key, bad := range map[string]any{stacks.KeyConsumer: "push", stacks.KeyEnrichedStream: "yes"} {
		_, err := stacks.ConfigFromMap(map[string]any{key: bad})
		if err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
			t.Errorf("%s=%v: error %v, want one naming the key", key, bad, err)
		}
	}
	_, err := stacks.ConfigFromMap(map[string]any{stacks.KeyConsumer: "push"})
	if err == nil || !strings.Contains(err.Error(), `"polling", "efo"`) {
		t.Errorf("consumer=push: error %v, want the allowed values", err)
	}
}

// functionEnvironment returns the environment variables of the function
// whose logical ID starts with name.
func functionEnvironment(t *testing.T, tmpl assertions.Template, name string) map[string]any {
	t.Helper()
	resources, _ := templateJSON(tmpl)["Resources"].(map[string]any)
	for id, r := range resources {
		res := r.(map[string]any)
		if res["Type"] != "AWS::Lambda::Function" || !strings.HasPrefix(id, name) {
			continue
		}
		env, _ := props(res)["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		return vars
	}
	t.Fatalf("no function %s", name)
	return nil
}

// The enrich mapping, on the stream or on its consumer, starts invoking
// the function only once products.json is deployed: the function cannot
// start without it.
func TestEnrichMappingWaitsForTheCatalogue(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.ProcessStackName)
			deployment, _ := only(t, tmpl, "Custom::CDKBucketDeployment", nil)
			mappings := resources(tmpl, "AWS::Lambda::EventSourceMapping", nil)
			if len(mappings) != 1 {
				t.Fatalf("%d mappings, want enrich's only", len(mappings))
			}
			for id, m := range mappings {
				if !slices.Contains(dependsOn(m), deployment) {
					t.Errorf("mapping %s DependsOn %v, want the reference data deployment %s", id, dependsOn(m), deployment)
				}
			}
		})
	}
}
