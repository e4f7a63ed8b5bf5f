package enrich

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/enrich/enrichtest"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// expireState deletes the join state DynamoDB's TTL would have deleted
// by now (dynalite has no TTL) and returns how many rows it deleted.
func expireState(t testing.TB, db *dynamodb.Client, table string, now time.Time) int {
	t.Helper()
	n, err := enrichtest.ExpireState(context.Background(), db, table, now, harnessRetries)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// liveStateRows counts the rows of the state table that are not
// tombstones.
func liveStateRows(t testing.TB, db *dynamodb.Client, table string) int {
	t.Helper()
	n := 0
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background(), harnessRetries)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			r, err := decodeRow(item)
			if err != nil {
				t.Fatal(err)
			}
			if !r.deleted() {
				n++
			}
		}
	}
	return n
}

// agedPipeline is enrich and the sink on dynalite, driven one step at a
// time, with a clock the test advances.
type agedPipeline struct {
	db                   *dynamodb.Client
	stateTable, outTable string
	clock                *enrichtest.Clock
	enrich               *Handler
	sink                 *sink.Handler
	out                  *fakeStream
	sent                 int
}

func newAgedPipeline(t *testing.T, db *dynamodb.Client, name string, products refdata.Catalogue, start time.Time) *agedPipeline {
	t.Helper()
	ctx := context.Background()
	p := &agedPipeline{db: db, stateTable: name + "State", outTable: name + "Enriched", clock: enrichtest.NewClock(start), out: &fakeStream{}}
	if err := CreateStateTable(ctx, db, p.stateTable); err != nil {
		t.Fatal(err)
	}
	if err := sink.CreateTable(ctx, db, p.outTable); err != nil {
		t.Fatal(err)
	}
	var err error
	p.enrich, err = New(Config{StateTable: p.stateTable, OutputStream: "order-item-enriched", Retry: fastRetry, Now: p.clock.Now},
		Deps{DB: db, Stream: p.out, Products: staticProducts(products), DLQ: &fakeDLQ{}})
	if err != nil {
		t.Fatal(err)
	}
	if p.sink, err = sink.New(sink.Config{TableName: p.outTable, Retry: fastRetry}, db, &fakeDLQ{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// run hands recs to enrich as one batch and what it emitted to the sink.
func (p *agedPipeline) run(t *testing.T, h *history) {
	t.Helper()
	ctx := context.Background()
	resp, err := p.enrich.Handle(ctx, event(h.recs...))
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("enrich: failures %v, error %v", seqs(resp), err)
	}
	h.recs = nil
	entries := p.out.entries[p.sent:]
	p.sent = len(p.out.entries)
	if len(entries) == 0 {
		return
	}
	resp, err = p.sink.Handle(ctx, event(asKinesis(entries)...))
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("sink: failures %v, error %v", seqs(resp), err)
	}
}

// matches asserts that OrderEnriched is the SQL join of the source.
func (p *agedPipeline) matches(t *testing.T, h *history, when string) {
	t.Helper()
	want, got := h.sqlJoin(), tableRows(t, p.db, p.outTable)
	if !slices.Equal(got, want) {
		t.Errorf("%s: OrderEnriched differs from the source join\n got %s\nwant %s", when,
			strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// Source changes for scripted histories: each changes the model tables
// and emits the DMS record.
func (h *history) putOrder(op string, id int64) {
	h.orders[id] = h.orderData()
	h.emit(order.TableOrder, op, id, h.orders[id])
}

func (h *history) putItem(op string, id, itemID int64) {
	if h.items[id] == nil {
		h.items[id] = map[int64]map[string]any{}
	}
	h.items[id][itemID] = h.itemData(itemID)
	h.emit(order.TableOrderItem, op, id, h.items[id][itemID])
}

func (h *history) deleteItem(id, itemID int64) {
	h.emit(order.TableOrderItem, "delete", id, h.items[id][itemID])
	delete(h.items[id], itemID)
}

func (h *history) deleteOrder(id int64) {
	h.emit(order.TableOrder, "delete", id, h.orders[id])
	delete(h.orders, id)
}

// deleteOrderAndItems deletes the items, then the order, as the schema's
// foreign key makes the source do.
func (h *history) deleteOrderAndItems(id int64, itemIDs ...int64) {
	for _, itemID := range itemIDs {
		h.deleteItem(id, itemID)
	}
	h.deleteOrder(id)
}

// TestJoinStaysExactAfterStateExpiry lets 8, 30 and 400 days pass between
// two stretches of changes, deleting state rows as DynamoDB's TTL does, and
// checks after each later change that OrderEnriched is the source join.
// Join state used to expire a week after an order's last change, which
// left stale and ghost rows behind (issue 13).
func TestJoinStaysExactAfterStateExpiry(t *testing.T) {
	// The SDK's default retries absorb dynalite's occasional dropped connection.
	db := dynamodb.NewFromConfig(testenv.AWSConfig(t, testenv.StartDynalite(t)))
	day := 24 * time.Hour
	for _, gap := range []int{8, 30, 400} {
		t.Run(fmt.Sprintf("%d days later", gap), func(t *testing.T) {
			h := newHistory(rand.New(rand.NewPCG(uint64(gap), 13)), testProductsWithPrices())
			p := newAgedPipeline(t, db, fmt.Sprintf("Aged%d", gap), h.products, h.src.clock)

			// Day 0: a full load and a few changes, leaving tombstones.
			for id := int64(1); id <= 5; id++ {
				h.putOrder("load", id)
				for n := range int64(3) {
					h.putItem("load", id, 3*(id-1)+n+1)
				}
			}
			// Order 6's item is loaded before its order, which arrives
			// only after the gap: the item waits in state meanwhile.
			h.putItem("load", 6, 16)
			h.deleteItem(4, 12)
			h.deleteOrderAndItems(5, 13, 14, 15)
			p.run(t, h)
			p.matches(t, h, "day 0")
			live := liveStateRows(t, db, p.stateTable)

			// Time passes; DynamoDB deletes what has expired.
			now := p.clock.Advance(time.Duration(gap) * day)
			h.src.clock = h.src.clock.Add(time.Duration(gap) * day)
			expired := expireState(t, db, p.stateTable, now)
			tombstones := 0 // items 12-15 and order 5
			if time.Duration(gap)*day >= DefaultTombstoneRetention {
				tombstones = 5
			}
			if expired != tombstones {
				t.Errorf("%d state rows expired after %d days, want %d (the tombstones, once past their retention)", expired, gap, tombstones)
			}
			if n := liveStateRows(t, db, p.stateTable); n != live {
				t.Errorf("%d live state rows after %d days, want all %d", n, gap, live)
			}

			h.putOrder("update", 1)
			p.run(t, h)
			p.matches(t, h, "an order update")

			h.putItem("update", 2, 5)
			p.run(t, h)
			p.matches(t, h, "an item update")

			// The schema's foreign key makes the items go first...
			h.deleteOrderAndItems(3, 7, 8, 9)
			p.run(t, h)
			p.matches(t, h, "an order delete after its items")

			// ...but the join does not rely on it: an order deleted with
			// items left behind takes its enriched rows with it.
			h.deleteOrder(4)
			p.run(t, h)
			p.matches(t, h, "an order delete leaving its items")

			h.putOrder("load", 6)
			p.run(t, h)
			p.matches(t, h, "the order of a waiting item")

			h.putItem("insert", 1, 17)
			h.putOrder("insert", 5)
			h.putItem("insert", 5, 13)
			p.run(t, h)
			p.matches(t, h, "new rows where tombstones were")
		})
	}
}

// testProductsWithPrices is a catalogue for items 1-12; higher item ids
// are unknown products.
func testProductsWithPrices() refdata.Catalogue {
	products := refdata.Catalogue{}
	for id := int64(1); id <= 12; id++ {
		products[id] = order.Product{ProductID: id, ProductName: fmt.Sprintf("Product %d", id), ProductPrice: order.MustDecimal(fmt.Sprintf("%d.25", id))}
	}
	return products
}
