package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deploy workflow (.github/workflows/pipeline.yml) runs this app with
// AWS credentials; actionlint checks its syntax, these tests its trust
// boundaries.

const workflowFile = "../../.github/workflows/pipeline.yml"

type workflow struct {
	Jobs map[string]workflowJob `yaml:"jobs"`
}

type workflowJob struct {
	If          string            `yaml:"if"`
	Environment any               `yaml:"environment"`
	Permissions map[string]string `yaml:"permissions"`
	Steps       []workflowStep    `yaml:"steps"`
}

type workflowStep struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

func readWorkflow(t *testing.T) (workflow, yaml.Node) {
	t.Helper()
	raw, err := os.ReadFile(workflowFile)
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return wf, doc
}

const credentialsAction = "aws-actions/configure-aws-credentials@"

// credentialsStep returns the index of the job's configure-aws-credentials
// step, or -1.
func (j workflowJob) credentialsStep() int {
	return slices.IndexFunc(j.Steps, func(s workflowStep) bool { return strings.HasPrefix(s.Uses, credentialsAction) })
}

func TestWorkflowDiffAndDeployAssumeTheirOwnRoles(t *testing.T) {
	wf, _ := readWorkflow(t)
	tests := []struct {
		job, role, event string
		environment      any
	}{
		// Pull requests: the read-only diff role, outside any environment.
		{"diff", "${{ vars.AWS_DIFF_ROLE_ARN }}", "github.event_name == 'pull_request'", nil},
		// main: the deploy role, in the environment the role trusts.
		{"deploy", "${{ vars.AWS_DEPLOY_ROLE_ARN }}", "github.ref == 'refs/heads/main'", "production"},
	}
	for _, tt := range tests {
		t.Run(tt.job, func(t *testing.T) {
			job, ok := wf.Jobs[tt.job]
			if !ok {
				t.Fatalf("no %s job", tt.job)
			}
			i := job.credentialsStep()
			if i < 0 {
				t.Fatalf("%s does not configure AWS credentials", tt.job)
			}
			if got := job.Steps[i].With["role-to-assume"]; got != tt.role {
				t.Errorf("%s assumes %q, want %q", tt.job, got, tt.role)
			}
			if !strings.Contains(job.If, tt.event) {
				t.Errorf("%s runs if %q, want it limited to %q", tt.job, job.If, tt.event)
			}
			if job.Environment != tt.environment {
				t.Errorf("%s runs in environment %v, want %v", tt.job, job.Environment, tt.environment)
			}
			if job.Permissions["id-token"] != "write" {
				t.Errorf("%s cannot request an OIDC token: permissions %v", tt.job, job.Permissions)
			}
		})
	}
	if !strings.Contains(wf.Jobs["deploy"].If, "github.event_name != 'pull_request'") {
		t.Errorf("deploy runs if %q; it must never run for a pull request", wf.Jobs["deploy"].If)
	}
	for name, job := range wf.Jobs {
		if name != "diff" && name != "deploy" && (job.credentialsStep() >= 0 || job.Permissions["id-token"] != "") {
			t.Errorf("job %s has AWS credentials or an OIDC token; only diff and deploy may", name)
		}
	}
}

func TestWorkflowInstallsNoPackageScriptsWithCredentials(t *testing.T) {
	wf, _ := readWorkflow(t)
	// What runs npm install scripts: npm ci/install without
	// --ignore-scripts, and make (its deps target runs npm ci).
	npmInstall := regexp.MustCompile(`\bnpm (ci|install|i)\b`)
	for name, job := range wf.Jobs {
		creds := job.credentialsStep()
		if creds < 0 {
			continue
		}
		installed := false
		for i, s := range job.Steps {
			for _, line := range strings.Split(s.Run, "\n") {
				if !npmInstall.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "make") {
					continue
				}
				if i > creds {
					t.Errorf("%s: step %q installs packages after the credentials step: %q", name, s.Name, line)
				}
				if !strings.Contains(line, "--ignore-scripts") {
					t.Errorf("%s: step %q installs packages with their scripts: %q", name, s.Name, line)
				}
				installed = true
			}
		}
		if !installed {
			t.Errorf("%s: no npm ci --ignore-scripts before the credentials step (the CDK CLI comes from package-lock.json)", name)
		}
	}
}

func TestWorkflowPinsEveryActionByCommitWithItsTag(t *testing.T) {
	_, doc := readWorkflow(t)
	pinned := regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$`)
	tag := regexp.MustCompile(`^# v\d+(\.\d+){0,2}$`)
	n := 0
	var walk func(*yaml.Node)
	walk = func(node *yaml.Node) {
		if node.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(node.Content); i += 2 {
				key, value := node.Content[i], node.Content[i+1]
				if key.Value == "uses" && value.Kind == yaml.ScalarNode {
					n++
					if !pinned.MatchString(value.Value) {
						t.Errorf("line %d: uses %q, want owner/repo@<full commit SHA>", value.Line, value.Value)
					}
					if !tag.MatchString(value.LineComment) {
						t.Errorf("line %d: %s has comment %q, want the release tag, e.g. \"# v1.2.3\"", value.Line, value.Value, value.LineComment)
					}
				}
			}
		}
		for _, c := range node.Content {
			walk(c)
		}
	}
	walk(&doc)
	if n == 0 {
		t.Fatal("no actions found")
	}
}

func TestWorkflowRunsNode22OrNewer(t *testing.T) {
	wf, _ := readWorkflow(t)
	for name, job := range wf.Jobs {
		for _, s := range job.Steps {
			if !strings.HasPrefix(s.Uses, "actions/setup-node@") {
				continue
			}
			v := s.With["node-version"]
			major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
			if err != nil || major < 22 {
				t.Errorf("%s: node-version %q; the pinned CDK CLI needs Node 22 or newer", name, v)
			}
		}
	}
}

// Both cdk diff and cdk deploy synthesize with the key users of the
// repository variable ETL_KEY_USERS, so a deploy from CI keeps the
// operators the pipeline key names (and the diff shows what the deploy
// will do); the value reaches the shell as an environment variable, never
// as text spliced into the script.
func TestWorkflowSynthesizesWithTheKeyUsersVariable(t *testing.T) {
	wf, _ := readWorkflow(t)
	for _, c := range []struct{ job, command string }{{"diff", "npx cdk diff"}, {"deploy", "npx cdk deploy"}} {
		job, ok := wf.Jobs[c.job]
		if !ok {
			t.Fatalf("no %s job", c.job)
		}
		i := slices.IndexFunc(job.Steps, func(s workflowStep) bool { return strings.Contains(s.Run, c.command) })
		if i < 0 {
			t.Fatalf("%s: no step runs %s", c.job, c.command)
		}
		step := job.Steps[i]
		if got := step.Env["KEY_USERS"]; got != "${{ vars.ETL_KEY_USERS }}" {
			t.Errorf("%s: KEY_USERS = %q, want the repository variable ETL_KEY_USERS", c.job, got)
		}
		if !strings.Contains(step.Run, `${KEY_USERS:+-c "keyUsers=$KEY_USERS"}`) {
			t.Errorf("%s: %s does not pass keyUsers when it is set:\n%s", c.job, c.command, step.Run)
		}
		if strings.Contains(step.Run, "${{") {
			t.Errorf("%s: the script interpolates an expression:\n%s", c.job, step.Run)
		}
	}
}
