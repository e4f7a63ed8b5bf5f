package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/ddblimit"
	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

const table = "OrderEnriched"

// V is the version base used by testdata/go-processor.json and malformed.json.
const V = 1772366398250000

var clock = time.Date(2026, 3, 1, 12, 0, 5, 123456789, time.UTC)

// fastRetry keeps retry tests quick while still sleeping for real.
var fastRetry = retry.Policy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHandler(t testing.TB, db sink.DB, dead dlq.Sender, mod ...func(*sink.Config)) *sink.Handler {
	t.Helper()
	cfg := sink.Config{TableName: table, Source: "UnifiedStreamETL-sink", Retry: fastRetry, Logger: quietLogger(), Now: func() time.Time { return clock }}
	for _, m := range mod {
		m(&cfg)
	}
	h, err := sink.New(cfg, db, dead)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func loadEvent(t testing.TB, name string) events.KinesisEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func seqs(ev events.KinesisEvent, idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, ev.Records[i].Kinesis.SequenceNumber)
	}
	return out
}

func failures(resp events.KinesisEventResponse) []string {
	out := []string{}
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

func handle(t testing.TB, h *sink.Handler, ev events.KinesisEvent) events.KinesisEventResponse {
	t.Helper()
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle returned an error, which would fail the whole batch: %v", err)
	}
	return resp
}

func decodeItem(t testing.TB, av map[string]types.AttributeValue) sink.Item {
	t.Helper()
	it, err := sink.DecodeItem(av)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestHandleGoProcessorBatch(t *testing.T) {
	ev := loadEvent(t, "go-processor.json")

	t.Run("writes each order-item once with its last record", func(t *testing.T) {
		db := newFakeTable()
		resp := handle(t, newHandler(t, db, &captureDLQ{}), ev)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("failures %v", got)
		}
		// 7 records, 3 order-items: 2 puts and 1 delete.
		if len(db.puts) != 2 || len(db.dels) != 1 {
			t.Fatalf("%d puts and %d deletes, want 2 and 1", len(db.puts), len(db.dels))
		}
		laptop := decodeItem(t, db.items[itemKey{1001, 17}])
		hub := decodeItem(t, db.items[itemKey{1001, 23}])
		if laptop.Version != V+3000000 || *laptop.OrderStatus != "SHIPPED" {
			t.Errorf("item 17 = version %d status %s, want the order update", laptop.Version, *laptop.OrderStatus)
		}
		if hub.Version != V+3000000 || *hub.OrderStatus != "SHIPPED" || *hub.ItemStatus != "UPDATED" || hub.ItemAmount.String() != "93.98" || *hub.ItemQuantity != 2 {
			t.Errorf("item 23 = %+v, want the last update of both sides", hub.Enriched)
		}
		if _, ok := db.items[itemKey{1002, 8}]; ok {
			t.Error("item 8 of order 1002 exists after its delete")
		}
	})

	t.Run("stores every attribute with its exact value and DynamoDB type", func(t *testing.T) {
		db := newFakeTable()
		handle(t, newHandler(t, db, &captureDLQ{}), ev)
		got := db.items[itemKey{1001, 17}]
		want := map[string]types.AttributeValue{
			"orderId":       &types.AttributeValueMemberN{Value: "1001"},
			"itemId":        &types.AttributeValueMemberN{Value: "17"},
			"event_ts":      &types.AttributeValueMemberS{Value: "2026-03-01 12:00:03.250"},
			"orderAmount":   &types.AttributeValueMemberN{Value: "1139.96"},
			"orderStatus":   &types.AttributeValueMemberS{Value: "SHIPPED"},
			"orderDateTime": &types.AttributeValueMemberS{Value: "2026-03-01 11:59:58.250"},
			"shipToName":    &types.AttributeValueMemberS{Value: "Maria Garcia"},
			"shipToAddress": &types.AttributeValueMemberS{Value: "1200 12th Ave S"},
			"shipToCity":    &types.AttributeValueMemberS{Value: "Seattle"},
			"shipToState":   &types.AttributeValueMemberS{Value: "WA"},
			"shipToZip":     &types.AttributeValueMemberS{Value: "98144"},
			"itemAmount":    &types.AttributeValueMemberN{Value: "999.99"},
			"itemQuantity":  &types.AttributeValueMemberN{Value: "1"},
			"itemStatus":    &types.AttributeValueMemberS{Value: "PLACED"},
			"productName":   &types.AttributeValueMemberS{Value: "Laptop 14in"},
			"productPrice":  &types.AttributeValueMemberN{Value: "999.99"},
			"version":       &types.AttributeValueMemberN{Value: "1772366401250000"},
			"updatedAt":     &types.AttributeValueMemberS{Value: "2026-03-01T12:00:05.123456789Z"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("item =\n%s\nwant\n%s", dump(got), dump(want))
		}
	})

	t.Run("a newer stored item is left alone and the record counts as done", func(t *testing.T) {
		db := newFakeTable()
		db.put(itemKey{1001, 17}, V+9000000, "RETURNED")
		resp := handle(t, newHandler(t, db, &captureDLQ{}), ev)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("a stale record was reported as a failure: %v", got)
		}
		if it := decodeItem(t, db.items[itemKey{1001, 17}]); *it.ItemStatus != "RETURNED" || it.Version != V+9000000 {
			t.Errorf("newer item overwritten: %+v", it.Enriched)
		}
	})

	t.Run("an equal version is written, so the later record of one transaction wins", func(t *testing.T) {
		db := newFakeTable()
		db.put(itemKey{1001, 23}, V+3000000, "STALE-COPY")
		handle(t, newHandler(t, db, &captureDLQ{}), ev)
		if it := decodeItem(t, db.items[itemKey{1001, 23}]); *it.ItemStatus != "UPDATED" {
			t.Errorf("item status %q, want the record's UPDATED", *it.ItemStatus)
		}
	})

	t.Run("a delete removes an older item", func(t *testing.T) {
		db := newFakeTable()
		db.put(itemKey{1002, 8}, V+850000, "PLACED")
		handle(t, newHandler(t, db, &captureDLQ{}), ev)
		if _, ok := db.items[itemKey{1002, 8}]; ok {
			t.Error("item still there after a newer delete")
		}
	})

	t.Run("an older delete leaves a newer item and counts as done", func(t *testing.T) {
		db := newFakeTable()
		db.put(itemKey{1002, 8}, V+5000000, "RE-ADDED")
		resp := handle(t, newHandler(t, db, &captureDLQ{}), ev)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("failures %v", got)
		}
		if _, ok := db.items[itemKey{1002, 8}]; !ok {
			t.Error("an older delete removed a newer item")
		}
	})
}

