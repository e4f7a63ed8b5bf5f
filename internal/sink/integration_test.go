package sink_test

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// dynalite starts a DynamoDB emulator with an OrderEnriched table and
// returns a client without SDK retries, as the Lambda builds it.
func dynalite(t testing.TB) *dynamodb.Client {
	t.Helper()
	db := dynamodb.NewFromConfig(testenv.AWSConfig(t, testenv.StartDynalite(t)), func(o *dynamodb.Options) {
		o.Retryer = aws.NopRetryer{}
	})
	if err := sink.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	return db
}

// scan reads the whole table into Items by key.
func scan(t testing.TB, db *dynamodb.Client) map[itemKey]sink.Item {
	t.Helper()
	out := map[itemKey]sink.Item{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, av := range page.Items {
			it := decodeItem(t, av)
			out[itemKey{it.OrderID, it.ItemID}] = it
		}
	}
	return out
}

// withoutUpdatedAt drops the write time, which a replay refreshes.
func withoutUpdatedAt(items map[itemKey]sink.Item) map[itemKey]order.Enriched {
	out := make(map[itemKey]order.Enriched, len(items))
	for k, it := range items {
		out[k] = it.Enriched
	}
	return out
}

// throttlingDB fails calls with DynamoDB's real throttling exception: the
// first `perKey` calls for each key in `transient`, and every call for keys
// in `always`. Counting per key (not per call in arrival order) keeps a
// transient fault within every key's retry budget however the concurrent
// writers are scheduled: on a loaded machine one writer can otherwise retry
// the same key into a run of throttles the others never see.
type throttlingDB struct {
	sink.DB
	transient map[itemKey]bool
	perKey    int
	always    map[itemKey]bool
	throttled atomic.Int64

	mu    sync.Mutex
	calls map[itemKey]int
}

func (d *throttlingDB) throttle(k map[string]types.AttributeValue) bool {
	key, _ := keyOf(k)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.calls == nil {
		d.calls = map[itemKey]int{}
	}
	d.calls[key]++
	if d.always[key] || (d.transient[key] && d.calls[key] <= d.perKey) {
		d.throttled.Add(1)
		return true
	}
	return false
}

func (d *throttlingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if d.throttle(in.Item) {
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("The level of configured provisioned throughput for the table was exceeded.")}
	}
	return d.DB.PutItem(ctx, in, o...)
}

func (d *throttlingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if d.throttle(in.Key) {
		return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("The level of configured provisioned throughput for the table was exceeded.")}
	}
	return d.DB.DeleteItem(ctx, in, o...)
}

