package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// noopDB accepts every write at once, leaving only the handler's own CPU.
type noopDB struct{}

func (noopDB) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, nil
}

func (noopDB) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return &dynamodb.DeleteItemOutput{}, nil
}

// BenchmarkHandle measures the handler's CPU for a 500-record batch:
// decoding, collapsing, building 400 conditional writes and the response.
func BenchmarkHandle(b *testing.B) {
	ev, _ := enrichedBatch(0, 500, 1000, 1772366398000000, order.EnrichedUpsert)
	h := newHandler(b, noopDB{}, &captureDLQ{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		if resp, err := h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("Handle = %v, %v", resp, err)
		}
	}
	cpu = processCPU() - cpu
	b.ReportMetric(float64(len(ev.Records)*b.N)/b.Elapsed().Seconds(), "records/s")
	// CPU time, GC included, per batch: what Lambda bills while the
	// handler works, and robust against other load on the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/batch")
}

// BenchmarkSinkDynalite measures end-to-end throughput into the local
// DynamoDB emulator: every iteration writes a fresh 500-record batch with
// newer versions, so every write is a real conditional put.
func BenchmarkSinkDynalite(b *testing.B) {
	db := dynalite(b)
	h := newHandler(b, db, &captureDLQ{}, func(c *sink.Config) { c.Retry = sink.DefaultRetry })
	ctx := context.Background()
	version := int64(1772366398000000)
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		version += 1000
		ev, _ := enrichedBatch(0, 500, 1000, version, order.EnrichedUpsert)
		b.StartTimer()
		before := processCPU()
		if resp, err := h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("Handle: %d failures, %v", len(resp.BatchItemFailures), err)
		}
		cpu += processCPU() - before
	}
	b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "records/s")
	// This process's CPU (handler and SDK, not the emulator) against the
	// wall time of ns/op: the batch waits on the network far longer than
	// it computes.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/batch")
}