func TestHandleKDARecords(t *testing.T) {
	ev := loadEvent(t, "kda-sql.json")
	db := newFakeTable()
	resp := handle(t, newHandler(t, db, &captureDLQ{}), ev)
	if got := failures(resp); len(got) != 0 {
		t.Fatalf("failures %v", got)
	}

	t.Run("versions unversioned records by their arrival time in microseconds", func(t *testing.T) {
		// Record 2 is the last for item 23 and arrived at 1772366401.5 + 2*0.007 s.
		hub := decodeItem(t, db.items[itemKey{1001, 23}])
		if hub.Version != 1772366401514000 {
			t.Errorf("version %d, want 1772366401514000", hub.Version)
		}
		if *hub.OrderStatus != "SHIPPED" {
			t.Errorf("order status %q, want the later arrival's SHIPPED", *hub.OrderStatus)
		}
	})

	t.Run("a later arrival replaces an earlier one across batches", func(t *testing.T) {
		later := loadEvent(t, "kda-sql.json")
		later.Records = later.Records[1:2] // item 23 as first placed, but arriving later
		later.Records[0].Kinesis.ApproximateArrivalTimestamp.Time = later.Records[0].Kinesis.ApproximateArrivalTimestamp.Add(time.Minute)
		handle(t, newHandler(t, db, &captureDLQ{}), later)
		if hub := decodeItem(t, db.items[itemKey{1001, 23}]); *hub.OrderStatus != "PLACED" {
			t.Errorf("order status %q, want the later arrival's PLACED", *hub.OrderStatus)
		}
	})

	t.Run("leaves null and absent columns out of the item", func(t *testing.T) {
		got := db.items[itemKey{1002, 99}]
		for _, name := range []string{"productName", "productPrice"} {
			if _, ok := got[name]; ok {
				t.Errorf("attribute %s stored for a missing product", name)
			}
		}
		if n, _ := got["itemAmount"].(*types.AttributeValueMemberN); n == nil || n.Value != "12" {
			t.Errorf("itemAmount = %v, want the number 12", got["itemAmount"])
		}
	})
}

