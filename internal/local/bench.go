package local

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unified-streaming-etl/etl/internal/verify"
)

// BenchConfig describes generated load.
type BenchConfig struct {
	// Orders is the number of orders, each inserted with ItemsPerOrder
	// items in one transaction.
	Orders, ItemsPerOrder int
	// Workers is the number of concurrent database sessions; default 16.
	Workers int
	// Rate is the target of orders committed per second across all
	// workers; 0 commits as fast as the workers can.
	Rate float64
	// FirstOrderID is the first generated orderId; default one above the
	// largest in the source.
	FirstOrderID int64
	// Seed makes the generated amounts and products repeatable.
	Seed uint64
	// Progress, when set, is called about every ProgressEvery while the
	// bench runs.
	Progress      func(BenchProgress)
	ProgressEvery time.Duration
}

// BenchProgress is a snapshot of a running bench.
type BenchProgress struct {
	Phase             string // "load" or "drain"
	Elapsed           time.Duration
	Committed, Orders int
	// Delivered is how many records the handler that writes OrderEnriched
	// (enrich in one hop, the sink in the original's shape) has finished.
	Delivered int64
}

// BenchResult is what a bench measured.
type BenchResult struct {
	// Shape is the pipeline's shape.
	Shape         Shape
	Orders, Items int
	// FirstCommit is when the first transaction began; LastCommit when the
	// last COMMIT returned; Idle when the pipeline had handled everything.
	FirstCommit, LastCommit, Idle time.Time
	// LastWrite is the latest updatedAt in OrderEnriched.
	LastWrite time.Time
	// Throughput is order items per second from the first commit to the
	// last DynamoDB write.
	Throughput float64
	Latency    Latency
	// Rows is the number of rows of the source join; Differences lists how
	// OrderEnriched differs from it (empty: nothing lost).
	Rows        int
	Differences []verify.Difference
	// Invocations counts the handler invocations of every mapping (enrich
	// and, in the original's shape, the sink): Lambda requests.
	Invocations int64
}

// Lost is the number of rows of the source join missing from
// OrderEnriched.
func (r BenchResult) Lost() int { return countMissing(r.Differences) }

// InvocationsPer1000Items is Lambda invocations per 1,000 order items.
func (r BenchResult) InvocationsPer1000Items() float64 {
	if r.Items == 0 {
		return 0
	}
	return float64(r.Invocations) * 1000 / float64(r.Items)
}

// Bench generates load on the source, waits for the pipeline to handle
// it, and measures throughput, latency and loss.
func (p *Pipeline) Bench(ctx context.Context, cfg BenchConfig) (BenchResult, error) {
	if cfg.Orders < 1 || cfg.ItemsPerOrder < 1 {
		return BenchResult{}, errors.New("bench: orders and items per order must be at least 1")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = 2 * time.Second
	}
	products, err := p.Products()
	if err != nil {
		return BenchResult{}, err
	}
	ids := make([]int64, 0, len(products))
	for id := range products {
		ids = append(ids, id)
	}
	res := BenchResult{Shape: p.cfg.Shape, Orders: cfg.Orders, Items: cfg.Orders * cfg.ItemsPerOrder}
	var (
		committed atomic.Int64
		phase     atomic.Value
		lastMu    sync.Mutex
	)
	phase.Store("load")
	start := time.Now()
	res.FirstCommit = start
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		t := time.NewTicker(cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				e, s := p.PollerStats()
				delivered := s.Records
				if p.sink == nil {
					delivered = e.Records
				}
				cfg.Progress(BenchProgress{
					Phase: phase.Load().(string), Elapsed: time.Since(start),
					Committed: int(committed.Load()), Orders: cfg.Orders, Delivered: delivered,
				})
			}
		}
	}()
	defer func() {
		close(stopProgress)
		<-progressDone
	}()

	_, err = Load(ctx, p.db, LoadConfig{
		Orders: cfg.Orders, ItemsPerOrder: cfg.ItemsPerOrder, Workers: cfg.Workers, Rate: cfg.Rate,
		FirstOrderID: cfg.FirstOrderID, Products: ids, Seed: cfg.Seed,
		// Latency is matched per transaction: the binlog reader reports
		// each record's GTID, so each commit is recorded with its own.
		OnCommit: func(ctx context.Context, conn *sql.Conn, _ int64, at time.Time) error {
			gtid, err := lastGTID(ctx, conn)
			if err != nil {
				return err
			}
			p.commits.commit(Commit{GTID: gtid, At: at})
			committed.Add(1)
			lastMu.Lock()
			if at.After(res.LastCommit) {
				res.LastCommit = at
			}
			lastMu.Unlock()
			return nil
		},
	})
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	phase.Store("drain")
	if err := p.WaitIdle(ctx); err != nil {
		return res, fmt.Errorf("bench: waiting for the pipeline: %w", err)
	}
	res.Idle = time.Now()

	diffs, items, err := p.Verify(ctx)
	if err != nil {
		return res, err
	}
	res.Differences = diffs
	res.Rows = len(items) - countUnexpected(diffs) + countMissing(diffs)
	res.Latency = p.Latency(items)
	for _, it := range items {
		if it.UpdatedAt.After(res.LastWrite) {
			res.LastWrite = it.UpdatedAt
		}
	}
	e, s := p.PollerStats()
	res.Invocations = e.Invocations + s.Invocations
	if d := res.LastWrite.Sub(res.FirstCommit); d > 0 {
		res.Throughput = float64(res.Items) / d.Seconds()
	}
	return res, nil
}

func countMissing(diffs []verify.Difference) (n int) {
	for _, d := range diffs {
		if d.Problem == "missing" {
			n++
		}
	}
	return n
}

func countUnexpected(diffs []verify.Difference) (n int) {
	for _, d := range diffs {
		if d.Problem == "unexpected" {
			n++
		}
	}
	return n
}
