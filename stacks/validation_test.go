package stacks_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/unified-streaming-etl/etl/stacks"
)

func TestCDKNagAwsSolutionsFindsNoUnsuppressedErrors(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			for _, finding := range s.nag {
				t.Error(finding)
			}
		})
	}
}

// validationReport is the part of the cloud assembly's validation report
// the tests read.
type validationReport struct {
	PluginReports []struct {
		PluginName           string            `json:"pluginName"`
		Conclusion           string            `json:"conclusion"`
		Violations           []json.RawMessage `json:"violations"`
		SuppressedViolations []struct {
			RuleName       string `json:"ruleName"`
			AcknowledgedAt string `json:"acknowledgedAt"`
		} `json:"suppressedViolations"`
	} `json:"pluginReports"`
}

func TestEveryTemplatePassesCloudFormationSchemaValidation(t *testing.T) {
	for _, v := range allVariants {
		t.Run(string(v), func(t *testing.T) {
			s := synth(t, v)
			var report validationReport
			if err := json.Unmarshal(readAssemblyFile(t, s, "validation-report.json"), &report); err != nil {
				t.Fatal(err)
			}
			ran := false
			for _, p := range report.PluginReports {
				if p.PluginName != "CloudFormation Validate" {
					continue
				}
				ran = true
				if p.Conclusion != "success" || len(p.Violations) > 0 {
					t.Errorf("CloudFormation validation: %s with %d violations", p.Conclusion, len(p.Violations))
				}
				for _, sv := range p.SuppressedViolations {
					// The one accepted finding: RDS takes a major engine version.
					if sv.RuleName != "E9006" || sv.AcknowledgedAt != stacks.DataStackName+"/Database" {
						t.Errorf("unexpected acknowledged violation %s at %s", sv.RuleName, sv.AcknowledgedAt)
					}
				}
			}
			if !ran {
				t.Error("CloudFormation validation did not run; is @aws-cdk/core:validateAgainstDefaultRules still set?")
			}
		})
	}
}

// synthError synthesizes an app holding one resource with the given
// properties, under cdk.json's feature flags, and returns the error
// validation report and the error synthesis raised.
func synthError(t *testing.T, typ string, properties map[string]any) (string, error) {
	t.Helper()
	ctx := cdkContext(t)
	outdir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(outdir)})
	stack := awscdk.NewStack(app, jsii.String("Probe"), nil)
	awscdk.NewCfnResource(stack, jsii.String("Probe"), &awscdk.CfnResourceProps{Type: jsii.String(typ), Properties: &properties})
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		app.Synth(nil)
		return nil
	}()
	report, readErr := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
	if readErr != nil && err != nil {
		t.Fatalf("synthesis failed (%v) without a validation report: %v", err, readErr)
	}
	return string(report), err
}

func TestSchemaValidationFailsSynthOnAWrongPropertyNameOrType(t *testing.T) {
	if testing.Short() {
		t.Skip("synthesizes; skipped with -short")
	}
	kinesisTarget := func() map[string]any {
		return map[string]any{
			"EndpointType": "target",
			"EngineName":   "kinesis",
			"KinesisSettings": map[string]any{
				"MessageFormat":             "json",
				"IncludeTransactionDetails": true,
				"StreamArn":                 "arn:aws:kinesis:us-east-1:123456789012:stream/s",
				"ServiceAccessRoleArn":      "arn:aws:iam::123456789012:role/r",
			},
		}
	}
	t.Run("a correct endpoint synthesizes", func(t *testing.T) {
		if _, err := synthError(t, "AWS::DMS::Endpoint", kinesisTarget()); err != nil {
			t.Fatalf("valid template rejected: %v", err)
		}
	})
	tests := []struct {
		name   string
		mutate func(map[string]any)
		want   string
	}{
		{"a misspelled property", func(p map[string]any) {
			p["KinesisSettings"].(map[string]any)["IncludeTransactionDetail"] = true
		}, "IncludeTransactionDetail"},
		{"a property of the wrong type", func(p map[string]any) {
			p["KinesisSettings"].(map[string]any)["IncludeTransactionDetails"] = map[string]any{"yes": 1}
		}, "IncludeTransactionDetails"},
		{"a missing required property", func(p map[string]any) {
			delete(p, "EngineName")
		}, "EngineName"},
	}
	t.Run("synth fails on a value outside the allowed set", func(t *testing.T) {
		report, err := synthError(t, "AWS::RDS::DBInstance", map[string]any{
			"Engine": "mysql", "EngineVersion": "5.1.73", "DBInstanceClass": "db.t4g.small", "AllocatedStorage": "20",
		})
		if err == nil {
			t.Fatal("synthesis accepted MySQL 5.1.73")
		}
		if !strings.Contains(report, "5.1.73") {
			t.Errorf("the validation report does not name the value:\n%s", report)
		}
	})
	for _, tt := range tests {
		t.Run("synth fails on "+tt.name, func(t *testing.T) {
			p := kinesisTarget()
			tt.mutate(p)
			report, err := synthError(t, "AWS::DMS::Endpoint", p)
			if err == nil {
				t.Fatal("synthesis accepted the invalid template")
			}
			if !strings.Contains(err.Error(), "Validation failed") {
				t.Errorf("synthesis failed for another reason: %v", err)
			}
			if !strings.Contains(report, tt.want) {
				t.Errorf("the validation report does not name %s:\n%s", tt.want, report)
			}
		})
	}
}
