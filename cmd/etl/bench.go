package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/unified-streaming-etl/etl/internal/local"
)

const benchDescription = `
Starts the local pipeline (as etl local does, without sample data), commits
--orders orders with --items-per-order items each, one transaction per order
from --workers concurrent sessions (at --rate orders per second, or as fast
as they can with --rate 0), waits until everything has reached DynamoDB, and
reports throughput and commit-to-DynamoDB latency. It then checks that
OrderEnriched equals the SQL join of the source tables: nothing lost.

The figure the design targets: etl local bench --orders 50000 --items-per-order 2
(100,000 order items) with an average latency of at most 900 ms.`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local bench", "local bench [flags]", benchDescription, stderr)
	var pf pipelineFlags
	pf.register(fs)
	orders := fs.Int("orders", 1000, "orders to insert")
	items := fs.Int("items-per-order", 2, "items per order")
	workers := fs.Int("workers", 16, "concurrent database sessions inserting orders")
	rate := fs.Float64("rate", 150, "orders committed per second in total (keep it below what the pipeline sustains, or latency measures the queue); 0 for as fast as possible")
	seed := fs.Uint64("seed", 1, "seed for generated amounts and products")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := firstInvalid(fs,
		check{*orders < 1, fmt.Sprintf("--orders %d: want 1 or more", *orders)},
		check{*items < 1, fmt.Sprintf("--items-per-order %d: want 1 or more", *items)},
		check{*workers < 1, fmt.Sprintf("--workers %d: want 1 or more", *workers)},
		check{*rate < 0, fmt.Sprintf("--rate %g: want 0 (as fast as possible) or more", *rate)},
	); err != nil {
		return err
	}
	if err := pf.validate(fs); err != nil {
		return err
	}

	p, err := startPipeline(ctx, pf.config(stderr), stdout)
	if err != nil {
		return err
	}
	defer closePipeline(p, stdout)

	pace := "as fast as possible"
	if *rate > 0 {
		pace = fmt.Sprintf("at %g orders/s", *rate)
	}
	fmt.Fprintf(stdout, "Committing %d orders x %d items = %d order items from %d sessions, %s ...\n",
		*orders, *items, *orders**items, *workers, pace)
	bctx, cancel := context.WithTimeout(ctx, pf.timeout+time.Duration(float64(*orders)/max(*rate, 1)*float64(time.Second)))
	defer cancel()
	res, err := p.Bench(bctx, local.BenchConfig{
		Orders: *orders, ItemsPerOrder: *items, Workers: *workers, Rate: *rate, Seed: *seed,
		Progress: func(pr local.BenchProgress) {
			fmt.Fprintf(stdout, "  %5.0fs  %s: %d/%d orders committed, sink has handled %d records\n",
				pr.Elapsed.Seconds(), pr.Phase, pr.Committed, pr.Orders, pr.SinkRecords)
		},
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("the load did not get through the pipeline within --timeout %s plus the load's own duration (raise --timeout or lower --rate): %w", pf.timeout, err)
		}
		return err
	}
	load := res.LastCommit.Sub(res.FirstCommit)
	// Offered is what the load generator committed; achieved is what came
	// out of the pipeline. Achieved below offered means a queue built up.
	fmt.Fprintf(stdout, "\nOffered:     %d transactions committed in %s (%.0f orders/s, %.0f order items/s)\n",
		res.Orders, local.Millis(load), float64(res.Orders)/load.Seconds(), float64(res.Items)/load.Seconds())
	fmt.Fprintf(stdout, "Pipeline:    the last item reached DynamoDB %s after the last commit\n", local.Millis(res.LastWrite.Sub(res.LastCommit)))
	fmt.Fprintf(stdout, "Achieved:    %.0f order items/s end to end (first commit to last DynamoDB write)\n", res.Throughput)
	fmt.Fprintf(stdout, "Latency:     %s,\n             %s.\n", res.Latency, local.LatencyDefinition)
	printActivity(p, stdout)
	if err := writeDump(ctx, p, pf.dump, stdout); err != nil {
		return err
	}
	verifyErr := reportDifferences(res.Differences, res.Rows, stdout)
	if pf.keepRunning && verifyErr == nil {
		keepRunning(ctx, p, stdout)
	}
	return verifyErr
}
