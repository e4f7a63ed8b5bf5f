package enrich

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/unified-streaming-etl/etl/internal/order"
)

// loadBatch is a full-load batch as DMS writes it: orders, each followed
// by its items; 100 orders of 4 items make the default batch of 500.
func loadBatch(s *source, firstOrder int64, orders, items int) events.KinesisEvent {
	var ev events.KinesisEvent
	for o := range int64(orders) {
		id := firstOrder + o
		ev.Records = append(ev.Records, s.order(order.OpLoad, id, "PENDING"))
		for i := range int64(items) {
			ev.Records = append(ev.Records, s.item(order.OpLoad, id, 1+(id*7+i)%60, i+1))
		}
	}
	return ev
}

// nopDB and nopStream answer at once, so the benchmark measures the
// handler's own CPU: decoding, grouping, joining, encoding.
type nopDB struct{}

func (nopDB) BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return &dynamodb.BatchGetItemOutput{}, nil
}

func (nopDB) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return &dynamodb.QueryOutput{}, nil
}

func (nopDB) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return &dynamodb.BatchWriteItemOutput{}, nil
}

type nopStream struct{}

func (nopStream) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0), Records: make([]kintypes.PutRecordsResultEntry, len(in.Records))}, nil
}

func (nopDB) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, nil
}

func (nopDB) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return &dynamodb.DeleteItemOutput{}, nil
}

// BenchmarkHandleCPU is the original shape (enrich publishes to the
// enriched stream); BenchmarkHandleCPUOneHop the default one (enrich writes
// OrderEnriched itself, one conditional write per row).
func BenchmarkHandleCPU(b *testing.B) {
	benchmarkHandleCPU(b, Config{StateTable: "EnrichState", OutputStream: "order-item-enriched", Logger: discardLogger()})
}

func BenchmarkHandleCPUOneHop(b *testing.B) {
	benchmarkHandleCPU(b, Config{StateTable: "EnrichState", OutputTable: "OrderEnriched", Logger: discardLogger()})
}

func benchmarkHandleCPU(b *testing.B, cfg Config) {
	h, err := New(cfg, Deps{DB: nopDB{}, Stream: nopStream{}, Table: nopDB{}, Products: testProducts, DLQ: &fakeDLQ{}})
	if err != nil {
		b.Fatal(err)
	}
	ev := loadBatch(newSource(), 1, 100, 4)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if resp, err := h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatalf("failures %v, error %v", seqs(resp), err)
		}
	}
	b.ReportMetric(float64(b.N*len(ev.Records))/time.Since(start).Seconds(), "records/s")
}

func BenchmarkHandleEmulators(b *testing.B) {
	e := startEmulators(b, 4)
	h, err := New(Config{StateTable: e.table, OutputStream: e.stream, Logger: discardLogger()},
		Deps{DB: e.db, Stream: e.kin, Products: testProducts, DLQ: &fakeDLQ{}})
	if err != nil {
		b.Fatal(err)
	}
	s := newSource()
	ctx := context.Background()
	next := int64(1)
	records := 0
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		// Fresh orders every time, so state grows as in a real load.
		ev := loadBatch(s, next, 100, 4)
		next += 100
		if resp, err := h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatalf("failures %v, error %v", seqs(resp), err)
		}
		records += len(ev.Records)
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
}
