// Package sink writes enriched order-items from a Kinesis stream to the
// DynamoDB table OrderEnriched (docs/design.md §3.4–§3.6, §5).
//
// Every write is conditional on the item's version, so replays and
// retries never put older data over newer; a write that loses that race
// is stale and counts as done. Records that can never be written go to the
// dead-letter queue with the reason, and only transient failures that
// outlast the retries are handed back to Lambda as batch item failures.
//
// The writes themselves are Writer's, which the enrich processor also uses
// when it writes OrderEnriched itself (one hop, docs/design.md §4.1); the
// sink Lambda remains for processor=kda-sql and local mode's original shape.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

// DB is the part of the DynamoDB client the handler uses.
type DB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Defaults of Config.
const (
	DefaultConcurrency     = 64
	DefaultDeadlineReserve = time.Second
	DefaultSource          = "sink"
)

// DefaultRetry is the write retry policy: up to 8 attempts with backoff
// from 25 ms to 2 s, and 5 s for any one call, always within the
// invocation's deadline.
var DefaultRetry = retry.Policy{
	MaxAttempts:    8,
	BaseDelay:      25 * time.Millisecond,
	MaxDelay:       2 * time.Second,
	AttemptTimeout: 5 * time.Second,
}

// Config configures a Handler.
type Config struct {
	// TableName is the OrderEnriched table. Required.
	TableName string
	// DLQURL is the dead-letter queue ConfigFromEnv read, for main to
	// build the Sender New takes; the handler ignores it.
	DLQURL string
	// Source names this function on dead letters; DefaultSource if empty.
	Source string
	// Concurrency bounds the writes in flight; DefaultConcurrency if 0.
	Concurrency int
	// Retry is the policy for throttled and failed writes; DefaultRetry
	// when none of its limits is set.
	Retry retry.Policy
	// DeadlineReserve is kept back from the invocation's deadline so the
	// handler can still report what failed; DefaultDeadlineReserve if 0.
	DeadlineReserve time.Duration
	// Logger receives the handler's logs; slog.Default() if nil.
	Logger *slog.Logger
	// Now is the clock for updatedAt; time.Now if nil.
	Now func() time.Time
}

// Handler is the sink Lambda's handler.
type Handler struct {
	cfg    Config
	writer *Writer
	dlq    dlq.Sender
	logger *slog.Logger
}

