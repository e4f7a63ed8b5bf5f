package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/unified-streaming-etl/etl/internal/ops"
)

func init() {
	register(command{
		name:    "replay",
		summary: "put dead letters, failed batches or archived records back on the unified stream with their partition keys",
		run:     runReplay,
	})
}

const replayDescription = `
Puts records back on the unified stream with their original partition keys,
so the pipeline applies them again once their cause is fixed. Its version
checks make a record applied twice harmless: replaying the same input again
changes nothing in OrderEnriched. Name one source:

  --dead-letters QUEUE_URL  the handlers' dead-letter queue (SQS): each dead
                            letter's record goes back, and the message is
                            deleted only after Kinesis has accepted it
                            (never with --dry-run). Dead letters that came
                            from another stream, or whose record was too
                            large to keep, stay in the queue.
  --failures URI            Lambda's on-failure records of the stream's
                            mappings, s3://bucket/prefix or file:///dir:
                            the records of every failed batch. With
                            --process-stack and no source, the stack's
                            failure bucket (its FailureBucketName output).
  --archive URI             the raw archive, s3://bucket/raw/ or file:///dir
                            holding its yyyy/MM/dd/HH/ folders: every record
                            of the hours that overlap --since to --until
                            (required: the archive is the whole history).

--since and --until (RFC 3339, or 2006-01-02T15:04 and 2006-01-02 in UTC)
keep the records that reached the stream in that time; the archive keeps
only the hour. Nothing older than the replay window (14 days) should be
replayed (docs/design.md §4.3). --dry-run reads and counts only.

The stream is --stream, or the OrderStreamName output of --common-stack
(UnifiedStreamETLCommonStack). The caller needs kinesis:PutRecords on it,
kms:GenerateDataKey and kms:Decrypt on the pipeline key, and s3:ListBucket
and s3:GetObject, or sqs:ReceiveMessage and sqs:DeleteMessage, on the
source. AWS is reached with the standard configuration, so the
AWS_ENDPOINT_URL_* variables point it at emulators.
`

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", "replay (--dead-letters URL | --failures URI | --archive URI) [flags]", replayDescription, stderr)
	queue := fs.String("dead-letters", "", "replay the dead letters of this SQS queue `URL`")
	failures := fs.String("failures", "", "replay the on-failure records under this `URI` (s3://bucket/prefix or file:///dir)")
	archive := fs.String("archive", "", "replay the raw archive under this `URI` (s3://bucket/raw/ or file:///dir)")
	stream := fs.String("stream", "", "the unified stream's `name` or ARN (default: the --common-stack output)")
	commonStack := fs.String("common-stack", "", "the deployed common `stack` ("+ops.CommonStack+"): the stream from its outputs")
	processStack := fs.String("process-stack", "", "the deployed process `stack` ("+ops.ProcessStack+"): with no source named, replay its failure bucket")
	sinceFlag := fs.String("since", "", "replay only records that reached the stream at or after this `time`")
	untilFlag := fs.String("until", "", "replay only records that reached the stream before this `time`")
	dryRun := fs.Bool("dry-run", false, "read and count only: put nothing, delete nothing")
	progressEvery := fs.Duration("progress", 5*time.Second, "how often to report progress")
	if err := parse(fs, args); err != nil {
		return err
	}
	sources := 0
	for _, s := range []string{*queue, *failures, *archive} {
		if s != "" {
			sources++
		}
	}
	fromStack := sources == 0 && *processStack != ""
	if fromStack {
		sources = 1
	}
	r := ops.Replay{DryRun: *dryRun}
	var err error
	if r.Since, err = parseTime(*sinceFlag); err != nil {
		return usageError(fs, "--since: "+err.Error())
	}
	if r.Until, err = parseTime(*untilFlag); err != nil {
		return usageError(fs, "--until: "+err.Error())
	}
	switch {
	case sources != 1:
		return usageError(fs, "name one source: --dead-letters QUEUE_URL, --failures URI (or --process-stack "+ops.ProcessStack+" for its failure bucket) or --archive URI")
	case (*stream == "") == (*commonStack == ""):
		return usageError(fs, "name the stream: --stream NAME, or --common-stack "+ops.CommonStack)
	case *archive != "" && r.Since.IsZero():
		return usageError(fs, "--archive needs --since (and --until, default now): the archive is the whole history")
	case !r.Since.IsZero() && !r.Until.IsZero() && !r.Until.After(r.Since):
		return usageError(fs, "--until must be after --since")
	case *progressEvery <= 0:
		return usageError(fs, "--progress must be positive")
	}

	clients, err := loadAWSClients(ctx)
	if err != nil {
		return err
	}
	if err := orderStreamFromStack(ctx, clients, *commonStack, stream); err != nil {
		return err
	}
	if fromStack {
		outputs, err := ops.StackOutputs(ctx, clients.CloudFormation, *processStack)
		if err != nil {
			return err
		}
		if *failures, err = outputs.FailuresURI(); err != nil {
			return err
		}
	}
	r.Kinesis, r.Stream = clients.Kinesis, *stream
	start, tick := time.Now(), newTicker(*progressEvery)
	r.Progress = func(s ops.ReplayStats) {
		if tick.due() {
			fmt.Fprintf(stdout, "  %5.0fs  %d records sent, %d skipped\n", time.Since(start).Seconds(), s.Sent, s.Skipped)
		}
	}
	r.Warn = func(msg string) { fmt.Fprintln(stderr, "etl replay: "+msg) }
	verb := "Replaying"
	if *dryRun {
		verb = "Counting (dry run)"
	}
	var stats ops.ReplayStats
	switch {
	case *queue != "":
		fmt.Fprintf(stdout, "%s the dead letters of %s onto %s ...\n", verb, *queue, *stream)
		stats, err = r.DeadLetters(ctx, clients.SQS, *queue)
	case *failures != "":
		fmt.Fprintf(stdout, "%s the on-failure records under %s onto %s ...\n", verb, *failures, *stream)
		stats, err = r.Failures(ctx, clients.Objects, *failures)
	default:
		fmt.Fprintf(stdout, "%s the archive under %s onto %s ...\n", verb, *archive, *stream)
		stats, err = r.Archive(ctx, clients.Objects, *archive)
	}
	if err != nil {
		return fmt.Errorf("after %d records sent: %w", stats.Sent, err)
	}
	read := fmt.Sprintf("%d objects", stats.Objects)
	if *queue != "" {
		read = fmt.Sprintf("%d dead letters", stats.Messages)
	}
	if *dryRun {
		fmt.Fprintf(stdout, "Dry run: would send %d records from %s (%d skipped) in %s.\n", stats.Sent, read, stats.Skipped, since(start))
		return nil
	}
	fmt.Fprintf(stdout, "Sent %d records from %s (%d skipped) in %s.\n", stats.Sent, read, stats.Skipped, since(start))
	if *queue != "" {
		fmt.Fprintf(stdout, "Deleted %d dead letters whose records Kinesis accepted.\n", stats.Deleted)
	}
	return nil
}

// parseTime reads a --since or --until time; empty is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("want RFC 3339 (2026-11-29T21:00:00Z), or 2026-11-29T21:00 or 2026-11-29 in UTC")
}
