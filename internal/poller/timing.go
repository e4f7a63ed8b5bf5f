package poller

import (
	"context"
	"sync"
	"time"
)

// Timing makes a poller deliver records when a Lambda event source mapping
// would in AWS (docs/aws-facts.md §5.1), instead of as soon as the
// emulator has them. Latencies measured with it compare delivery shapes;
// they are not predictions of AWS figures.
type Timing struct {
	// Push models an enhanced fan-out consumer: records are pushed to the
	// mapping, with no polling cadence and no shared read limit.
	Push bool
	// PropagationDelay is the least time from a record's arrival in the
	// stream to its delivery: about 200 ms for a shared-throughput
	// consumer, about 70 ms for enhanced fan-out.
	PropagationDelay time.Duration
	// IdlePollInterval is how long a polling mapping waits after a poll
	// that found nothing: Lambda polls an idle shard once a second.
	IdlePollInterval time.Duration
	// Reads is the shard's GetRecords budget, shared by every
	// shared-throughput consumer of the stream; nil: no shared limit.
	Reads *SharedReads
}

// Documented delivery figures (docs/aws-facts.md §5.1).
const (
	// SharedPropagationDelay: a shared-throughput consumer's average
	// propagation delay with one consumer on the stream.
	// https://docs.aws.amazon.com/streams/latest/dev/enhanced-consumers.html
	SharedPropagationDelay = 200 * time.Millisecond
	// PushPropagationDelay: an enhanced fan-out consumer's.
	// https://docs.aws.amazon.com/streams/latest/dev/enhanced-consumers.html
	PushPropagationDelay = 70 * time.Millisecond
	// LambdaIdlePollInterval: Lambda polls each shard at a base rate of
	// once per second.
	// https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
	LambdaIdlePollInterval = time.Second
	// ReadsPerShardSecond: GetRecords calls a shard serves per second,
	// across all its shared-throughput consumers.
	// https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
	ReadsPerShardSecond = 5
	// pushPollInterval is how often the model looks for records to push;
	// small against the propagation delay.
	pushPollInterval = 10 * time.Millisecond
)

// PollingTiming is a shared-throughput (standard iterator) mapping reading
// a stream whose shards' reads are budgeted by reads.
func PollingTiming(reads *SharedReads) *Timing {
	return &Timing{PropagationDelay: SharedPropagationDelay, IdlePollInterval: LambdaIdlePollInterval, Reads: reads}
}

// PushTiming is a mapping on an enhanced fan-out consumer.
func PushTiming() *Timing {
	return &Timing{Push: true, PropagationDelay: PushPropagationDelay}
}

// SharedReads is the GetRecords budget of each shard of one stream
// (ReadsPerShardSecond calls in any second), which all shared-throughput
// consumers of the stream draw from.
type SharedReads struct {
	perSecond int
	mu        sync.Mutex
	recent    map[string][]time.Time // shard → times of its last reads
}

// NewSharedReads returns a budget of perSecond reads per shard per second.
func NewSharedReads(perSecond int) *SharedReads {
	return &SharedReads{perSecond: max(perSecond, 1), recent: map[string][]time.Time{}}
}

// Take blocks until shard has a read left in the last second and spends
// it. It returns false if ctx ended first.
func (r *SharedReads) Take(ctx context.Context, shard string) bool {
	for {
		r.mu.Lock()
		now := time.Now()
		times := r.recent[shard]
		for len(times) > 0 && now.Sub(times[0]) >= time.Second {
			times = times[1:]
		}
		if len(times) < r.perSecond {
			r.recent[shard] = append(times, now)
			r.mu.Unlock()
			return true
		}
		wait := times[0].Add(time.Second).Sub(now)
		r.recent[shard] = times
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// Consume spends one read per second on each of shards until ctx ends: a
// consumer that reads the stream without being modelled otherwise, such
// as the Firehose archive (docs/aws-facts.md §5.1).
func (r *SharedReads) Consume(ctx context.Context, shards []string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, s := range shards {
			if !r.Take(ctx, s) {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
