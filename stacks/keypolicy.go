package stacks

import (
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/internal/keyusers"
)

// KeyKeyUsers lists the IAM roles and users, besides the pipeline's own
// roles, that may use the pipeline key: the operators and automation that
// run etl verify, repair, resend and replay against the deployment.
const KeyKeyUsers = "keyUsers"

// The pipeline key's policy (docs/aws-facts.md §14) separates administering
// the key from using it:
//
//   - KeyAdministration: the account (that is, whatever IAM allows) may
//     manage the key, its policy included, so the key cannot be locked out;
//     but it may not use it nor create grants on it.
//   - PipelineRolesUseTheKey and PipelineRolesAttachTheKey: only the
//     principals keyUserPrincipalPatterns names may encrypt, decrypt and
//     let AWS services create grants on it, each still only as far as its
//     IAM policies allow.
//
// The sids are part of the contract: the tests and README (Security) name
// them.
const (
	KeyAdministrationSid = "KeyAdministration"
	KeyUsageSid          = "PipelineRolesUseTheKey"
	KeyGrantsSid         = "PipelineRolesAttachTheKey"
)

// KeyAdministrationActions are the key policy's administrative actions:
// those of the KMS documentation's key administrators statement, without
// the wildcard kms:Create*, which would include kms:CreateGrant, a way to
// give oneself the use of the key.
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-administrators
var KeyAdministrationActions = []string{
	"kms:CreateAlias", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
	"kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
	"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
}

// KeyUsageActions are the cryptographic operations of the key users
// statement, which every encrypted service the pipeline uses calls with
// its caller's identity (docs/aws-facts.md §14).
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-users
var KeyUsageActions = []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}

// KeyGrantActions let the key users have AWS services (RDS, DMS,
// DynamoDB) create grants for the resources they encrypt, and only for
// them (kms:GrantIsForAWSResource).
var KeyGrantActions = []string{"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}

// KeyUserStacks are the stacks whose roles use the pipeline key. The common
// stack has no roles, and the CI stack's roles deploy through the CDK's
// bootstrap roles, touching no data.
var KeyUserStacks = []string{DataStackName, ProcessStackName}

// KeyUserRoleNamePatterns are the role name patterns, one per stack of
// KeyUserStacks, that the key policy lets use the key. They cover the
// roles CloudFormation creates in those stacks and in their nested stacks
// (the secret rotation applications), whose names begin with the stack's
// (internal/keyusers; `etl key-users` checks a deployment against them).
func KeyUserRoleNamePatterns() []string {
	patterns := make([]string, len(KeyUserStacks))
	for i, name := range KeyUserStacks {
		patterns[i] = keyusers.RoleNamePattern(name)
	}
	return patterns
}

// keyUserARNRE is a role or user ARN, possibly with the wildcards ArnLike
// accepts, in one account. aws:PrincipalArn is the role's ARN, with its
// path, also for a session of the role.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn
var keyUserARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/*?-]+$`)

// keyUsers parses KeyKeyUsers: a comma-separated string (cdk -c) or a
// JSON array of strings (cdk.json).
func (p *parser) keyUsers(dst *[]string) {
	v, ok := p.get(KeyKeyUsers)
	if !ok {
		return
	}
	const want = `empty, or IAM role or user ARNs of this account separated by commas, such as ` +
		`"arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataOps_*" ` +
		`(ArnLike wildcards allowed in the name, not a bare "*")`
	var items []string
	switch v := v.(type) {
	case string:
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	case []any:
		for _, e := range v {
			s, isString := e.(string)
			if !isString {
				p.fail(KeyKeyUsers, v, want)
				return
			}
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	default:
		p.fail(KeyKeyUsers, v, want)
		return
	}
	for _, s := range items {
		name := s[strings.IndexByte(s, '/')+1:]
		if !keyUserARNRE.MatchString(s) || strings.Trim(name, "*?/") == "" {
			p.fail(KeyKeyUsers, s, want)
			return
		}
	}
	*dst = items
}

// pipelineKeyPolicy is the pipeline key's policy for the stack it is in.
func pipelineKeyPolicy(stack awscdk.Stack, cfg Config) awsiam.PolicyDocument {
	account := []awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()}
	users := map[string]any{"ArnLike": map[string]any{"aws:PrincipalArn": keyUserPrincipalPatterns(stack, cfg.CI.BootstrapQualifier, cfg.KeyUsers)}}
	grants := map[string]any{
		"ArnLike": users["ArnLike"],
		"Bool":    map[string]any{"kms:GrantIsForAWSResource": "true"},
	}
	return awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String(KeyAdministrationSid), Principals: &account,
			Actions: jsii.Strings(KeyAdministrationActions...), Resources: jsii.Strings("*"),
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String(KeyUsageSid), Principals: &account,
			Actions: jsii.Strings(KeyUsageActions...), Resources: jsii.Strings("*"), Conditions: &users,
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String(KeyGrantsSid), Principals: &account,
			Actions: jsii.Strings(KeyGrantActions...), Resources: jsii.Strings("*"), Conditions: &grants,
		}),
	}})
}

// keyUserPrincipalPatterns are the aws:PrincipalArn patterns of the key
// users: the roles of KeyUserStacks, the CloudFormation execution role the
// CDK deploys them with (which creates the encrypted resources and reads
// the database secret for the instance's master password), and keyUsers.
func keyUserPrincipalPatterns(stack awscdk.Stack, qualifier string, keyUsers []string) []*string {
	var patterns []*string
	for _, name := range KeyUserRoleNamePatterns() {
		patterns = append(patterns, stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("iam"), Region: jsii.String(""), Resource: jsii.String("role"),
			ResourceName: jsii.String(name), ArnFormat: awscdk.ArnFormat_SLASH_RESOURCE_NAME,
		}))
	}
	patterns = append(patterns, cloudFormationExecutionRole(qualifier))
	for _, u := range keyUsers {
		patterns = append(patterns, jsii.String(u))
	}
	return patterns
}

// cloudFormationExecutionRole is the ARN of the role CloudFormation deploys
// the stacks with: the CDK's default synthesizer's
// cdk-<qualifier>-cfn-exec-role-<account>-<region>, with the qualifier the
// stacks are synthesized for (ci.go, bootstrapQualifier).
func cloudFormationExecutionRole(qualifier string) *string {
	arn := strings.ReplaceAll(*awscdk.DefaultStackSynthesizer_DEFAULT_CLOUDFORMATION_ROLE_ARN(), "${Qualifier}", qualifier)
	// ${AWS::Partition}, ${AWS::AccountId} and ${AWS::Region}.
	return awscdk.Fn_Sub(jsii.String(arn), nil)
}
