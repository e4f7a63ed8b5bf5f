package enrich

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/join"
	"github.com/unified-streaming-etl/etl/internal/order"
)

var testNow = time.Date(2024, 3, 18, 10, 0, 0, 0, time.UTC)

type fixture struct {
	db     *fakeDB
	stream *fakeStream
	dead   *fakeDLQ
	h      *Handler
}

func newFixture(t *testing.T, products Products) *fixture {
	t.Helper()
	f := &fixture{db: newFakeDB(), stream: &fakeStream{}, dead: &fakeDLQ{}}
	if products == nil {
		products = testProducts
	}
	h, err := New(Config{
		StateTable: "EnrichState", OutputStream: "order-item-enriched", Source: "enrich-test",
		Retry: fastRetry, Now: func() time.Time { return testNow },
	}, Deps{DB: f.db, Stream: f.stream, Products: products, DLQ: f.dead})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func (f *fixture) handle(t *testing.T, ev events.KinesisEvent) events.KinesisEventResponse {
	t.Helper()
	resp, err := f.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp
}

// summary renders an emitted row with what tells its images apart.
func summary(e order.Enriched) string {
	if e.IsDelete() {
		return fmt.Sprintf("delete %d/%d", e.OrderID, e.ItemID)
	}
	return fmt.Sprintf("upsert %d/%d %s qty=%d", e.OrderID, e.ItemID, *e.OrderStatus, *e.ItemQuantity)
}

func summaries(rows []order.Enriched) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, summary(r))
	}
	return out
}

