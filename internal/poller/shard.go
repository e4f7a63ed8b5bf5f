package poller

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Checkpoints holds, per shard, the sequence number up to which a mapping
// has finished every record. Pollers that share it resume from there.
type Checkpoints struct {
	mu sync.Mutex
	m  map[string]string
}

// NewCheckpoints returns an empty checkpoint store.
func NewCheckpoints() *Checkpoints { return &Checkpoints{m: map[string]string{}} }

// Get returns the shard's checkpoint, if it has one.
func (c *Checkpoints) Get(shardID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.m[shardID]
	return seq, ok
}

func (c *Checkpoints) set(shardID, seq string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[shardID] = seq
}

// item is one fetched record on its way through the handler.
type item struct {
	ev      events.KinesisEventRecord
	arrival time.Time
	size    int // its share of the invocation payload
	done    bool
}

// shard reads one shard and runs its lanes.
type shard struct {
	p         *Poller
	id        string
	parentIDs []string
	parents   []*shard
	finished  chan struct{} // closed once a closed shard is fully handled

	mu          sync.Mutex
	tracked     []*item // fetched and not yet below the checkpoint, in stream order
	outstanding int     // fetched and not finished
	emptyPoll   time.Time
	ended       bool
	freed       chan struct{} // signalled when records finish
}

func newShard(p *Poller, id string) *shard {
	return &shard{p: p, id: id, freed: make(chan struct{}, 1), finished: make(chan struct{})}
}

// capacity bounds how far the fetcher runs ahead of the lanes.
func (s *shard) capacity() int {
	return max(2*s.p.cfg.BatchSize*s.p.cfg.ParallelizationFactor, 1000)
}

func (s *shard) run(ctx context.Context) {
	p := s.p
	lanes := make([]chan []*item, p.cfg.ParallelizationFactor)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan []*item, 1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runLane(ctx, lanes[i])
		}()
	}
	defer wg.Wait()

	for _, parent := range s.parents {
		select {
		case <-parent.finished:
		case <-ctx.Done():
			return
		}
	}
	var lastSeq string
	var lastPoll time.Time
	lastEmpty := false
	iter, err := s.iterator(ctx, "")
	failures := 0
	for ctx.Err() == nil {
		if err == nil && iter == nil {
			s.finishClosed(ctx)
			return
		}
		if err != nil {
			failures++
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("polling shard failed; retrying", "shard", s.id, "error", err)
			sleep(ctx, backoff(p.cfg.PollInterval, failures))
			if iter == nil || isExpired(err) {
				iter, err = s.iterator(ctx, lastSeq)
			} else {
				err = nil
			}
			continue
		}
		if !s.waitForRoom(ctx) {
			return
		}
		if wait := time.Until(lastPoll.Add(p.pollInterval(lastEmpty))); wait > 0 {
			sleep(ctx, wait)
			if ctx.Err() != nil {
				return
			}
		}
		if t := p.cfg.Timing; t != nil && !t.Push && t.Reads != nil && !t.Reads.Take(ctx, s.id) {
			return
		}
		started := time.Now()
		lastPoll = started
		cctx, cancel := callContext(ctx)
		out, gerr := p.cfg.Kinesis.GetRecords(cctx, &kinesis.GetRecordsInput{
			ShardIterator: iter,
			Limit:         aws.Int32(int32(min(maxGetRecords, s.capacity()))),
		})
		cancel()
		if ctx.Err() != nil {
			return
		}
		if gerr != nil {
			err = fmt.Errorf("get records: %w", gerr)
			continue
		}
		failures = 0
		recs := out.Records
		if t := p.cfg.Timing; t != nil && !t.Push && t.PropagationDelay > 0 {
			// A polling consumer sees a record only once it has
			// propagated: this poll returns the records already visible,
			// and the next poll reads again after them.
			visible := 0
			for visible < len(recs) && !visibleAt(recs[visible], t.PropagationDelay).After(started) {
				visible++
			}
			if visible < len(recs) {
				recs = recs[:visible]
				out.NextShardIterator = nil
			}
		}
		lastEmpty = len(recs) == 0
		if n := len(recs); n > 0 {
			lastSeq = aws.ToString(recs[n-1].SequenceNumber)
			if !s.deliver(ctx, recs, lanes) {
				return
			}
		} else if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			s.mu.Lock()
			s.emptyPoll = started
			s.mu.Unlock()
		}
		if out.NextShardIterator == nil && len(recs) < len(out.Records) {
			// Not a closed shard: re-read after what was delivered.
			iter, err = s.iterator(ctx, lastSeq)
			continue
		}
		iter = out.NextShardIterator
	}
}

