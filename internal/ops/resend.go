package ops

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

// CommonStack is stacks.CommonStackName; OutputOrderStreamName is its
// output naming the unified stream.
const (
	CommonStack           = "UnifiedStreamETLCommonStack"
	OutputOrderStreamName = "OrderStreamName"
)

// Kinesis is the part of the Kinesis client Resend uses.
type Kinesis interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// ResendResult says what Resend put on the stream.
type ResendResult struct {
	Orders, Items int
	// Version is the time every record carries: the database's clock
	// just before the snapshot was taken.
	Version time.Time
}

// Kinesis PutRecords limits: 500 records and 5 MiB per call, partition
// keys included.
const (
	maxPutRecords = 500
	maxPutBytes   = 5 << 20
)

// resendRetry retries throttled calls and entries patiently: a resend is
// a bulk load that may run into the stream's write limit for a while.
var resendRetry = retry.Policy{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second, AttemptTimeout: 30 * time.Second}

var errEntriesFailed = errors.New("records not accepted")

// Resend puts every row of orders.order and orders.order_item on the
// unified stream as a DMS full-load ("load") record, keyed by orderId as
// DMS keys them, so that the enrich processor stores each live row in join
// state again and re-emits every enriched row. It backfills join state that
// an older version let expire.
//
// The rows are read under one consistent snapshot and every record carries
// the database's UTC time taken just before it (DMS's metadata timestamp
// is the processor's version). A change committed after that time reaches
// the stream from DMS with a later timestamp and wins over the resent
// image, whichever arrives first; a row whose join state is newer ignores
// the resent one. So Resend can run while the source is busy, provided the
// clocks of the database and the DMS replication instance agree.
func Resend(ctx context.Context, db *sql.DB, kin Kinesis, stream string, progress func(sent int)) (ResendResult, error) {
	snap, err := openSnapshot(ctx, db)
	if err != nil {
		return ResendResult{}, err
	}
	defer snap.close(ctx)

	res := ResendResult{Version: snap.stamp}
	s := &sender{kin: kin, stream: stream, progress: progress}
	// Orders first, so that their items join at once instead of waiting.
	res.Orders, err = s.table(ctx, snap, order.TableOrder, selectOrders+"ORDER BY orderId", nil, orderColumns, nil)
	if err != nil {
		return res, err
	}
	res.Items, err = s.table(ctx, snap, order.TableOrderItem, selectItems+"ORDER BY orderId, itemId", nil, itemColumns, nil)
	if err != nil {
		return res, err
	}
	return res, s.flush(ctx)
}

// The source rows as load records carry them: orderId first, then
// columns, DECIMAL and DATETIME as MySQL prints them.
const (
	selectOrders = "SELECT orderId, CAST(orderAmount AS CHAR), orderStatus, CAST(orderDateTime AS CHAR), " +
		"shipToName, shipToAddress, shipToCity, shipToState, shipToZip FROM orders.`order` "
	selectItems = "SELECT orderId, itemId, itemQuantity, CAST(itemAmount AS CHAR), itemStatus FROM orders.order_item "
)

var (
	orderColumns = []string{"orderAmount", "orderStatus", "orderDateTime", "shipToName", "shipToAddress", "shipToCity", "shipToState", "shipToZip"}
	itemColumns  = []string{"itemId", "itemQuantity", "itemAmount", "itemStatus"}
)

// snapshot is a consistent read-only view of the source and the
// database's UTC time from just before it: the version of every record
// sent from it.
type snapshot struct {
	conn  *sql.Conn
	stamp time.Time
}

func openSnapshot(ctx context.Context, db *sql.DB) (*snapshot, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{conn: conn}
	if err := snap.start(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return snap, nil
}

func (s *snapshot) start(ctx context.Context) error {
	var now string
	if err := s.conn.QueryRowContext(ctx, "SELECT UTC_TIMESTAMP(6)").Scan(&now); err != nil {
		return fmt.Errorf("read the database clock: %w", err)
	}
	stamp, err := time.Parse("2006-01-02 15:04:05.999999", now)
	if err != nil {
		return fmt.Errorf("database clock %q: %w", now, err)
	}
	s.stamp = stamp
	if _, err := s.conn.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return err
	}
	if _, err := s.conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return fmt.Errorf("start a consistent snapshot: %w", err)
	}
	return nil
}

