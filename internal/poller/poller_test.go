package poller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

type fixture struct {
	client *kinesis.Client
	n      atomic.Int64
}

func (f *fixture) stream(t *testing.T, shards int32) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("s%d", f.n.Add(1))
	if _, err := f.client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	// kinesalite enforces the default account limit of 10 shards.
	t.Cleanup(func() {
		_, _ = f.client.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	w := kinesis.NewStreamExistsWaiter(f.client, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	return name
}

// put writes records "key:i" for i in [from, to) with keys cycling
// through keys; it returns them in put order.
func (f *fixture) put(t *testing.T, stream string, keys, from, to int) []string {
	t.Helper()
	var all []string
	for start := from; start < to; start += 500 {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for i := start; i < min(start+500, to); i++ {
			key := strconv.Itoa(i % keys)
			data := key + ":" + strconv.Itoa(i)
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(data)})
			all = append(all, data)
		}
		out, err := f.client.PutRecords(context.Background(), in)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put: %v", err)
		}
	}
	return all
}

// recorder is a handler that records what it sees.
type recorder struct {
	mu          sync.Mutex
	batches     [][]events.KinesisEventRecord
	seen        []string
	inFlight    int
	maxInFlight int
	fn          func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error)
}

func (r *recorder) handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	r.mu.Lock()
	r.batches = append(r.batches, ev.Records)
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	var resp events.KinesisEventResponse
	var err error
	if r.fn != nil {
		resp, err = r.fn(ctx, ev)
	} else {
		time.Sleep(time.Millisecond) // long enough for lanes to overlap
	}
	if err == nil {
		failed := map[string]bool{}
		low := ""
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
			if low == "" || less(f.ItemIdentifier, low) {
				low = f.ItemIdentifier
			}
		}
		r.mu.Lock()
		for _, rec := range ev.Records {
			if low != "" && !less(rec.Kinesis.SequenceNumber, low) {
				break
			}
			r.seen = append(r.seen, string(rec.Kinesis.Data))
		}
		r.mu.Unlock()
	}
	return resp, err
}

// less compares sequence numbers, which are decimal strings.
func less(a, b string) bool { return len(a) < len(b) || len(a) == len(b) && a < b }

func (r *recorder) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// run starts a poller and returns a stop function that waits for it.
func run(t *testing.T, cfg poller.Config, h poller.Handler) (*poller.Poller, func()) {
	t.Helper()
	p, err := poller.New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("poller: %v", err)
		}
	}
	t.Cleanup(stop)
	return p, stop
}

func waitIdle(t *testing.T, p *poller.Poller) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// perKeyInOrder checks that, for every key, records were first delivered
// in put order and that every put record was delivered.
func perKeyInOrder(t *testing.T, put, delivered []string) {
	t.Helper()
	firstSeen := map[string]int{}
	for i, d := range delivered {
		if _, ok := firstSeen[d]; !ok {
			firstSeen[d] = i
		}
	}
	last := map[string]int{}
	for _, d := range put {
		i, ok := firstSeen[d]
		if !ok {
			t.Fatalf("record %s never delivered", d)
		}
		key := strings.SplitN(d, ":", 2)[0]
		if prev, ok := last[key]; ok && i < prev {
			t.Fatalf("record %s delivered before an earlier record of key %s", d, key)
		}
		last[key] = i
	}
}

