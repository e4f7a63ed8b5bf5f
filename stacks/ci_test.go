package stacks_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/stacks"
)

// synthCI synthesizes the CI stack alone for a configuration.
func synthCI(t *testing.T, cfg stacks.CIConfig) assertions.Template {
	t.Helper()
	if testing.Short() {
		t.Skip("synthesis takes a while; skipped with -short")
	}
	ctx := cdkContext(t)
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(t.TempDir())})
	stack, err := stacks.NewCIStack(app, stacks.CIStackName, stacks.CIStackProps{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return assertions.Template_FromStack(stack.Stack, nil)
}

// trustOf returns the single statement of a role's trust policy.
func trustOf(t *testing.T, role map[string]any) map[string]any {
	t.Helper()
	doc := props(role)["AssumeRolePolicyDocument"].(map[string]any)
	list := asList(doc["Statement"])
	if len(list) != 1 {
		t.Fatalf("trust policy has %d statements, want 1: %v", len(list), list)
	}
	return list[0].(map[string]any)
}

// assumableRoles returns the roles a role's policies let it assume, as
// flattened ARNs, and fails on any other permission.
func assumableRoles(t *testing.T, tmpl assertions.Template, role string) []string {
	t.Helper()
	var out []string
	for _, st := range iamStatements(tmpl)[logicalID(t, tmpl, "AWS::IAM::Policy", map[string]any{"Roles": []any{ref(role)}})] {
		if st["Effect"] != "Allow" || !slices.Equal(asList(st["Action"]), []any{"sts:AssumeRole"}) {
			t.Errorf("role %s may %v: it may only assume the CDK bootstrap roles", role, st["Action"])
		}
		for _, r := range asList(st["Resource"]) {
			out = append(out, flatten(t, r))
		}
	}
	slices.Sort(out)
	return out
}

func bootstrapRoleARN(qualifier, kind string) string {
	return fmt.Sprintf(`arn:{"Ref":"AWS::Partition"}:iam::{"Ref":"AWS::AccountId"}:role/cdk-%s-%s-role-{"Ref":"AWS::AccountId"}-{"Ref":"AWS::Region"}`, qualifier, kind)
}

func TestCIRolesTrustOnlyTheirRepositorysSubjectAndAssumeOnlyCDKBootstrapRoles(t *testing.T) {
	tests := []struct {
		name      string
		cfg       stacks.CIConfig
		qualifier string
	}{
		{"creates the provider", stacks.CIConfig{Repository: "octo-org/octo-repo", BootstrapQualifier: stacks.DefaultCDKBootstrapQualifier}, "hnb659fds"},
		{"uses the account's provider", stacks.CIConfig{Repository: "octo-org/octo-repo", BootstrapQualifier: "etl2026",
			OIDCProviderARN: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}, "etl2026"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := synthCI(t, tt.cfg)
			providers := resources(tmpl, "AWS::IAM::OIDCProvider", nil)
			var federated any
			if tt.cfg.OIDCProviderARN == "" {
				if len(providers) != 1 {
					t.Fatalf("%d OIDC providers, want 1", len(providers))
				}
				assertProps(t, tmpl, "AWS::IAM::OIDCProvider", map[string]any{
					"Url": "https://token.actions.githubusercontent.com", "ClientIdList": []any{"sts.amazonaws.com"},
				})
				for id := range providers {
					federated = ref(id)
				}
			} else {
				if len(providers) != 0 {
					t.Errorf("%d OIDC providers created besides the account's", len(providers))
				}
				federated = tt.cfg.OIDCProviderARN
			}

			roles := resources(tmpl, "AWS::IAM::Role", nil)
			if len(roles) != 2 {
				t.Fatalf("%d roles, want the diff and the deploy role", len(roles))
			}
			for _, want := range []struct {
				prefix, subject string
				assumes         []string
			}{
				// Pull requests: only the lookup role, which reads the
				// deployed templates for cdk diff.
				{"DiffRole", "repo:octo-org/octo-repo:pull_request", []string{"lookup"}},
				// The production environment: what cdk deploy uses.
				{"DeployRole", "repo:octo-org/octo-repo:environment:production", []string{"deploy", "file-publishing", "lookup"}},
			} {
				var id string
				for rid := range roles {
					if strings.HasPrefix(rid, want.prefix) {
						id = rid
					}
				}
				if id == "" {
					t.Errorf("no %s", want.prefix)
					continue
				}
				trust := trustOf(t, roles[id])
				wantTrust := map[string]any{
					"Effect":    "Allow",
					"Action":    "sts:AssumeRoleWithWebIdentity",
					"Principal": map[string]any{"Federated": federated},
					// StringEquals: one exact subject, no wildcard.
					"Condition": map[string]any{"StringEquals": map[string]any{
						"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
						"token.actions.githubusercontent.com:sub": want.subject,
					}},
				}
				if got, w := mustMarshal(t, trust), mustMarshal(t, wantTrust); got != w {
					t.Errorf("%s trust = %s\nwant %s", want.prefix, got, w)
				}
				var wantARNs []string
				for _, kind := range want.assumes {
					wantARNs = append(wantARNs, bootstrapRoleARN(tt.qualifier, kind))
				}
				slices.Sort(wantARNs)
				if got := assumableRoles(t, tmpl, id); !slices.Equal(got, wantARNs) {
					t.Errorf("%s may assume %v, want %v", want.prefix, got, wantARNs)
				}
				if props(roles[id])["ManagedPolicyArns"] != nil {
					t.Errorf("%s has managed policies %v", want.prefix, props(roles[id])["ManagedPolicyArns"])
				}
			}
			for _, o := range []string{"DiffRoleArn", "DeployRoleArn"} {
				if found := *tmpl.FindOutputs(ptr(o), nil); len(found) != 1 {
					t.Errorf("no output %s (the repository variable's value)", o)
				}
			}
		})
	}
}

