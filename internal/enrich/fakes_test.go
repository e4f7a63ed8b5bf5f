package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/retry"
)

// fastRetry keeps tests quick while still exercising backoff.
var fastRetry = retry.Policy{MaxAttempts: 4, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}

// fakeDB is an in-memory state table that enforces the API rules the
// handler relies on (consistent reads, batch limits, no duplicate keys in
// one BatchWriteItem) and lets tests inject failures.
type fakeDB struct {
	mu       sync.Mutex
	rows     map[string]map[string]map[string]ddbtypes.AttributeValue // pk → sk → item
	pageSize int

	gets, queries, writes int
	// Hooks see each call's number (from 1) and may fail it or leave
	// part of it unprocessed.
	onGet   func(call int, keys []map[string]ddbtypes.AttributeValue) (unprocessed []map[string]ddbtypes.AttributeValue, err error)
	onQuery func(call int, pk string) error
	// onQueryInput, when set, sees every Query call's input.
	onQueryInput func(in *dynamodb.QueryInput)
	onWrite      func(call int, reqs []ddbtypes.WriteRequest) (unprocessed []ddbtypes.WriteRequest, err error)
}

func newFakeDB() *fakeDB {
	return &fakeDB{rows: map[string]map[string]map[string]ddbtypes.AttributeValue{}, pageSize: 1000}
}

func strAttr(item map[string]ddbtypes.AttributeValue, name string) string {
	if s, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func rowKey(item map[string]ddbtypes.AttributeValue) string {
	return strAttr(item, attrPK) + "/" + strAttr(item, attrSK)
}

func rowKeys(items []map[string]ddbtypes.AttributeValue) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[rowKey(it)] = true
	}
	return m
}

func validation(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg, Fault: smithy.FaultClient}
}

func (f *fakeDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if len(in.RequestItems) != 1 {
		return nil, validation("want one table")
	}
	var table string
	var ka ddbtypes.KeysAndAttributes
	for table, ka = range in.RequestItems {
	}
	if len(ka.Keys) == 0 || len(ka.Keys) > maxBatchGetKeys {
		return nil, validation(fmt.Sprintf("%d keys", len(ka.Keys)))
	}
	if !aws.ToBool(ka.ConsistentRead) {
		return nil, validation("test: state reads must be strongly consistent")
	}
	var unprocessed []map[string]ddbtypes.AttributeValue
	if f.onGet != nil {
		var err error
		if unprocessed, err = f.onGet(f.gets, ka.Keys); err != nil {
			return nil, err
		}
	}
	skip := rowKeys(unprocessed)
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]ddbtypes.AttributeValue{}}
	for _, k := range ka.Keys {
		if skip[rowKey(k)] {
			continue
		}
		if item := f.rows[strAttr(k, attrPK)][strAttr(k, attrSK)]; item != nil {
			out.Responses[table] = append(out.Responses[table], item)
		}
	}
	if len(unprocessed) > 0 {
		out.UnprocessedKeys = map[string]ddbtypes.KeysAndAttributes{table: {Keys: unprocessed, ConsistentRead: aws.Bool(true)}}
	}
	return out, nil
}

func (f *fakeDB) Query(ctx context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	if !aws.ToBool(in.ConsistentRead) {
		return nil, validation("test: state reads must be strongly consistent")
	}
	if aws.ToString(in.KeyConditionExpression) != "#pk = :pk" || in.ExpressionAttributeNames["#pk"] != attrPK {
		return nil, validation("test: unexpected key condition " + aws.ToString(in.KeyConditionExpression))
	}
	if f.onQueryInput != nil {
		f.onQueryInput(in)
	}
	pk := strAttr(in.ExpressionAttributeValues, ":pk")
	if f.onQuery != nil {
		if err := f.onQuery(f.queries, pk); err != nil {
			return nil, err
		}
	}
	sks := make([]string, 0, len(f.rows[pk]))
	for sk := range f.rows[pk] {
		sks = append(sks, sk)
	}
	sort.Strings(sks)
	if in.ExclusiveStartKey != nil {
		after := strAttr(in.ExclusiveStartKey, attrSK)
		sks = sks[sort.SearchStrings(sks, after+"\x00"):]
	}
	out := &dynamodb.QueryOutput{}
	for i, sk := range sks {
		if i == f.pageSize {
			out.LastEvaluatedKey = key(pk, sks[i-1])
			break
		}
		out.Items = append(out.Items, f.rows[pk][sk])
	}
	return out, nil
}

