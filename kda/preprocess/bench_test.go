package preprocess_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unified-streaming-etl/etl/internal/cdc/cdctest"
	"github.com/unified-streaming-etl/etl/kda/preprocess"
)

const batchSize = 500

// benchEvent is a 500-record preprocessing event of realistic DMS records,
// as a value and as the JSON payload the Lambda runtime receives.
func benchEvent(b *testing.B) (preprocess.Event, []byte) {
	ev := preprocess.Event{
		InvocationID:   "d5a1b2c3-0e4f-4a6b-9c8d-7e6f5a4b3c2d",
		ApplicationARN: "arn:aws:kinesisanalytics:us-east-1:123456789012:application/UnifiedOrderEnrichment",
		StreamARN:      "arn:aws:kinesis:us-east-1:123456789012:stream/UnifiedOrderStream",
	}
	for i, data := range cdctest.Records(batchSize) {
		seq := fmt.Sprintf("4965008358143214569236821364087328734981723123098%07d", i)
		ev.Records = append(ev.Records, preprocess.EventRecord{
			RecordID: seq,
			Data:     data,
			KinesisStreamRecordMetadata: &preprocess.KinesisStreamRecordMetadata{
				ShardID: "shardId-000000000002", PartitionKey: fmt.Sprint(1001 + i/4), SequenceNumber: seq,
				ApproximateArrivalTimestamp: "1710755103412",
			},
		})
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	return ev, payload
}

func quietHandler() *preprocess.Handler {
	return preprocess.New(slog.New(slog.NewJSONHandler(io.Discard, nil)))
}

func reportRecords(b *testing.B) {
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPreprocess runs a 500-record event through the handler.
func BenchmarkPreprocess(b *testing.B) {
	ev, _ := benchEvent(b)
	h := quietHandler()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.Handle(context.Background(), ev)
		if err != nil || resp.Records[batchSize-1].Result != preprocess.ResultOk {
			b.Fatal(err, resp.Records[batchSize-1])
		}
	}
	reportRecords(b)
}

// BenchmarkPreprocessInvoke is a whole invocation as the runtime makes it:
// reading the event (base64 included), preprocessing, writing the response.
func BenchmarkPreprocessInvoke(b *testing.B) {
	_, payload := benchEvent(b)
	h := lambda.NewHandler(quietHandler())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Invoke(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b)
}

// BenchmarkPreprocessInvokeEncodingJSON is the same invocation with the
// event and response going through encoding/json (a typed handler), which
// Invoke avoids.
func BenchmarkPreprocessInvokeEncodingJSON(b *testing.B) {
	_, payload := benchEvent(b)
	h := lambda.NewHandler(quietHandler().Handle)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Invoke(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b)
}

// BenchmarkPreprocessNaiveMap is the baseline of docs/design.md §9: the same event
// with each record going through a map[string]any round trip (unmarshal,
// reshape into a flat map, marshal).
func BenchmarkPreprocessNaiveMap(b *testing.B) {
	ev, _ := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		resp := preprocess.Response{Records: make([]preprocess.ResponseRecord, len(ev.Records))}
		for i, r := range ev.Records {
			flat, err := cdctest.NaiveFlat(r.Data)
			if err != nil {
				b.Fatal(err)
			}
			resp.Records[i] = preprocess.ResponseRecord{RecordID: r.RecordID, Result: preprocess.ResultOk, Data: flat}
		}
	}
	reportRecords(b)
}