func TestSinkAgainstDynalite(t *testing.T) {
	db := dynalite(t)
	const V = 1772366398000000
	batch, want := enrichedBatch(0, 500, 5000, V, order.EnrichedUpsert)

	t.Run("the table is keyed by orderId and itemId, on demand, and creating it again is harmless", func(t *testing.T) {
		if err := sink.CreateTable(context.Background(), db, table); err != nil {
			t.Fatalf("second CreateTable: %v", err)
		}
		out, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		ks := out.Table.KeySchema
		if len(ks) != 2 || *ks[0].AttributeName != "orderId" || ks[0].KeyType != types.KeyTypeHash || *ks[1].AttributeName != "itemId" || ks[1].KeyType != types.KeyTypeRange {
			t.Errorf("key schema %+v", ks)
		}
		if out.Table.BillingModeSummary == nil || out.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
			t.Errorf("billing mode %+v, want on demand", out.Table.BillingModeSummary)
		}
	})

	t.Run("a 500-record batch lands with exact amounts", func(t *testing.T) {
		resp := handle(t, newHandler(t, db, &captureDLQ{}), batch)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("%d failures", len(got))
		}
		got := withoutUpdatedAt(scan(t, db))
		if len(got) != len(want) {
			t.Fatalf("%d items, want %d", len(got), len(want))
		}
		for k, w := range want {
			if !reflect.DeepEqual(got[k], w) {
				t.Fatalf("item %v =\n%+v\nwant\n%+v", k, got[k], w)
			}
		}
	})

	t.Run("replaying the batch changes nothing", func(t *testing.T) {
		before := withoutUpdatedAt(scan(t, db))
		resp := handle(t, newHandler(t, db, &captureDLQ{}), batch)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("%d failures", len(got))
		}
		if after := withoutUpdatedAt(scan(t, db)); !maps.EqualFunc(before, after, func(a, b order.Enriched) bool { return reflect.DeepEqual(a, b) }) {
			t.Error("replay changed the table")
		}
	})

	t.Run("an older version does not overwrite a newer one", func(t *testing.T) {
		old, _ := enrichedBatch(1000, 30, 5000, V-1_000_000, order.EnrichedUpsert)
		for i := range old.Records { // different content, older versions
			old.Records[i].Kinesis.Data = []byte(replaceStatus(t, old.Records[i].Kinesis.Data, "CANCELLED"))
		}
		before := withoutUpdatedAt(scan(t, db))
		resp := handle(t, newHandler(t, db, &captureDLQ{}), old)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("stale records reported as failures: %v", got)
		}
		if after := withoutUpdatedAt(scan(t, db)); !reflect.DeepEqual(before, after) {
			t.Error("older records overwrote newer items")
		}
	})

	t.Run("a newer version does overwrite", func(t *testing.T) {
		newer, wantNewer := enrichedBatch(2000, 3, 5000, V+1_000_000, order.EnrichedUpsert)
		handle(t, newHandler(t, db, &captureDLQ{}), newer)
		got := withoutUpdatedAt(scan(t, db))
		for k, w := range wantNewer {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("item %v not updated to the newer version", k)
			}
		}
	})

	t.Run("deletes apply, and an older delete leaves a newer item", func(t *testing.T) {
		del, deleted := enrichedBatch(3000, 12, 5010, V+2_000_000, order.EnrichedDelete)
		oldDel, kept := enrichedBatch(3100, 12, 5020, V-2_000_000, order.EnrichedDelete)
		resp := handle(t, newHandler(t, db, &captureDLQ{}), events.KinesisEvent{Records: append(del.Records, oldDel.Records...)})
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("failures %v", got)
		}
		got := scan(t, db)
		for k := range deleted {
			if _, ok := got[k]; ok {
				t.Errorf("item %v survived a newer delete", k)
			}
		}
		for k := range kept {
			if _, ok := got[k]; !ok {
				t.Errorf("item %v removed by an older delete", k)
			}
		}
	})

	t.Run("a malformed record neither blocks the batch nor is lost", func(t *testing.T) {
		good, wantGood := enrichedBatch(4000, 50, 7000, V, order.EnrichedUpsert)
		bad := [][]byte{[]byte(`{"orderId":7000,"itemId":`), []byte(`{"orderId":7000,"itemId":2,"op":"upsert!"}`), []byte(`{"itemId":1}`)}
		recs := slices.Clone(good.Records)
		for i, b := range bad {
			r := good.Records[10*(i+1)]
			r.Kinesis.Data = b
			r.Kinesis.SequenceNumber += "9" // a distinct position in the stream
			recs = slices.Insert(recs, 10*(i+1)+i+1, r)
		}
		dead := &captureDLQ{}
		resp := handle(t, newHandler(t, db, dead), events.KinesisEvent{Records: recs})
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("failures %v", got)
		}
		got := withoutUpdatedAt(scan(t, db))
		for k, w := range wantGood {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("good item %v not written", k)
			}
		}
		if len(dead.msgs) != len(bad) {
			t.Fatalf("%d dead letters, want %d", len(dead.msgs), len(bad))
		}
		for i, m := range dead.msgs {
			if string(m.Data) != string(bad[i]) || m.Reason == "" {
				t.Errorf("dead letter %d = %q (%s), want record %q with a reason", i, m.Data, m.Reason, bad[i])
			}
		}
	})

	t.Run("injected throttling is retried until the writes land", func(t *testing.T) {
		ev, wantEv := enrichedBatch(5000, 100, 9000, V, order.EnrichedUpsert)
		// 20 keys are each throttled on all but their last allowed attempt:
		// every one of them needs the whole retry budget to land.
		tdb := &throttlingDB{DB: db, transient: map[itemKey]bool{}, perKey: fastRetry.MaxAttempts - 1}
		for k := range wantEv {
			if len(tdb.transient) == 20 {
				break
			}
			tdb.transient[k] = true
		}
		resp := handle(t, newHandler(t, tdb, &captureDLQ{}), ev)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("failures %v after transient throttling", got)
		}
		if want := int64(20 * tdb.perKey); tdb.throttled.Load() != want {
			t.Errorf("%d calls throttled, want %d", tdb.throttled.Load(), want)
		}
		got := withoutUpdatedAt(scan(t, db))
		for k, w := range wantEv {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("item %v not written", k)
			}
		}
	})

	t.Run("persistent throttling is reported in batchItemFailures", func(t *testing.T) {
		ev, _ := enrichedBatch(6000, 20, 9500, V, order.EnrichedUpsert)
		// Record 4 updates the key of record 2; both must be reported.
		hot := itemKey{9500, 3}
		tdb := &throttlingDB{DB: db, always: map[itemKey]bool{hot: true}}
		resp := handle(t, newHandler(t, tdb, &captureDLQ{}), ev)
		if got, want := failures(resp), seqs(ev, 2, 4); !slices.Equal(got, want) {
			t.Errorf("failures %v, want %v", got, want)
		}
		got := scan(t, db)
		if _, ok := got[hot]; ok {
			t.Error("throttled key was written")
		}
		if _, ok := got[itemKey{9500, 1}]; !ok {
			t.Error("a key that was not throttled was not written")
		}
	})
}

func replaceStatus(t testing.TB, data []byte, status string) string {
	t.Helper()
	var e order.Enriched
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	e.OrderStatus = &status
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
