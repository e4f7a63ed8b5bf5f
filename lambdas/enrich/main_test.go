package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/lambdatest"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

const (
	stateTable   = "EnrichState"
	outputTable  = "OrderEnriched"
	outputStream = "order-item-enriched"
)

// TestBootstrapJoinsARealEvent runs the deployed binary against the
// emulators, configured as with enrichedStream=true: a Kinesis event of DMS
// records in, enriched rows in OrderEnriched and on the output stream, and
// an empty batchItemFailures list out.
func TestBootstrapJoinsARealEvent(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	ddbURL, kinURL := testenv.StartDynalite(t), testenv.StartKinesalite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ddb := dynamodb.NewFromConfig(testenv.AWSConfig(t, ddbURL))
	if err := enrich.CreateStateTable(ctx, ddb, stateTable); err != nil {
		t.Fatal(err)
	}
	if err := sink.CreateTable(ctx, ddb, outputTable); err != nil {
		t.Fatal(err)
	}
	kin := kinesis.NewFromConfig(testenv.AWSConfig(t, kinURL))
	if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(outputStream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	exists := kinesis.NewStreamExistsWaiter(kin, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := exists.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(outputStream)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	products, err := filepath.Abs("../../internal/enrich/testdata/products.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile("../../internal/enrich/testdata/kinesis-event.json")
	if err != nil {
		t.Fatal(err)
	}

	api := lambdatest.NewRuntimeAPI(t, "UnifiedStreamETL-enrich")
	api.Invoke(event)
	fn := lambdatest.Start(t, bin, api, "UnifiedStreamETL-enrich",
		"AWS_ENDPOINT_URL_DYNAMODB="+ddbURL, "AWS_ENDPOINT_URL_KINESIS="+kinURL,
		"STATE_TABLE="+stateTable, "OUTPUT_TABLE="+outputTable, "OUTPUT_STREAM="+outputStream, "SOURCE_STREAM=unified-order-stream", "REFERENCE_DATA_URI=file://"+products)
	answer := api.Next(t, fn)

	t.Run("answers with an empty batchItemFailures list", func(t *testing.T) {
		if answer.Kind != "response" || string(answer.Body) != `{"batchItemFailures":[]}` {
			t.Fatalf("answered %s %q; output:\n%s", answer.Kind, answer.Body, fn.Output())
		}
	})
	t.Run("puts the enriched rows on OUTPUT_STREAM keyed by orderId", func(t *testing.T) {
		want := golden(t)
		got := readStream(ctx, t, kin)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("stream holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("writes the same rows to OUTPUT_TABLE", func(t *testing.T) {
		var want []string
		for _, line := range golden(t) {
			want = append(want, line[strings.IndexByte(line, ' ')+1:])
		}
		out, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(outputTable)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, av := range out.Items {
			it, err := sink.DecodeItem(av)
			if err != nil {
				t.Fatal(err)
			}
			it.Op = order.EnrichedUpsert
			b, err := json.Marshal(&it.Enriched)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, canonical(t, b))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("table holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestBootstrapWithoutReferenceDataFailsInit(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	api := lambdatest.NewRuntimeAPI(t, "UnifiedStreamETL-enrich")
	fn := lambdatest.Start(t, bin, api, "UnifiedStreamETL-enrich",
		"STATE_TABLE="+stateTable, "OUTPUT_TABLE="+outputTable, "SOURCE_STREAM=unified-order-stream", "REFERENCE_DATA_URI=file:///nonexistent/products.json")
	if err := fn.Wait(t); err == nil {
		t.Fatal("the function started without its reference data")
	}
	if !strings.Contains(fn.Output(), "products.json") {
		t.Errorf("output does not name the missing reference data:\n%s", fn.Output())
	}
}

func TestBootstrapWithAnEmptyCatalogueFailsInit(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	empty := filepath.Join(t.TempDir(), "products.json")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	api := lambdatest.NewRuntimeAPI(t, "UnifiedStreamETL-enrich")
	fn := lambdatest.Start(t, bin, api, "UnifiedStreamETL-enrich",
		"STATE_TABLE="+stateTable, "OUTPUT_TABLE="+outputTable, "SOURCE_STREAM=unified-order-stream", "REFERENCE_DATA_URI=file://"+empty)
	if err := fn.Wait(t); err == nil {
		t.Fatal("the function started with an empty catalogue")
	}
	if out := fn.Output(); !strings.Contains(out, "file://"+empty) || !strings.Contains(out, "no products") {
		t.Errorf("output does not name the empty catalogue:\n%s", out)
	}
}

// golden returns the expected records as "partitionKey data" lines with
// data in canonical JSON.
func golden(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../internal/enrich/testdata/kinesis-event.want.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var rec struct {
			PartitionKey string          `json:"partitionKey"`
			Data         json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, rec.PartitionKey+" "+canonical(t, rec.Data))
	}
	return lines
}

func readStream(ctx context.Context, t *testing.T, kin *kinesis.Client) []string {
	t.Helper()
	shards, err := kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(outputStream)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, sh := range shards.Shards {
		it, err := kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(outputStream), ShardId: sh.ShardId, ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Records {
			lines = append(lines, aws.ToString(r.PartitionKey)+" "+canonical(t, r.Data))
		}
	}
	return lines
}

func canonical(t *testing.T, data []byte) string {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
