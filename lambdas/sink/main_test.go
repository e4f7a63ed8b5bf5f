package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/lambdatest"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

func TestBootstrapAnswersTheRuntimeAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and starts dynalite")
	}
	bin := lambdatest.Build(t, ".")
	endpoint := testenv.StartDynalite(t)
	db := dynamodb.NewFromConfig(testenv.AWSConfig(t, endpoint))
	ctx := context.Background()
	if err := sink.CreateTable(ctx, db, "OrderEnriched"); err != nil {
		t.Fatal(err)
	}

	event, err := os.ReadFile(filepath.Join("..", "..", "internal", "sink", "testdata", "go-processor.json"))
	if err != nil {
		t.Fatal(err)
	}
	malformed, err := os.ReadFile(filepath.Join("..", "..", "internal", "sink", "testdata", "malformed.json"))
	if err != nil {
		t.Fatal(err)
	}
	api := lambdatest.NewRuntimeAPI(t, "UnifiedStreamETL-sink")
	api.Invoke(event)
	api.Invoke(malformed)
	fn := lambdatest.Start(t, bin, api, "UnifiedStreamETL-sink",
		"AWS_ENDPOINT_URL_DYNAMODB="+endpoint, "TABLE_NAME=OrderEnriched")
	answers := []lambdatest.Answer{api.Next(t, fn), api.Next(t, fn)}

	t.Run("answers with an empty batchItemFailures list", func(t *testing.T) {
		for _, a := range answers {
			if a.Kind != "response" || string(a.Body) != `{"batchItemFailures":[]}` {
				t.Errorf("%s answered %s %q", a.RequestID, a.Kind, a.Body)
			}
		}
	})

	t.Run("writes the items to the table named by TABLE_NAME", func(t *testing.T) {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("OrderEnriched"), Key: sink.Key(1001, 23), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		it, err := sink.DecodeItem(out.Item)
		if err != nil {
			t.Fatal(err)
		}
		if it.ItemAmount.String() != "93.98" || *it.OrderStatus != "SHIPPED" {
			t.Errorf("item = %+v", it.Enriched)
		}
	})

	t.Run("logs bad records as JSON with the reason when no DLQ is set", func(t *testing.T) {
		found := func(out string) bool {
			for _, line := range strings.Split(out, "\n") {
				var entry map[string]any
				if json.Unmarshal([]byte(line), &entry) != nil {
					continue
				}
				if entry["message"] == "dead letter (no DLQ configured)" && strings.Contains(fmt.Sprint(entry["reason"]), "missing itemId") {
					return entry["requestId"] != nil && entry["source"] == "UnifiedStreamETL-sink"
				}
			}
			return false
		}
		out := fn.WaitForOutput(found)
		if !found(out) {
			t.Errorf("no JSON dead-letter log line with the reason, request id and function name:\n%s", out)
		}
	})
}

func TestBootstrapWithoutTableNameFailsInit(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	api := lambdatest.NewRuntimeAPI(t, "UnifiedStreamETL-sink")
	fn := lambdatest.Start(t, bin, api, "UnifiedStreamETL-sink")
	if err := fn.Wait(t); err == nil {
		t.Fatal("the function started without TABLE_NAME")
	}
	if !strings.Contains(fn.Output(), "TABLE_NAME") {
		t.Errorf("output does not name the missing variable:\n%s", fn.Output())
	}
}
