package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/unified-streaming-etl/etl/internal/ddblimit"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

// Writer applies enriched rows to OrderEnriched (docs/design.md §3.5):
// every put and delete is conditional on the row's version, so replays and
// retries never put older data over newer, and a write that loses that race
// is stale and counts as done. The sink handler and the enrich processor
// (one hop, docs/design.md §4) both write through it, so the table's
// content does not depend on which of them wrote it.
type Writer struct {
	cfg WriterConfig
	db  DB
}

// WriterConfig configures a Writer.
type WriterConfig struct {
	// TableName is the OrderEnriched table. Required.
	TableName string
	// Concurrency bounds the writes in flight; DefaultConcurrency if 0.
	Concurrency int
	// Retry is the policy for throttled and failed writes; DefaultRetry
	// when none of its limits is set.
	Retry retry.Policy
	// Now is the clock for updatedAt; time.Now if nil.
	Now func() time.Time
}

// HTTPClient is the HTTP client for a Lambda whose Writer runs with
// DefaultConcurrency: one idle connection kept per write in flight (twice,
// for the other calls), between invocations too. The SDK's default keeps
// only 10 idle per host and would reconnect, with a TLS handshake, for the
// rest of every batch.
func HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = 2 * DefaultConcurrency
		tr.MaxIdleConnsPerHost = 2 * DefaultConcurrency
	})
}

// NewWriter returns a Writer to cfg.TableName through db.
func NewWriter(cfg WriterConfig, db DB) (*Writer, error) {
	if cfg.TableName == "" {
		return nil, errors.New("sink: the OrderEnriched table name is required")
	}
	if db == nil {
		return nil, errors.New("sink: a DynamoDB client is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	cfg.Retry = cfg.Retry.Or(DefaultRetry)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Writer{cfg: cfg, db: db}, nil
}

// Outcome is what became of one row's write.
type Outcome uint8

// Outcomes of a write.
const (
	// Pending: not attempted.
	Pending Outcome = iota
	// Written: put or deleted.
	Written
	// Stale: a newer version is already stored, so there is nothing to do.
	Stale
	// Rejected: DynamoDB refused the row itself; no retry can succeed.
	Rejected
	// Failed: a transient failure outlasted the retries.
	Failed
)

// Done reports whether the row needs no further attempt.
func (o Outcome) Done() bool { return o == Written || o == Stale }

// Result is the outcome of one row's write and, unless it is done, why.
type Result struct {
	Outcome Outcome
	Err     error
}

// Write applies rows, each carrying its version and op (an upsert or a
// delete), with at most Concurrency writes in flight, and returns one
// result per row. The rows must name distinct order-items: writes run
// concurrently, so two rows of one item would race. Once ctx ends, the
// writes not yet started fail unattempted. retries, if not nil, counts the
// calls that were attempts after the first.
func (w *Writer) Write(ctx context.Context, rows []order.Enriched, retries *atomic.Int64) []Result {
	// One allocation for the batch, not one per row.
	cs := make([]change, len(rows))
	changes := make([]*change, len(rows))
	for i := range rows {
		r := &rows[i]
		cs[i] = change{key: key{r.OrderID, r.ItemID}, delete: r.IsDelete(), version: r.Version, rec: *r}
		changes[i] = &cs[i]
	}
	results := make([]Result, len(rows))
	w.writeAll(ctx, changes, results, retries)
	return results
}

// writeAll writes every change, recording each outcome in results, so no
// failure stops the others.
func (w *Writer) writeAll(ctx context.Context, changes []*change, results []Result, retries *atomic.Int64) {
	if retries == nil {
		retries = new(atomic.Int64)
	}
	var eg errgroup.Group
	eg.SetLimit(w.cfg.Concurrency)
	updatedAt := w.cfg.Now().UTC().Format(time.RFC3339Nano)
	for i := range changes {
		eg.Go(func() error {
			if ctx.Err() != nil {
				results[i] = Result{Failed, fmt.Errorf("not attempted: %w", context.Cause(ctx))}
				return nil
			}
			o, err := w.write(ctx, changes[i], updatedAt, retries)
			results[i] = Result{o, err}
			return nil
		})
	}
	_ = eg.Wait() // every write returns nil
}

// conditionExpression admits a write when the item is absent or not newer
// than the write. Equal versions are admitted because the Go processor
// can emit two rows for one key from one transaction (an order update and
// an item update), and the later one in the stream is the current one.
const conditionExpression = "attribute_not_exists(" + AttrOrderID + ") OR #v <= :v"

var conditionNames = map[string]string{"#v": AttrVersion}

// write applies one change with retries and classifies the result.
func (w *Writer) write(ctx context.Context, c *change, updatedAt string, retries *atomic.Int64) (Outcome, error) {
	if c.version <= 0 {
		// Unversioned, it could overwrite anything: a caller's bug.
		return Rejected, fmt.Errorf("%w: order-item %d/%d has no version", errUnstorable, c.key.orderID, c.key.itemID)
	}
	values := map[string]types.AttributeValue{":v": number(c.version)}
	var op func(context.Context) error
	if c.delete {
		in := &dynamodb.DeleteItemInput{
			TableName:                 aws.String(w.cfg.TableName),
			Key:                       Key(c.key.orderID, c.key.itemID),
			ConditionExpression:       aws.String(conditionExpression),
			ExpressionAttributeNames:  conditionNames,
			ExpressionAttributeValues: values,
		}
		op = func(ctx context.Context) error { _, err := w.db.DeleteItem(ctx, in); return err }
	} else {
		item := attributes(c, updatedAt)
		if err := ddblimit.CheckItem(item); err != nil {
			// DynamoDB would refuse it on every attempt.
			return Rejected, fmt.Errorf("%w: %w", errUnstorable, err)
		}
		in := &dynamodb.PutItemInput{
			TableName:                 aws.String(w.cfg.TableName),
			Item:                      item,
			ConditionExpression:       aws.String(conditionExpression),
			ExpressionAttributeNames:  conditionNames,
			ExpressionAttributeValues: values,
		}
		op = func(ctx context.Context) error { _, err := w.db.PutItem(ctx, in); return err }
	}

	attempts := 0
	err := w.cfg.Retry.Do(ctx, func(ctx context.Context) error {
		if attempts++; attempts > 1 {
			retries.Add(1)
		}
		return op(ctx)
	})
	var condFailed *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return Written, nil
	case errors.As(err, &condFailed):
		// The stored item is newer: this row is already superseded.
		return Stale, nil
	case isRecordRejected(err):
		return Rejected, err
	default:
		return Failed, err
	}
}

// errUnstorable marks an item the writer did not send because DynamoDB
// could not store it.
var errUnstorable = errors.New("not writable to DynamoDB")

// IsUnstorable reports whether err says the row could not be stored as it
// is (rather than DynamoDB refusing it).
func IsUnstorable(err error) bool { return errors.Is(err, errUnstorable) }

// isRecordRejected reports whether DynamoDB refused the item itself (too
// large, an invalid number), which no retry can change. Other client
// errors, such as a missing table or denied access, are the deployment's
// fault: those records are reported back so they are retried once it is
// fixed.
func isRecordRejected(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationException"
}
