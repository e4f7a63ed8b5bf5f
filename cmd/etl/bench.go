package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
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
(100,000 order items) with an average latency of at most 900 ms.

--compare runs the same load through each shape in turn (original, default,
efo; a fresh pipeline each) and prints one table: throughput, average, p50,
p95 and p99 latency and Lambda invocations per 1,000 items. Add --aws-timing
to compare them as AWS would deliver (etl local bench --aws-timing --compare).
--json prints one JSON object instead of the report (progress goes to stderr).`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("local bench", "local bench [flags]", benchDescription, stderr)
	var pf pipelineFlags
	pf.register(fs)
	var bf benchFlags
	bf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := bf.validate(fs); err != nil {
		return err
	}
	if err := pf.validate(fs); err != nil {
		return err
	}
	shapeSet := false
	fs.Visit(func(f *flag.Flag) { shapeSet = shapeSet || f.Name == "shape" })
	if bf.compare && shapeSet {
		return usageError(fs, "--shape and --compare: --compare runs every shape; drop --shape")
	}
	if bf.compare && pf.keepRunning {
		return usageError(fs, "--keep-running and --compare: --compare stops each shape's pipeline before the next")
	}
	// With --json, stdout carries only the JSON object.
	report := stdout
	if bf.json {
		report = stderr
	}
	shapes := []local.Shape{local.Shape(pf.shape)}
	if bf.compare {
		shapes = local.Shapes
	}
	results := make([]local.BenchResult, 0, len(shapes))
	for _, shape := range shapes {
		cfg := pf.config(stderr)
		cfg.Shape = shape
		res, err := benchShape(ctx, cfg, pf, bf, report)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if bf.json {
		return writeBenchJSON(stdout, pf.awsTiming, bf.compare, results)
	}
	if bf.compare {
		fmt.Fprintln(stdout)
		writeCompareTable(stdout, pf.awsTiming, results)
	}
	for _, r := range results {
		if len(r.Differences) > 0 {
			return fmt.Errorf("shape %s: OrderEnriched differs from the SQL join of the source (%d differences)", r.Shape, len(r.Differences))
		}
	}
	return nil
}

// benchFlags are the flags only `local bench` has.
type benchFlags struct {
	orders, items, workers int
	rate                   float64
	seed                   uint64
	compare, json          bool
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&b.orders, "orders", 1000, "orders to insert")
	fs.IntVar(&b.items, "items-per-order", 2, "items per order")
	fs.IntVar(&b.workers, "workers", 16, "concurrent database sessions inserting orders")
	fs.Float64Var(&b.rate, "rate", 50, "orders committed per second in total (keep it below what the pipeline sustains, or latency measures the queue); 0 for as fast as possible")
	fs.Uint64Var(&b.seed, "seed", 1, "seed for generated amounts and products")
	fs.BoolVar(&b.compare, "compare", false, "run the same load through the original, default and efo shapes and print one table")
	fs.BoolVar(&b.json, "json", false, "print the results as one JSON object on stdout (the report goes to stderr)")
}

func (b *benchFlags) validate(fs *flag.FlagSet) error {
	return firstInvalid(fs,
		check{b.orders < 1, fmt.Sprintf("--orders %d: want 1 or more", b.orders)},
		check{b.items < 1, fmt.Sprintf("--items-per-order %d: want 1 or more", b.items)},
		check{b.workers < 1, fmt.Sprintf("--workers %d: want 1 or more", b.workers)},
		check{b.rate < 0, fmt.Sprintf("--rate %g: want 0 (as fast as possible) or more", b.rate)},
	)
}

// benchShape starts a pipeline of cfg's shape, runs the load through it,
// reports on out and stops it.
func benchShape(ctx context.Context, cfg local.Config, pf pipelineFlags, bf benchFlags, out io.Writer) (local.BenchResult, error) {
	p, err := startPipeline(ctx, cfg, out)
	if err != nil {
		return local.BenchResult{}, err
	}
	defer closePipeline(p, out)

	pace := "as fast as possible"
	if bf.rate > 0 {
		pace = fmt.Sprintf("at %g orders/s", bf.rate)
	}
	fmt.Fprintf(out, "Committing %d orders x %d items = %d order items from %d sessions, %s ...\n",
		bf.orders, bf.items, bf.orders*bf.items, bf.workers, pace)
	bctx, cancel := context.WithTimeout(ctx, pf.timeout+time.Duration(float64(bf.orders)/max(bf.rate, 1)*float64(time.Second)))
	defer cancel()
	res, err := p.Bench(bctx, local.BenchConfig{
		Orders: bf.orders, ItemsPerOrder: bf.items, Workers: bf.workers, Rate: bf.rate, Seed: bf.seed,
		Progress: func(pr local.BenchProgress) {
			fmt.Fprintf(out, "  %5.0fs  %s: %d/%d orders committed, %d records written to DynamoDB's writer\n",
				pr.Elapsed.Seconds(), pr.Phase, pr.Committed, pr.Orders, pr.Delivered)
		},
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return res, fmt.Errorf("the load did not get through the pipeline within --timeout %s plus the load's own duration (raise --timeout or lower --rate): %w", pf.timeout, err)
		}
		return res, err
	}
	load := res.LastCommit.Sub(res.FirstCommit)
	// Offered is what the load generator committed; achieved is what came
	// out of the pipeline. Achieved below offered means a queue built up.
	fmt.Fprintf(out, "\nOffered:     %d transactions committed in %s (%.0f orders/s, %.0f order items/s)\n",
		res.Orders, local.Millis(load), float64(res.Orders)/load.Seconds(), float64(res.Items)/load.Seconds())
	fmt.Fprintf(out, "Pipeline:    the last item reached DynamoDB %s after the last commit\n", local.Millis(res.LastWrite.Sub(res.LastCommit)))
	fmt.Fprintf(out, "Achieved:    %.0f order items/s end to end (first commit to last DynamoDB write)\n", res.Throughput)
	fmt.Fprintf(out, "Latency:     %s,\n             %s.\n", res.Latency, local.LatencyDefinition)
	fmt.Fprintf(out, "Lambda:      %d invocations, %.1f per 1,000 order items\n", res.Invocations, res.InvocationsPer1000Items())
	printActivity(p, out)
	if err := writeDump(ctx, p, pf.dump, out); err != nil {
		return res, err
	}
	verifyErr := reportDifferences(res.Differences, res.Rows, out)
	if pf.keepRunning && verifyErr == nil {
		keepRunning(ctx, p, out)
	}
	return res, nil
}

// benchJSON is one shape's result in --json output.
type benchJSON struct {
	Shape                   string        `json:"shape"`
	AWSTiming               bool          `json:"awsTiming"`
	Items                   int           `json:"items"`
	Lost                    int           `json:"lost"`
	Differences             int           `json:"differences"`
	ItemsPerSecond          float64       `json:"itemsPerSecond"`
	LatencyMs               latencyMsJSON `json:"latencyMs"`
	Invocations             int64         `json:"invocations"`
	InvocationsPer1000Items float64       `json:"invocationsPer1000Items"`
}

type latencyMsJSON struct {
	Avg float64 `json:"avg"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

