package local

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// wrapHandler applies the tracer (innermost, so it sees what the handler
// itself did) and then Config.WrapHandler.
func (p *Pipeline) wrapHandler(function string, h poller.Handler) poller.Handler {
	if p.tracer != nil {
		h = p.tracer.wrap(function, h)
	}
	if p.cfg.WrapHandler != nil {
		h = p.cfg.WrapHandler(function, h)
	}
	return h
}

func (p *Pipeline) startMappings(ctx context.Context) error {
	products, err := filepath.Abs(p.cfg.Products)
	if err != nil {
		return err
	}
	timing, err := p.timing(ctx)
	if err != nil {
		return err
	}
	esm := func(function, stream string) poller.Config {
		return poller.Config{
			Function:              function,
			Stream:                stream,
			Kinesis:               p.Kinesis,
			Region:                Region,
			BatchSize:             p.cfg.BatchSize,
			BatchWindow:           p.cfg.BatchWindow,
			ParallelizationFactor: p.cfg.ParallelizationFactor,
			MaxRetryAttempts:      p.cfg.MaxRetryAttempts,
			BisectOnError:         true,
			Checkpoints:           poller.NewCheckpoints(),
			Logger:                p.log,
			Timing:                timing[stream],
			OnFailure: func(f poller.FailureRecord) {
				if err := p.failureDir.write(function, f); err != nil {
					p.log.Error("writing an on-failure record", "function", function, "shard", f.KinesisBatchInfo.ShardID, "error", err)
				}
			},
		}
	}
	twoHops := p.cfg.Shape.twoHops()
	// Like a Lambda environment, each poller start builds its handler and
	// clients afresh: a restarted enrich poller shares nothing with the
	// one it replaces but the checkpoints.
	p.enrich = &mapping{cfg: esm(EnrichFunction, UnifiedStream), wrap: p.wrapHandler, newHandler: func() (poller.Handler, error) {
		ref, err := enrich.NewReference("file://"+products, nil, enrich.WithLogger(p.log))
		if err != nil {
			return nil, err
		}
		db := dynamodb.NewFromConfig(retry.WithoutSDKRetries(p.handlerAWSConfig(p.endpoints.DynamoDB)))
		cfg := enrich.Config{StateTable: StateTable, SourceStream: UnifiedStream, Source: EnrichFunction, Logger: p.log, Now: p.cfg.Now}
		deps := enrich.Deps{
			DB:       db,
			Stream:   kinesis.NewFromConfig(retry.WithoutSDKRetries(p.handlerAWSConfig(p.endpoints.Kinesis))),
			Products: ref,
			DLQ:      p.deadLetters,
		}
		if twoHops {
			cfg.OutputStream = EnrichedStream
		} else {
			cfg.OutputTable, deps.Table = TableName, p.traceWrites(db)
		}
		h, err := enrich.New(cfg, deps)
		if err != nil {
			return nil, err
		}
		return h.Handle, nil
	}}
	if twoHops {
		p.sink = &mapping{cfg: esm(SinkFunction, EnrichedStream), wrap: p.wrapHandler, newHandler: func() (poller.Handler, error) {
			h, err := sink.New(sink.Config{TableName: TableName, Source: SinkFunction, Logger: p.log},
				dynamodb.NewFromConfig(retry.WithoutSDKRetries(p.handlerAWSConfig(p.endpoints.DynamoDB))),
				p.deadLetters)
			if err != nil {
				return nil, err
			}
			return h.Handle, nil
		}}
	}
	for _, m := range p.mappings() {
		if err := m.start(p.log); err != nil {
			return err
		}
	}
	return nil
}

// mappings are the running event source mappings, the first hop first.
func (p *Pipeline) mappings() []*mapping {
	var ms []*mapping
	for _, m := range []*mapping{p.enrich, p.sink} {
		if m != nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// timing returns each stream's delivery model under Config.AWSTiming
// (docs/aws-facts.md §5.1), none without it. The unified stream's polling
// readers share each shard's five reads a second with the Firehose
// archive (dataLake, on by default), which this models as one read per
// shard every second; the enriched stream has only the sink.
func (p *Pipeline) timing(ctx context.Context) (map[string]*poller.Timing, error) {
	if !p.cfg.AWSTiming {
		return nil, nil
	}
	t := map[string]*poller.Timing{}
	if p.cfg.Shape == ShapeEFO {
		t[UnifiedStream] = poller.PushTiming()
	} else {
		unified := poller.NewSharedReads(poller.ReadsPerShardSecond)
		t[UnifiedStream] = poller.PollingTiming(unified)
		out, err := p.Kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(UnifiedStream)})
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", UnifiedStream, err)
		}
		var shards []string
		for _, sh := range out.Shards {
			shards = append(shards, aws.ToString(sh.ShardId))
		}
		actx, stop := context.WithCancel(context.WithoutCancel(ctx))
		p.archiveStop = stop
		go unified.Consume(actx, shards, time.Second)
	}
	if p.cfg.Shape.twoHops() {
		t[EnrichedStream] = poller.PollingTiming(poller.NewSharedReads(poller.ReadsPerShardSecond))
	}
	return t, nil
}

// mapping is an event source mapping whose poller can be stopped and
// started again with the same checkpoints.
type mapping struct {
	cfg        poller.Config
	newHandler func() (poller.Handler, error)
	wrap       func(string, poller.Handler) poller.Handler

	mu     sync.Mutex
	p      *poller.Poller
	cancel context.CancelFunc
	done   chan struct{}
	runErr error // why the current poller stopped on its own
	// failures and counters of pollers that were stopped
	failures []poller.FailureRecord
	stopped  poller.Stats
}

