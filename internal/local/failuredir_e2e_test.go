package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/ops"
	"github.com/unified-streaming-etl/etl/internal/poller"
)

// TestGiveUpThenReplayFromTheFailureDirectory makes enrich fail every
// batch holding one order until the mapping gives up on them: each
// given-up batch lands in the failure directory as Lambda's S3
// on-failure record, with its records. Once the cause is removed,
// etl replay's Failures, reading file://DIR, brings OrderEnriched back to
// the source join.
func TestGiveUpThenReplayFromTheFailureDirectory(t *testing.T) {
	const poisoned = "7"
	var broken atomic.Bool
	broken.Store(true)
	p := startPipeline(t, local.Config{
		MaxRetryAttempts: 1, BatchSize: 20,
		WrapHandler: func(function string, h poller.Handler) poller.Handler {
			return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				if broken.Load() {
					for _, r := range ev.Records {
						if r.Kinesis.PartitionKey == poisoned {
							return events.KinesisEventResponse{}, errors.New("injected: order 7 cannot be processed")
						}
					}
				}
				return h(ctx, ev)
			}
		},
	})
	apply(t, p.DB(), newHistory(21, 1, 12).transactions(600), 2)
	// Whatever the history did to it, order 7 ends with rows.
	apply(t, p.DB(), [][]string{{
		"INSERT INTO orders.`order` VALUES (7, 12.50, 'LAST', '2026-01-07 10:00:00.000', 'Name 7', '7 Side St', 'City', 'ST', '00007') " +
			"ON DUPLICATE KEY UPDATE orderStatus = 'LAST'",
		"INSERT INTO orders.order_item VALUES (7, 42, 3, 9.99, 'LAST') ON DUPLICATE KEY UPDATE itemStatus = 'LAST'",
	}}, 1)
	waitIdle(t, p)

	files, err := p.FailureFiles()
	if err != nil || len(files) == 0 {
		t.Fatalf("no on-failure record written (%v) though %d batches were given up", err, len(p.Failures()))
	}
	records := 0
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			RequestContext struct {
				Condition string `json:"condition"`
			} `json:"requestContext"`
			KinesisBatchInfo struct {
				BatchSize int    `json:"batchSize"`
				StreamArn string `json:"streamArn"`
			} `json:"KinesisBatchInfo"`
			Payload events.KinesisEvent `json:"payload"`
		}
		if err := json.Unmarshal(body, &rec); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if rec.RequestContext.Condition != poller.ConditionRetriesExhausted || len(rec.Payload.Records) != rec.KinesisBatchInfo.BatchSize || rec.KinesisBatchInfo.StreamArn == "" {
			t.Errorf("%s: condition %q, %d records in the payload for a batch of %d, stream %q", f, rec.RequestContext.Condition, len(rec.Payload.Records), rec.KinesisBatchInfo.BatchSize, rec.KinesisBatchInfo.StreamArn)
		}
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600: the records hold customers' data", f, fi.Mode(), err)
		}
		records += len(rec.Payload.Records)
	}
	diffs, _, err := p.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) == 0 {
		t.Fatal("OrderEnriched matches the source although order 7's batches were given up; the test proves nothing")
	}

	broken.Store(false)
	r := ops.Replay{Kinesis: p.Kinesis, Stream: local.UnifiedStream}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stats, err := r.Failures(ctx, nil, "file://"+p.FailureDir())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent != records || stats.Objects != len(files) {
		t.Errorf("replay %+v: want %d records from %d files", stats, records, len(files))
	}
	waitIdle(t, p)
	diffs, items, err := p.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("after the replay: %s", d)
	}
	if dl := p.DeadLetters(); len(dl) > 0 {
		t.Errorf("%d dead letters", len(dl))
	}
	t.Logf("%d batches given up, %d on-failure records holding %d records replayed; %d rows", len(p.Failures()), len(files), records, len(items))
}
