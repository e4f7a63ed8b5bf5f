package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/unified-streaming-etl/etl/internal/ops"
)

func init() {
	register(command{
		name:    "verify",
		summary: "compare OrderEnriched with the join of the source tables and print the differences (exit 1 if any, catalogue drift aside)",
		run:     runVerify,
	})
	register(command{
		name:    "repair",
		summary: "verify, then put every differing order back on the unified stream as DMS load records so the pipeline fixes it (etl verify --repair)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return verifyOrRepair(ctx, "repair", true, args, stdout, stderr)
		},
	})
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return verifyOrRepair(ctx, "verify", false, args, stdout, stderr)
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

With --repair (or as etl repair), when the table differs, every order with
a row missing, unexpected or differing (with --strict-catalogue, drifting
too) is read again from the source under one consistent snapshot and put on
the unified stream as DMS load records of the order and its items, keyed
by orderId, and every unexpected item the source does not have as an item
delete, so the pipeline itself fixes the table while CDC keeps running.
The records carry the database's time from just before the snapshot as
their version, as etl resend's do: a change committed meanwhile wins. The
orders sent are printed. Without --wait, repair exits 0 once Kinesis has
accepted every record; with --wait it then compares again, every
--interval, until the table matches (exit 0) or the time is up (exit 1).
The stream is --stream, or the OrderStreamName output of --common-stack
(UnifiedStreamETLCommonStack); the caller needs kinesis:PutRecords on it and
kms:GenerateDataKey on the pipeline key.
` + targetHelp

func verifyOrRepair(ctx context.Context, name string, repair bool, args []string, stdout, stderr io.Writer) error {
	fs, df := newDBFlagSet(name, name+" [flags]", verifyDescription, stderr)
	table := fs.String("table", "", "the OrderEnriched DynamoDB `table` (default: the --process-stack output)")
	processStack := fs.String("process-stack", "", "the deployed process `stack` ("+ops.ProcessStack+"): table and catalogue from its outputs")
	products := fs.String("products", "", "product catalogue: a JSON-lines `file` or s3://bucket/key (default: the --process-stack output, else reference-data/products.json)")
	limit := fs.Int("limit", 20, "differences listed of each kind")
	wait := fs.Duration("wait", 0, "keep comparing, every --interval, until the table matches or this much time has passed")
	interval := fs.Duration("interval", 10*time.Second, "pause between comparisons with --wait")
	progressEvery := fs.Duration("progress", 5*time.Second, "how often to report progress while scanning a large table")
	rangeOrders := fs.Int("range", ops.DefaultRangeOrders, "compare this many `orders` at a time: memory is bounded by one range, not by the table")
	strictCatalogue := fs.Bool("strict-catalogue", false, "fail on catalogue drift too: rows whose product name or price differs from today's catalogue")
	stream := fs.String("stream", "", "with --repair: the unified stream's `name` or ARN (default: the --common-stack output)")
	commonStack := fs.String("common-stack", "", "with --repair: the deployed common `stack` ("+ops.CommonStack+"): the stream from its outputs")
	if !repair {
		fs.BoolVar(&repair, "repair", false, "put the orders that differ back on the unified stream (etl repair)")
	}
	if err := df.parse(fs, args); err != nil {
		return err
	}
	switch {
	case repair && (*stream == "") == (*commonStack == ""):
		return usageError(fs, "name the stream to repair through: --stream NAME, or --common-stack "+ops.CommonStack)
	case !repair && (*stream != "" || *commonStack != ""):
		return usageError(fs, "--stream and --common-stack are for --repair")
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
	if err := orderStreamFromStack(ctx, clients, *commonStack, stream); err != nil {
		return err
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
	if repair {
		fmt.Fprintf(stdout, "Stream:   %s\n", *stream)
	}
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
	repaired := false
	for attempt := 1; ; attempt++ {
		scanStart, tick = time.Now(), newTicker(*progressEvery)
		fmt.Fprintln(stdout, "Reading the source join and the table ...")
		report, err := ops.Verify(ctx, db, clients.DynamoDB, *table, cat, ops.VerifyOptions{RangeOrders: *rangeOrders, Progress: progress})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Read %d source rows and %d items in %s.\n", report.SourceRows, report.TableItems, since(scanStart))
		passed := report.Consistent() && (!*strictCatalogue || report.Equal())
		if repair && !passed && !repaired {
			fmt.Fprintln(stdout)
			if err := report.Write(stdout, *table, *limit); err != nil {
				return err
			}
			if err := sendRepair(ctx, stdout, db, clients.Kinesis, *stream, report, *strictCatalogue, *limit); err != nil {
				return err
			}
			repaired = true
			if *wait == 0 {
				fmt.Fprintln(stdout, "The pipeline applies them as it catches up; `etl verify --wait DURATION` confirms it.")
				return nil
			}
			deadline = time.Now().Add(*wait)
		} else if passed || time.Now().Add(*interval).After(deadline) {
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

// sendRepair puts the orders the report names back on the stream and
// prints what it sent.
func sendRepair(ctx context.Context, stdout io.Writer, db *sql.DB, kin ops.Kinesis, stream string, report ops.Report, drift bool, limit int) error {
	start := time.Now()
	fmt.Fprintf(stdout, "\nRepairing through %s ...\n", stream)
	res, err := ops.Repair(ctx, db, kin, stream, report, drift)
	if err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	fmt.Fprintf(stdout, "Sent %d orders: %d order and %d item load records, %d item deletes, at version %s in %s.\n",
		len(res.Orders), res.OrderRecords, res.ItemRecords, len(res.ItemDeletes), res.Version.Format("2006-01-02 15:04:05.000000"), since(start))
	ids := make([]string, min(limit, len(res.Orders)))
	for i := range ids {
		ids[i] = strconv.FormatInt(res.Orders[i], 10)
	}
	more := ""
	if len(res.Orders) > limit {
		more = fmt.Sprintf(" ... and %d more", len(res.Orders)-limit)
	}
	fmt.Fprintf(stdout, "  orders %s%s\n", strings.Join(ids, ", "), more)
	for i, k := range res.ItemDeletes {
		if i == limit {
			fmt.Fprintf(stdout, "  ... and %d more deletes\n", len(res.ItemDeletes)-limit)
			break
		}
		fmt.Fprintf(stdout, "  delete %s (not in the source)\n", k)
	}
	return nil
}
