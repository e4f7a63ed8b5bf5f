package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/ops"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// streamRecords reads every record of the local unified stream, shard by
// shard.
func streamRecords(t *testing.T, p *local.Pipeline) []ktypes.Record {
	t.Helper()
	ctx := context.Background()
	shards, err := p.Kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(local.UnifiedStream)})
	if err != nil {
		t.Fatal(err)
	}
	var out []ktypes.Record
	for _, s := range shards.Shards {
		it, err := p.Kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(local.UnifiedStream), ShardId: s.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			got, err := p.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, got.Records...)
			if len(got.Records) == 0 {
				break
			}
			iter = got.NextShardIterator
		}
	}
	if len(out) == 0 {
		t.Fatal("the unified stream holds no records")
	}
	return out
}

// enrichedRows reads OrderEnriched without the sink's write time, which a
// rewrite of the same row would change.
func enrichedRows(t *testing.T, p *local.Pipeline) []order.Enriched {
	t.Helper()
	items, err := p.Items(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]order.Enriched, len(items))
	for i, it := range items {
		rows[i] = it.Enriched
	}
	return rows
}

func sameRows(t *testing.T, what string, got, want []order.Enriched) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s: OrderEnriched changed:\n got %s\nwant %s", what, g, w)
	}
}

func waitLocal(t *testing.T, p *local.Pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReplayArchiveTwiceChangesNothing writes the local unified stream's
// records as the raw archive does (gzipped, one record a line, a folder per
// hour of arrival), replays the range twice through etl replay, and checks
// that OrderEnriched, versions included, is as before each time.
func TestReplayArchiveTwiceChangesNothing(t *testing.T) {
	p := startLocal(t)
	records := streamRecords(t, p)
	dir := t.TempDir()
	hours := map[string][]string{}
	first := time.Now().UTC()
	for _, r := range records {
		at := aws.ToTime(r.ApproximateArrivalTimestamp).UTC()
		if at.Before(first) {
			first = at
		}
		h := at.Format("2006/01/02/15")
		hours[h] = append(hours[h], string(r.Data))
	}
	for h, lines := range hours {
		path := filepath.Join(dir, filepath.FromSlash(h), "RawArchive-1-"+strings.ReplaceAll(h, "/", "-")+".gz")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, testenv.Gzip(t, lines...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// DMS control records carry no orderId and are not replayed.
	data := 0
	for _, r := range records {
		var rec struct{ Data map[string]any }
		if json.Unmarshal(r.Data, &rec) == nil && rec.Data["orderId"] != nil {
			data++
		}
	}
	before := enrichedRows(t, p)
	since := first.Truncate(time.Hour).Format(time.RFC3339)
	ctx := context.Background()

	code, out, stderr := etlRun(ctx, "replay", "--archive", "file://"+dir, "--since", since, "--stream", local.UnifiedStream, "--dry-run")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Dry run: would send %d records from %d objects (%d skipped)", data, len(hours), len(records)-data)) {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	for round := 1; round <= 2; round++ {
		code, out, stderr := etlRun(ctx, "replay", "--archive", "file://"+dir, "--since", since, "--stream", local.UnifiedStream)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("Sent %d records from %d objects (%d skipped)", data, len(hours), len(records)-data)) {
			t.Fatalf("replay %d: exit %d\n%s\n%s", round, code, out, stderr)
		}
		waitLocal(t, p)
		sameRows(t, fmt.Sprintf("after replay %d", round), enrichedRows(t, p), before)
	}
	if code, out, stderr := etlRun(ctx, "verify", "--table", local.TableName); code != 0 {
		t.Errorf("verify: exit %d\n%s\n%s", code, out, stderr)
	}
	if dl := p.DeadLetters(); len(dl) > 0 {
		t.Errorf("%d dead letters, first: %s", len(dl), dl[0].Reason)
	}
}

// TestReplayFailureRecordsRestoresLostRows deletes rows of OrderEnriched,
// as if the batches that wrote them had been given up, and replays
// on-failure records holding those batches (written as Lambda writes them
// to S3, docs/aws-facts.md §5): the pipeline writes the rows again.
func TestReplayFailureRecordsRestoresLostRows(t *testing.T) {
	p := startLocal(t)
	records := streamRecords(t, p)
	before := enrichedRows(t, p)
	ctx := context.Background()
	arn := "arn:aws:kinesis:" + local.Region + ":000000000000:stream/" + local.UnifiedStream
	dir := t.TempDir()
	for i, batch := range slices.Collect(slices.Chunk(records, 5)) {
		var ev events.KinesisEvent
		for _, r := range batch {
			ev.Records = append(ev.Records, events.KinesisEventRecord{
				EventSource: "aws:kinesis", EventSourceArn: arn, EventName: "aws:kinesis:record", EventVersion: "1.0",
				EventID: "shardId-000000000000:" + aws.ToString(r.SequenceNumber),
				Kinesis: events.KinesisRecord{
					KinesisSchemaVersion: "1.0", PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: aws.ToString(r.SequenceNumber),
					Data: r.Data, ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aws.ToTime(r.ApproximateArrivalTimestamp)},
				},
			})
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		rec := fmt.Sprintf(`{"requestContext":{"requestId":"r%d","functionArn":"arn:aws:lambda:%s:000000000000:function:enrich","condition":"RetryAttemptsExhausted","approximateInvokeCount":11},`+
			`"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"version":"1.0","timestamp":"2026-11-29T10:00:06.021Z",`+
			`"KinesisBatchInfo":{"shardId":"shardId-000000000000","startSequenceNumber":"1","endSequenceNumber":"2","batchSize":%d,"streamArn":%q},"payload":%s}`,
			i, local.Region, len(batch), arn, payload)
		path := filepath.Join(dir, "aws", "lambda", "esm", "shardId-000000000000", "2026", "11", "29", fmt.Sprintf("2026-11-29T10.00.%02d-%d", i%60, i))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range [][2]int64{{1001, 1}, {1004, 108}, {1004, 256}} {
		if _, err := p.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(local.TableName), Key: sink.Key(k[0], k[1])}); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, _ := etlRun(ctx, "verify", "--table", local.TableName); code != 1 {
		t.Fatalf("verify after deleting rows: exit %d", code)
	}
	code, out, stderr := etlRun(ctx, "replay", "--failures", "file://"+dir, "--stream", local.UnifiedStream)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("Sent %d records from", len(records))) {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, stderr)
	}
	waitLocal(t, p)
	sameRows(t, "after the replay", enrichedRows(t, p), before)
	if code, out, stderr := etlRun(ctx, "verify", "--table", local.TableName); code != 0 {
		t.Errorf("verify: exit %d\n%s\n%s", code, out, stderr)
	}
}

