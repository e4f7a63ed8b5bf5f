package poller_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

func TestSharedReadsAllowFivePerShardPerSecond(t *testing.T) {
	r := poller.NewSharedReads(poller.ReadsPerShardSecond)
	ctx := context.Background()
	for i := range 5 {
		if !r.Take(ctx, "shard-0") {
			t.Fatalf("read %d refused", i+1)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if r.Take(short, "shard-0") {
		t.Error("a sixth read within the second was allowed")
	}
	if !r.Take(short, "shard-1") {
		t.Error("another shard's budget was spent by shard-0's reads")
	}
}

func TestTimingDelaysDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("poller: needs kinesalite; skipped under -short")
	}
	f := &fixture{client: kinesis.NewFromConfig(local.AWSConfig(testenv.StartKinesalite(t)))}
	for _, tt := range []struct {
		name   string
		timing *poller.Timing
		least  time.Duration
	}{
		{"enhanced fan-out pushes no sooner than its propagation delay", poller.PushTiming(), poller.PushPropagationDelay},
		{"a shared-throughput mapping delivers no sooner than its propagation delay", poller.PollingTiming(poller.NewSharedReads(poller.ReadsPerShardSecond)), poller.SharedPropagationDelay},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stream := f.stream(t, 1)
			var mu sync.Mutex
			var lags []time.Duration
			h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range ev.Records {
					lags = append(lags, time.Since(r.Kinesis.ApproximateArrivalTimestamp.Time))
				}
				return events.KinesisEventResponse{}, nil
			}
			p, _ := run(t, poller.Config{Function: "enrich", Stream: stream, Kinesis: f.client, Timing: tt.timing}, h)
			time.Sleep(300 * time.Millisecond) // the poller is idle
			f.put(t, stream, 3, 0, 20)
			waitIdle(t, p)
			mu.Lock()
			defer mu.Unlock()
			if len(lags) != 20 {
				t.Fatalf("%d records delivered, want 20", len(lags))
			}
			for _, l := range lags {
				if l < tt.least {
					t.Fatalf("a record was delivered %s after its arrival, before the %s propagation delay", l, tt.least)
				}
			}
		})
	}
}