func (s *snapshot) close(ctx context.Context) {
	s.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // read-only transaction
	s.conn.Close()
}

// meta is the DMS metadata of a record of table sent from the snapshot.
func (s *snapshot) meta(table, operation string) cdc.Metadata {
	return cdc.Metadata{
		Timestamp: s.stamp.Format(cdc.TimestampLayout), RecordType: cdc.RecordTypeData, Operation: operation,
		PartitionKeyType: cdc.PartitionKeyAttribute, SchemaName: order.SourceSchema, TableName: table,
	}
}

// sender batches records into PutRecords calls.
type sender struct {
	kin      Kinesis
	stream   string
	progress func(int)
	pending  []types.PutRecordsRequestEntry
	size     int
}

// table sends every row of query (with args) from the snapshot as a load
// record of table: orderId first, then columns. Integer columns (itemId,
// itemQuantity) go as JSON numbers, the rest as strings (DECIMAL and
// DATETIME as MySQL prints them, as DMS writes them); NULL columns are
// left out. sent, when not nil, sees every record's data.
func (s *sender) table(ctx context.Context, snap *snapshot, table, query string, args []any, columns []string, sent func(data map[string]any)) (int, error) {
	rows, err := snap.conn.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("read orders.%s: %w", table, err)
	}
	defer rows.Close()
	meta := snap.meta(table, order.OpLoad)
	var orderID int64
	values := make([]sql.NullString, len(columns))
	dest := []any{&orderID}
	for i := range values {
		dest = append(dest, &values[i])
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return n, fmt.Errorf("read orders.%s: %w", table, err)
		}
		data := map[string]any{"orderId": orderID}
		for i, c := range columns {
			if !values[i].Valid {
				continue
			}
			if c == "itemId" || c == "itemQuantity" {
				v, err := strconv.ParseInt(values[i].String, 10, 64)
				if err != nil {
					return n, fmt.Errorf("orders.%s %s %q: %w", table, c, values[i].String, err)
				}
				data[c] = v
				continue
			}
			data[c] = values[i].String
		}
		if err := s.record(ctx, orderID, cdc.Record{Data: data, Metadata: meta}); err != nil {
			return n, err
		}
		if sent != nil {
			sent(data)
		}
		n++
	}
	return n, rows.Err()
}

// record queues one DMS record, keyed by its orderId as DMS keys it.
func (s *sender) record(ctx context.Context, orderID int64, r cdc.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.add(ctx, strconv.FormatInt(orderID, 10), b)
}

func (s *sender) add(ctx context.Context, key string, data []byte) error {
	size := len(key) + len(data)
	if len(s.pending) == maxPutRecords || s.size+size > maxPutBytes {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	k := key
	s.pending = append(s.pending, types.PutRecordsRequestEntry{PartitionKey: &k, Data: data})
	s.size += size
	return nil
}

// flush puts the pending records, retrying throttled calls and the
// entries Kinesis rejects.
func (s *sender) flush(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	entries, sent := s.pending, len(s.pending)
	policy := resendRetry
	policy.Retryable = func(err error) bool { return errors.Is(err, errEntriesFailed) || retry.IsRetryable(err) }
	err := policy.Do(ctx, func(ctx context.Context) error {
		in := &kinesis.PutRecordsInput{Records: entries}
		if strings.HasPrefix(s.stream, "arn:") {
			in.StreamARN = &s.stream
		} else {
			in.StreamName = &s.stream
		}
		out, err := s.kin.PutRecords(ctx, in)
		if err != nil {
			return err
		}
		var failed []types.PutRecordsRequestEntry
		var reason string
		for i, r := range out.Records {
			if r.ErrorCode != nil && i < len(entries) {
				failed = append(failed, entries[i])
				reason = *r.ErrorCode
			}
		}
		if len(failed) > 0 {
			entries = failed
			return fmt.Errorf("%w: %d of %d (%s)", errEntriesFailed, len(failed), len(in.Records), reason)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put records on %s: %w", s.stream, err)
	}
	s.pending, s.size = nil, 0
	if s.progress != nil {
		s.progress(sent)
	}
	return nil
}
