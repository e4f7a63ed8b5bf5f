package stacks_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/stacks"
)

// allVariants are the variants the shared tests run; a processor's own
// test file registers its variants in init (kda_test.go), so that
// deleting the file removes them and nothing else.
var allVariants = []variant{lambdaProcessor, customized}

// shapeVariants has one variant per processor, at the defaults.
var shapeVariants = []variant{lambdaProcessor}

// twoHopVariants are the variants of the two-hop shape, with the sink
// (docs/design.md §1.1): only a registered processor has it.
var twoHopVariants []variant

func (s *synthesized) template(name string) assertions.Template { return s.templates[name] }

// match wraps a literal so assertions match it partially and deeply.
func match(v map[string]any) assertions.Matcher { return assertions.Match_ObjectLike(&v) }

// importOf matches a cross-stack reference to a common-stack output whose
// export name mentions what.
func importOf(what string) assertions.Matcher {
	return match(map[string]any{"Fn::ImportValue": assertions.Match_StringLikeRegexp(jsii.String(what))})
}

// only returns the single resource of type typ matching props.
func only(t *testing.T, tmpl assertions.Template, typ string, props map[string]any) (string, map[string]any) {
	t.Helper()
	found := resources(tmpl, typ, props)
	if len(found) != 1 {
		t.Fatalf("found %d %s resources with %v, want 1", len(found), typ, props)
	}
	for id, r := range found {
		return id, r
	}
	return "", nil
}

// logicalID returns the logical ID of the single resource of type typ.
func logicalID(t *testing.T, tmpl assertions.Template, typ string, props map[string]any) string {
	t.Helper()
	id, _ := only(t, tmpl, typ, props)
	return id
}

func ref(id string) map[string]any          { return map[string]any{"Ref": id} }
func getAtt(id, attr string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }

// props returns a resource's Properties.
func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// templateJSON returns a stack's template as decoded JSON.
func templateJSON(tmpl assertions.Template) map[string]any { return *tmpl.ToJSON() }