func loadEvent(t *testing.T, name string) events.KinesisEvent {
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

func TestHandleRealisticBatch(t *testing.T) {
	path, err := filepath.Abs("testdata/products.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	products, err := NewReference("file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, products)
	ev := loadEvent(t, "kinesis-event.json")
	resp := f.handle(t, ev)

	t.Run("every record is accounted for without a failure", func(t *testing.T) {
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("failures %v, want none", seqs(resp))
		}
	})
	t.Run("the stream receives the last joined row of each item, keyed by orderId", func(t *testing.T) {
		want := readGolden(t, "testdata/kinesis-event.want.jsonl")
		var got []string
		for _, e := range f.stream.entries {
			got = append(got, fmt.Sprintf(`{"partitionKey":%q,"data":%s}`, e.key, e.data))
		}
		if !slices.Equal(got, want) {
			t.Errorf("stream records\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	})
	t.Run("the malformed record goes to the dead-letter queue with its reason", func(t *testing.T) {
		if len(f.dead.msgs) != 1 {
			t.Fatalf("dead letters = %d, want 1", len(f.dead.msgs))
		}
		m := f.dead.msgs[0]
		if m.SequenceNumber != ev.Records[4].Kinesis.SequenceNumber || m.Source != "enrich-test" ||
			!strings.Contains(m.Reason, "orderId") || !bytes.Equal(m.Data, ev.Records[4].Kinesis.Data) {
			t.Errorf("dead letter = %+v", m)
		}
	})
	t.Run("the state holds the order, its items and the item still waiting for its order, none expiring", func(t *testing.T) {
		o, ok := f.db.row("1002", "order")
		if !ok || *o.order.Status != "SHIPPED" || o.order.Version != 1710755220000001 || o.ttl != 0 {
			t.Errorf("order row = %+v, ttl %d (found %v), want SHIPPED at version 1710755220000001 without expiry", o.order, o.ttl, ok)
		}
		for _, k := range [][2]string{{"1002", "item#42"}, {"1002", "item#977"}, {"1003", "item#7"}} {
			if r, ok := f.db.row(k[0], k[1]); !ok || r.item == nil || r.ttl != 0 {
				t.Errorf("state row %s/%s missing (%v) or expiring (ttl %d)", k[0], k[1], ok, r.ttl)
			}
		}
		if _, ok := f.db.row("1003", "order"); ok {
			t.Error("order 1003 was never seen but has a state row")
		}
	})
	t.Run("state is read and written in bulk, not per record", func(t *testing.T) {
		if f.db.queries != 1 || f.db.gets != 1 || f.db.writes != 1 || f.stream.calls != 1 {
			t.Errorf("calls: Query %d, BatchGetItem %d, BatchWriteItem %d, PutRecords %d; want 1 each",
				f.db.queries, f.db.gets, f.db.writes, f.stream.calls)
		}
	})
}

func readGolden(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var buf bytes.Buffer
		if err := json.Compact(&buf, sc.Bytes()); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, buf.String())
	}
	return lines
}

func TestHandleJoinsAcrossBatches(t *testing.T) {
	s := newSource()
	// Records are made in stream order: an item written before its order.
	early7 := s.item("insert", 1, 7, 1)
	o1, i7, i42 := s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1), s.item("insert", 1, 42, 1)
	i7b := s.item("update", 1, 7, 2)
	tests := []struct {
		name    string
		batches []events.KinesisEvent
		want    []string // rows emitted by the last batch
	}{
		{
			name:    "an item whose order arrives in a later batch is emitted with the order",
			batches: []events.KinesisEvent{event(early7), event(o1)},
			want:    []string{"upsert 1/7 NEW qty=1"},
		},
		{
			name:    "an order update in a later batch re-emits the items stored earlier",
			batches: []events.KinesisEvent{event(o1, i7, i42), event(s.order("update", 1, "SHIPPED"))},
			want:    []string{"upsert 1/7 SHIPPED qty=1", "upsert 1/42 SHIPPED qty=1"},
		},
		{
			name:    "an item update in a later batch joins the stored order",
			batches: []events.KinesisEvent{event(o1, i7, i42), event(i7b)},
			want:    []string{"upsert 1/7 NEW qty=2"},
		},
		{
			name:    "an item delete in a later batch emits its delete",
			batches: []events.KinesisEvent{event(o1, i7, i42), event(s.item("delete", 1, 42, 1))},
			want:    []string{"delete 1/42"},
		},
		{
			name:    "an order delete in a later batch deletes every stored item",
			batches: []events.KinesisEvent{event(o1, i7, i42), event(s.order("delete", 1, "NEW"))},
			want:    []string{"delete 1/7", "delete 1/42"},
		},
		{
			name: "an order inserted again re-joins the items that stayed in state",
			batches: []events.KinesisEvent{
				event(o1, i7), event(s.order("delete", 1, "NEW")), event(s.order("insert", 1, "REOPENED")),
			},
			want: []string{"upsert 1/7 REOPENED qty=1"},
		},
		{
			name:    "a redelivered batch re-emits only the stored images",
			batches: []events.KinesisEvent{event(o1, i7, i7b), event(o1, i7, i7b)},
			want:    []string{"upsert 1/7 NEW qty=2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			for _, b := range tt.batches {
				f.stream.entries = nil
				if resp := f.handle(t, b); len(resp.BatchItemFailures) != 0 {
					t.Fatalf("failures %v", seqs(resp))
				}
			}
			if got := summaries(f.stream.rows()); !slices.Equal(got, tt.want) {
				t.Errorf("last batch emitted %v, want %v", got, tt.want)
			}
		})
	}
}

// twoOrders is the insert of orders 1 and 2 with items 7 and 42 each, the
// records of order 2 at indexes 2, 3 and 5.
func twoOrders(s *source) []events.KinesisEventRecord {
	return []events.KinesisEventRecord{
		s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1),
		s.order("insert", 2, "NEW"), s.item("insert", 2, 7, 1),
		s.item("insert", 1, 42, 1), s.item("insert", 2, 42, 1),
	}
}