// New returns a Handler writing with db and setting bad records aside with
// dead (nil: logged, as when no DLQ is configured).
func New(cfg Config, db DB, dead dlq.Sender) (*Handler, error) {
	if cfg.TableName == "" {
		return nil, fmt.Errorf("sink: table name is required (env %s)", EnvTableName)
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.DeadlineReserve <= 0 {
		cfg.DeadlineReserve = DefaultDeadlineReserve
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if dead == nil {
		dead = dlq.Log{Logger: cfg.Logger}
	}
	// The writer checks db and defaults Concurrency and Retry.
	w, err := NewWriter(WriterConfig{TableName: cfg.TableName, Concurrency: cfg.Concurrency, Retry: cfg.Retry, Now: cfg.Now}, db)
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, writer: w, dlq: dead, logger: cfg.Logger}, nil
}

// maxFailureLogs bounds the per-key failure lines of one invocation.
const maxFailureLogs = 10

// group is the work for one key: the newest of its records in the batch.
type group struct {
	change
	last int // index of the record that supplied change
}

// Handle writes a batch of enriched records. Within the batch, records for
// the same order-item are collapsed to the newest, which in commit order
// is the last one in the stream; then the keys are written concurrently. It reports by sequence number every record whose
// key could not be written, and never returns an error: a bad record goes
// to the dead-letter queue instead, so it cannot block its shard.
func (h *Handler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	start := time.Now()
	recs := ev.Records
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	if len(recs) == 0 {
		return resp, nil
	}

	// groupOf maps each record to its key's group, or to -1 when the
	// record is malformed, so a failure can name every record of a key.
	groupOf := make([]int32, len(recs))
	index := make(map[key]int32, len(recs))
	groups := make([]group, 0, len(recs))
	var dead []int // malformed record indexes
	var reasons []string
	fallbackVersion := order.VersionOf(h.cfg.Now())
	for i := range recs {
		c, err := decode(&recs[i], fallbackVersion)
		if err != nil {
			groupOf[i] = -1
			dead = append(dead, i)
			reasons = append(reasons, err.Error())
			continue
		}
		g, ok := index[c.key]
		if !ok {
			g = int32(len(groups))
			index[c.key] = g
			groups = append(groups, group{last: -1})
		}
		// Applying the key's records one by one under the version
		// condition would leave the highest version, the later record on
		// a tie; writing only that one ends in the same state. In commit
		// order it is simply the last record, but a replayed older record
		// further down the batch must not win.
		if groups[g].last < 0 || c.version >= groups[g].version {
			groups[g].change, groups[g].last = c, i
		}
		groupOf[i] = g
	}

	// Unfinished writes are reported rather than cut off by Lambda's
	// timeout, which would fail the whole batch.
	workCtx, cancel := retry.WithDeadlineReserve(ctx, h.cfg.DeadlineReserve)
	defer cancel()
	var retries atomic.Int64
	changes := make([]*change, len(groups))
	for g := range groups {
		changes[g] = &groups[g].change
	}
	results := make([]Result, len(groups))
	h.writer.writeAll(workCtx, changes, results, &retries)

	// Records DynamoDB itself rejected can never be written either.
	for g, r := range results {
		if r.Outcome == Rejected {
			dead = append(dead, groups[g].last)
			reason := r.Err.Error()
			if !IsUnstorable(r.Err) {
				reason = "rejected by DynamoDB: " + reason
			}
			reasons = append(reasons, reason)
		}
	}
	deadFailed := h.setAside(workCtx, recs, dead, reasons)

	// Report every record of a failed key (Lambda resumes from the lowest),
	// and every dead letter that could not be delivered.
	var stats struct{ written, stale, deleted, failed int }
	failedGroup := make([]bool, len(groups))
	for g, r := range results {
		switch r.Outcome {
		case Written:
			stats.written++
			if groups[g].delete {
				stats.deleted++
			}
		case Stale:
			stats.stale++
		case Failed, Pending:
			failedGroup[g] = true
			// A throttled batch can fail hundreds of keys for one reason;
			// the first few show it, the summary counts the rest.
			if stats.failed++; stats.failed <= maxFailureLogs {
				h.logger.ErrorContext(ctx, "write failed; Lambda will retry the record",
					"orderId", groups[g].key.orderID, "itemId", groups[g].key.itemID,
					"sequenceNumber", recs[groups[g].last].Kinesis.SequenceNumber, "error", r.Err)
			}
		case Rejected:
			if deadFailed[groups[g].last] {
				failedGroup[g] = true
			}
		}
	}
	for i := range recs {
		if g := groupOf[i]; (g >= 0 && failedGroup[g]) || deadFailed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: recs[i].Kinesis.SequenceNumber})
		}
	}

	h.logger.InfoContext(ctx, "batch processed",
		"records", len(recs), "keys", len(groups), "written", stats.written, "deleted", stats.deleted,
		"stale", stats.stale, "deadLettered", len(dead), "failedKeys", stats.failed,
		"reportedFailures", len(resp.BatchItemFailures), "retries", retries.Load(),
		"durationMs", time.Since(start).Milliseconds())
	return resp, nil
}

// setAside sends the given records to the dead-letter queue and returns
// which of them (by record index) could not be sent.
func (h *Handler) setAside(ctx context.Context, recs []events.KinesisEventRecord, idx []int, reasons []string) map[int]bool {
	if len(idx) == 0 {
		return nil
	}
	now := h.cfg.Now()
	msgs := make([]dlq.Message, len(idx))
	for j, i := range idx {
		msgs[j] = dlq.FromKinesis(recs[i], h.cfg.Source, reasons[j], now)
		h.logger.WarnContext(ctx, "record set aside", "reason", reasons[j],
			"sequenceNumber", recs[i].Kinesis.SequenceNumber, "partitionKey", recs[i].Kinesis.PartitionKey)
	}
	err := h.dlq.Send(ctx, msgs)
	if err == nil {
		return nil
	}
	notSent := make(map[int]bool, len(idx))
	var se *dlq.SendError
	if errors.As(err, &se) {
		for _, j := range se.Failed {
			if j >= 0 && j < len(idx) {
				notSent[idx[j]] = true
			}
		}
	} else {
		for _, i := range idx {
			notSent[i] = true
		}
	}
	h.logger.ErrorContext(ctx, "dead-letter queue unavailable; records will be retried by Lambda",
		"records", len(notSent), "error", err)
	return notSent
}
