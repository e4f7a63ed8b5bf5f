package stacks_test

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/unified-streaming-etl/etl/stacks"
)

// keptResource is a resource `cdk destroy` leaves behind on purpose, and
// the words the README's "Tearing down" section names it with.
type keptResource struct {
	stack, typ string
	// matches picks the resource by logical ID and properties.
	matches func(id string, props map[string]any) bool
	readme  string
}

func idPrefix(prefix string) func(string, map[string]any) bool {
	return func(id string, _ map[string]any) bool { return strings.HasPrefix(id, prefix) }
}

// keptOnDestroy is the allow-list of resources with DeletionPolicy Retain
// or Snapshot. Anything else a stack keeps is a cost nobody was told about.
var keptOnDestroy = []keptResource{
	// Encrypts the archive and the final snapshot, which outlive the stacks.
	{stacks.CommonStackName, "AWS::KMS::Key", idPrefix("Key"), "the pipeline KMS key"},
	// DeletionPolicy Snapshot: the database goes, its final snapshot stays.
	{stacks.DataStackName, "AWS::RDS::DBInstance", idPrefix("Database"), "final RDS snapshot"},
	{stacks.ProcessStackName, "AWS::S3::Bucket", idPrefix("RawArchiveBucket"), "raw archive bucket"},
	{stacks.ProcessStackName, "AWS::S3::Bucket", idPrefix("AccessLogsBucket"), "access-log bucket"},
	// Account-wide roles other DMS users may need, when the stack created
	// them.
	{stacks.DataStackName, "AWS::IAM::Role", func(_ string, p map[string]any) bool {
		return p["RoleName"] == "dms-vpc-role" || p["RoleName"] == "dms-cloudwatch-logs-role"
	}, "`dms-vpc-role` and `dms-cloudwatch-logs-role`"},
}

// readmeSection returns the text of the README section with the given
// heading, up to the next heading of the same or a higher level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, heading+"\n")
	if start < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	level := strings.Count(strings.Fields(heading)[0], "#")
	rest := text[start+len(heading)+1:]
	next := regexp.MustCompile(`(?m)^#{1,` + string(rune('0'+level)) + `} `).FindStringIndex(rest)
	if next != nil {
		rest = rest[:next[0]]
	}
	return rest
}

func TestCdkDestroyKeepsOnlyWhatTheREADMEListsAsKept(t *testing.T) {
	teardown := strings.Join(strings.Fields(readmeSection(t, "### Tearing down")), " ")
	for _, k := range keptOnDestroy {
		if !strings.Contains(teardown, k.readme) {
			t.Errorf("README \"Tearing down\" does not name %q, which cdk destroy keeps", k.readme)
		}
	}
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			for name, tmpl := range s.templates {
				for id, r := range templateJSON(tmpl)["Resources"].(map[string]any) {
					res := r.(map[string]any)
					typ, _ := res["Type"].(string)
					policy, _ := res["DeletionPolicy"].(string)
					if policy == "" && typ == "AWS::RDS::DBInstance" {
						policy = "Snapshot" // CloudFormation's default for instances
					}
					if policy == "" || policy == "Delete" {
						continue
					}
					allowed := slices.ContainsFunc(keptOnDestroy, func(k keptResource) bool {
						return k.stack == name && k.typ == typ && k.matches(id, props(res))
					})
					if !allowed {
						t.Errorf("%s: %s (%s) has DeletionPolicy %s: cdk destroy would leave it behind unannounced", name, id, typ, policy)
					}
				}
			}
		})
	}
}

func TestStreamsAndDerivedBucketsAreDeletedWithTheStacks(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			for _, name := range []string{stacks.CommonStackName, stacks.ProcessStackName} {
				for id, r := range resources(s.template(name), "AWS::Kinesis::Stream", nil) {
					if r["DeletionPolicy"] != "Delete" {
						t.Errorf("%s: stream %s has DeletionPolicy %v, want Delete", name, id, r["DeletionPolicy"])
					}
				}
			}
			tmpl := s.template(stacks.ProcessStackName)
			buckets := resources(tmpl, "AWS::S3::Bucket", nil)
			// A bucket CloudFormation deletes must be emptied first (every
			// object version), or the deletion fails.
			emptied := map[string]bool{}
			for _, r := range resources(tmpl, "Custom::S3AutoDeleteObjects", nil) {
				emptied[props(r)["BucketName"].(map[string]any)["Ref"].(string)] = true
			}
			for id, r := range buckets {
				deleted := r["DeletionPolicy"] == "Delete"
				if deleted != emptied[id] {
					t.Errorf("bucket %s: DeletionPolicy %v, emptied on deletion %v", id, r["DeletionPolicy"], emptied[id])
				}
				kept := strings.HasPrefix(id, "RawArchiveBucket") || (s.cfg.DataLake && strings.HasPrefix(id, "AccessLogsBucket"))
				if kept == deleted {
					t.Errorf("bucket %s: DeletionPolicy %v; want it kept: %v", id, r["DeletionPolicy"], kept)
				}
			}
		})
	}
}

