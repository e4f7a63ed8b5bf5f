package stacks_test

import (
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/stacks"
)

// kmsOperations are the KMS operations a key policy can allow on a
// symmetric encryption key, split into using the key and administering it.
// https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html
var (
	kmsUseOperations = []string{
		"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
		"kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext",
		"kms:GenerateRandom", "kms:CreateGrant",
	}
	kmsAdminOperations = []string{
		"kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias", "kms:DescribeKey", "kms:EnableKey", "kms:DisableKey",
		"kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
		"kms:ListGrants", "kms:ListKeyPolicies", "kms:ListResourceTags", "kms:ListKeyRotations", "kms:PutKeyPolicy",
		"kms:RevokeGrant", "kms:UpdateKeyDescription", "kms:TagResource", "kms:UntagResource",
		"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
	}
)

// actionsAllow reports whether any of the policy action patterns matches
// action (IAM wildcards: * and ?, case-insensitive).
func actionsAllow(patterns []any, action string) bool {
	for _, p := range patterns {
		s, _ := p.(string)
		if ok, _ := path.Match(strings.ToLower(s), strings.ToLower(action)); ok {
			return true
		}
	}
	return false
}

// pipelineKey returns the logical ID and the policy statements, by sid, of
// the pipeline key in the common stack.
func pipelineKey(t *testing.T, s *synthesized) (string, map[string]map[string]any) {
	t.Helper()
	id, key := only(t, s.template(stacks.CommonStackName), "AWS::KMS::Key",
		map[string]any{"Description": "Encrypts the unified streaming ETL pipeline's streams, queues, tables and databases."})
	doc, _ := props(key)["KeyPolicy"].(map[string]any)
	bySid := map[string]map[string]any{}
	for _, st := range asList(doc["Statement"]) {
		m, _ := st.(map[string]any)
		sid, _ := m["Sid"].(string)
		if _, dup := bySid[sid]; dup || sid == "" {
			t.Fatalf("key policy statement sid %q missing or repeated: %s", sid, mustMarshal(t, doc))
		}
		bySid[sid] = m
	}
	return id, bySid
}

// The pipeline key's policy lets the account administer the key, its
// policy included (so it can never be locked out), but lets only the
// pipeline's roles, the CDK's CloudFormation execution role and the
// configured operators use it (docs/aws-facts.md §14).
func TestPipelineKeyIsAdministeredByTheAccountAndUsedOnlyByItsNamedPrincipals(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			_, policy := pipelineKey(t, s)
			if got := slices.Sorted(maps.Keys(policy)); !slices.Equal(got, []string{stacks.KeyAdministrationSid, stacks.KeyGrantsSid, stacks.KeyUsageSid}) {
				t.Fatalf("key policy statements %v, want exactly administration, usage and grants", got)
			}
			for sid, st := range policy {
				if st["Effect"] != "Allow" || !strings.HasSuffix(mustMarshal(t, st["Principal"]), `":iam::",{"Ref":"AWS::AccountId"},":root"]]}}`) {
					t.Errorf("%s: effect %v, principal %s; want Allow to this account (whose IAM policies then decide)", sid, st["Effect"], mustMarshal(t, st["Principal"]))
				}
			}

			admin := policy[stacks.KeyAdministrationSid]
			if admin["Condition"] != nil {
				t.Errorf("administration is conditioned (%v): an administrator could be locked out", admin["Condition"])
			}
			for _, op := range kmsAdminOperations {
				if !actionsAllow(asList(admin["Action"]), op) {
					t.Errorf("administration does not allow %s", op)
				}
			}
			for _, op := range kmsUseOperations {
				if actionsAllow(asList(admin["Action"]), op) {
					t.Errorf("administration allows %s: any principal IAM allows it could use the key", op)
				}
			}

			qualifier := stacks.DefaultCDKBootstrapQualifier
			if v == customized {
				qualifier = customizedQualifier
			}
			patterns := []string{`role/UnifiedStreamETLData*"`, `role/UnifiedStreamETLProc*"`, `cdk-` + qualifier + `-cfn-exec-role-${AWS::AccountId}-${AWS::Region}"`}
			if v == customized {
				patterns = append(patterns, customizedKeyUser)
			}
			for _, sid := range []string{stacks.KeyUsageSid, stacks.KeyGrantsSid} {
				st := policy[sid]
				cond, _ := st["Condition"].(map[string]any)
				arnLike, _ := cond["ArnLike"].(map[string]any)
				principals := asList(arnLike["aws:PrincipalArn"])
				if len(principals) != len(patterns) {
					t.Errorf("%s: aws:PrincipalArn %s, want %d patterns: %v", sid, mustMarshal(t, principals), len(patterns), patterns)
				}
				for _, want := range patterns {
					if !slices.ContainsFunc(principals, func(p any) bool { return strings.Contains(mustMarshal(t, p), want) }) {
						t.Errorf("%s: aws:PrincipalArn %s lacks %s", sid, mustMarshal(t, principals), want)
					}
				}
			}
			usage := policy[stacks.KeyUsageSid]
			for _, op := range []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:DescribeKey"} {
				if !actionsAllow(asList(usage["Action"]), op) {
					t.Errorf("usage does not allow %s", op)
				}
			}
			grants := policy[stacks.KeyGrantsSid]
			if got := mustMarshal(t, grants["Condition"].(map[string]any)["Bool"]); got != `{"kms:GrantIsForAWSResource":"true"}` {
				t.Errorf("grants conditioned on %s, want only grants AWS services create for their resources", got)
			}
			if !actionsAllow(asList(grants["Action"]), "kms:CreateGrant") || actionsAllow(asList(usage["Action"]), "kms:CreateGrant") {
				t.Errorf("CreateGrant in usage %v and grants %v; want it in grants only", usage["Action"], grants["Action"])
			}
		})
	}
}