func TestHandleFailures(t *testing.T) {
	s := newSource()
	batch := event(twoOrders(s)...)
	order2 := []string{batch.Records[2].Kinesis.SequenceNumber, batch.Records[3].Kinesis.SequenceNumber, batch.Records[5].Kinesis.SequenceNumber}
	onlyOrder2 := func(reqs []ddbtypes.WriteRequest) []ddbtypes.WriteRequest {
		var out []ddbtypes.WriteRequest
		for _, r := range reqs {
			if pkOf(r.PutRequest.Item) == "2" {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		name       string
		setup      func(f *fixture)
		wantFailed []string
		wantRows   int    // rows on the stream
		wantState  string // orders with a stored order row
	}{
		{
			name: "PutRecords entries that are throttled are retried until written",
			setup: func(f *fixture) {
				f.stream.failEntry = func(call int, key string, _ order.Enriched) bool { return call <= 2 && key == "2" }
			},
			wantRows: 4, wantState: "1,2",
		},
		{
			name: "an order whose rows cannot be written is reported by sequence number",
			setup: func(f *fixture) {
				f.stream.failEntry = func(_ int, key string, _ order.Enriched) bool { return key == "2" }
			},
			wantFailed: order2, wantRows: 2, wantState: "1,2",
		},
		{
			name: "BatchWriteItem unprocessed items are retried until stored",
			setup: func(f *fixture) {
				f.db.onWrite = func(call int, reqs []ddbtypes.WriteRequest) ([]ddbtypes.WriteRequest, error) {
					if call == 1 {
						return onlyOrder2(reqs), nil
					}
					return nil, nil
				}
			},
			wantRows: 4, wantState: "1,2",
		},
		{
			name: "an order whose state stays unprocessed is reported and emits nothing",
			setup: func(f *fixture) {
				f.db.onWrite = func(_ int, reqs []ddbtypes.WriteRequest) ([]ddbtypes.WriteRequest, error) {
					return onlyOrder2(reqs), nil
				}
			},
			wantFailed: order2, wantRows: 2, wantState: "1",
		},
		{
			name: "an order whose state cannot be read is reported and nothing of it is emitted",
			setup: func(f *fixture) {
				f.db.onQuery = func(_ int, pk string) error {
					if pk == "2" {
						return errAccessDenied
					}
					return nil
				}
			},
			wantFailed: order2, wantRows: 2, wantState: "1",
		},
		{
			name: "throttled state reads are retried",
			setup: func(f *fixture) {
				f.db.onQuery = func(call int, _ string) error {
					if call <= 2 {
						return throttled()
					}
					return nil
				}
			},
			wantRows: 4, wantState: "1,2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			tt.setup(f)
			resp := f.handle(t, batch)
			if got := seqs(resp); !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failures %v, want %v", got, tt.wantFailed)
			}
			if got := len(f.stream.rows()); got != tt.wantRows {
				t.Errorf("stream rows %d, want %d", got, tt.wantRows)
			}
			var stored []string
			for _, pk := range []string{"1", "2"} {
				if _, ok := f.db.row(pk, "order"); ok {
					stored = append(stored, pk)
				}
			}
			if got := strings.Join(stored, ","); got != tt.wantState {
				t.Errorf("stored orders %q, want %q", got, tt.wantState)
			}
		})
	}
}

