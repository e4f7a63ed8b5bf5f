package binlog

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/unified-streaming-etl/etl/internal/retry"
)

// Kinesis is the part of the Kinesis API the reader uses.
type Kinesis interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Kinesis PutRecords limits (docs/aws-facts.md §6).
const (
	maxBatchRecords = 500
	maxBatchBytes   = 5 << 20
	maxRecordBytes  = 1 << 20
)

// callTimeout bounds one Kinesis call.
const callTimeout = 30 * time.Second

// entry is one record queued for Kinesis. n numbers records in the order
// the reader produced them.
type entry struct {
	n    uint64
	key  string
	data []byte
}

// writer ships records to Kinesis with one lane per open shard. A lane
// has at most one PutRecords call in flight, and every partition key maps
// to exactly one lane, so records of one key reach their shard in the
// order the reader produced them. Lanes run concurrently, which is where
// the throughput comes from.
type writer struct {
	api    Kinesis
	stream string
	policy retry.Policy
	lanes  []*lane
	bounds []*big.Int // bounds[i] is the last hash key of lane i's shard, ascending

	mu      sync.Mutex
	pending [][]uint64 // per lane: numbers of queued, unacknowledged records
	next    uint64     // number of the next record
	changed chan struct{}

	puts    atomic.Int64
	retries atomic.Int64
	failed  chan error
}

type lane struct {
	ch chan entry
}

// laneQueue bounds what the reader may run ahead of Kinesis, per lane.
const laneQueue = 4 * maxBatchRecords

func newWriter(ctx context.Context, api Kinesis, stream string, policy retry.Policy) (*writer, error) {
	shards, err := listOpenShards(ctx, api, stream, policy)
	if err != nil {
		return nil, err
	}
	w := &writer{
		api:     api,
		stream:  stream,
		policy:  policy,
		pending: make([][]uint64, len(shards)),
		changed: make(chan struct{}),
		failed:  make(chan error, 1),
	}
	for _, s := range shards {
		end, ok := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		if !ok {
			return nil, fmt.Errorf("kinesis: shard %s has ending hash key %q", aws.ToString(s.ShardId), aws.ToString(s.HashKeyRange.EndingHashKey))
		}
		w.bounds = append(w.bounds, end)
		w.lanes = append(w.lanes, &lane{ch: make(chan entry, laneQueue)})
	}
	return w, nil
}

// listOpenShards returns the stream's open shards ordered by hash range.
// Each page is retried under policy, as PutRecords is: a throttled or
// failed ListShards at start must not stop the reader.
func listOpenShards(ctx context.Context, api Kinesis, stream string, policy retry.Policy) ([]types.Shard, error) {
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		var out *kinesis.ListShardsOutput
		err := policy.Do(ctx, func(context.Context) error {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
			defer cancel()
			var err error
			out, err = api.ListShards(cctx, in)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("kinesis: list shards of %s: %w", stream, err)
		}
		for _, s := range out.Shards {
			if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
				shards = append(shards, s)
			}
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("kinesis: stream %s has no open shard", stream)
	}
	hashStart := func(s types.Shard) *big.Int {
		v, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		if v == nil {
			v = new(big.Int)
		}
		return v
	}
	slices.SortFunc(shards, func(a, b types.Shard) int { return hashStart(a).Cmp(hashStart(b)) })
	return shards, nil
}

// laneOf maps a partition key to its shard's lane the way Kinesis maps it
// to a shard: the MD5 of the key as a 128-bit integer, within the shard's
// hash key range.
func (w *writer) laneOf(key string) int {
	sum := md5.Sum([]byte(key))
	h := new(big.Int).SetBytes(sum[:])
	for i, end := range w.bounds {
		if h.Cmp(end) <= 0 {
			return i
		}
	}
	return len(w.bounds) - 1
}

// run starts the lanes; they stop when ctx ends. The first lane error
// (a call that failed after every retry) is sent on w.failed.
func (w *writer) run(ctx context.Context, wg *sync.WaitGroup) {
	for i := range w.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.runLane(ctx, i); err != nil && ctx.Err() == nil {
				select {
				case w.failed <- err:
				default:
				}
			}
		}()
	}
}

