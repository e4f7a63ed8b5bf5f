package testenv_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/unified-streaming-etl/etl/internal/testenv"
)

func TestRepoRootHoldsGoMod(t *testing.T) {
	root := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot %s: %v", root, err)
	}
}

func TestEmulatorsAnswerTheSDK(t *testing.T) {
	ctx := context.Background()
	t.Run("dynalite serves DynamoDB API calls", func(t *testing.T) {
		db := dynamodb.NewFromConfig(testenv.AWSConfig(t, testenv.StartDynalite(t)))
		if _, err := db.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("kinesalite serves Kinesis API calls", func(t *testing.T) {
		ks := kinesis.NewFromConfig(testenv.AWSConfig(t, testenv.StartKinesalite(t)))
		if _, err := ks.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
			t.Fatal(err)
		}
	})
}
