package stacks

import (
	"fmt"
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// CIStackName is the optional stack that lets the repository's GitHub
// Actions workflow (.github/workflows/pipeline.yml) reach the account.
const CIStackName = "UnifiedStreamETLCiStack"

// Context keys of the CI stack.
const (
	// KeyGitHubRepository ("owner/name") creates the CI stack; empty: no
	// CI stack.
	KeyGitHubRepository = "githubRepository"
	// KeyGitHubOIDCProviderARN names the account's existing GitHub OIDC
	// provider (an account has at most one per URL); empty: the CI stack
	// creates it.
	KeyGitHubOIDCProviderARN = "githubOidcProviderArn"
	// KeyCDKBootstrapQualifier is the qualifier of the account's CDK
	// bootstrap roles (`cdk bootstrap --qualifier`).
	KeyCDKBootstrapQualifier = "cdkBootstrapQualifier"
)

// GitHub's OIDC issuer and the audience aws-actions/configure-aws-credentials
// requests
// (https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws).
const (
	GitHubOIDCIssuer   = "token.actions.githubusercontent.com"
	GitHubOIDCAudience = "sts.amazonaws.com"
	// DeployEnvironment is the GitHub environment of the deploy job; its
	// protection rules (required reviewers, deployment branches) are the
	// gate in front of the deploy role.
	DeployEnvironment = "production"
)

// CIConfig configures the CI stack.
type CIConfig struct {
	// Repository is "owner/name"; empty: no CI stack.
	Repository string
	// OIDCProviderARN is an existing GitHub OIDC provider; empty: created.
	OIDCProviderARN string
	// BootstrapQualifier is the CDK bootstrap qualifier.
	BootstrapQualifier string
}

// DiffSubject and DeploySubject are the OIDC subjects the two roles trust
// (https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims):
// jobs of pull_request workflows, and jobs that reference the production
// environment.
func (c CIConfig) DiffSubject() string { return "repo:" + c.Repository + ":pull_request" }

// DeploySubject is the subject of a job in the production environment.
func (c CIConfig) DeploySubject() string {
	return "repo:" + c.Repository + ":environment:" + DeployEnvironment
}

var (
	// Empty, or "owner/name": GitHub owner names are letters, digits and
	// '-'; repository names also '.' and '_'.
	gitHubRepositoryRE = regexp.MustCompile(`^$|^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$`)
	// Empty, or the ARN of a GitHub OIDC provider.
	oidcProviderARNRE    = regexp.MustCompile(`^$|^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/` + regexp.QuoteMeta(GitHubOIDCIssuer) + `$`)
	bootstrapQualifierRE = regexp.MustCompile(`^[a-z0-9]{1,10}$`)
)

// ci reads the CI stack's keys.
func (p *parser) ci(dst *CIConfig) {
	if s, ok := p.matching(KeyGitHubRepository, gitHubRepositoryRE,
		`empty (no CI stack) or a GitHub repository "owner/name"`); ok {
		dst.Repository = s
	}
	if s, ok := p.matching(KeyGitHubOIDCProviderARN, oidcProviderARNRE,
		`empty (the CI stack creates the provider) or the ARN of the account's provider, "arn:aws:iam::<account>:oidc-provider/`+GitHubOIDCIssuer+`"`); ok {
		dst.OIDCProviderARN = s
	}
	// The CDK CLI accepts lower-case letters and digits, at most 10.
	if s, ok := p.matching(KeyCDKBootstrapQualifier, bootstrapQualifierRE, qualifierWant); ok {
		dst.BootstrapQualifier = s
	}
}

// CDKBootstrapQualifierContext is the CDK's own context key for the
// bootstrap qualifier, which its default synthesizer reads.
// https://docs.aws.amazon.com/cdk/v2/guide/customize-synth.html
const CDKBootstrapQualifierContext = "@aws-cdk/core:bootstrapQualifier"

const qualifierWant = `the CDK bootstrap qualifier: 1 to 10 lower-case letters or digits, such as "` + DefaultCDKBootstrapQualifier + `"`

// bootstrapQualifier makes cdkBootstrapQualifier and the CDK's own
// CDKBootstrapQualifierContext one setting: the CI roles may assume the
// bootstrap roles of the qualifier the stacks deploy with. Either one set
// alone sets both (Config.SynthesizerQualifier passes the app's to the
// stacks' synthesizers); set to different qualifiers they fail synth.
// set reports the keys given, without the defaults.
func (p *parser) bootstrapQualifier(set func(string) (any, bool), c *Config) {
	cdk, cdkSet := set(CDKBootstrapQualifierContext)
	app, appSet := set(KeyCDKBootstrapQualifier)
	if !cdkSet {
		if appSet && c.CI.BootstrapQualifier != DefaultCDKBootstrapQualifier {
			c.SynthesizerQualifier = c.CI.BootstrapQualifier
		}
		return
	}
	q, isString := cdk.(string)
	if !isString || !bootstrapQualifierRE.MatchString(q) {
		p.fail(CDKBootstrapQualifierContext, cdk, qualifierWant)
		return
	}
	// An invalid app qualifier has been reported already (ci).
	if appSet && c.CI.BootstrapQualifier != "" && c.CI.BootstrapQualifier != q {
		p.fail(KeyCDKBootstrapQualifier, app, fmt.Sprintf(
			"%q, the qualifier %q gives the stacks' synthesizer (set one of the two, or both alike): the CI roles must assume the bootstrap roles the stacks deploy with",
			q, CDKBootstrapQualifierContext))
		return
	}
	c.CI.BootstrapQualifier = q
}

// DefaultCDKBootstrapQualifier is the qualifier `cdk bootstrap` uses
// unless told otherwise.
const DefaultCDKBootstrapQualifier = "hnb659fds"

// CIStackProps configures the CI stack.
type CIStackProps struct {
	awscdk.StackProps
	Config CIConfig
}

// CIStack holds the GitHub OIDC provider (unless the account has one) and
// the two roles the workflow assumes.
type CIStack struct {
	awscdk.Stack
	// DiffRole is for `cdk diff` on pull requests: it may assume only the
	// CDK bootstrap lookup role, which reads the deployed templates.
	DiffRole awsiam.Role
	// DeployRole is for `cdk deploy` in the production environment: it may
	// assume the CDK bootstrap roles that publish assets and deploy.
	DeployRole awsiam.Role
}

// NewCIStack creates the CI stack.
//
// Neither role holds any permission on the pipeline's resources: `cdk
// diff` and `cdk deploy` act through the CDK bootstrap roles, which is all
// the roles may assume
// (https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-env.html).
// Each role trusts one subject (sub) of one repository and the audience
// (aud) only: AWS supports none of the custom claims of GitHub's tokens
// (https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws),
// and the environment subject names no branch, so the production
// environment's deployment-branch rule is what limits deploys to main.
func NewCIStack(scope constructs.Construct, id string, props CIStackProps) (*CIStack, error) {
	cfg := props.Config
	if cfg.Repository == "" {
		return nil, fmt.Errorf("context %q: the CI stack needs a GitHub repository \"owner/name\"", KeyGitHubRepository)
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)

	providerARN := jsii.String(cfg.OIDCProviderARN)
	if cfg.OIDCProviderARN == "" {
		provider := awsiam.NewOidcProviderNative(stack, jsii.String("GitHubOidcProvider"), &awsiam.OidcProviderNativeProps{
			Url:       jsii.String("https://" + GitHubOIDCIssuer),
			ClientIds: jsii.Strings(GitHubOIDCAudience),
			// No thumbprints: IAM verifies GitHub's certificate against its
			// own trusted CAs (the CloudFormation property is optional).
		})
		providerARN = provider.OidcProviderArn()
	}

	bootstrapRole := func(kind string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{
			Service:      jsii.String("iam"),
			Region:       jsii.String(""),
			Resource:     jsii.String("role"),
			ResourceName: jsii.String(fmt.Sprintf("cdk-%s-%s-role-%s-%s", cfg.BootstrapQualifier, kind, *stack.Account(), *stack.Region())),
		})
	}
	newRole := func(id, subject, description string, kinds ...string) awsiam.Role {
		role := awsiam.NewRole(stack, jsii.String(id), &awsiam.RoleProps{
			Description: jsii.String(description),
			AssumedBy: awsiam.NewWebIdentityPrincipal(providerARN, &map[string]interface{}{
				"StringEquals": map[string]interface{}{
					GitHubOIDCIssuer + ":aud": GitHubOIDCAudience,
					GitHubOIDCIssuer + ":sub": subject,
				},
			}),
			MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
		})
		resources := make([]*string, len(kinds))
		for i, k := range kinds {
			resources[i] = bootstrapRole(k)
		}
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("sts:AssumeRole"),
			Resources: &resources,
		}))
		return role
	}
	s := &CIStack{Stack: stack}
	s.DiffRole = newRole("DiffRole", cfg.DiffSubject(),
		"GitHub Actions cdk diff on pull requests of "+cfg.Repository+": may assume only the CDK lookup role (read-only).",
		"lookup")
	s.DeployRole = newRole("DeployRole", cfg.DeploySubject(),
		"GitHub Actions cdk deploy from the "+DeployEnvironment+" environment of "+cfg.Repository+": may assume the CDK bootstrap deploy, file-publishing and lookup roles.",
		"deploy", "file-publishing", "lookup")

	repositoryVariable := func(id, variable, description string, value *string) output {
		return output{id, "The " + description + "; set it as the repository variable " + variable + ".", value}
	}
	addOutputs(stack, []output{
		repositoryVariable("DiffRoleArn", "AWS_DIFF_ROLE_ARN", "pull-request diff role", s.DiffRole.RoleArn()),
		repositoryVariable("DeployRoleArn", "AWS_DEPLOY_ROLE_ARN", "production deploy role", s.DeployRole.RoleArn()),
	})
	return s, nil
}
