package stacks_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/unified-streaming-etl/etl/internal/lambdabuild"
	"github.com/unified-streaming-etl/etl/stacks"
)

// The Go CDK runs in a jsii node process; its banner about the Node version
// is noise in test output.
func TestMain(m *testing.M) {
	for _, k := range []string{
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION",
		"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION",
		"JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION",
	} {
		if os.Getenv(k) == "" {
			os.Setenv(k, nodeMajorVersion())
		}
	}
	code := m.Run()
	jsii.Close()
	for _, dir := range tempDirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// tempDirs are the directories synthesis created, removed after the tests.
var tempDirs []string

func mkdirTemp(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err == nil {
		tempDirs = append(tempDirs, dir)
	}
	return dir, err
}

// nodeMajorVersion is the major version of the node jsii will run, which
// is what the silencing variables must name.
func nodeMajorVersion() string {
	out, err := exec.Command("node", "-p", "process.versions.node.split('.')[0]").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// cdkContext returns the "context" object of the repository's cdk.json:
// the configuration defaults and feature flags `cdk synth` uses.
func cdkContext(t testing.TB) map[string]any {
	t.Helper()
	ctx, err := readCDKContext()
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func readCDKContext() (map[string]any, error) {
	raw, err := os.ReadFile("../cdk.json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("cdk.json: %w", err)
	}
	return doc.Context, nil
}

// synthesized is one synthesis of the whole app.
type synthesized struct {
	cfg       stacks.Config
	pipeline  *stacks.Pipeline
	templates map[string]assertions.Template // by stack name
	outdir    string                         // the cloud assembly
	nag       []string                       // unsuppressed cdk-nag errors
	warnings  []string                       // all warning annotations
	err       error
}

// variant is a configuration the tests synthesize: cdk.json's context with
// some keys overridden.
type variant string

const (
	lambdaProcessor variant = "processor=lambda (the default)"
	// customized changes every default that alters the templates' shape.
	customized variant = "non-default settings"
	// upgradingRoles is the one deploy that upgrades a data stack whose
	// template declared the DMS service roles.
	upgradingRoles variant = "retainLegacyDmsRoles=true"
)

var variantContext = map[variant]map[string]any{
	lambdaProcessor: {},
	upgradingRoles:  {stacks.KeyRetainLegacyDMSRoles: true},
	customized: {
		stacks.KeyEnrichedStream:             true,
		stacks.KeyConsumer:                   string(stacks.ConsumerEFO),
		stacks.KeyUnifiedStreamShards:        "on-demand",
		stacks.KeyEnrichedStreamShards:       "4",
		stacks.KeyDBEngineVersion:            "8.0",
		stacks.KeyDBInstanceClass:            "db.r6g.large",
		stacks.KeyDBMultiAZ:                  true,
		stacks.KeyDBDeletionProtection:       true,
		stacks.KeyDMSEngineVersion:           "3.5.4",
		stacks.KeyDynamoBilling:              "provisioned",
		stacks.KeyCreateDMSServiceRoles:      false,
		stacks.KeyBatchSize:                  float64(100),
		stacks.KeyParallelization:            float64(2),
		stacks.KeyJoinStateTombstoneDays:     float64(30),
		stacks.KeyLogRetentionDays:           float64(90),
		stacks.KeyVPCCIDR:                    "172.20.0.0/20",
		stacks.KeyDataLake:                   false,
		stacks.KeyAlarmEmail:                 "ops@example.com",
		stacks.KeyAlarmIteratorAgeSeconds:    float64(120),
		stacks.KeyAlarmDMSLatencySeconds:     float64(600),
		stacks.KeyAlarmLambdaErrors:          float64(5),
		stacks.KeyAlarmThrottles:             float64(10),
		stacks.KeyAlarmDurationPercent:       float64(90),
		stacks.KeyAlarmDynamoCapacityPercent: float64(70),
		stacks.KeyGitHubRepository:           "example-org/unified-streaming-etl",
		stacks.KeyKeyUsers:                   customizedKeyUser,
		stacks.KeyCDKBootstrapQualifier:      customizedQualifier,
	},
}

// customizedKeyUser is the operator role the customized variant lets use
// the pipeline key.
const customizedKeyUser = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataOps_*"

// customizedQualifier is the customized variant's CDK bootstrap qualifier.
const customizedQualifier = "etl2026"

var (
	synthMu sync.Mutex
	synths  = map[variant]*synthesized{}
)

// synth synthesizes the app for a variant once per test binary, with the
// cdk-nag AwsSolutions pack applied, and shares the result.
func synth(t *testing.T, v variant) *synthesized {
	t.Helper()
	if testing.Short() {
		t.Skip("synthesis takes a while; skipped with -short")
	}
	synthMu.Lock()
	s, done := synths[v]
	if !done {
		s = doSynth(v)
		synths[v] = s
	}
	synthMu.Unlock()
	if s.err != nil {
		t.Fatalf("synthesis of %s failed: %v", v, s.err)
	}
	return s
}

func doSynth(v variant) (s *synthesized) {
	s = &synthesized{templates: map[string]assertions.Template{}}
	defer func() {
		if r := recover(); r != nil {
			s.err = fmt.Errorf("%v%s", r, reportViolations(s.outdir))
		}
	}()
	ctx, err := readCDKContext()
	if err != nil {
		s.err = err
		return s
	}
	for k, val := range variantContext[v] {
		ctx[k] = val
	}
	outdir, err := mkdirTemp("cdk.out-")
	if err != nil {
		s.err = err
		return s
	}
	s.outdir = outdir
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(outdir)})
	cfg, err := stacks.LoadConfig(app)
	if err != nil {
		s.err = err
		return s
	}
	s.cfg = cfg
	lambdaDir, err := fakeFunctions()
	if err != nil {
		s.err = err
		return s
	}
	s.pipeline, err = stacks.NewPipeline(app, cfg, stacks.Inputs{
		LambdaDir:        lambdaDir,
		ReferenceDataDir: "../reference-data",
		RootDir:          "..",
		RDSCAPackageDir:  "../" + stacks.RDSCAPackageDir,
	}, nil)
	if err != nil {
		s.err = err
		return s
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)

	all := []awscdk.Stack{s.pipeline.Common.Stack, s.pipeline.Data.Stack, s.pipeline.Process.Stack}
	if s.pipeline.CI != nil {
		all = append(all, s.pipeline.CI.Stack)
	}
	for _, stack := range all {
		s.templates[*stack.StackName()] = assertions.Template_FromStack(stack, nil)
	}
	s.nag, s.warnings, s.err = annotations(outdir)
	sort.Strings(s.nag)
	return s
}

// annotations reads the error and warning annotations of every stack from
// the cloud assembly (each stack's additional metadata file): the
// unsuppressed cdk-nag errors and all warnings.
func annotations(outdir string) (nag, warnings []string, err error) {
	raw, err := os.ReadFile(filepath.Join(outdir, "manifest.json"))
	if err != nil {
		return nil, nil, err
	}
	var manifest struct {
		Artifacts map[string]struct {
			Type                   string   `json:"type"`
			AdditionalMetadataFile string   `json:"additionalMetadataFile"`
			Metadata               metadata `json:"metadata"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, nil, fmt.Errorf("manifest.json: %w", err)
	}
	for name, artifact := range manifest.Artifacts {
		if artifact.Type != "aws:cloudformation:stack" {
			continue
		}
		all := metadata{}
		for path, entries := range artifact.Metadata {
			all[path] = append(all[path], entries...)
		}
		if artifact.AdditionalMetadataFile != "" {
			raw, err := os.ReadFile(filepath.Join(outdir, artifact.AdditionalMetadataFile))
			if err != nil {
				return nil, nil, err
			}
			var more metadata
			if err := json.Unmarshal(raw, &more); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", artifact.AdditionalMetadataFile, err)
			}
			for path, entries := range more {
				all[path] = append(all[path], entries...)
			}
		}
		if len(all) == 0 {
			return nil, nil, fmt.Errorf("no metadata for stack %s", name)
		}
		for path, entries := range all {
			for _, e := range entries {
				msg := fmt.Sprintf("%s: %v", path, e.Data)
				switch e.Type {
				case "aws:cdk:error":
					if strings.HasPrefix(fmt.Sprint(e.Data), "AwsSolutions-") {
						nag = append(nag, msg)
					}
				case "aws:cdk:warning":
					warnings = append(warnings, msg)
				}
			}
		}
	}
	sort.Strings(nag)
	sort.Strings(warnings)
	return nag, warnings, nil
}

// metadata is a stack's construct metadata by construct path.
type metadata map[string][]struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// reportViolations summarizes the violations of a failed synthesis's
// validation report (cdk-nag errors and template schema findings), which
// the panic message only points to.
func reportViolations(outdir string) string {
	raw, err := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
	if err != nil {
		return ""
	}
	var report struct {
		PluginReports []struct {
			PluginName string `json:"pluginName"`
			Violations []struct {
				RuleName            string `json:"ruleName"`
				Description         string `json:"description"`
				Severity            string `json:"severity"`
				ViolatingConstructs []struct {
					ConstructPath string `json:"constructPath"`
				} `json:"violatingConstructs"`
			} `json:"violations"`
		} `json:"pluginReports"`
	}
	if json.Unmarshal(raw, &report) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range report.PluginReports {
		for _, v := range p.Violations {
			if v.Severity == "warning" {
				continue
			}
			for _, c := range v.ViolatingConstructs {
				fmt.Fprintf(&b, "\n%s %s at %s: %.200s", p.PluginName, v.RuleName, c.ConstructPath, v.Description)
			}
		}
	}
	return b.String()
}

// fakeFunctions stands in for the built Lambda binaries, one for each
// function of the module (lambdas/<name>, kda/lambdas/<name>): the
// templates do not depend on their content, and building them is cmd/cdk's
// job (tested in internal/lambdabuild).
func fakeFunctions() (string, error) {
	dir, err := mkdirTemp("lambdas-")
	if err != nil {
		return "", err
	}
	names, err := lambdabuild.Functions("..")
	if err != nil {
		return "", err
	}
	for _, name := range names {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name, "bootstrap"), []byte("test stand-in for "+name), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// assertProps checks that a resource of type typ has properties matching
// props (deep partial match), reporting a mismatch as a test error.
func assertProps(t *testing.T, tmpl assertions.Template, typ string, props map[string]any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("no %s with the expected properties:\n%v", typ, r)
		}
	}()
	tmpl.HasResourceProperties(jsii.String(typ), assertions.Match_ObjectLike(&props))
}

// assertResource checks a resource's whole definition (Properties,
// DeletionPolicy, DependsOn ...) partially.
func assertResource(t *testing.T, tmpl assertions.Template, typ string, def map[string]any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("no %s with the expected definition:\n%v", typ, r)
		}
	}()
	tmpl.HasResource(jsii.String(typ), assertions.Match_ObjectLike(&def))
}

// resources returns the resources of type typ whose properties match props.
func resources(tmpl assertions.Template, typ string, props map[string]any) map[string]map[string]any {
	var match interface{}
	if props != nil {
		match = map[string]any{"Properties": assertions.Match_ObjectLike(&props)}
	}
	found := tmpl.FindResources(jsii.String(typ), match)
	out := map[string]map[string]any{}
	for id, r := range *found {
		out[id] = *r
	}
	return out
}