// DynamoDB refuses a whole BatchWriteItem call when one of its rows is
// invalid; the handler must not let that row take its neighbours down.
func TestHandleStateRowDynamoDBRefuses(t *testing.T) {
	s := newSource()
	batch := event(append(twoOrders(s), s.order("insert", 3, "NEW"), s.item("insert", 3, 7, 1))...)
	order2 := []int{2, 3, 5}
	refuseOrder2 := func(_ int, reqs []ddbtypes.WriteRequest) ([]ddbtypes.WriteRequest, error) {
		for _, r := range reqs {
			if pkOf(r.PutRequest.Item) == "2" && strAttr(r.PutRequest.Item, attrSK) == itemSortKey(42) {
				return nil, validation("Item size has exceeded the maximum allowed size")
			}
		}
		return nil, nil
	}

	f := newFixture(t, nil)
	f.db.onWrite = refuseOrder2
	resp := f.handle(t, batch)

	t.Run("no record is reported back to Lambda", func(t *testing.T) {
		if got := seqs(resp); len(got) != 0 {
			t.Errorf("failures %v, want none", got)
		}
	})
	t.Run("the orders that shared the call are stored and emitted", func(t *testing.T) {
		for _, pk := range []string{"1", "3"} {
			if _, ok := f.db.row(pk, skOrder); !ok {
				t.Errorf("order %s not stored", pk)
			}
		}
		if got, want := summaries(f.stream.rows()), []string{"upsert 1/7 NEW qty=1", "upsert 1/42 NEW qty=1", "upsert 3/7 NEW qty=1"}; !slices.Equal(got, want) {
			t.Errorf("emitted %v, want %v", got, want)
		}
	})
	t.Run("the refused order emits nothing and every record of it is dead-lettered with DynamoDB's reason", func(t *testing.T) {
		if _, ok := f.db.row("2", skOrder); ok {
			t.Error("order 2 was stored")
		}
		var got []string
		for _, m := range f.dead.msgs {
			got = append(got, m.SequenceNumber)
			if !strings.Contains(m.Reason, "DynamoDB refused the join state of order 2") || !strings.Contains(m.Reason, "Item size has exceeded") {
				t.Errorf("reason %q", m.Reason)
			}
		}
		var want []string
		for _, i := range order2 {
			want = append(want, batch.Records[i].Kinesis.SequenceNumber)
		}
		if !slices.Equal(got, want) {
			t.Errorf("dead letters %v, want order 2's records %v", got, want)
		}
	})
}

func TestRedeliveryAfterAFailedWriteReEmitsTheFinalRows(t *testing.T) {
	s := newSource()
	batch := event(s.order("insert", 2, "NEW"), s.item("insert", 2, 7, 1), s.item("update", 2, 7, 2),
		s.order("update", 2, "SHIPPED"))
	f := newFixture(t, nil)
	f.stream.failEntry = func(int, string, order.Enriched) bool { return true }
	if _, err := f.h.Handle(context.Background(), batch); err == nil {
		t.Fatal("a batch whose only order could not be written succeeded")
	}
	f.stream.failEntry = nil
	// Lambda may split the redelivery differently from the first attempt.
	var got []string
	for _, part := range []events.KinesisEvent{event(batch.Records[:2]...), event(batch.Records[2:]...)} {
		f.stream.entries = nil
		if resp := f.handle(t, part); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %v", seqs(resp))
		}
		got = append(got, strings.Join(summaries(f.stream.rows()), ", "))
	}
	want := []string{"", "upsert 2/7 SHIPPED qty=2"}
	if !slices.Equal(got, want) {
		t.Errorf("redelivered batches emitted %q, want %q: nothing older than the failed attempt's rows", got, want)
	}
}

func TestHandleKeepsWhatAFailedBatchGetDidRead(t *testing.T) {
	s := newSource()
	f := newFixture(t, nil)
	f.handle(t, event(s.order("insert", 1, "NEW"), s.order("insert", 2, "NEW")))
	f.stream.entries = nil
	// The first call reads order 1's keys and leaves order 2's unprocessed;
	// every later call is throttled, so order 2 is never read.
	f.db.onGet = func(call int, keys []map[string]ddbtypes.AttributeValue) ([]map[string]ddbtypes.AttributeValue, error) {
		if call > 1 {
			return nil, throttled()
		}
		var rest []map[string]ddbtypes.AttributeValue
		for _, k := range keys {
			if pkOf(k) == "2" {
				rest = append(rest, k)
			}
		}
		return rest, nil
	}
	item1, item2 := s.item("insert", 1, 7, 1), s.item("insert", 2, 7, 1)
	resp := f.handle(t, event(item1, item2))
	if got := seqs(resp); !slices.Equal(got, []string{item2.Kinesis.SequenceNumber}) {
		t.Errorf("failures %v, want only order 2's record", got)
	}
	if got := summaries(f.stream.rows()); !slices.Equal(got, []string{"upsert 1/7 NEW qty=1"}) {
		t.Errorf("emitted %v, want order 1's item joined with the order row that was read", got)
	}
}