// pollInterval is the least time between two polls of a shard.
func (p *Poller) pollInterval(lastEmpty bool) time.Duration {
	switch t := p.cfg.Timing; {
	case t == nil:
		return p.cfg.PollInterval
	case t.Push:
		return pushPollInterval
	case lastEmpty:
		return t.IdlePollInterval
	default:
		return 0 // the shared read budget paces a busy shard
	}
}

// deliver dispatches records, under Timing no sooner than each record's
// arrival plus the propagation delay (for a polling consumer run has
// already dropped records not yet visible; a pushed one waits for them).
// It returns false if ctx ended.
func (s *shard) deliver(ctx context.Context, recs []types.Record, lanes []chan []*item) bool {
	t := s.p.cfg.Timing
	if t == nil || t.PropagationDelay <= 0 {
		s.dispatch(recs, lanes)
		return true
	}
	for len(recs) > 0 {
		// Records are in arrival order: dispatch those already due, then
		// wait for the next.
		now := time.Now()
		due := 0
		for due < len(recs) && !visibleAt(recs[due], t.PropagationDelay).After(now) {
			due++
		}
		if due > 0 {
			s.dispatch(recs[:due], lanes)
			recs = recs[due:]
			continue
		}
		sleep(ctx, visibleAt(recs[0], t.PropagationDelay).Sub(now))
		if ctx.Err() != nil {
			return false
		}
	}
	return true
}

func visibleAt(r types.Record, delay time.Duration) time.Time {
	if r.ApproximateArrivalTimestamp == nil {
		return time.Time{}
	}
	return r.ApproximateArrivalTimestamp.Add(delay)
}

// iterator returns a shard iterator after seq, after the checkpoint, or at
// TRIM_HORIZON, whichever is known first.
func (s *shard) iterator(ctx context.Context, after string) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(s.p.cfg.Stream), ShardId: aws.String(s.id)}
	if after == "" && s.p.cfg.Checkpoints != nil {
		after, _ = s.p.cfg.Checkpoints.Get(s.id)
	}
	if after != "" {
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(after)
	} else {
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	}
	cctx, cancel := callContext(ctx)
	defer cancel()
	out, err := s.p.cfg.Kinesis.GetShardIterator(cctx, in)
	if err != nil {
		return nil, fmt.Errorf("get shard iterator: %w", err)
	}
	if out.ShardIterator == nil {
		return nil, errors.New("get shard iterator: no iterator returned")
	}
	return out.ShardIterator, nil
}

func isExpired(err error) bool {
	var e *types.ExpiredIteratorException
	return errors.As(err, &e)
}

// dispatch tracks fetched records and hands them to their lanes, one
// chunk per lane so that a lane sees a whole poll's worth at once.
func (s *shard) dispatch(recs []types.Record, lanes []chan []*item) {
	chunks := make([][]*item, len(lanes))
	items := make([]*item, len(recs))
	for i, r := range recs {
		ev := s.p.event(s.id, r)
		it := &item{
			ev:      ev,
			arrival: ev.Kinesis.ApproximateArrivalTimestamp.Time,
			// The payload carries data base64-encoded plus the record's
			// other fields (about 500 bytes of JSON).
			size: base64.StdEncoding.EncodedLen(len(r.Data)) + len(ev.Kinesis.PartitionKey) + 500,
		}
		items[i] = it
		l := s.p.lane(ev.Kinesis.PartitionKey)
		chunks[l] = append(chunks[l], it)
	}
	s.mu.Lock()
	s.tracked = append(s.tracked, items...)
	s.outstanding += len(items)
	s.mu.Unlock()
	for l, c := range chunks {
		if len(c) > 0 {
			lanes[l] <- c
		}
	}
}

func (s *shard) waitForRoom(ctx context.Context) bool {
	for {
		s.mu.Lock()
		full := s.outstanding >= s.capacity()
		s.mu.Unlock()
		if !full {
			return true
		}
		select {
		case <-s.freed:
		case <-ctx.Done():
			return false
		}
	}
}