// enqueue queues one record; it blocks while the record's lane is full.
// Only the reader's goroutine calls it: record numbers follow its order.
func (w *writer) enqueue(ctx context.Context, key string, data []byte) error {
	if size := len(key) + len(data); size > maxRecordBytes {
		return fmt.Errorf("kinesis: record of %d bytes for key %q exceeds the 1 MiB record limit", size, key)
	}
	i := w.laneOf(key)
	w.mu.Lock()
	e := entry{n: w.next, key: key, data: data}
	w.next++
	w.pending[i] = append(w.pending[i], e.n)
	w.mu.Unlock()
	select {
	case w.lanes[i].ch <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// issued returns the number of records enqueued so far: a later shipped()
// of at least this value means all of them reached Kinesis.
func (w *writer) issued() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// shipped returns the count of leading records that Kinesis has accepted:
// every record numbered below it is in the stream. It also returns a
// channel that is closed at the next change.
func (w *writer) shipped() (uint64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	low := w.next
	for _, p := range w.pending {
		if len(p) > 0 && p[0] < low {
			low = p[0]
		}
	}
	return low, w.changed
}

func (w *writer) ack(lane, n int) {
	w.mu.Lock()
	w.pending[lane] = w.pending[lane][n:]
	if len(w.pending[lane]) == 0 {
		w.pending[lane] = nil // let the backing array go
	}
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

func (w *writer) runLane(ctx context.Context, i int) error {
	ch := w.lanes[i].ch
	var carry *entry
	batch := make([]entry, 0, maxBatchRecords)
	for {
		batch = batch[:0]
		size := 0
		if carry != nil {
			batch, size = append(batch, *carry), len(carry.key)+len(carry.data)
			carry = nil
		} else {
			select {
			case e := <-ch:
				batch, size = append(batch, e), len(e.key)+len(e.data)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Whatever queued up while the previous call was in flight goes in
		// this one: batches grow with load, and an idle lane sends at once.
	drain:
		for len(batch) < maxBatchRecords {
			select {
			case e := <-ch:
				if size+len(e.key)+len(e.data) > maxBatchBytes {
					carry = &e
					break drain
				}
				batch, size = append(batch, e), size+len(e.key)+len(e.data)
			default:
				break drain
			}
		}
		if err := w.put(ctx, batch); err != nil {
			return err
		}
		w.ack(i, len(batch))
	}
}

// put writes batch with PutRecords until every entry is accepted. When
// some entries fail, the retry carries each failed entry and every later
// entry of the same partition key, even those that were accepted: the
// last copy of every key in the stream is then still the newest record,
// which is what the consumers' version checks rely on (a duplicate is
// harmless to them; a stale record last would not be).
func (w *writer) put(ctx context.Context, batch []entry) error {
	pending := slices.Clone(batch)
	in := &kinesis.PutRecordsInput{StreamName: aws.String(w.stream)}
	return w.policy.Do(ctx, func(ctx context.Context) error {
		in.Records = in.Records[:0]
		for _, e := range pending {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: e.data, PartitionKey: aws.String(e.key)})
		}
		w.puts.Add(1)
		// A call in flight is let finish even when the reader stops: the
		// local emulators do not survive a request dropped mid-way.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		out, err := w.api.PutRecords(cctx, in)
		cancel()
		if err != nil {
			w.retries.Add(1)
			return fmt.Errorf("kinesis: put %d records to %s: %w", len(pending), w.stream, err)
		}
		if aws.ToInt32(out.FailedRecordCount) == 0 {
			return nil
		}
		if len(out.Records) != len(pending) {
			return fmt.Errorf("kinesis: put %d records to %s: response has %d results", len(pending), w.stream, len(out.Records))
		}
		failedKeys := map[string]bool{}
		var code, msg string
		next := pending[:0:0]
		for j, r := range out.Records {
			e := pending[j]
			if r.ErrorCode != nil {
				failedKeys[e.key] = true
				code, msg = aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage)
			}
			if failedKeys[e.key] {
				next = append(next, e)
			}
		}
		pending = next
		w.retries.Add(1)
		return &partialFailure{count: int(aws.ToInt32(out.FailedRecordCount)), code: code, msg: msg}
	})
}

// partialFailure is a PutRecords call that failed some entries. Entry
// errors are throttling (ProvisionedThroughputExceededException) or
// internal failures, both worth retrying.
type partialFailure struct {
	count     int
	code, msg string
}

func (e *partialFailure) Error() string {
	return fmt.Sprintf("kinesis: %d records failed: %s: %s", e.count, e.code, e.msg)
}

// retryableWrite is retry.IsRetryable plus failed PutRecords entries.
func retryableWrite(err error) bool {
	var pf *partialFailure
	return errors.As(err, &pf) || retry.IsRetryable(err)
}