func TestHandleDeadLetters(t *testing.T) {
	s := newSource()
	good := s.order("insert", 1, "NEW")
	bad := s.item("insert", 1, 7, 1)
	bad.Kinesis.Data = []byte(`{"data":{"orderId":1,"itemId":7,"itemAmount":"12,50"},"metadata":` +
		`{"timestamp":"2024-03-18T09:45:03.413551Z","record-type":"data","operation":"insert",` +
		`"partition-key-type":"attribute-name","schema-name":"orders","table-name":"order_item"}}`)
	control := s.order("insert", 1, "NEW")
	control.Kinesis.Data = []byte(`{"control":{},"metadata":{"timestamp":"2024-03-18T09:41:26.004512Z",` +
		`"record-type":"control","operation":"create-table","partition-key-type":"task-id","schema-name":"orders","table-name":"order"}}`)

	t.Run("a malformed record is dead-lettered and not reported", func(t *testing.T) {
		f := newFixture(t, nil)
		resp := f.handle(t, event(good, bad, control))
		if len(resp.BatchItemFailures) != 0 || len(f.dead.msgs) != 1 || !strings.Contains(f.dead.msgs[0].Reason, "itemAmount") {
			t.Errorf("failures %v, dead letters %+v; want none and one about itemAmount", seqs(resp), f.dead.msgs)
		}
	})
	t.Run("a malformed record the dead-letter queue refuses is reported", func(t *testing.T) {
		f := newFixture(t, nil)
		f.dead.err = errors.New("sqs: access denied")
		resp := f.handle(t, event(good, bad, control))
		if got := seqs(resp); !slices.Equal(got, []string{bad.Kinesis.SequenceNumber}) {
			t.Errorf("failures %v, want only the malformed record %s", got, bad.Kinesis.SequenceNumber)
		}
	})
	t.Run("control records need no reference data and produce nothing", func(t *testing.T) {
		f := newFixture(t, failingProducts{errors.New("no catalogue")})
		resp := f.handle(t, event(control))
		if len(resp.BatchItemFailures) != 0 || f.stream.calls != 0 || f.db.gets+f.db.queries+f.db.writes != 0 {
			t.Errorf("a control-only batch made calls or failed: %v", seqs(resp))
		}
	})
}

func TestHandleReturnsAnErrorWhenNothingCouldBeProcessed(t *testing.T) {
	s := newSource()
	batch := event(s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1))
	tests := []struct {
		name     string
		products Products
		setup    func(f *fixture)
		wantErr  string
	}{
		{
			name:     "the reference data cannot be loaded",
			products: failingProducts{errors.New("s3: NoSuchKey")},
			setup:    func(*fixture) {},
			wantErr:  "NoSuchKey",
		},
		{
			name:    "the output stream refuses every call",
			setup:   func(f *fixture) { f.stream.failCall = func(int) error { return errAccessDenied } },
			wantErr: "AccessDenied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.products)
			tt.setup(f)
			_, err := f.h.Handle(context.Background(), batch)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Handle error = %v, want one mentioning %s", err, tt.wantErr)
			}
		})
	}
}