// finishClosed waits for the lanes to finish a closed shard's records.
func (s *shard) finishClosed(ctx context.Context) {
	for {
		s.mu.Lock()
		if s.outstanding == 0 {
			s.ended = true
			s.mu.Unlock()
			close(s.finished)
			<-ctx.Done() // lanes stop with ctx
			return
		}
		s.mu.Unlock()
		select {
		case <-s.freed:
		case <-ctx.Done():
			return
		}
	}
}

// finish marks items handled (or given up on) and moves the checkpoint
// over the finished prefix of the shard.
func (s *shard) finish(items []*item) {
	if len(items) == 0 {
		return
	}
	s.mu.Lock()
	for _, it := range items {
		it.done = true
	}
	s.outstanding -= len(items)
	n := 0
	for n < len(s.tracked) && s.tracked[n].done {
		n++
	}
	var checkpoint string
	if n > 0 {
		checkpoint = s.tracked[n-1].ev.Kinesis.SequenceNumber
		clear(s.tracked[:n])
		s.tracked = s.tracked[n:]
	}
	s.mu.Unlock()
	if checkpoint != "" && s.p.cfg.Checkpoints != nil {
		s.p.cfg.Checkpoints.set(s.id, checkpoint)
	}
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

func (s *shard) idleSince(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended || s.outstanding == 0 && !s.emptyPoll.Before(t)
}

// runLane gathers batches from its queue and invokes the handler with
// them, one at a time, in stream order.
func (s *shard) runLane(ctx context.Context, ch <-chan []*item) {
	cfg := s.p.cfg
	var queue []*item
	for {
		if len(queue) == 0 {
			select {
			case c := <-ch:
				queue = c
			case <-ctx.Done():
				return
			}
		}
		if cfg.BatchWindow > 0 && len(queue) < cfg.BatchSize {
			window := time.NewTimer(cfg.BatchWindow)
		gather:
			for len(queue) < cfg.BatchSize {
				select {
				case c := <-ch:
					queue = append(queue, c...)
				case <-window.C:
					break gather
				case <-ctx.Done():
					window.Stop()
					return
				}
			}
			window.Stop()
		} else {
		drain:
			for len(queue) < cfg.BatchSize {
				select {
				case c := <-ch:
					queue = append(queue, c...)
				default:
					break drain
				}
			}
		}
		n, size := 0, 0
		for n < len(queue) && n < cfg.BatchSize && (n == 0 || size+queue[n].size <= maxPayloadBytes) {
			size += queue[n].size
			n++
		}
		batch := queue[:n:n]
		queue = queue[n:]
		s.handle(ctx, batch, 0)
		if ctx.Err() != nil {
			return
		}
	}
}

// handle invokes the handler with recs until they all succeed or are
// given up on. attempts counts the invocations so far of these records
// (bisected halves inherit their parent's count). It returns the count.
func (s *shard) handle(ctx context.Context, recs []*item, attempts int) int {
	p := s.p
	for len(recs) > 0 {
		resp, err := p.invoke(ctx, recs)
		if ctx.Err() != nil {
			return attempts // stopped: leave the records unfinished for redelivery
		}
		attempts++
		if err == nil {
			failed, ferr := firstFailure(recs, resp)
			if ferr == nil && failed == len(recs) {
				p.records.Add(int64(len(recs)))
				s.finish(recs)
				return attempts
			}
			if ferr != nil {
				err = ferr
			} else {
				p.partialFailures.Add(1)
				p.records.Add(int64(failed))
				s.finish(recs[:failed])
				recs = recs[failed:]
			}
		}
		var lastErr string
		if err != nil {
			p.functionErrors.Add(1)
			lastErr = err.Error()
			p.log.Warn("invocation failed", "shard", s.id, "records", len(recs), "attempt", attempts, "error", err)
		} else {
			lastErr = fmt.Sprintf("batchItemFailures from sequence number %s", recs[0].ev.Kinesis.SequenceNumber)
		}
		if condition := s.giveUp(recs, attempts); condition != "" {
			s.fail(recs, attempts, condition, err != nil, lastErr)
			return attempts
		}
		p.retries.Add(1)
		sleep(ctx, backoff(p.cfg.RetryDelay, attempts))
		if ctx.Err() != nil {
			return attempts
		}
		if err != nil && p.cfg.BisectOnError && len(recs) > 1 {
			half := len(recs) / 2
			attempts = s.handle(ctx, recs[:half], attempts)
			if ctx.Err() != nil {
				return attempts
			}
			return s.handle(ctx, recs[half:], attempts)
		}
	}
	return attempts
}

// giveUp says why retrying recs is over, or "" to retry.
func (s *shard) giveUp(recs []*item, attempts int) string {
	cfg := s.p.cfg
	if cfg.MaxRetryAttempts >= 0 && attempts > cfg.MaxRetryAttempts {
		return ConditionRetriesExhausted
	}
	if cfg.MaxRecordAge > 0 && time.Since(recs[0].arrival) > cfg.MaxRecordAge {
		return ConditionRecordAge
	}
	return ""
}

func (s *shard) fail(recs []*item, attempts int, condition string, functionError bool, lastErr string) {
	p := s.p
	var f FailureRecord
	f.RequestContext.RequestID = requestID()
	f.RequestContext.FunctionArn = p.functionARN
	f.RequestContext.Condition = condition
	f.RequestContext.ApproximateInvokeCount = attempts
	f.ResponseContext.StatusCode = 200
	f.ResponseContext.ExecutedVersion = "$LATEST"
	if functionError {
		f.ResponseContext.FunctionError = "Unhandled"
	}
	f.Version = "1.0"
	f.Timestamp = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	first, last := recs[0], recs[len(recs)-1]
	f.KinesisBatchInfo = KinesisBatchInfo{
		ShardID:                         s.id,
		StartSequenceNumber:             first.ev.Kinesis.SequenceNumber,
		EndSequenceNumber:               last.ev.Kinesis.SequenceNumber,
		ApproximateArrivalOfFirstRecord: first.arrival.UTC().Format("2006-01-02T15:04:05.000Z"),
		ApproximateArrivalOfLastRecord:  last.arrival.UTC().Format("2006-01-02T15:04:05.000Z"),
		BatchSize:                       len(recs),
		StreamArn:                       p.streamARN,
	}
	f.Err = lastErr
	for _, r := range recs {
		f.Records = append(f.Records, r.ev)
	}
	p.addFailure(f)
	s.finish(recs)
}

// firstFailure returns the index of the lowest reported failure, or
// len(recs) when none was reported. An identifier that is empty or not in
// the batch fails the whole batch, as it does in Lambda.
func firstFailure(recs []*item, resp events.KinesisEventResponse) (int, error) {
	if len(resp.BatchItemFailures) == 0 {
		return len(recs), nil
	}
	index := make(map[string]int, len(recs))
	for i, r := range recs {
		index[r.ev.Kinesis.SequenceNumber] = i
	}
	lowest := len(recs)
	for _, f := range resp.BatchItemFailures {
		i, ok := index[f.ItemIdentifier]
		if !ok {
			return 0, fmt.Errorf("batchItemFailures names %q, which is not a sequence number of the batch", f.ItemIdentifier)
		}
		lowest = min(lowest, i)
	}
	return lowest, nil
}

// invoke calls the handler as Lambda would: an events.KinesisEvent, a
// deadline, a LambdaContext; a panic is a function error.
func (p *Poller) invoke(ctx context.Context, recs []*item) (resp events.KinesisEventResponse, err error) {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(recs))}
	for i, r := range recs {
		ev.Records[i] = r.ev
	}
	ictx, cancel := context.WithTimeout(ctx, p.cfg.FunctionTimeout)
	defer cancel()
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{AwsRequestID: requestID(), InvokedFunctionArn: p.functionARN})
	p.invocations.Add(1)
	started := time.Now()
	defer func() {
		p.handlerNanos.Add(int64(time.Since(started)))
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return p.handler(ictx, ev)
}

// callTimeout bounds one Kinesis call.
const callTimeout = 30 * time.Second

// callContext detaches a Kinesis call from ctx's cancellation: stopping
// the poller lets a call in flight finish instead of dropping the
// connection mid-request, which the local emulators do not survive.
func callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
}

// backoff doubles base per attempt, capped.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