func TestReplayUsage(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"replay", "--stream", "s"}, "name one source: --dead-letters QUEUE_URL, --failures URI (or --process-stack " + ops.ProcessStack + " for its failure bucket) or --archive URI"},
		{[]string{"replay", "--stream", "s", "--failures", "file:///x", "--archive", "file:///y"}, "name one source"},
		{[]string{"replay", "--failures", "file:///x"}, "name the stream: --stream NAME, or --common-stack"},
		{[]string{"replay", "--stream", "s", "--archive", "file:///x"}, "--archive needs --since"},
		{[]string{"replay", "--stream", "s", "--failures", "file:///x", "--since", "yesterday"}, "--since: want RFC 3339"},
		{[]string{"replay", "--stream", "s", "--failures", "file:///x", "--since", "2026-11-29", "--until", "2026-11-28"}, "--until must be after --since"},
	} {
		code, _, stderr := etlRun(context.Background(), c.args...)
		if code != 2 || !strings.Contains(stderr, c.stderr) {
			t.Errorf("etl %s: exit %d, stderr:\n%s", strings.Join(c.args, " "), code, stderr)
		}
	}
}

// TestReplayAfterGiveUp makes enrich fail every batch holding a record of
// order 1004 until the mapping gives up, so those batches are lost to
// OrderEnriched; writes the given-up batches as Lambda writes them to an
// S3 on-failure destination (the batch description of the local mapping
// plus its records, read back from the stream); removes the cause and
// replays them: OrderEnriched equals the source join again.
func TestReplayAfterGiveUp(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	p := startLocalWith(t, local.Config{
		// One batch per shard at a time, so a batch is every record of its
		// shard between its first and last sequence numbers.
		BatchSize: 4, MaxRetryAttempts: 1, ParallelizationFactor: 1,
		WrapHandler: func(function string, h poller.Handler) poller.Handler {
			return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				if function == local.EnrichFunction && failing.Load() {
					for _, r := range ev.Records {
						if r.Kinesis.PartitionKey == "1004" {
							return events.KinesisEventResponse{}, errors.New("injected: the cause to be fixed")
						}
					}
				}
				return h(ctx, ev)
			}
		},
	})
	ctx := context.Background()
	failures := p.Failures()
	if len(failures) == 0 {
		t.Fatal("no batch was given up")
	}
	if code, out, _ := etlRun(ctx, "verify", "--table", local.TableName); code != 1 || !strings.Contains(out, "order 1004 item 108") {
		t.Fatalf("verify after the give-up: exit %d\n%s", code, out)
	}

	dir := t.TempDir()
	for i, f := range failures {
		info := f.KinesisBatchInfo
		ev := batchRecords(t, p, info.ShardID, info.StartSequenceNumber, info.EndSequenceNumber)
		if len(ev.Records) != info.BatchSize {
			t.Fatalf("batch %d: read %d records of %d", i, len(ev.Records), info.BatchSize)
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		head, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		rec := append(head[:len(head)-1], []byte(`,"payload":`+string(payload)+`}`)...)
		path := filepath.Join(dir, "aws", "lambda", "esm", info.ShardID, "2026", "11", "29", fmt.Sprintf("2026-11-29T10.00.%02d-%d", i%60, i))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, rec, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	failing.Store(false)
	code, out, stderr := etlRun(ctx, "replay", "--failures", "file://"+dir, "--stream", local.UnifiedStream)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("from %d objects (0 skipped)", len(failures))) {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, stderr)
	}
	waitLocal(t, p)
	if code, out, stderr := etlRun(ctx, "verify", "--table", local.TableName); code != 0 {
		t.Errorf("verify after the replay: exit %d\n%s\n%s", code, out, stderr)
	}
	if dl := p.DeadLetters(); len(dl) > 0 {
		t.Errorf("%d dead letters, first: %s", len(dl), dl[0].Reason)
	}
}