func TestCommonStackKeyRotatesAndIsKept(t *testing.T) {
	s := synth(t, lambdaProcessor)
	tmpl := s.template(stacks.CommonStackName)
	assertProps(t, tmpl, "AWS::KMS::Key", map[string]any{"EnableKeyRotation": true, "PendingWindowInDays": 30})
	assertResource(t, tmpl, "AWS::KMS::Key", map[string]any{"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
}

func TestCommonStackOrderStreamIsEncryptedWithTheKey(t *testing.T) {
	tests := []struct {
		variant variant
		want    map[string]any
	}{
		{lambdaProcessor, map[string]any{"ShardCount": 2, "StreamModeDetails": map[string]any{"StreamMode": "PROVISIONED"}}},
		{customized, map[string]any{"StreamModeDetails": map[string]any{"StreamMode": "ON_DEMAND"}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.variant), func(t *testing.T) {
			tmpl := synth(t, tt.variant).template(stacks.CommonStackName)
			keyID := logicalID(t, tmpl, "AWS::KMS::Key", map[string]any{"PendingWindowInDays": 30})
			want := map[string]any{
				"RetentionPeriodHours": 24,
				"StreamEncryption":     map[string]any{"EncryptionType": "KMS", "KeyId": getAtt(keyID, "Arn")},
			}
			for k, v := range tt.want {
				want[k] = v
			}
			assertProps(t, tmpl, "AWS::Kinesis::Stream", want)
			if tt.variant == customized {
				_, r := only(t, tmpl, "AWS::Kinesis::Stream", nil)
				if _, ok := props(r)["ShardCount"]; ok {
					t.Error("an on-demand stream must not set ShardCount")
				}
			}
		})
	}
}

func TestStacksHaveTheOriginalNamesAndNoParameters(t *testing.T) {
	s := synth(t, lambdaProcessor)
	for _, name := range []string{stacks.CommonStackName, stacks.DataStackName, stacks.ProcessStackName} {
		tmpl, ok := s.templates[name]
		if !ok {
			t.Errorf("no stack named %s", name)
			continue
		}
		params := templateJSON(tmpl)["Parameters"]
		// CDK adds BootstrapVersion to check the bootstrap stack; nothing else.
		if p, _ := params.(map[string]any); len(p) > 1 || (len(p) == 1 && p["BootstrapVersion"] == nil) {
			t.Errorf("%s has CloudFormation parameters %v; configuration is CDK context", name, p)
		}
	}
}

func TestStacksAreEnvironmentAgnosticByDefault(t *testing.T) {
	s := synth(t, lambdaProcessor)
	for _, stack := range []awscdk.Stack{s.pipeline.Common.Stack, s.pipeline.Data.Stack, s.pipeline.Process.Stack} {
		if !*awscdk.Token_IsUnresolved(stack.Account()) || !*awscdk.Token_IsUnresolved(stack.Region()) {
			t.Errorf("%s is bound to %s/%s", *stack.StackName(), *stack.Account(), *stack.Region())
		}
	}
}

func TestEnvironmentComesFromTheCDKVariables(t *testing.T) {
	tests := []struct {
		name            string
		vars            map[string]string
		account, region string // empty: not set
		agnostic        bool
	}{
		{"neither variable set leaves the stacks environment-agnostic", nil, "", "", true},
		{"both set bind account and region", map[string]string{"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"}, "123456789012", "eu-west-1", false},
		{"a region without credentials binds the region only", map[string]string{"CDK_DEFAULT_REGION": "us-east-2"}, "", "us-east-2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := stacks.EnvironmentFrom(func(k string) string { return tt.vars[k] })
			if tt.agnostic {
				if env != nil {
					t.Errorf("env = %+v, want nil", env)
				}
				return
			}
			if got := deref(env.Account); got != tt.account {
				t.Errorf("account = %q, want %q", got, tt.account)
			}
			if got := deref(env.Region); got != tt.region {
				t.Errorf("region = %q, want %q", got, tt.region)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// iamStatements returns every statement of every IAM policy (inline role
// policies included) of a template, with the policy's logical ID.
func iamStatements(tmpl assertions.Template) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	add := func(id string, doc any) {
		d, _ := doc.(map[string]any)
		list, _ := d["Statement"].([]any)
		for _, st := range list {
			if m, ok := st.(map[string]any); ok {
				out[id] = append(out[id], m)
			}
		}
	}
	for id, r := range resources(tmpl, "AWS::IAM::Policy", nil) {
		add(id, props(r)["PolicyDocument"])
	}
	for id, r := range resources(tmpl, "AWS::IAM::Role", nil) {
		pols, _ := props(r)["Policies"].([]any)
		for _, p := range pols {
			if m, ok := p.(map[string]any); ok {
				add(id, m["PolicyDocument"])
			}
		}
	}
	return out
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func TestNoPolicyGrantsEveryActionOfAService(t *testing.T) {
	for _, v := range allVariants {
		s := synth(t, v)
		for name, tmpl := range s.templates {
			for id, statements := range iamStatements(tmpl) {
				for _, st := range statements {
					for _, a := range asList(st["Action"]) {
						if action, _ := a.(string); action == "*" || strings.HasSuffix(action, ":*") {
							t.Errorf("%s: %s: %s allows %q", v, name, id, action)
						}
					}
				}
			}
		}
	}
}

func TestNoTemplateHoldsAPassword(t *testing.T) {
	// A literal secret would show up as a string value of a password-like
	// property; generated credentials appear only as dynamic references.
	secretish := regexp.MustCompile(`(?i)password|secretstring`)
	for _, v := range allVariants {
		s := synth(t, v)
		for name, tmpl := range s.templates {
			walk(templateJSON(tmpl), "", func(path string, val any) {
				key := path[strings.LastIndex(path, ".")+1:]
				str, isString := val.(string)
				if !isString || !secretish.MatchString(key) {
					return
				}
				if key == "GenerateStringKey" || strings.Contains(path, "GenerateSecretString") {
					return
				}
				t.Errorf("%s: %s: %s is the literal %q", v, name, path, str)
			})
			if strings.Contains(mustMarshal(t, templateJSON(tmpl)), `"MasterUserPassword":"`) {
				t.Errorf("%s: %s: MasterUserPassword is a literal", v, name)
			}
		}
	}
}

func walk(v any, path string, visit func(string, any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			walk(val, path+"."+k, visit)
		}
	case []any:
		for i, val := range x {
			walk(val, fmt.Sprintf("%s[%d]", path, i), visit)
		}
	default:
		visit(path, v)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNoFixedPhysicalNamesButTheDMSRoles(t *testing.T) {
	nameProps := regexp.MustCompile(`^(RoleName|TableName|QueueName|BucketName|StreamName|FunctionName|LogGroupName|KeyAlias|AliasName|Name|DBInstanceIdentifier|ReplicationInstanceIdentifier|EndpointIdentifier|ReplicationTaskIdentifier|ApplicationName)$`)
	allowed := map[string]bool{"dms-vpc-role": true, "dms-cloudwatch-logs-role": true}
	for _, v := range allVariants {
		s := synth(t, v)
		for name, tmpl := range s.templates {
			for id, r := range templateJSON(tmpl)["Resources"].(map[string]any) {
				res := r.(map[string]any)
				typ, _ := res["Type"].(string)
				for k, val := range props(res) {
					str, isString := val.(string)
					if isString && nameProps.MatchString(k) && !allowed[str] {
						t.Errorf("%s: %s: %s (%s) has the fixed name %s=%q", v, name, id, typ, k, str)
					}
				}
			}
		}
	}
}

// expectedProcessOutputs are the process stack's outputs (besides those
// every variant has) per variant; kda_test.go adds its own.
var expectedProcessOutputs = map[variant][]string{
	lambdaProcessor: {"OrderEnrichedTableName", "ReferenceDataUri"},
	// The shapes with an enriched stream name it too.
	customized: {"EnrichedStreamName", "OrderEnrichedTableName", "ReferenceDataUri"},
}

func TestOutputsTellOperatorsWhereThingsAre(t *testing.T) {
	for v, process := range expectedProcessOutputs {
		s := synth(t, v)
		want := map[string][]string{
			stacks.CommonStackName:  {"OrderStreamName"},
			stacks.DataStackName:    {"DatabaseEndpoint", "DatabaseSecretArn", "ReplicationSecretArn", "ReplicationTaskArn"},
			stacks.ProcessStackName: process,
		}
		for stack, outputs := range want {
			for _, o := range outputs {
				if found := *s.template(stack).FindOutputs(jsii.String(o), nil); len(found) != 1 {
					t.Errorf("%s: %s has no output %s", v, stack, o)
				}
			}
		}
	}
}

// readAssemblyFile reads a file of a variant's cloud assembly.
func readAssemblyFile(t *testing.T, s *synthesized, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.outdir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every service role that DMS, Firehose or Kinesis Data Analytics assumes
// (and VPC flow logs) carries the confused-deputy conditions the service
// documents: DMS, KDA and flow logs only for this account's resources (aws:SourceAccount and
// aws:SourceArn), Firehose only with this account as the external ID. The
// account-wide DMS roles keep DMS's own documented trust (they have fixed
// names).
func TestServiceRolesTrustTheirServiceOnlyForThisAccount(t *testing.T) {
	account := mustMarshal(t, map[string]any{"Ref": "AWS::AccountId"})
	seen := map[string]int{}
	for _, v := range append(allVariants, upgradingRoles) {
		s := synth(t, v)
		for name, tmpl := range s.templates {
			for id, r := range resources(tmpl, "AWS::IAM::Role", nil) {
				p := props(r)
				if p["RoleName"] != nil {
					continue
				}
				for _, st := range asList(p["AssumeRolePolicyDocument"].(map[string]any)["Statement"]) {
					st := st.(map[string]any)
					principal := mustMarshal(t, st["Principal"])
					cond := mustMarshal(t, st["Condition"])
					var service string
					switch {
					case strings.Contains(principal, "dms."):
						service = "dms"
					case strings.Contains(principal, "firehose.amazonaws.com"):
						service = "firehose"
					case strings.Contains(principal, "kinesisanalytics.amazonaws.com"):
						service = "kinesisanalytics"
					case strings.Contains(principal, "vpc-flow-logs.amazonaws.com"):
						service = "ec2"
					default:
						continue
					}
					seen[service]++
					if service == "firehose" {
						if want := `{"StringEquals":{"sts:ExternalId":` + account + `}}`; cond != want {
							t.Errorf("%s: %s: %s trust condition %s, want %s", v, name, id, cond, want)
						}
						continue
					}
					if !strings.Contains(cond, `"StringEquals":{"aws:SourceAccount":`+account+`}`) ||
						!strings.Contains(cond, `"ArnLike":{"aws:SourceArn":{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":`+service+`:",{"Ref":"AWS::Region"},":",`+account+`,":`) {
						t.Errorf("%s: %s: %s trusts %s with condition %s, want aws:SourceAccount and aws:SourceArn of this account's %s resources", v, name, id, principal, cond, service)
					}
				}
			}
		}
	}
	for _, service := range []string{"dms", "firehose", "kinesisanalytics", "ec2"} {
		if seen[service] == 0 {
			t.Errorf("no %s service role found", service)
		}
	}
}