func TestHandleMalformedRecords(t *testing.T) {
	ev := loadEvent(t, "malformed.json")
	tests := []struct {
		record int
		reason string
	}{
		{1, "invalid enriched record: unexpected end of JSON input"},
		{2, "invalid enriched record: missing itemId"},
		{3, "invalid enriched record: field orderId: JSON string where an integer is expected"},
		{4, `invalid enriched record: unknown op "merge"`},
		{5, "invalid enriched record: negative version -5"},
		{6, `invalid decimal: "12,50"`},
		{7, "invalid enriched record: invalid character"},
		{8, "invalid enriched record: json: cannot unmarshal array"},
	}

	db := newFakeTable()
	dead := &captureDLQ{}
	resp := handle(t, newHandler(t, db, dead), ev)

	t.Run("bad records are not reported as failures", func(t *testing.T) {
		if got := failures(resp); len(got) != 0 {
			t.Errorf("failures %v: a bad record would block the shard", got)
		}
	})
	t.Run("the good records around them are written", func(t *testing.T) {
		if _, ok := db.items[itemKey{1002, 8}]; !ok {
			t.Error("record 0 not written")
		}
		if it, ok := db.items[itemKey{1002, 9}]; !ok || versionOf(it) != V+2 {
			t.Error("record 9 not written")
		}
	})
	if len(dead.msgs) != len(tests) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dead.msgs), len(tests), dead.msgs)
	}
	for i, tt := range tests {
		t.Run("record "+ev.Records[tt.record].Kinesis.SequenceNumber[50:]+" goes to the DLQ saying "+tt.reason, func(t *testing.T) {
			m := dead.msgs[i]
			r := ev.Records[tt.record]
			if !strings.Contains(m.Reason, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", m.Reason, tt.reason)
			}
			if m.SequenceNumber != r.Kinesis.SequenceNumber || m.ShardID != "shardId-000000000001" || m.PartitionKey != "1002" ||
				m.EventSourceARN != r.EventSourceArn || m.Source != "UnifiedStreamETL-sink" || string(m.Data) != string(r.Kinesis.Data) {
				t.Errorf("dead letter %+v does not carry the record and where it came from", m)
			}
		})
	}
}

var errThrottled = &types.ProvisionedThroughputExceededException{Message: strPtr("The level of configured provisioned throughput for the table was exceeded.")}