func (m *mapping) start(log *slog.Logger) error {
	h, err := m.newHandler()
	if err != nil {
		return fmt.Errorf("%s: %w", m.cfg.Function, err)
	}
	if m.wrap != nil {
		h = m.wrap(m.cfg.Function, h)
	}
	p, err := poller.New(m.cfg, h)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.mu.Lock()
	m.p, m.cancel, m.done, m.runErr = p, cancel, done, nil
	m.mu.Unlock()
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			log.Error("poller stopped", "function", m.cfg.Function, "error", err)
			m.mu.Lock()
			m.runErr = fmt.Errorf("%s poller stopped: %w", m.cfg.Function, err)
			m.mu.Unlock()
		}
	}()
	return nil
}

func (m *mapping) stop() {
	m.mu.Lock()
	p, cancel, done := m.p, m.cancel, m.done
	m.p = nil
	m.mu.Unlock()
	if p == nil {
		return
	}
	cancel()
	<-done
	m.mu.Lock()
	m.failures = append(m.failures, p.Failures()...)
	m.stopped = addStats(m.stopped, p.Stats())
	m.mu.Unlock()
}

// stats returns the counters of every poller this mapping has run.
func (m *mapping) stats() poller.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stopped
	if m.p != nil {
		s = addStats(s, m.p.Stats())
	}
	return s
}

func addStats(a, b poller.Stats) poller.Stats {
	return poller.Stats{
		Invocations:     a.Invocations + b.Invocations,
		Records:         a.Records + b.Records,
		Retries:         a.Retries + b.Retries,
		FunctionErrors:  a.FunctionErrors + b.FunctionErrors,
		PartialFailures: a.PartialFailures + b.PartialFailures,
		FailedBatches:   a.FailedBatches + b.FailedBatches,
		HandlerTime:     a.HandlerTime + b.HandlerTime,
	}
}

func (m *mapping) current() (*poller.Poller, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p, m.runErr
}

func (m *mapping) allFailures() []poller.FailureRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]poller.FailureRecord(nil), m.failures...)
	if m.p != nil {
		out = append(out, m.p.Failures()...)
	}
	return out
}

// RestartEnrich stops the enrich poller, cancelling whatever invocation is
// in flight as if its Lambda environment died, and starts a new one with a
// fresh handler from the same checkpoints: what the old one had not
// finished is delivered again.
func (p *Pipeline) RestartEnrich() error {
	p.enrich.stop()
	return p.enrich.start(p.log)
}

// WaitIdle blocks until every change committed on the source before the
// call has gone all the way through: shipped by the CDC reader, handled by
// enrich, and (in the original's shape) handled by the sink.
func (p *Pipeline) WaitIdle(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.readerFailed:
			cancel(fmt.Errorf("CDC reader stopped: %w", p.readerErr))
		case <-ctx.Done():
		}
	}()
	steps := []func(context.Context) error{
		p.waitShipped,
		func(ctx context.Context) error { return waitPoller(ctx, p.enrich) },
		// Again: the first wait's invocations may have put the old key's
		// delete of a moved row back on the unified stream (see
		// internal/enrich/rekey.go) after the wait began. Those deletes
		// put nothing back themselves, so one more wait covers them.
		func(ctx context.Context) error { return waitPoller(ctx, p.enrich) },
	}
	if p.sink != nil {
		steps = append(steps, func(ctx context.Context) error { return waitPoller(ctx, p.sink) })
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
				return cause
			}
			return err
		}
	}
	return nil
}

func waitPoller(ctx context.Context, m *mapping) error {
	return waitFollowing(ctx, func() (func(context.Context) error, error) {
		p, err := m.current()
		// A poller being restarted is briefly absent; one that stopped on
		// its own is reported by err.
		if p == nil || err != nil {
			return nil, err
		}
		return p.WaitIdle, nil
	})
}

// waitFollowing waits with the wait function current returns, following
// what it waits on across restarts: each wait is bounded to a second and
// asked again of the current one, and while current returns none (it is
// being restarted) it polls.
func waitFollowing(ctx context.Context, current func() (func(context.Context) error, error)) error {
	for {
		wait, err := current()
		if err != nil {
			return err
		}
		if wait != nil {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			err := wait(wctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// handlerAWSConfig is the configuration of the clients the handlers and
// the CDC writer build: the calls Config.FaultRate injects faults into.
func (p *Pipeline) handlerAWSConfig(endpoint string) aws.Config {
	return faultyAWSConfig(endpoint, p.faults)
}

// FaultStats returns the faults injected so far (zero without
// Config.FaultRate).
func (p *Pipeline) FaultStats() FaultStats { return p.faults.Stats() }

// FaultsNotRepeated counts, by operation, the faulted requests nobody sent
// again identically.
func (p *Pipeline) FaultsNotRepeated() map[string]int { return p.faults.NotRepeated() }

// waitShipped waits until the CDC reader has shipped every change
// committed before the call, following the reader across restarts.
func (p *Pipeline) waitShipped(ctx context.Context) error {
	return waitFollowing(ctx, func() (func(context.Context) error, error) {
		if r := p.currentReader(); r != nil {
			return r.WaitShipped, nil
		}
		return nil, nil
	})
}