func toBenchJSON(r local.BenchResult, awsTiming bool) benchJSON {
	return benchJSON{
		Shape: string(r.Shape), AWSTiming: awsTiming, Items: r.Items, Lost: r.Lost(), Differences: len(r.Differences),
		ItemsPerSecond: math.Round(r.Throughput*10) / 10,
		LatencyMs: latencyMsJSON{
			Avg: ms(r.Latency.Avg), P50: ms(r.Latency.P50), P95: ms(r.Latency.P95), P99: ms(r.Latency.P99), Max: ms(r.Latency.Max),
		},
		Invocations: r.Invocations, InvocationsPer1000Items: math.Round(r.InvocationsPer1000Items()*10) / 10,
	}
}

// writeBenchJSON prints one object: a shape's result, or with compare the
// load's size and one result per shape under "shapes".
func writeBenchJSON(w io.Writer, awsTiming, compare bool, results []local.BenchResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if !compare {
		return enc.Encode(toBenchJSON(results[0], awsTiming))
	}
	out := struct {
		AWSTiming bool                 `json:"awsTiming"`
		Items     int                  `json:"items"`
		Shapes    map[string]benchJSON `json:"shapes"`
	}{AWSTiming: awsTiming, Shapes: map[string]benchJSON{}}
	for _, r := range results {
		out.Items = r.Items
		out.Shapes[string(r.Shape)] = toBenchJSON(r, awsTiming)
	}
	return enc.Encode(out)
}

// writeCompareTable prints the shapes side by side.
func writeCompareTable(w io.Writer, awsTiming bool, results []local.BenchResult) {
	timing := "as fast as the emulators allow"
	if awsTiming {
		timing = "with AWS delivery timing (--aws-timing)"
	}
	fmt.Fprintf(w, "Shapes compared, %d order items each, %s:\n\n", results[0].Items, timing)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shape\titems/s\tavg ms\tp50 ms\tp95 ms\tp99 ms\tinvocations/1k items\tlost\t")
	for _, r := range results {
		l := r.Latency
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%d\t\n", r.Shape, r.Throughput,
			ms(l.Avg), ms(l.P50), ms(l.P95), ms(l.P99), r.InvocationsPer1000Items(), r.Lost())
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\noriginal: enrich -> enriched stream -> sink (two polling hops); default: enrich writes DynamoDB\n(one hop, polling); efo: one hop on enhanced fan-out push.")
}