func (f *fakeDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if len(in.RequestItems) != 1 {
		return nil, validation("want one table")
	}
	var table string
	var reqs []ddbtypes.WriteRequest
	for table, reqs = range in.RequestItems {
	}
	if len(reqs) == 0 || len(reqs) > maxBatchWriteOps {
		return nil, validation(fmt.Sprintf("%d writes", len(reqs)))
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		k := rowKey(r.PutRequest.Item)
		if seen[k] {
			return nil, validation("Provided list of item keys contains duplicates")
		}
		seen[k] = true
	}
	var unprocessed []ddbtypes.WriteRequest
	if f.onWrite != nil {
		var err error
		if unprocessed, err = f.onWrite(f.writes, reqs); err != nil {
			return nil, err
		}
	}
	skip := map[string]bool{}
	for _, r := range unprocessed {
		skip[rowKey(r.PutRequest.Item)] = true
	}
	for _, r := range reqs {
		item := r.PutRequest.Item
		if skip[rowKey(item)] {
			continue
		}
		pk := strAttr(item, attrPK)
		if f.rows[pk] == nil {
			f.rows[pk] = map[string]map[string]ddbtypes.AttributeValue{}
		}
		f.rows[pk][strAttr(item, attrSK)] = item
	}
	out := &dynamodb.BatchWriteItemOutput{}
	if len(unprocessed) > 0 {
		out.UnprocessedItems = map[string][]ddbtypes.WriteRequest{table: unprocessed}
	}
	return out, nil
}

// row decodes a stored state row for assertions.
func (f *fakeDB) row(pk, sk string) (stateRow, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	item := f.rows[pk][sk]
	if item == nil {
		return stateRow{}, false
	}
	r, err := decodeRow(item)
	if err != nil {
		panic(err)
	}
	return r, true
}

// putEntry is one record written to the fake stream.
type putEntry struct {
	key  string
	data []byte
}

// fakeStream records PutRecords calls, enforces the call limits and the
// handler's promise that no order-item appears twice in one call, and
// fails entries as a test plans.
type fakeStream struct {
	mu      sync.Mutex
	calls   int
	entries []putEntry
	// failEntry decides whether an entry of a call fails with
	// ProvisionedThroughputExceededException.
	failEntry func(call int, key string, e order.Enriched) bool
	// failCall fails a whole call.
	failCall func(call int) error
	// shuffle, when set, stores the accepted entries of a call in a random
	// order: Kinesis does not keep order within a PutRecords call.
	shuffle func(n int, swap func(i, j int))
}

func (f *fakeStream) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failCall != nil {
		if err := f.failCall(f.calls); err != nil {
			return nil, err
		}
	}
	if aws.ToString(in.StreamName) == "" && aws.ToString(in.StreamARN) == "" {
		return nil, validation("no stream")
	}
	size := 0
	for _, r := range in.Records {
		size += len(r.Data) + len(aws.ToString(r.PartitionKey))
	}
	if len(in.Records) == 0 || len(in.Records) > maxPutRecords || size > maxPutBytes {
		return nil, validation(fmt.Sprintf("%d records, %d bytes", len(in.Records), size))
	}
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	before := len(f.entries)
	defer func() {
		if f.shuffle != nil {
			accepted := f.entries[before:]
			f.shuffle(len(accepted), func(i, j int) { accepted[i], accepted[j] = accepted[j], accepted[i] })
		}
	}()
	seen := map[[2]int64]bool{}
	for _, r := range in.Records {
		var e order.Enriched
		if err := json.Unmarshal(r.Data, &e); err != nil {
			return nil, validation("test: record is not an enriched row: " + err.Error())
		}
		k := [2]int64{e.OrderID, e.ItemID}
		if seen[k] {
			return nil, validation(fmt.Sprintf("test: order-item %d/%d twice in one call", e.OrderID, e.ItemID))
		}
		seen[k] = true
		pk := aws.ToString(r.PartitionKey)
		if f.failEntry != nil && f.failEntry(f.calls, pk, e) {
			*out.FailedRecordCount++
			out.Records = append(out.Records, kintypes.PutRecordsResultEntry{
				ErrorCode:    aws.String("ProvisionedThroughputExceededException"),
				ErrorMessage: aws.String("Rate exceeded for shard shardId-000000000000"),
			})
			continue
		}
		f.entries = append(f.entries, putEntry{key: pk, data: r.Data})
		out.Records = append(out.Records, kintypes.PutRecordsResultEntry{
			SequenceNumber: aws.String(fmt.Sprint(len(f.entries))), ShardId: aws.String("shardId-000000000000"),
		})
	}
	return out, nil
}