func TestPoller(t *testing.T) {
	if testing.Short() {
		t.Skip("poller: needs kinesalite; skipped under -short")
	}
	f := &fixture{client: kinesis.NewFromConfig(local.AWSConfig(testenv.StartKinesalite(t)))}
	fast := func(stream string) poller.Config {
		return poller.Config{
			Function: "enrich", Stream: stream, Kinesis: f.client,
			PollInterval: 20 * time.Millisecond, RetryDelay: 5 * time.Millisecond,
		}
	}

	t.Run("events are built as Lambda builds them", func(t *testing.T) {
		stream := f.stream(t, 1)
		f.put(t, stream, 1, 0, 1)
		var got events.KinesisEventRecord
		var lc *lambdacontext.LambdaContext
		var deadline bool
		r := &recorder{fn: func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			got = ev.Records[0]
			lc, _ = lambdacontext.FromContext(ctx)
			_, deadline = ctx.Deadline()
			return events.KinesisEventResponse{}, nil
		}}
		p, _ := run(t, fast(stream), r.handle)
		waitIdle(t, p)
		k := got.Kinesis
		if got.EventSource != "aws:kinesis" || got.EventName != "aws:kinesis:record" || got.EventVersion != "1.0" ||
			got.EventSourceArn != "arn:aws:kinesis:us-east-1:000000000000:stream/"+stream ||
			got.EventID != "shardId-000000000000:"+k.SequenceNumber || got.AwsRegion != "us-east-1" ||
			string(k.Data) != "0:0" || k.PartitionKey != "0" || k.KinesisSchemaVersion != "1.0" ||
			k.SequenceNumber == "" || time.Since(k.ApproximateArrivalTimestamp.Time) > time.Minute {
			t.Errorf("event record %+v", got)
		}
		if lc == nil || lc.AwsRequestID == "" || !strings.HasSuffix(lc.InvokedFunctionArn, ":function:enrich") || !deadline {
			t.Errorf("lambda context %+v, deadline %v", lc, deadline)
		}
	})

	t.Run("every record is delivered once, in order, in batches of at most BatchSize", func(t *testing.T) {
		stream := f.stream(t, 2)
		put := f.put(t, stream, 50, 0, 1200)
		r := &recorder{}
		cfg := fast(stream)
		cfg.BatchSize = 100
		p, _ := run(t, cfg, r.handle)
		waitIdle(t, p)
		got := r.delivered()
		if len(got) != len(put) {
			t.Fatalf("delivered %d records, want %d", len(got), len(put))
		}
		perKeyInOrder(t, put, got)
		for _, b := range r.batches {
			if len(b) > 100 {
				t.Fatalf("batch of %d records, batch size is 100", len(b))
			}
		}
		if st := p.Stats(); st.Records != 1200 || st.Retries != 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("a parallelization factor runs batches of one shard concurrently but keeps per-key order", func(t *testing.T) {
		stream := f.stream(t, 1)
		put := f.put(t, stream, 40, 0, 2000)
		r := &recorder{}
		cfg := fast(stream)
		cfg.BatchSize = 50
		cfg.ParallelizationFactor = 4
		p, _ := run(t, cfg, r.handle)
		waitIdle(t, p)
		perKeyInOrder(t, put, r.delivered())
		if r.maxInFlight < 2 {
			t.Errorf("at most %d concurrent invocations on one shard, want several", r.maxInFlight)
		}
		for _, b := range r.batches {
			keys := map[string]bool{}
			for _, rec := range b {
				keys[rec.Kinesis.PartitionKey] = true
			}
			if len(keys) > 10+5 {
				t.Fatalf("a batch holds %d keys; lanes should split 40 keys about 4 ways", len(keys))
			}
		}
	})

	t.Run("reported item failures retry from the lowest failed sequence number", func(t *testing.T) {
		stream := f.stream(t, 1)
		put := f.put(t, stream, 1, 0, 20)
		failedOnce := false
		var retryBatch []string
		r := &recorder{}
		r.fn = func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			if !failedOnce && len(ev.Records) > 12 {
				failedOnce = true
				return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{
					{ItemIdentifier: ev.Records[12].Kinesis.SequenceNumber},
					{ItemIdentifier: ev.Records[10].Kinesis.SequenceNumber},
				}}, nil
			}
			if failedOnce && retryBatch == nil {
				for _, rec := range ev.Records {
					retryBatch = append(retryBatch, string(rec.Kinesis.Data))
				}
			}
			return events.KinesisEventResponse{}, nil
		}
		p, _ := run(t, fast(stream), r.handle)
		waitIdle(t, p)
		if !failedOnce {
			t.Fatal("the failing batch never came")
		}
		if retryBatch[0] != put[10] || len(retryBatch) != 10 {
			t.Errorf("retry delivered %v, want the 10 records from %s on", retryBatch, put[10])
		}
		if got := r.delivered(); !slices.Equal(got, put) {
			t.Errorf("handled %v, want each record once: %v", got, put)
		}
		if st := p.Stats(); st.PartialFailures != 1 || st.Retries != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("an unknown item identifier fails the whole batch", func(t *testing.T) {
		stream := f.stream(t, 1)
		f.put(t, stream, 1, 0, 5)
		var sizes []int
		r := &recorder{}
		r.fn = func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			sizes = append(sizes, len(ev.Records))
			if len(sizes) == 1 {
				return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{{ItemIdentifier: ""}}}, nil
			}
			return events.KinesisEventResponse{}, nil
		}
		p, _ := run(t, fast(stream), r.handle)
		waitIdle(t, p)
		if !slices.Equal(sizes, []int{5, 5}) {
			t.Errorf("invocation sizes %v, want the whole batch twice", sizes)
		}
	})

	t.Run("a function error retries the batch, bisected when configured", func(t *testing.T) {
		stream := f.stream(t, 1)
		put := f.put(t, stream, 1, 0, 8)
		var sizes []int
		r := &recorder{}
		r.fn = func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			sizes = append(sizes, len(ev.Records))
			for _, rec := range ev.Records {
				if string(rec.Kinesis.Data) == put[5] && len(ev.Records) > 1 {
					return events.KinesisEventResponse{}, errors.New("boom")
				}
			}
			return events.KinesisEventResponse{}, nil
		}
		cfg := fast(stream)
		cfg.BisectOnError = true
		p, _ := run(t, cfg, r.handle)
		waitIdle(t, p)
		// 8 fails, halves 4 (ok) and 4 (fails), 2 (fails), 1 (ok), 1 (ok), and the other 2 (ok).
		if want := []int{8, 4, 4, 2, 1, 1, 2}; !slices.Equal(sizes, want) {
			t.Errorf("invocation sizes %v, want %v", sizes, want)
		}
		perKeyInOrder(t, put, r.delivered())
	})

	t.Run("a batch that keeps failing becomes an on-failure record and the shard moves on", func(t *testing.T) {
		stream := f.stream(t, 1)
		put := f.put(t, stream, 1, 0, 3)
		var calls atomic.Int64
		r := &recorder{}
		r.fn = func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			calls.Add(1)
			if string(ev.Records[0].Kinesis.Data) == put[0] {
				panic("poison record")
			}
			return events.KinesisEventResponse{}, nil
		}
		var reported []poller.FailureRecord
		cfg := fast(stream)
		cfg.MaxRetryAttempts = 2
		cfg.BatchSize = 1
		cfg.OnFailure = func(fr poller.FailureRecord) { reported = append(reported, fr) }
		p, _ := run(t, cfg, r.handle)
		f.put(t, stream, 1, 3, 4)
		waitIdle(t, p)
		fails := p.Failures()
		if len(fails) != 1 || len(reported) != 1 {
			t.Fatalf("on-failure records %+v", fails)
		}
		fr := fails[0]
		if fr.RequestContext.Condition != poller.ConditionRetriesExhausted || fr.RequestContext.ApproximateInvokeCount != 3 ||
			fr.KinesisBatchInfo.BatchSize != 1 || fr.KinesisBatchInfo.ShardID != "shardId-000000000000" ||
			fr.KinesisBatchInfo.StreamArn != p.StreamARN() || fr.KinesisBatchInfo.StartSequenceNumber == "" ||
			fr.ResponseContext.FunctionError != "Unhandled" || !strings.Contains(fr.Err, "poison record") {
			t.Errorf("on-failure record %+v", fr)
		}
		if got := r.delivered(); !slices.Equal(got, []string{put[1], put[2], "0:3"}) {
			t.Errorf("after giving up, handled %v", got)
		}
		if calls.Load() != 3+3 {
			t.Errorf("%d invocations, want 3 for the poison record and 1 for each other", calls.Load())
		}
	})

	t.Run("a record older than the maximum age is given up on", func(t *testing.T) {
		stream := f.stream(t, 1)
		f.put(t, stream, 1, 0, 1)
		r := &recorder{fn: func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
			return events.KinesisEventResponse{}, errors.New("always")
		}}
		cfg := fast(stream)
		cfg.MaxRetryAttempts = -1
		cfg.MaxRecordAge = 200 * time.Millisecond
		p, _ := run(t, cfg, r.handle)
		waitIdle(t, p)
		if fails := p.Failures(); len(fails) != 1 || fails[0].RequestContext.Condition != poller.ConditionRecordAge {
			t.Errorf("on-failure records %+v", fails)
		}
	})

	t.Run("a new poller resumes after the checkpoint and redelivers what was in flight", func(t *testing.T) {
		stream := f.stream(t, 1)
		put := f.put(t, stream, 1, 0, 30)
		cps := poller.NewCheckpoints()
		release := make(chan struct{})
		first := &recorder{}
		first.fn = func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			if string(ev.Records[0].Kinesis.Data) == put[10] {
				<-ctx.Done() // killed mid-invocation
				return events.KinesisEventResponse{}, ctx.Err()
			}
			return events.KinesisEventResponse{}, nil
		}
		cfg := fast(stream)
		cfg.BatchSize = 10
		cfg.Checkpoints = cps
		_, stop := run(t, cfg, first.handle)
		deadline := time.After(10 * time.Second)
		for len(first.delivered()) < 10 {
			select {
			case <-deadline:
				t.Fatal("first poller did not handle the first batch")
			case <-time.After(10 * time.Millisecond):
			}
		}
		time.Sleep(50 * time.Millisecond) // let it start the batch it will never finish
		stop()
		close(release)
		seq, ok := cps.Get("shardId-000000000000")
		if !ok {
			t.Fatal("no checkpoint after the first batch")
		}

		second := &recorder{}
		p2, _ := run(t, cfg, second.handle)
		waitIdle(t, p2)
		got := second.delivered()
		if !slices.Equal(got, put[10:]) {
			t.Errorf("second poller handled %v, want %v (resuming after %s)", got, put[10:], seq)
		}
	})

	t.Run("idle means every record before the call was handled", func(t *testing.T) {
		stream := f.stream(t, 2)
		gate := make(chan struct{})
		var handled atomic.Int64
		r := &recorder{fn: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			<-gate
			handled.Add(int64(len(ev.Records)))
			return events.KinesisEventResponse{}, nil
		}}
		p, _ := run(t, fast(stream), r.handle)
		waitIdle(t, p) // empty stream: idle at once
		f.put(t, stream, 10, 0, 100)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := p.WaitIdle(ctx); err == nil {
			t.Fatal("idle while the handler is still blocked")
		}
		close(gate)
		waitIdle(t, p)
		if handled.Load() != 100 {
			t.Errorf("idle after %d of 100 records", handled.Load())
		}
	})

	t.Run("after a reshard, a child shard is read only once its parent is finished", func(t *testing.T) {
		stream := f.stream(t, 1)
		ctx := context.Background()
		put := f.put(t, stream, 20, 0, 300)
		if _, err := f.client.SplitShard(ctx, &kinesis.SplitShardInput{
			StreamName: aws.String(stream), ShardToSplit: aws.String("shardId-000000000000"),
			NewStartingHashKey: aws.String("170141183460469231731687303715884105728"), // 2^127
		}); err != nil {
			t.Fatal(err)
		}
		w := kinesis.NewStreamExistsWaiter(f.client, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
		if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, time.Minute); err != nil {
			t.Fatal(err)
		}
		put = append(put, f.put(t, stream, 20, 300, 600)...)
		var mu sync.Mutex
		var order []string
		r := &recorder{fn: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, rec := range ev.Records {
				order = append(order, string(rec.Kinesis.Data))
			}
			return events.KinesisEventResponse{}, nil
		}}
		p, _ := run(t, fast(stream), r.handle)
		waitIdle(t, p)
		perKeyInOrder(t, put, order)
	})

	t.Run("a batching window gathers larger batches", func(t *testing.T) {
		stream := f.stream(t, 1)
		cfg := fast(stream)
		cfg.BatchWindow = 300 * time.Millisecond
		r := &recorder{}
		p, _ := run(t, cfg, r.handle)
		waitIdle(t, p)
		for i := range 5 {
			f.put(t, stream, 1, i*10, i*10+10)
			time.Sleep(30 * time.Millisecond)
		}
		waitIdle(t, p)
		if len(r.batches) != 1 || len(r.batches[0]) != 50 {
			sizes := []int{}
			for _, b := range r.batches {
				sizes = append(sizes, len(b))
			}
			t.Errorf("batch sizes %v, want one batch of 50", sizes)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	h := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}
	base := poller.Config{Stream: "s", Kinesis: &kinesis.Client{}}
	for _, c := range []struct {
		name   string
		mutate func(*poller.Config)
	}{
		{"a parallelization factor above 10 is refused", func(c *poller.Config) { c.ParallelizationFactor = 11 }},
		{"a batch size above 10,000 is refused", func(c *poller.Config) { c.BatchSize = 10001 }},
		{"retry attempts below -1 are refused", func(c *poller.Config) { c.MaxRetryAttempts = -2 }},
		{"a missing stream is refused", func(c *poller.Config) { c.Stream = "" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mutate(&cfg)
			if _, err := poller.New(cfg, h); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// BenchmarkPoller measures records/s delivered from kinesalite to a
// handler that does nothing: the poller's own ceiling against the local
// emulator (2 shards, parallelization factor 5, batches of 500).
func BenchmarkPoller(b *testing.B) {
	if testing.Short() {
		b.Skip("needs kinesalite")
	}
	f := &fixture{client: kinesis.NewFromConfig(local.AWSConfig(testenv.StartKinesalite(b)))}
	stream := f.streamB(b, 2)
	const records = 20000
	f.putB(b, stream, records)
	b.ResetTimer()
	for b.Loop() {
		var handled atomic.Int64
		p, err := poller.New(poller.Config{Stream: stream, Kinesis: f.client, ParallelizationFactor: 5, PollInterval: 10 * time.Millisecond},
			func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				handled.Add(int64(len(ev.Records)))
				return events.KinesisEventResponse{}, nil
			})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(ctx) }()
		for handled.Load() < records {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
	}
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
}

func (f *fixture) streamB(b *testing.B, shards int32) string {
	ctx := context.Background()
	name := "bench"
	if _, err := f.client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		b.Fatal(err)
	}
	w := kinesis.NewStreamExistsWaiter(f.client, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		b.Fatal(err)
	}
	return name
}

func (f *fixture) putB(b *testing.B, stream string, n int) {
	data := []byte(strings.Repeat("x", 300)) // about a DMS record's size
	for start := 0; start < n; start += 500 {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for i := start; i < min(start+500, n); i++ {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(strconv.Itoa(i % 1000)), Data: data})
		}
		if _, err := f.client.PutRecords(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