// Every role granted the pipeline key is one the key policy names: its
// KMS actions are among the policy's usage and grant actions, and it is a
// role CloudFormation names after one of KeyUserStacks (no RoleName), so
// its ARN matches that stack's pattern. A role that fails this would be
// refused by KMS in the account, whatever its IAM policy says.
func TestEveryRoleGrantedThePipelineKeyIsNamedByItsPolicy(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			keyID, policy := pipelineKey(t, s)
			allowed := append(asList(policy[stacks.KeyUsageSid]["Action"]), asList(policy[stacks.KeyGrantsSid]["Action"])...)
			for name, tmpl := range s.templates {
				keyUser := slices.Contains(stacks.KeyUserStacks, name)
				roles := resources(tmpl, "AWS::IAM::Role", nil)
				policies := resources(tmpl, "AWS::IAM::Policy", nil)
				var granted int
				for id, statements := range iamStatements(tmpl) {
					for _, st := range statements {
						js := mustMarshal(t, st["Resource"])
						if !strings.Contains(js, "FnGetAtt"+keyID+"Arn") && !strings.Contains(js, `"`+keyID+`","Arn"`) {
							continue
						}
						granted++
						if !keyUser {
							t.Errorf("%s: %s is granted the pipeline key, but the key policy names no role of this stack", name, id)
						}
						for _, a := range asList(st["Action"]) {
							if !actionsAllow(allowed, a.(string)) {
								t.Errorf("%s: %s is granted %v on the pipeline key, which its policy does not allow (%v)", name, id, a, allowed)
							}
						}
						attached := []any{ref(id)}
						if p, isPolicy := policies[id]; isPolicy {
							attached = asList(props(p)["Roles"])
						}
						for _, r := range attached {
							roleID, _ := r.(map[string]any)["Ref"].(string)
							role, ok := roles[roleID]
							if !ok {
								t.Errorf("%s: %s grants the pipeline key to %s, not a role of this stack", name, id, mustMarshal(t, r))
								continue
							}
							if n, named := props(role)["RoleName"]; named {
								t.Errorf("%s: role %s is named %v; only roles CloudFormation names after the stack match the key policy", name, roleID, n)
							}
						}
					}
				}
				if keyUser {
					// The policy's patterns and etl key-users match role/<name>.
					for id, role := range roles {
						if p, hasPath := props(role)["Path"]; hasPath && p != "/" {
							t.Errorf("%s: role %s has the path %v; the key policy names roles without one", name, id, p)
						}
					}
				}
				if keyUser && granted == 0 {
					t.Errorf("%s: no role is granted the pipeline key; it need not be among KeyUserStacks", name)
				}
				if !keyUser && len(resources(tmpl, "AWS::Serverless::Application", nil)) > 0 {
					t.Errorf("%s: nested applications, whose roles may use the key, in a stack the key policy does not name", name)
				}
			}
		})
	}
}

// The role name patterns tell the key-using stacks apart from each other
// and from the CI stack, and keep less of a stack's name than
// CloudFormation keeps in the names it generates (docs/aws-facts.md §14).
func TestKeyUserRoleNamePatternsMatchTheirStacksOnly(t *testing.T) {
	patterns := stacks.KeyUserRoleNamePatterns()
	if len(patterns) != len(stacks.KeyUserStacks) {
		t.Fatalf("patterns %v for stacks %v", patterns, stacks.KeyUserStacks)
	}
	// CloudFormation kept 25 characters of a stack's name in a generated
	// role name (docs/aws-facts.md §14).
	const kept = 25
	for i, stack := range stacks.KeyUserStacks {
		p := patterns[i]
		prefix := strings.TrimSuffix(p, "*")
		if !strings.HasPrefix(stack, prefix) || len(prefix) >= kept || strings.ContainsAny(prefix, "*?") {
			t.Errorf("pattern %q for stack %s: want a literal prefix of the name, shorter than %d characters", p, stack, kept)
		}
		generated := stack[:min(len(stack), kept)] + "-EnrichRoleEFA49F29ABCDEFGHIJ-AbCdEfGhIjKl"
		for j, other := range patterns {
			if ok, _ := path.Match(other, generated); ok != (i == j) {
				t.Errorf("pattern %q matches %s's role %q: %v", other, stack, generated, ok)
			}
		}
	}
	for _, other := range []string{stacks.CommonStackName, stacks.CIStackName} {
		for _, p := range patterns {
			if ok, _ := path.Match(p, other[:min(len(other), kept)]+"-Role-AbCdEfGhIjKl"); ok {
				t.Errorf("pattern %q matches the roles of %s", p, other)
			}
		}
	}
}