// rows decodes what the stream holds.
func (f *fakeStream) rows() []order.Enriched {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]order.Enriched, len(f.entries))
	for i, e := range f.entries {
		if err := json.Unmarshal(e.data, &out[i]); err != nil {
			panic(err)
		}
	}
	return out
}

// fakeDLQ captures dead letters.
type fakeDLQ struct {
	mu   sync.Mutex
	msgs []dlq.Message
	err  error
}

func (f *fakeDLQ) Send(ctx context.Context, msgs []dlq.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.msgs = append(f.msgs, msgs...)
	return nil
}

// staticProducts is a fixed catalogue.
type staticProducts refdata.Catalogue

func (s staticProducts) Catalogue(context.Context) (refdata.Catalogue, error) {
	return refdata.Catalogue(s), nil
}

// failingProducts has no catalogue.
type failingProducts struct{ err error }

func (f failingProducts) Catalogue(context.Context) (refdata.Catalogue, error) { return nil, f.err }

var testProducts = staticProducts{
	7:  {ProductID: 7, ProductName: "Handcrafted Marble Kettle", ProductPrice: order.MustDecimal("472.59")},
	42: {ProductID: 42, ProductName: "Ergonomic Steel Lamp", ProductPrice: order.MustDecimal("19.99")},
}

// source builds DMS Kinesis records as they arrive from the unified stream.
type source struct {
	seq   int
	clock time.Time
}

func newSource() *source {
	return &source{clock: time.Date(2024, 3, 18, 9, 45, 0, 0, time.UTC)}
}

func (s *source) record(table, op string, orderID int64, data map[string]any) events.KinesisEventRecord {
	s.seq++
	s.clock = s.clock.Add(1500 * time.Microsecond)
	data["orderId"] = orderID
	raw, err := json.Marshal(cdc.Record{Data: data, Metadata: cdc.Metadata{
		Timestamp: s.clock.Format(cdc.TimestampLayout), RecordType: cdc.RecordTypeData, Operation: op,
		PartitionKeyType: cdc.PartitionKeyAttribute, SchemaName: order.SourceSchema, TableName: table,
		TransactionID: json.RawMessage(fmt.Sprint(8754110000 + s.seq)),
	}})
	if err != nil {
		panic(err)
	}
	seq := fmt.Sprintf("49654226190374217584376545318930211358523283025%09d", s.seq)
	return events.KinesisEventRecord{
		EventSource: "aws:kinesis", EventName: "aws:kinesis:record", EventVersion: "1.0",
		EventID:        "shardId-000000000000:" + seq,
		EventSourceArn: "arn:aws:kinesis:us-east-1:123456789012:stream/unified-order-stream",
		AwsRegion:      "us-east-1",
		Kinesis: events.KinesisRecord{
			Data: raw, PartitionKey: fmt.Sprint(orderID), SequenceNumber: seq, KinesisSchemaVersion: "1.0",
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: s.clock.Add(80 * time.Millisecond)},
		},
	}
}

func (s *source) order(op string, orderID int64, status string) events.KinesisEventRecord {
	return s.record(order.TableOrder, op, orderID, map[string]any{
		"orderAmount": "120.50", "orderStatus": status, "orderDateTime": "2024-03-18T09:40:00.250Z",
		"shipToName": "Ada Lovelace", "shipToAddress": "12 St James's Sq", "shipToCity": "London",
		"shipToState": "LDN", "shipToZip": "SW1Y 4JH",
	})
}

func (s *source) item(op string, orderID, itemID, qty int64) events.KinesisEventRecord {
	return s.record(order.TableOrderItem, op, orderID, map[string]any{
		"itemId": itemID, "itemQuantity": qty, "itemAmount": "9.99", "itemStatus": "OPEN",
	})
}

func event(recs ...events.KinesisEventRecord) events.KinesisEvent {
	return events.KinesisEvent{Records: slices.Clone(recs)}
}

func seqs(resp events.KinesisEventResponse) []string {
	var out []string
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

func throttled() error {
	return &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "Rate exceeded", Fault: smithy.FaultClient}
}

var errAccessDenied error = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized", Fault: smithy.FaultClient}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
