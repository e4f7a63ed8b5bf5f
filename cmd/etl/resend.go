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
		name:    "resend",
		summary: "put every source row back on the unified stream as a DMS load record (backfills join state)",
		run:     runResend,
	})
}

const resendDescription = `
Reads orders.order and orders.order_item under one consistent snapshot and
puts every row on the unified stream as a DMS full-load ("load") record, keyed
by orderId like DMS's. The enrich Lambda stores each row in its join state
again, without expiry, and re-emits every enriched row (one OrderEnriched
write per order item). Use it after upgrading from a version whose join state
expired (joinStateTtlDays), for orders untouched since.

Every record carries the database's UTC time from just before the snapshot
as its DMS timestamp, the processor's version: a change committed after that
reaches the stream from DMS with a later timestamp and wins, and a row whose
join state is newer ignores the resent one. So the source may stay busy,
provided the clocks of the database and of the DMS replication instance
agree.

The stream is --stream, or the OrderStreamName output of --common-stack
(UnifiedStreamETLCommonStack). The caller needs kinesis:PutRecords on it and
kms:GenerateDataKey on the pipeline key. Kinesis is reached with the standard
AWS configuration, so AWS_ENDPOINT_URL_KINESIS points it at an emulator.
` + targetHelp

func runResend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, df := newDBFlagSet("resend", "resend [flags]", resendDescription, stderr)
	stream := fs.String("stream", "", "the unified stream's `name` or ARN (default: the --common-stack output)")
	commonStack := fs.String("common-stack", "", "the deployed common `stack` ("+ops.CommonStack+"): the stream from its outputs")
	progressEvery := fs.Duration("progress", 5*time.Second, "how often to report progress")
	if err := df.parse(fs, args); err != nil {
		return err
	}
	switch {
	case (*stream == "") == (*commonStack == ""):
		fmt.Fprintln(stderr, "etl: name the stream: --stream NAME, or --common-stack "+ops.CommonStack)
		return errUsage
	case *progressEvery <= 0:
		fmt.Fprintln(stderr, "etl: --progress must be positive")
		return errUsage
	}

	clients, err := loadAWSClients(ctx)
	if err != nil {
		return err
	}
	if err := orderStreamFromStack(ctx, clients, *commonStack, stream); err != nil {
		return err
	}
	t, err := df.target(ctx, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Source: %s\n", t.Description)
	fmt.Fprintf(stdout, "Stream: %s\n", *stream)
	db, err := t.Open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()

	start, tick, sent := time.Now(), newTicker(*progressEvery), 0
	res, err := ops.Resend(ctx, db, clients.Kinesis, *stream, func(n int) {
		sent += n
		if tick.due() {
			fmt.Fprintf(stdout, "  %5.0fs  %d records sent\n", time.Since(start).Seconds(), sent)
		}
	})
	if err != nil {
		return fmt.Errorf("after %d records: %w", sent, err)
	}
	fmt.Fprintf(stdout, "Sent %d orders and %d items as load records at version %s in %s.\n",
		res.Orders, res.Items, res.Version.Format("2006-01-02 15:04:05.000000"), since(start))
	return nil
}
