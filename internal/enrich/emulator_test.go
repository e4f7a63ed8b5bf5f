package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// emulators are a dynalite holding the state table and a kinesalite
// holding the enriched stream, with SDK clients for both.
type emulators struct {
	db     *dynamodb.Client
	kin    *kinesis.Client
	table  string
	stream string
}

// harnessRetries and harnessKinesisRetries make a test's own calls to the
// emulators (expiring state, reading the outcome) retry what the SDK
// retries, as a default client does. The clients the handlers get make one
// attempt, so that the faults the tests inject reach the handlers, and the
// emulators sometimes reset a connection: a harness call that failed on
// that would fail the test for nothing the handlers did.
func harnessRetries(o *dynamodb.Options) { o.RetryMaxAttempts = 5 }

func harnessKinesisRetries(o *kinesis.Options) { o.RetryMaxAttempts = 5 }

func startEmulators(t testing.TB, shards int32) *emulators {
	t.Helper()
	ddbURL, kinURL := testenv.StartDynalite(t), testenv.StartKinesalite(t)
	e := &emulators{
		db:     dynamodb.NewFromConfig(testenv.AWSConfig(t, ddbURL), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }),
		kin:    kinesis.NewFromConfig(testenv.AWSConfig(t, kinURL), func(o *kinesis.Options) { o.RetryMaxAttempts = 1 }),
		table:  "EnrichState",
		stream: "order-item-enriched",
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := CreateStateTable(ctx, e.db, e.table); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &e.stream, ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	w := kinesis.NewStreamExistsWaiter(e.kin, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: &e.stream}, time.Minute); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *emulators) handler(t testing.TB, dead *fakeDLQ) *Handler {
	t.Helper()
	path, err := filepath.Abs("testdata/products.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	products, err := NewReference("file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{StateTable: e.table, OutputStream: e.stream, Source: "enrich-test"},
		Deps{DB: e.db, Stream: e.kin, Products: products, DLQ: dead})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// streamRecord is one record read back from the enriched stream.
type streamRecord struct {
	shard, key string
	data       []byte
}

// readStream reads every record of every shard from the start.
func (e *emulators) readStream(t testing.TB) []streamRecord {
	t.Helper()
	ctx := context.Background()
	shards, err := e.kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &e.stream}, harnessKinesisRetries)
	if err != nil {
		t.Fatal(err)
	}
	var out []streamRecord
	for _, sh := range shards.Shards {
		it, err := e.kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: &e.stream, ShardId: sh.ShardId, ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon,
		}, harnessKinesisRetries)
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			recs, err := e.kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter}, harnessKinesisRetries)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs.Records {
				out = append(out, streamRecord{shard: *sh.ShardId, key: *r.PartitionKey, data: r.Data})
			}
			// kinesalite answers an empty page once the shard is read.
			if len(recs.Records) == 0 {
				break
			}
			iter = recs.NextShardIterator
		}
	}
	return out
}

func TestHandlerAgainstEmulators(t *testing.T) {
	e := startEmulators(t, 2)
	dead := &fakeDLQ{}
	h := e.handler(t, dead)
	ctx := context.Background()

	first := loadEvent(t, "kinesis-event.json")
	s := newSource()
	s.clock = time.Date(2024, 3, 18, 9, 50, 0, 0, time.UTC)
	second := event(s.order("insert", 1003, "NEW"), s.item("delete", 1002, 977, 2))
	for i, ev := range []events.KinesisEvent{first, second} {
		resp, err := h.Handle(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("batch %d: failures %v, error %v", i+1, seqs(resp), err)
		}
	}

	recs := e.readStream(t)
	t.Run("the stream holds every emitted row once, keyed by orderId", func(t *testing.T) {
		var got []string
		for _, r := range recs {
			var row order.Enriched
			if err := json.Unmarshal(r.data, &row); err != nil {
				t.Fatal(err)
			}
			if r.key != fmt.Sprint(row.OrderID) {
				t.Errorf("row %d/%d has partition key %q", row.OrderID, row.ItemID, r.key)
			}
			product := "none"
			if row.ProductName != nil {
				product = *row.ProductName
			}
			if row.IsDelete() {
				got = append(got, fmt.Sprintf("delete %d/%d", row.OrderID, row.ItemID))
			} else {
				got = append(got, fmt.Sprintf("upsert %d/%d %s qty=%d amount=%s product=%s",
					row.OrderID, row.ItemID, *row.OrderStatus, *row.ItemQuantity, row.ItemAmount, product))
			}
		}
		slices.Sort(got)
		want := []string{
			"delete 1002/977",
			"upsert 1002/42 SHIPPED qty=3 amount=59.97 product=Ergonomic Steel Lamp",
			"upsert 1002/977 SHIPPED qty=2 amount=21.25 product=none",
			"upsert 1003/7 NEW qty=1 amount=472.59 product=Handcrafted Marble Kettle",
		}
		if !slices.Equal(got, want) {
			t.Errorf("stream rows\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	})
	t.Run("rows of one order share a shard", func(t *testing.T) {
		shardOf := map[string]string{}
		for _, r := range recs {
			if s, ok := shardOf[r.key]; ok && s != r.shard {
				t.Errorf("order %s is on %s and %s", r.key, s, r.shard)
			}
			shardOf[r.key] = r.shard
		}
	})
	t.Run("the state table holds the order's rows, the deleted item as a tombstone", func(t *testing.T) {
		out, err := e.db.Query(ctx, &dynamodb.QueryInput{
			TableName: &e.table, KeyConditionExpression: aws.String("pk = :pk"), ConsistentRead: aws.Bool(true),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: "1002"}},
		}, harnessRetries)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, item := range out.Items {
			r, err := decodeRow(item)
			if err != nil {
				t.Fatal(err)
			}
			deleted := (r.order != nil && r.order.Deleted) || (r.item != nil && r.item.Deleted)
			got = append(got, fmt.Sprintf("%s deleted=%v", r.sk, deleted))
		}
		want := []string{"item#42 deleted=false", "item#977 deleted=true", "order deleted=false"}
		if !slices.Equal(got, want) {
			t.Errorf("state rows %v, want %v", got, want)
		}
	})
	t.Run("the malformed record reached the dead-letter queue", func(t *testing.T) {
		if len(dead.msgs) != 1 {
			t.Errorf("dead letters %d, want 1", len(dead.msgs))
		}
	})
	t.Run("creating the state table again is harmless", func(t *testing.T) {
		if err := CreateStateTable(ctx, e.db, e.table); err != nil {
			t.Error(err)
		}
	})
}