func TestCIStackIsCreatedOnlyForAConfiguredRepository(t *testing.T) {
	if s := synth(t, lambdaProcessor); s.pipeline.CI != nil {
		t.Errorf("the default configuration creates %s", stacks.CIStackName)
	}
	s := synth(t, customized)
	if s.pipeline.CI == nil {
		t.Fatalf("githubRepository is set, but there is no %s", stacks.CIStackName)
	}
	if got := *s.pipeline.CI.StackName(); got != stacks.CIStackName {
		t.Errorf("CI stack is named %s, want %s", got, stacks.CIStackName)
	}
	assertProps(t, s.template(stacks.CIStackName), "AWS::IAM::Role", map[string]any{
		"AssumeRolePolicyDocument": map[string]any{"Statement": []any{match(map[string]any{"Condition": map[string]any{"StringEquals": map[string]any{
			"token.actions.githubusercontent.com:sub": "repo:example-org/unified-streaming-etl:environment:production",
		}}})}},
	})
}

func TestLoadConfigValidatesTheCIKeys(t *testing.T) {
	good := map[string]any{
		stacks.KeyGitHubRepository:      "octo-org/octo.repo_2",
		stacks.KeyGitHubOIDCProviderARN: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
		stacks.KeyCDKBootstrapQualifier: "abc123",
	}
	cfg, err := stacks.ConfigFromMap(good)
	if err != nil {
		t.Fatal(err)
	}
	if want := (stacks.CIConfig{Repository: "octo-org/octo.repo_2", OIDCProviderARN: good[stacks.KeyGitHubOIDCProviderARN].(string), BootstrapQualifier: "abc123"}); cfg.CI != want {
		t.Errorf("CI = %+v, want %+v", cfg.CI, want)
	}
	for _, bad := range []map[string]any{
		{stacks.KeyGitHubRepository: "octo-repo"},
		{stacks.KeyGitHubRepository: "octo-org/octo-repo:*"},
		{stacks.KeyGitHubRepository: "octo-org/*"},
		{stacks.KeyGitHubOIDCProviderARN: "arn:aws:iam::123456789012:oidc-provider/example.com"},
		{stacks.KeyCDKBootstrapQualifier: "Has-Dashes"},
		{stacks.KeyCDKBootstrapQualifier: ""},
	} {
		for key, val := range bad {
			_, err := stacks.ConfigFromMap(bad)
			if err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
				t.Errorf("%s=%q: error %v, want one naming the key and the allowed values", key, val, err)
			}
		}
	}
}

// cdkBootstrapQualifier and the CDK's own @aws-cdk/core:bootstrapQualifier
// are one setting: either alone sets the qualifier of the CI roles and of
// the stacks' deployment, and two different ones fail synth naming both.
func TestBootstrapQualifierIsOneSetting(t *testing.T) {
	for _, c := range []struct {
		name        string
		ctx         map[string]any
		ci, synth   string
		errContains []string
	}{
		{"neither", map[string]any{}, stacks.DefaultCDKBootstrapQualifier, "", nil},
		{"the app's alone", map[string]any{stacks.KeyCDKBootstrapQualifier: "etl2026"}, "etl2026", "etl2026", nil},
		{"the app's alone, at the default", map[string]any{stacks.KeyCDKBootstrapQualifier: stacks.DefaultCDKBootstrapQualifier}, stacks.DefaultCDKBootstrapQualifier, "", nil},
		{"the CDK's alone", map[string]any{stacks.CDKBootstrapQualifierContext: "etl2026"}, "etl2026", "", nil},
		{"both alike", map[string]any{stacks.CDKBootstrapQualifierContext: "etl2026", stacks.KeyCDKBootstrapQualifier: "etl2026"}, "etl2026", "", nil},
		{"both different", map[string]any{stacks.CDKBootstrapQualifierContext: "etl2026", stacks.KeyCDKBootstrapQualifier: "other"}, "", "",
			[]string{`context "cdkBootstrapQualifier": got "other", want "etl2026"`, stacks.CDKBootstrapQualifierContext}},
		{"a malformed CDK one", map[string]any{stacks.CDKBootstrapQualifierContext: "Not-Valid"}, "", "",
			[]string{`context "` + stacks.CDKBootstrapQualifierContext + `"`, "1 to 10 lower-case letters or digits"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := stacks.ConfigFromMap(c.ctx)
			if c.errContains != nil {
				if err == nil {
					t.Fatalf("accepted %v", c.ctx)
				}
				for _, want := range c.errContains {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.CI.BootstrapQualifier != c.ci || cfg.SynthesizerQualifier != c.synth {
				t.Errorf("CI roles' qualifier %q and synthesizer's %q, want %q and %q", cfg.CI.BootstrapQualifier, cfg.SynthesizerQualifier, c.ci, c.synth)
			}
		})
	}
}

// With cdkBootstrapQualifier alone, every stack deploys through that
// qualifier's bootstrap roles: its templates check that bootstrap's
// version, and the pipeline key names its CloudFormation execution role
// (keypolicy_test.go).
func TestStacksDeployWithTheConfiguredBootstrapQualifier(t *testing.T) {
	s := synth(t, customized)
	for name, tmpl := range s.templates {
		params, _ := templateJSON(tmpl)["Parameters"].(map[string]any)
		version, _ := params["BootstrapVersion"].(map[string]any)
		if got, want := version["Default"], "/cdk-bootstrap/"+customizedQualifier+"/version"; got != want {
			t.Errorf("%s: BootstrapVersion parameter %v, want %s", name, got, want)
		}
	}
}
