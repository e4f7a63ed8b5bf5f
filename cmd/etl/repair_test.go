package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// startLocal runs a local pipeline holding the sample data, with the
// environment etl local --keep-running prints, so that the operator
// commands reach it as they would a deployed pipeline.
func startLocal(t *testing.T) *local.Pipeline { t.Helper(); return startLocalWith(t, local.Config{}) }

func startLocalWith(t *testing.T, cfg local.Config) *local.Pipeline {
	t.Helper()
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg.Root = testenv.RepoRoot(t)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	p, err := local.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if _, err := p.RunSQL(ctx, filepath.Join(p.Root(), "sql", "orders-data-setup.sql")); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	offlineAWS(t, local.Region)
	for _, v := range localEnvironment(p.Endpoints()) {
		t.Setenv(v.name, v.value)
	}
	return p
}

// etlRun runs etl in-process and returns its exit code and output.
func etlRun(ctx context.Context, args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := run(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

// TestRepairFixesATamperedTable deletes, changes and adds rows of
// OrderEnriched behind the pipeline's back, then runs etl repair against
// the running local pipeline: the pipeline itself brings the table back to
// the source join, and etl verify exits 0.
func TestRepairFixesATamperedTable(t *testing.T) {
	p := startLocal(t)
	ctx := context.Background()
	ddb := p.DynamoDB
	table := aws.String(local.TableName)

	// Deleted: an item of order 1001 and both items of order 1006.
	for _, k := range [][2]int64{{1001, 2}, {1006, 777}, {1006, 808}} {
		if _, err := ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: sink.Key(k[0], k[1])}); err != nil {
			t.Fatal(err)
		}
	}
	// Changed: a quantity and a status.
	for _, u := range []struct {
		order, item int64
		set         string
		value       types.AttributeValue
	}{
		{1003, 17, "itemQuantity", &types.AttributeValueMemberN{Value: "5"}},
		{1004, 256, "orderStatus", &types.AttributeValueMemberS{Value: "LOST"}},
	} {
		_, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: table, Key: sink.Key(u.order, u.item),
			UpdateExpression:          aws.String("SET #a = :v"),
			ExpressionAttributeNames:  map[string]string{"#a": u.set},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": u.value},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Added: an item the order does not have, and one of an order the
	// source does not have, as copies of a real row (its version too).
	got, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: sink.Key(1002, 3), ConsistentRead: aws.Bool(true)})
	if err != nil || got.Item == nil {
		t.Fatalf("read order 1002 item 3: %v", err)
	}
	for _, k := range [][2]int64{{1002, 4}, {5555, 1}} {
		item := map[string]types.AttributeValue{}
		for name, v := range got.Item {
			item[name] = v
		}
		for name, v := range sink.Key(k[0], k[1]) {
			item[name] = v
		}
		if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item}); err != nil {
			t.Fatal(err)
		}
	}

	code, out, stderr := etlRun(ctx, "verify", "--table", local.TableName)
	if code != 1 || !strings.Contains(out, "DIFFERENT: OrderEnriched (11 items) differs from the join of the source tables (12 rows) in 7 rows.") {
		t.Fatalf("verify before the repair: exit %d\n%s\n%s", code, out, stderr)
	}

	code, out, stderr = etlRun(ctx, "repair", "--table", local.TableName, "--stream", local.UnifiedStream, "--wait", "2m", "--interval", "200ms")
	if code != 0 {
		t.Fatalf("repair: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"Stream:   " + local.UnifiedStream,
		"Sent 6 orders: 5 order and 9 item load records, 2 item deletes, at version ",
		"  orders 1001, 1002, 1003, 1004, 1006, 5555\n",
		"  delete order 1002 item 4 (not in the source)\n",
		"  delete order 5555 item 1 (not in the source)\n",
		"OK: OrderEnriched matches the join of the source tables (12 rows)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("repair output lacks %q:\n%s", want, out)
		}
	}

	code, out, stderr = etlRun(ctx, "verify", "--table", local.TableName)
	if code != 0 {
		t.Errorf("verify after the repair: exit %d\n%s\n%s", code, out, stderr)
	}
	if dl := p.DeadLetters(); len(dl) > 0 {
		t.Errorf("%d dead letters, first: %s: %s", len(dl), dl[0].Reason, dl[0].Data)
	}

	t.Run("a repair of a matching table sends nothing", func(t *testing.T) {
		code, out, stderr := etlRun(ctx, "verify", "--repair", "--table", local.TableName, "--stream", local.UnifiedStream)
		if code != 0 || strings.Contains(out, "Sent ") || !strings.Contains(out, "OK: OrderEnriched matches") {
			t.Errorf("exit %d\n%s\n%s", code, out, stderr)
		}
	})
}

func TestRepairUsage(t *testing.T) {
	t.Setenv(envDSN, "")
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"repair", "--dsn", "root@tcp(h)/", "--table", "T"}, "name the stream to repair through: --stream NAME, or --common-stack"},
		{[]string{"verify", "--repair", "--dsn", "root@tcp(h)/", "--table", "T"}, "name the stream to repair through"},
		{[]string{"verify", "--dsn", "root@tcp(h)/", "--table", "T", "--stream", "s"}, "--stream and --common-stack are for --repair"},
		{[]string{"repair", "--dsn", "root@tcp(h)/", "--table", "T", "--stream", "s", "--range", "0"}, "--range must be positive"},
	} {
		code, _, stderr := etlRun(context.Background(), c.args...)
		if code != 2 || !strings.Contains(stderr, c.stderr) {
			t.Errorf("etl %s: exit %d, stderr:\n%s", strings.Join(c.args, " "), code, stderr)
		}
	}
}