// batchRecords reads the records of a shard from start to end sequence
// number as Lambda hands them to a function.
func batchRecords(t *testing.T, p *local.Pipeline, shard, start, end string) events.KinesisEvent {
	t.Helper()
	ctx := context.Background()
	it, err := p.Kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(local.UnifiedStream), ShardId: aws.String(shard),
		ShardIteratorType: ktypes.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(start),
	})
	if err != nil {
		t.Fatal(err)
	}
	last, ok := new(big.Int).SetString(end, 10)
	if !ok {
		t.Fatalf("end sequence number %q", end)
	}
	var ev events.KinesisEvent
	for iter := it.ShardIterator; iter != nil; {
		got, err := p.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got.Records {
			seq, _ := new(big.Int).SetString(aws.ToString(r.SequenceNumber), 10)
			if seq.Cmp(last) > 0 {
				return ev
			}
			ev.Records = append(ev.Records, events.KinesisEventRecord{
				EventSource: "aws:kinesis", EventName: "aws:kinesis:record", EventVersion: "1.0",
				EventID: shard + ":" + aws.ToString(r.SequenceNumber),
				Kinesis: events.KinesisRecord{
					KinesisSchemaVersion: "1.0", PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: aws.ToString(r.SequenceNumber),
					Data: r.Data, ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: aws.ToTime(r.ApproximateArrivalTimestamp)},
				},
			})
		}
		if len(got.Records) == 0 {
			break
		}
		iter = got.NextShardIterator
	}
	return ev
}

// With --process-stack and no source, replay reads the stack's failure
// bucket (its FailureBucketName output).
func TestReplayDefaultsToTheStacksFailureBucket(t *testing.T) {
	offlineAWS(t, "us-east-1")
	useFakeAWS(t, fakeAWS{
		stacks:  fakeStacks{ops.ProcessStack: {ops.OutputFailureBucketName: "failure-bucket"}},
		objects: fakeObjects{"other-bucket/x.json": []byte("{}")},
	})
	code, stdout, stderr := etlRun(context.Background(), "replay", "--stream", "s", "--process-stack", ops.ProcessStack, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "on-failure records under s3://failure-bucket/ onto s") || !strings.Contains(stdout, "would send 0 records from 0 objects") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
