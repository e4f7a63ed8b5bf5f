package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/lambdatest"
)

const functionName = "UnifiedStreamETLDataStack-SchemaSetup"

// TestBootstrapAnswersTheProviderFramework runs the deployed binary with a
// request that needs no database (Delete keeps the schema): it proves the
// wiring from main to the Provider framework's answer shape.
func TestBootstrapAnswersTheProviderFramework(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	onDelete, err := os.ReadFile(filepath.Join("testdata", "ondelete.json"))
	if err != nil {
		t.Fatal(err)
	}
	api := lambdatest.NewRuntimeAPI(t, functionName)
	api.Invoke(onDelete)
	fn := lambdatest.Start(t, bin, api, functionName)
	deleted := api.Next(t, fn)

	t.Run("a Delete keeps the physical resource ID and hands isComplete an input", func(t *testing.T) {
		var got struct {
			PhysicalResourceID string          `json:"PhysicalResourceId"`
			IsCompleteInput    json.RawMessage `json:"IsCompleteInput"`
		}
		if deleted.Kind != "response" || json.Unmarshal(deleted.Body, &got) != nil {
			t.Fatalf("answered %s %q; output:\n%s", deleted.Kind, deleted.Body, fn.Output())
		}
		if got.PhysicalResourceID != "2c8e1f3a-7b6d-4e5f-9a0b-1c2d3e4f5a6b" || string(got.IsCompleteInput) != "{}" {
			t.Errorf("answered %s", deleted.Body)
		}
	})
	t.Run("logs are JSON lines tagged with the request", func(t *testing.T) {
		const want = `"logicalResourceId":"OrdersSchema"`
		if out := fn.WaitForOutputContaining(want); !strings.Contains(out, want) {
			t.Errorf("no JSON log line names the resource; output:\n%s", out)
		}
	})
}

func TestBootstrapFailsInitWithoutAnAWSConfiguration(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	api := lambdatest.NewRuntimeAPI(t, functionName)
	fn := lambdatest.Start(t, bin, api, functionName, "AWS_PROFILE=no-such-profile")
	if err := fn.Wait(t); err == nil {
		t.Fatalf("the function kept running; output:\n%s", fn.Output())
	}
	if !strings.Contains(fn.Output(), "schema-setup: cannot load the AWS configuration") {
		t.Errorf("the log does not say why; output:\n%s", fn.Output())
	}
}