func TestHandleStateRetention(t *testing.T) {
	day := 24 * time.Hour
	// older code stored live rows with an expiry; new code must neither
	// lose them nor leave the expiry on them.
	seed := func(f *fixture, orderTTL time.Time, itemTTLs map[int64]int64) {
		f.db.rows["1"] = map[string]map[string]ddbtypes.AttributeValue{
			skOrder: encodeOrder("1", &join.OrderRow{Version: 1, Status: ptr("NEW")}, orderTTL.Unix()),
		}
		for id, ttl := range itemTTLs {
			f.db.rows["1"][itemSortKey(id)] = encodeItem("1", &join.ItemRow{ItemID: id, Version: 1, Quantity: ptr(int64(1))}, ttl)
		}
	}
	t.Run("a live order row past an expiry from older code is still joined, and its expiry removed", func(t *testing.T) {
		s := newSource()
		f := newFixture(t, nil)
		seed(f, testNow.Add(-time.Second), nil)
		f.handle(t, event(s.item("insert", 1, 7, 1)))
		if got, want := summaries(f.stream.rows()), []string{"upsert 1/7 NEW qty=1"}; !slices.Equal(got, want) {
			t.Errorf("emitted %v, want %v", got, want)
		}
		if r, _ := f.db.row("1", skOrder); r.ttl != 0 {
			t.Errorf("order row ttl %d, want none", r.ttl)
		}
	})
	t.Run("an order change rewrites every live row of its order without expiry, changed or not", func(t *testing.T) {
		s := newSource()
		f := newFixture(t, nil)
		seed(f, testNow.Add(2*day), map[int64]int64{7: testNow.Add(3 * day).Unix(), 42: testNow.Add(-day).Unix(), 977: 0})
		writes := 0
		f.db.onWrite = func(_ int, reqs []ddbtypes.WriteRequest) ([]ddbtypes.WriteRequest, error) {
			writes += len(reqs)
			return nil, nil
		}
		f.handle(t, event(s.order("update", 1, "SHIPPED")))
		for _, sk := range []string{skOrder, itemSortKey(7), itemSortKey(42), itemSortKey(977)} {
			if r, ok := f.db.row("1", sk); !ok || r.ttl != 0 {
				t.Errorf("row %s: found %v, ttl %d; want it kept without expiry", sk, ok, r.ttl)
			}
		}
		if writes != 3 {
			t.Errorf("%d rows written, want 3: the order and the two items with an expiry (977 has none)", writes)
		}
		want := []string{"upsert 1/7 SHIPPED qty=1", "upsert 1/42 SHIPPED qty=1", "upsert 1/977 SHIPPED qty=1"}
		if got := summaries(f.stream.rows()); !slices.Equal(got, want) {
			t.Errorf("emitted %v, want %v", got, want)
		}
	})
	t.Run("a live row without expiry is not rewritten when only read", func(t *testing.T) {
		s := newSource()
		f := newFixture(t, nil)
		f.db.rows["1"] = map[string]map[string]ddbtypes.AttributeValue{
			skOrder: encodeOrder("1", &join.OrderRow{Version: 1, Status: ptr("NEW")}, 0),
		}
		f.handle(t, event(s.item("insert", 1, 7, 1)))
		if f.db.writes != 1 {
			t.Errorf("%d BatchWriteItem calls, want 1", f.db.writes)
		}
		if _, ok := f.db.row("1", itemSortKey(7)); !ok {
			t.Error("the new item was not stored")
		}
	})
	t.Run("deletes leave tombstones that expire after the retention; live rows have none", func(t *testing.T) {
		s := newSource()
		f := newFixture(t, nil)
		f.handle(t, event(s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1), s.item("insert", 1, 42, 1)))
		f.handle(t, event(s.item("delete", 1, 42, 1)))
		if r, _ := f.db.row("1", itemSortKey(42)); !r.item.Deleted || r.ttl != testNow.Add(DefaultTombstoneRetention).Unix() {
			t.Errorf("item 42: deleted %v, ttl %d; want a tombstone expiring at %d", r.item.Deleted, r.ttl, testNow.Add(DefaultTombstoneRetention).Unix())
		}
		for _, sk := range []string{skOrder, itemSortKey(7)} {
			if r, _ := f.db.row("1", sk); r.ttl != 0 {
				t.Errorf("live row %s has ttl %d", sk, r.ttl)
			}
		}
	})
	t.Run("an expired tombstone is absent although DynamoDB has not deleted it yet", func(t *testing.T) {
		s := newSource()
		f := newFixture(t, nil)
		f.db.rows["1"] = map[string]map[string]ddbtypes.AttributeValue{
			skOrder:         encodeOrder("1", &join.OrderRow{Version: 1, Status: ptr("NEW")}, 0),
			itemSortKey(7):  encodeItem("1", &join.ItemRow{ItemID: 7, Version: 1 << 62, Deleted: true}, testNow.Add(-time.Second).Unix()),
			itemSortKey(42): encodeItem("1", &join.ItemRow{ItemID: 42, Version: 1 << 62, Deleted: true}, testNow.Add(time.Second).Unix()),
		}
		// Both changes are older than the tombstones: only the one within
		// its retention may still hold them back.
		f.handle(t, event(s.item("insert", 1, 7, 1), s.item("insert", 1, 42, 1)))
		if got, want := summaries(f.stream.rows()), []string{"upsert 1/7 NEW qty=1"}; !slices.Equal(got, want) {
			t.Errorf("emitted %v, want %v", got, want)
		}
	})
}