func TestHandleFailures(t *testing.T) {
	ev := loadEvent(t, "go-processor.json")

	t.Run("throttling is retried and the batch succeeds", func(t *testing.T) {
		db := newFakeTable()
		db.fail = func(k itemKey, call int) error {
			if call <= 2 {
				return errThrottled
			}
			return nil
		}
		resp := handle(t, newHandler(t, db, &captureDLQ{}), ev)
		if got := failures(resp); len(got) != 0 {
			t.Fatalf("failures %v after retryable throttling", got)
		}
		if db.calls[itemKey{1001, 23}] != 3 || len(db.items) != 2 {
			t.Errorf("calls %v, items %d: want 3 calls per key and both items written", db.calls, len(db.items))
		}
	})

	t.Run("persistent throttling reports every record of the key", func(t *testing.T) {
		db := newFakeTable()
		db.fail = func(k itemKey, call int) error {
			if k == (itemKey{1001, 23}) {
				return errThrottled
			}
			return nil
		}
		resp := handle(t, newHandler(t, db, &captureDLQ{}), ev)
		// Item 23 is records 1, 3 and 5; the others are written.
		if got, want := failures(resp), seqs(ev, 1, 3, 5); !slices.Equal(got, want) {
			t.Errorf("failures %v, want %v", got, want)
		}
		if db.calls[itemKey{1001, 23}] != fastRetry.MaxAttempts {
			t.Errorf("%d attempts, want %d", db.calls[itemKey{1001, 23}], fastRetry.MaxAttempts)
		}
		if _, ok := db.items[itemKey{1001, 17}]; !ok {
			t.Error("another key's write was held back by the failure")
		}
	})

	t.Run("an error that is not retryable is reported without retrying", func(t *testing.T) {
		db := newFakeTable()
		db.fail = func(k itemKey, call int) error {
			return &types.ResourceNotFoundException{Message: strPtr("Requested resource not found")}
		}
		resp := handle(t, newHandler(t, db, &captureDLQ{}), ev)
		if got := failures(resp); len(got) != len(ev.Records) {
			t.Errorf("%d failures, want all %d records", len(got), len(ev.Records))
		}
		for k, n := range db.calls {
			if n != 1 {
				t.Errorf("key %v tried %d times", k, n)
			}
		}
	})

	t.Run("an item DynamoDB rejects goes to the DLQ", func(t *testing.T) {
		db := newFakeTable()
		db.fail = func(k itemKey, call int) error {
			if k == (itemKey{1001, 17}) {
				return &smithy.GenericAPIError{Code: "ValidationException", Message: "Item size has exceeded the maximum allowed size", Fault: smithy.FaultClient}
			}
			return nil
		}
		dead := &captureDLQ{}
		resp := handle(t, newHandler(t, db, dead), ev)
		if got := failures(resp); len(got) != 0 {
			t.Errorf("failures %v", got)
		}
		if len(dead.msgs) != 1 || dead.msgs[0].SequenceNumber != ev.Records[4].Kinesis.SequenceNumber || !strings.Contains(dead.msgs[0].Reason, "Item size") {
			t.Errorf("dead letters %+v, want record 4 with DynamoDB's reason", dead.msgs)
		}
	})

	t.Run("an item too large for DynamoDB goes to the DLQ without a write", func(t *testing.T) {
		long := strings.Repeat("x", ddblimit.MaxItemSize)
		data, err := json.Marshal(map[string]any{"orderId": 1001, "itemId": 17, "op": "upsert", "version": 1772366401250000, "shipToAddress": long})
		if err != nil {
			t.Fatal(err)
		}
		big := events.KinesisEvent{Records: append([]events.KinesisEventRecord(nil), ev.Records...)}
		big.Records[4].Kinesis.Data = data
		db := newFakeTable()
		dead := &captureDLQ{}
		resp := handle(t, newHandler(t, db, dead), big)
		if got := failures(resp); len(got) != 0 {
			t.Errorf("failures %v", got)
		}
		if len(dead.msgs) != 1 || dead.msgs[0].SequenceNumber != big.Records[4].Kinesis.SequenceNumber ||
			!strings.Contains(dead.msgs[0].Reason, "larger than DynamoDB's item limit") {
			t.Errorf("dead letters %+v, want record 4 with the item size as reason", dead.msgs)
		}
		if n := db.calls[itemKey{1001, 17}]; n != 0 {
			t.Errorf("the oversized item was sent %d times", n)
		}
	})

	t.Run("a record that cannot reach the DLQ is reported", func(t *testing.T) {
		bad := loadEvent(t, "malformed.json")
		dead := &captureDLQ{err: errors.New("sqs: connection refused")}
		resp := handle(t, newHandler(t, newFakeTable(), dead), bad)
		if got, want := failures(resp), seqs(bad, 1, 2, 3, 4, 5, 6, 7, 8); !slices.Equal(got, want) {
			t.Errorf("failures %v, want the 8 bad records %v", got, want)
		}
	})

	t.Run("only the dead letters the DLQ refused are reported", func(t *testing.T) {
		bad := loadEvent(t, "malformed.json")
		dead := &captureDLQ{err: &dlq.SendError{Failed: []int{0, 7}, Err: errors.New("throttled")}}
		resp := handle(t, newHandler(t, newFakeTable(), dead), bad)
		if got, want := failures(resp), seqs(bad, 1, 8); !slices.Equal(got, want) {
			t.Errorf("failures %v, want %v", got, want)
		}
	})

	t.Run("writes still pending near the deadline are reported in time", func(t *testing.T) {
		db := newFakeTable()
		db.fail = func(k itemKey, call int) error {
			if k == (itemKey{1001, 23}) {
				return errHang
			}
			return nil
		}
		h := newHandler(t, db, &captureDLQ{}, func(c *sink.Config) {
			c.DeadlineReserve = 200 * time.Millisecond
			c.Retry = retry.Policy{MaxAttempts: 100, AttemptTimeout: 250 * time.Millisecond}
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := h.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatal("Handle returned after the invocation deadline")
		}
		if got, want := failures(resp), seqs(ev, 1, 3, 5); !slices.Equal(got, want) {
			t.Errorf("failures %v, want %v", got, want)
		}
	})
}

func TestHandleResponse(t *testing.T) {
	t.Run("an empty batch succeeds", func(t *testing.T) {
		resp := handle(t, newHandler(t, newFakeTable(), &captureDLQ{}), events.KinesisEvent{})
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("failures %v", resp.BatchItemFailures)
		}
	})
	t.Run("failures marshal as Lambda expects", func(t *testing.T) {
		ev := loadEvent(t, "go-processor.json")
		db := newFakeTable()
		db.fail = func(k itemKey, call int) error {
			if k == (itemKey{1002, 8}) {
				return errThrottled
			}
			return nil
		}
		b, err := json.Marshal(handle(t, newHandler(t, db, &captureDLQ{}), ev))
		if err != nil {
			t.Fatal(err)
		}
		want := `{"batchItemFailures":[{"itemIdentifier":"` + ev.Records[2].Kinesis.SequenceNumber + `"},{"itemIdentifier":"` + ev.Records[6].Kinesis.SequenceNumber + `"}]}`
		if string(b) != want {
			t.Errorf("response %s, want %s", b, want)
		}
	})
	t.Run("success marshals as an empty list", func(t *testing.T) {
		b, _ := json.Marshal(handle(t, newHandler(t, newFakeTable(), &captureDLQ{}), loadEvent(t, "go-processor.json")))
		if string(b) != `{"batchItemFailures":[]}` {
			t.Errorf("response %s", b)
		}
	})
}