// logGroupRef returns the logical ID of the log group a function logs to.
func logGroupRef(fn map[string]any) string {
	logging, _ := props(fn)["LoggingConfig"].(map[string]any)
	group, _ := logging["LogGroup"].(map[string]any)
	id, _ := group["Ref"].(string)
	return id
}

func TestEveryLogGroupOfTheCommonAndProcessStacksExpiresAndGoesWithTheStack(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			for _, name := range []string{stacks.CommonStackName, stacks.ProcessStackName} {
				tmpl := s.template(name)
				groups := resources(tmpl, "AWS::Logs::LogGroup", nil)
				for id, r := range groups {
					if got := props(r)["RetentionInDays"]; got != float64(s.cfg.LogRetentionDays) {
						t.Errorf("%s: log group %s keeps logs for %v days, want %d", name, id, got, s.cfg.LogRetentionDays)
					}
					if r["DeletionPolicy"] != "Delete" {
						t.Errorf("%s: log group %s has DeletionPolicy %v, want Delete", name, id, r["DeletionPolicy"])
					}
				}
				// A function without a log group of its own logs to one
				// Lambda creates, which never expires and outlives the stack:
				// this includes the handlers aws-cdk-lib adds.
				for id, fn := range resources(tmpl, "AWS::Lambda::Function", nil) {
					if _, ok := groups[logGroupRef(fn)]; !ok {
						t.Errorf("%s: function %s logs to %q, not to a log group of the stack", name, id, logGroupRef(fn))
					}
				}
				for id, r := range resources(tmpl, "AWS::Logs::LogStream", nil) {
					if r["DeletionPolicy"] != "Delete" {
						t.Errorf("%s: log stream %s has DeletionPolicy %v, want Delete", name, id, r["DeletionPolicy"])
					}
				}
			}
		})
	}
}

func TestEnrichReadsTheStreamOnlyOnceTheReferenceDataIsDeployed(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			deployment := logicalID(t, tmpl, "Custom::CDKBucketDeployment", nil)
			var enrich string
			for id := range goFunctions(tmpl) {
				if strings.HasPrefix(id, "Enrich") {
					enrich = id
				}
			}
			_, esm := only(t, tmpl, "AWS::Lambda::EventSourceMapping", map[string]any{"FunctionName": ref(enrich)})
			if !slices.Contains(asList(esm["DependsOn"]), any(deployment)) {
				t.Errorf("the enrich event source mapping depends on %v, not on the reference data deployment %s", esm["DependsOn"], deployment)
			}
		})
	}
}

// tableActions returns the DynamoDB actions a function's policy allows,
// by the table they apply to.
func tableActions(t *testing.T, tmpl assertions.Template, fn string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, st := range policyOf(t, tmpl, fn) {
		for _, a := range asList(st["Action"]) {
			action, _ := a.(string)
			if !strings.HasPrefix(action, "dynamodb:") {
				continue
			}
			for _, r := range asList(st["Resource"]) {
				target := mustMarshal(t, r)
				out[target] = append(out[target], action)
			}
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func TestFunctionsMayCallExactlyTheTableActionsTheirHandlersUse(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			tmpl := s.template(stacks.ProcessStackName)
			orderEnriched := orderEnrichedID
			// internal/sink: conditional PutItem and DeleteItem, made by the
			// sink (two hops) or by enrich through the same code (one hop).
			sinkCalls := map[string][]string{mustMarshal(t, getAtt(orderEnriched, "Arn")): {"dynamodb:DeleteItem", "dynamodb:PutItem"}}
			if s.cfg.Processor != stacks.ProcessorLambda {
				if got := tableActions(t, tmpl, "Sink"); !equalActions(got, sinkCalls) {
					t.Errorf("sink may call %v, want exactly %v", got, sinkCalls)
				}
				return
			}
			state := logicalID(t, tmpl, "AWS::DynamoDB::Table", map[string]any{"TimeToLiveSpecification": map[string]any{"AttributeName": stacks.StateTTLAttribute}})
			// internal/enrich: Query and BatchGetItem to read its state,
			// BatchWriteItem (puts) to write it; TTL deletes.
			want := map[string][]string{mustMarshal(t, getAtt(state, "Arn")): {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query"}}
			for k, v := range sinkCalls {
				want[k] = v
			}
			if got := tableActions(t, tmpl, "Enrich"); !equalActions(got, want) {
				t.Errorf("enrich may call %v, want exactly %v", got, want)
			}
		})
	}
}

func equalActions(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