func TestQueryReadsEveryPage(t *testing.T) {
	s := newSource()
	f := newFixture(t, nil)
	f.db.pageSize = 2
	f.handle(t, event(s.item("insert", 1, 7, 1), s.item("insert", 1, 42, 1), s.item("insert", 1, 977, 1)))
	f.handle(t, event(s.order("insert", 1, "NEW")))
	want := []string{"upsert 1/7 NEW qty=1", "upsert 1/42 NEW qty=1", "upsert 1/977 NEW qty=1"}
	if got := summaries(f.stream.rows()); !slices.Equal(got, want) {
		t.Errorf("emitted %v, want %v", got, want)
	}
}

// A throttled page is retried on its own: the read resumes from the page
// that failed instead of starting the partition over.
func TestQueryRetriesTheFailedPageOnly(t *testing.T) {
	s := newSource()
	f := newFixture(t, nil)
	f.db.pageSize = 2
	f.handle(t, event(s.item("insert", 1, 7, 1), s.item("insert", 1, 42, 1), s.item("insert", 1, 977, 1)))
	var starts []string // ExclusiveStartKey sort key of every query call
	base := f.db.queries
	f.db.onQuery = func(call int, _ string) error {
		if call == base+2 {
			return throttled()
		}
		return nil
	}
	f.db.onQueryInput = func(in *dynamodb.QueryInput) {
		starts = append(starts, strAttr(in.ExclusiveStartKey, attrSK))
	}
	f.handle(t, event(s.order("insert", 1, "NEW")))
	want := []string{"upsert 1/7 NEW qty=1", "upsert 1/42 NEW qty=1", "upsert 1/977 NEW qty=1"}
	if got := summaries(f.stream.rows()); !slices.Equal(got, want) {
		t.Errorf("emitted %v, want %v", got, want)
	}
	// The order's partition holds the order row and three items: pages of
	// two, so the second call (from the second page) fails and is repeated
	// from the same key.
	if len(starts) != 3 || starts[0] != "" || starts[1] == "" || starts[2] != starts[1] {
		t.Errorf("query calls started at %q, want the first page then the second page twice", starts)
	}
}

func TestChunkRecordsStaysWithinPutRecordsLimits(t *testing.T) {
	small := make([]outRecord, 1201)
	for i := range small {
		small[i] = outRecord{key: "1", data: []byte(`{}`)}
	}
	big := make([]outRecord, 5)
	for i := range big {
		big[i] = outRecord{key: "1", data: make([]byte, 2<<20)}
	}
	tests := []struct {
		name string
		recs []outRecord
		want []int
	}{
		{"many small records are split at 500 per call", small, []int{500, 500, 201}},
		{"large records are split at 5 MiB per call", big, []int{2, 2, 1}},
		{"no records make no call", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, c := range chunkRecords(tt.recs) {
				got = append(got, len(c))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("chunk sizes %v, want %v", got, tt.want)
			}
		})
	}
}