func TestNew(t *testing.T) {
	if _, err := sink.New(sink.Config{}, newFakeTable(), nil); err == nil || !strings.Contains(err.Error(), "TABLE_NAME") {
		t.Errorf("New without a table = %v, want an error naming TABLE_NAME", err)
	}
	if _, err := sink.New(sink.Config{TableName: table}, nil, nil); err == nil {
		t.Error("New without a client succeeded")
	}
}

func TestDecodeItemRoundTrip(t *testing.T) {
	ev := loadEvent(t, "go-processor.json")
	db := newFakeTable()
	handle(t, newHandler(t, db, &captureDLQ{}), ev)
	var want order.Enriched
	if err := json.Unmarshal(ev.Records[5].Kinesis.Data, &want); err != nil {
		t.Fatal(err)
	}
	want.Op = ""
	got := decodeItem(t, db.items[itemKey{1001, 23}])
	if !reflect.DeepEqual(got.Enriched, want) {
		t.Errorf("DecodeItem =\n%+v\nwant\n%+v", got.Enriched, want)
	}
	if !got.UpdatedAt.Equal(clock) {
		t.Errorf("UpdatedAt %v, want %v", got.UpdatedAt, clock)
	}
	if _, err := sink.DecodeItem(map[string]types.AttributeValue{"orderId": &types.AttributeValueMemberS{Value: "x"}}); err == nil {
		t.Error("DecodeItem accepted an item without keys")
	}
}

func dump(av map[string]types.AttributeValue) string {
	var b strings.Builder
	keys := make([]string, 0, len(av))
	for k := range av {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch v := av[k].(type) {
		case *types.AttributeValueMemberN:
			b.WriteString(k + "=N:" + v.Value + " ")
		case *types.AttributeValueMemberS:
			b.WriteString(k + "=S:" + v.Value + " ")
		default:
			b.WriteString(k + "=? ")
		}
	}
	return b.String()
}

func TestHandleCollapsesPerKey(t *testing.T) {
	k := itemKey{4242, 7}
	rec := func(status, op string, version int64) []byte {
		e := enrichedRecord(k, 0, version, op)
		e.ItemStatus = &status
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name       string
		payloads   [][]byte
		wantStatus string // "" means the item must be absent
	}{
		{"the last of several updates is written", [][]byte{rec("A", "upsert", 10), rec("B", "upsert", 11), rec("C", "upsert", 12)}, "C"},
		{"a replayed older record after a newer one does not win", [][]byte{rec("A", "upsert", 10), rec("B", "upsert", 12), rec("A", "upsert", 10)}, "B"},
		{"on equal versions the later record wins", [][]byte{rec("A", "upsert", 12), rec("B", "upsert", 12)}, "B"},
		{"a delete after an upsert removes the item", [][]byte{rec("A", "upsert", 10), rec("A", "delete", 11)}, ""},
		{"an upsert after a delete re-creates the item", [][]byte{rec("A", "delete", 10), rec("B", "upsert", 11)}, "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newFakeTable()
			db.put(k, 1, "OLD")
			pks := slices.Repeat([]string{"4242"}, len(tt.payloads))
			resp := handle(t, newHandler(t, db, &captureDLQ{}), kinesisEvent(0, tt.payloads, pks))
			if got := failures(resp); len(got) != 0 {
				t.Fatalf("failures %v", got)
			}
			if n := len(db.puts) + len(db.dels); n != 1 {
				t.Errorf("%d writes for one key, want 1", n)
			}
			it, ok := db.items[k]
			switch {
			case tt.wantStatus == "" && ok:
				t.Error("item exists, want it deleted")
			case tt.wantStatus != "" && !ok:
				t.Error("item missing")
			case ok:
				if s := decodeItem(t, it).ItemStatus; s == nil || *s != tt.wantStatus {
					t.Errorf("item status %v, want %q", s, tt.wantStatus)
				}
			}
		})
	}
}
