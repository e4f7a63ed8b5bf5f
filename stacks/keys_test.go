package stacks_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/stacks"
)

// statementsAllowing returns the statements of a template that allow
// action, by policy.
func statementsAllowing(statements map[string][]map[string]any, action string) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for id, list := range statements {
		for _, st := range list {
			if st["Effect"] == "Allow" && slices.Contains(asList(st["Action"]), any(action)) {
				out[id] = append(out[id], st)
			}
		}
	}
	return out
}

// The in-VPC functions' roles create network interfaces only in the VPC's
// isolated subnets with the function's own security group; deletion stays
// on every EC2 resource of the account and Region, as the Lambda developer
// guide requires (docs/aws-facts.md §12).
func TestInVPCFunctionsCreateNetworkInterfacesOnlyInTheirSubnets(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.DataStackName)
			subnets := resources(tmpl, "AWS::EC2::Subnet", nil)
			if len(subnets) != 2 {
				t.Fatalf("%d subnets, want 2", len(subnets))
			}
			all := iamStatements(tmpl)
			create := statementsAllowing(all, "ec2:CreateNetworkInterface")
			if len(create) == 0 {
				t.Fatal("no role may create network interfaces; the schema setup runs in the VPC")
			}
			for policy, sts := range create {
				for _, st := range sts {
					if st["Condition"] != nil {
						t.Errorf("%s: CreateNetworkInterface is conditioned (%v); it is scoped by its resources", policy, st["Condition"])
					}
					var ifaces, groups int
					inSubnet := map[string]bool{}
					for _, r := range asList(st["Resource"]) {
						js := mustMarshal(t, r)
						switch {
						case strings.Contains(js, `:network-interface/*`):
							ifaces++
						case strings.Contains(js, `:security-group/`) && strings.Contains(js, `GroupId`):
							groups++
						case strings.Contains(js, `:subnet/`):
							for id := range subnets {
								if strings.Contains(js, mustMarshal(t, ref(id))) {
									inSubnet[id] = true
								}
							}
						default:
							t.Errorf("%s: CreateNetworkInterface allowed on %s", policy, js)
						}
					}
					if ifaces != 1 || groups != 1 || len(inSubnet) != len(subnets) {
						t.Errorf("%s: CreateNetworkInterface on %d interface patterns, %d security groups and subnets %v; want 1, 1 and every isolated subnet",
							policy, ifaces, groups, inSubnet)
					}
				}
			}
			for policy := range create {
				if !allows(t, all[policy], "ec2:DeleteNetworkInterface", `:*/*`) {
					t.Errorf("%s: no ec2:DeleteNetworkInterface on the account's EC2 resources; Lambda could not delete the function's interfaces", policy)
				}
				if !allows(t, all[policy], "ec2:DescribeNetworkInterfaces", `*`) {
					t.Errorf("%s: no ec2:DescribeNetworkInterfaces", policy)
				}
				for _, a := range []string{"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"} {
					if !allows(t, all[policy], a, `:network-interface/*`) {
						t.Errorf("%s: no %s on network interfaces", policy, a)
					}
					for _, st := range statementsAllowing(map[string][]map[string]any{policy: all[policy]}, a)[policy] {
						if js := mustMarshal(t, st["Resource"]); strings.Contains(js, `:*/*`) || js == `"*"` {
							t.Errorf("%s: %s on %s, want network interfaces only", policy, a, js)
						}
					}
				}
			}
		})
	}
}

// Both database secrets are encrypted with the pipeline key, the one the
// database's storage uses, and every role that reads a secret may decrypt
// with that key only through Secrets Manager (docs/aws-facts.md §12).
func TestDatabaseSecretsUseThePipelineKeyDecryptedOnlyThroughSecretsManager(t *testing.T) {
	for _, v := range []variant{lambdaProcessor, customized} {
		t.Run(string(v), func(t *testing.T) {
			tmpl := synth(t, v).template(stacks.DataStackName)
			_, db := only(t, tmpl, "AWS::RDS::DBInstance", nil)
			key := mustMarshal(t, props(db)["KmsKeyId"])
			if !strings.Contains(key, "Fn::ImportValue") {
				t.Fatalf("database KmsKeyId = %s, want the common stack's key", key)
			}
			secrets := resources(tmpl, "AWS::SecretsManager::Secret", nil)
			if len(secrets) != 2 {
				t.Fatalf("%d secrets, want the master's and dms_user's", len(secrets))
			}
			for id, s := range secrets {
				if got := mustMarshal(t, props(s)["KmsKeyId"]); got != key {
					t.Errorf("secret %s KmsKeyId = %s, want the pipeline key %s", id, got, key)
				}
			}
			for id, app := range resources(tmpl, "AWS::Serverless::Application", nil) {
				if got := mustMarshal(t, props(app)["Parameters"].(map[string]any)["kmsKeyArn"]); got != key {
					t.Errorf("rotation application %s kmsKeyArn = %s, want %s", id, got, key)
				}
			}
			viaSecretsManager := mustMarshal(t, map[string]any{"kms:ViaService": map[string]any{
				"Fn::Join": []any{"", []any{"secretsmanager.", ref("AWS::Region"), ".amazonaws.com"}},
			}})
			readers := statementsAllowing(iamStatements(tmpl), "secretsmanager:GetSecretValue")
			var accessRole bool
			for policy := range readers {
				if strings.HasPrefix(policy, "ReplicationSecretAccessRole") {
					accessRole = true
				}
				var decrypts bool
				for _, st := range statementsAllowing(map[string][]map[string]any{policy: iamStatements(tmpl)[policy]}, "kms:Decrypt")[policy] {
					if mustMarshal(t, st["Resource"]) != key {
						continue
					}
					decrypts = true
					cond, _ := st["Condition"].(map[string]any)
					if got := mustMarshal(t, cond["StringEquals"]); got != viaSecretsManager {
						t.Errorf("%s decrypts with the pipeline key under %s, want only %s", policy, mustMarshal(t, cond), viaSecretsManager)
					}
				}
				if !decrypts {
					t.Errorf("%s reads a secret but may not decrypt it with the pipeline key", policy)
				}
			}
			if !accessRole || len(readers) < 2 {
				t.Errorf("secret readers %v, want DMS's secrets access role and the schema setup", slices.Sorted(maps.Keys(readers)))
			}
		})
	}
}
