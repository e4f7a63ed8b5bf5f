package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/unified-streaming-etl/etl/internal/ops"
)

func init() {
	register(command{
		name:    "verify",
		summary: "compare OrderEnriched with the join of the source tables and print the differences (exit 1 if any, catalogue drift aside)",
		run:     runVerify,
	})
}

const verifyDescription = `
Computes what OrderEnriched must hold from the source itself (orders joined
with their items, left-joined with the product catalogue), --range orders at
a time, reads the table's items of those keys and then scans the table's
keys (consistent reads), so memory is bounded by one range, not by the
table; and prints how they differ: rows missing from the
table, items the source does not have, and attributes that differ, with both
values; the first --limit of each, and their counts. Amounts compare as exact
decimals; the pipeline's bookkeeping (event_ts, version, updatedAt) is not
compared. Exits 0 when the table matches, 1 when it differs; catalogue
drift alone (below) does not count as differing.

Product columns (productName, productPrice) hold the catalogue as of each
row's last change, as in the original KDA application: a catalogue change
does not rewrite rows that do not change. Rows whose only differences are
product columns are therefore reported apart, as catalogue drift, with their
own count, and do not make verify fail unless --strict-catalogue is given.

The table is --table, or the OrderEnrichedTableName output of
--process-stack (UnifiedStreamETLProcessStack), whose ReferenceDataUri output
is then also the catalogue unless --products is given. DynamoDB is reached
with the standard AWS configuration, so AWS_ENDPOINT_URL_DYNAMODB points it
at an emulator.

While the pipeline is busy, the newest changes may not have reached the
table yet: --wait keeps comparing until the two match or the time is up.
` + targetHelp

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "verify [flags]", verifyDescription, stderr)
	var df dbFlags
	df.register(fs)
	table := fs.String("table", "", "the OrderEnriched DynamoDB `table` (default: the --process-stack output)")
	processStack := fs.String("process-stack", "", "the deployed process `stack` ("+ops.ProcessStack+"): table and catalogue from its outputs")
	products := fs.String("products", "", "product catalogue: a JSON-lines `file` or s3://bucket/key (default: the --process-stack output, else reference-data/products.json)")
	limit := fs.Int("limit", 20, "differences listed of each kind")
	wait := fs.Duration("wait", 0, "keep comparing, every --interval, until the table matches or this much time has passed")
	interval := fs.Duration("interval", 10*time.Second, "pause between comparisons with --wait")
	progressEvery := fs.Duration("progress", 5*time.Second, "how often to report progress while scanning a large table")
	rangeOrders := fs.Int("range", ops.DefaultRangeOrders, "compare this many `orders` at a time: memory is bounded by one range, not by the table")
	strictCatalogue := fs.Bool("strict-catalogue", false, "fail on catalogue drift too: rows whose product name or price differs from today's catalogue")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := df.check(fs); err != nil {
		return err
	}
	switch {
	case *table == "" && *processStack == "":
		return usageError(fs, "name the table: --table NAME, or --process-stack "+ops.ProcessStack)
	case *limit < 0 || *wait < 0 || *interval <= 0 || *progressEvery <= 0 || *rangeOrders <= 0:
		return usageError(fs, "--limit and --wait must not be negative, --interval, --progress and --range must be positive")
	}

	clients, err := loadAWSClients(ctx)
	if err != nil {
		return err
	}
	catalogue := *products
	if *processStack != "" {
		outputs, err := ops.StackOutputs(ctx, clients.CloudFormation, *processStack)
		if err != nil {
			return err
		}
		if *table == "" {
			if *table, err = outputs.Get(ops.OutputTableName); err != nil {
				return err
			}
		}
		if catalogue == "" {
			if catalogue, err = outputs.Get(ops.OutputReferenceDataURI); err != nil {
				return err
			}
		}
	}
	if catalogue == "" {
		if catalogue, err = defaultProducts(); err != nil {
			return err
		}
	}
	cat, err := ops.LoadProducts(ctx, catalogue, clients.S3)
	if err != nil {
		return err
	}

	t, err := df.target(ctx, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Source:   %s\n", t.Description)
	fmt.Fprintf(stdout, "Table:    %s\n", *table)
	fmt.Fprintf(stdout, "Products: %s (%d products)\n", catalogue, len(cat))
	db, err := t.Open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()

	var tick *ticker
	var scanStart time.Time
	progress := func(p ops.VerifyProgress) {
		switch {
		case !tick.due():
		case p.Scanning:
			fmt.Fprintf(stdout, "  %5.0fs  %d items read from %s\n", time.Since(scanStart).Seconds(), p.TableItems, *table)
		default:
			fmt.Fprintf(stdout, "  %5.0fs  %d source rows compared (orderId up to %d)\n", time.Since(scanStart).Seconds(), p.SourceRows, p.LastOrderID)
		}
	}
	deadline := time.Now().Add(*wait)
	for attempt := 1; ; attempt++ {
		scanStart, tick = time.Now(), newTicker(*progressEvery)
		fmt.Fprintln(stdout, "Reading the source join and the table ...")
		report, err := ops.Verify(ctx, db, clients.DynamoDB, *table, cat, ops.VerifyOptions{RangeOrders: *rangeOrders, Progress: progress})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Read %d source rows and %d items in %s.\n", report.SourceRows, report.TableItems, since(scanStart))
		passed := report.Consistent() && (!*strictCatalogue || report.Equal())
		if passed || time.Now().Add(*interval).After(deadline) {
			fmt.Fprintln(stdout)
			if err := report.Write(stdout, *table, *limit); err != nil {
				return err
			}
			switch {
			case !report.Consistent():
				return fmt.Errorf("%s differs from the source in %d rows", *table, report.Differences())
			case !passed:
				return fmt.Errorf("%s has catalogue drift in %d rows (--strict-catalogue)", *table, len(report.Drift))
			}
			return nil
		}
		n := report.Differences()
		if report.Consistent() {
			n = len(report.Drift)
		}
		fmt.Fprintf(stdout, "  %d rows differ (attempt %d); comparing again in %s, until %s ...\n",
			n, attempt, *interval, deadline.Format(time.TimeOnly))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(*interval):
		}
	}
}
