package enrich

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/enrich/enrichtest"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
)

// history generates a random, FK-valid change history of the two source
// tables, as DMS would put it on the unified stream, and keeps the final
// tables to compare against.
type history struct {
	rng    *rand.Rand
	src    *source
	orders map[int64]map[string]any           // orderId → DMS data of the row
	items  map[int64]map[int64]map[string]any // orderId → itemId → DMS data of the row
	recs   []events.KinesisEventRecord
	// joined holds, per order-item, every row the SQL join had at some
	// point of the history: all that an enriched upsert may ever carry.
	joined   map[[2]int64]map[string]bool
	products refdata.Catalogue
}

func newHistory(rng *rand.Rand, products refdata.Catalogue) *history {
	return &history{rng: rng, src: newSource(), orders: map[int64]map[string]any{},
		items: map[int64]map[int64]map[string]any{}, joined: map[[2]int64]map[string]bool{}, products: products}
}

func (h *history) amount() string { return fmt.Sprintf("%d.%02d", h.rng.IntN(2000), h.rng.IntN(100)) }

func (h *history) pick(n int) int64 { return int64(1 + h.rng.IntN(n)) }

func (h *history) orderData() map[string]any {
	statuses := []string{"PENDING", "PAID", "SHIPPED", "DELIVERED"}
	d := map[string]any{
		"orderAmount": h.amount(), "orderStatus": statuses[h.rng.IntN(len(statuses))],
		"orderDateTime": time.Date(2024, 3, 18, 9, 0, 0, 0, time.UTC).Add(time.Duration(h.rng.IntN(3600000)) * time.Millisecond).Format("2006-01-02T15:04:05.000Z"),
		"shipToName":    fmt.Sprintf("Customer %d", h.rng.IntN(100)), "shipToCity": "Seattle", "shipToState": "WA",
	}
	if h.rng.IntN(3) > 0 { // a nullable column, sometimes null
		d["shipToZip"] = fmt.Sprintf("98%03d", h.rng.IntN(1000))
	}
	return d
}

func (h *history) itemData(itemID int64) map[string]any {
	d := map[string]any{"itemId": itemID, "itemQuantity": h.rng.IntN(9) + 1, "itemAmount": h.amount()}
	if h.rng.IntN(4) > 0 {
		d["itemStatus"] = []string{"OPEN", "PICKED", "PACKED"}[h.rng.IntN(3)]
	}
	return d
}

func (h *history) emit(table, op string, orderID int64, data map[string]any) {
	h.recs = append(h.recs, h.src.record(table, op, orderID, clone(data)))
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// step applies one random source change: inserts, updates and deletes of
// both tables, with the foreign key respected (items only for existing
// orders; an order's items are deleted before the order). While loading,
// as in DMS's full load, rows are only inserted, with operation "load".
func (h *history) step(loading bool) {
	const orderIDs, itemIDs = 8, 12
	id := h.pick(orderIDs)
	h.change(id, loading)
	if _, ok := h.orders[id]; ok {
		for _, itemID := range sortedKeys(h.items[id]) {
			k := [2]int64{id, itemID}
			if h.joined[k] == nil {
				h.joined[k] = map[string]bool{}
			}
			h.joined[k][h.joinRow(id, itemID)] = true
		}
	}
}

func (h *history) change(id int64, loading bool) {
	const itemIDs = 12
	op := "insert"
	if loading {
		op = "load"
	}
	o, exists := h.orders[id]
	switch r := h.rng.IntN(100); {
	case !exists && r < 60:
		h.orders[id] = h.orderData()
		h.emit(order.TableOrder, op, id, h.orders[id])
	case !exists:
		return
	case loading && r < 22:
		return
	case r < 15:
		h.orders[id] = h.orderData()
		h.emit(order.TableOrder, "update", id, h.orders[id])
	case r < 22:
		for _, itemID := range sortedKeys(h.items[id]) {
			h.emit(order.TableOrderItem, "delete", id, h.items[id][itemID])
		}
		delete(h.items, id)
		h.emit(order.TableOrder, "delete", id, o)
		delete(h.orders, id)
	default:
		itemID := h.pick(itemIDs)
		it, has := h.items[id][itemID]
		switch {
		case !has:
			if h.items[id] == nil {
				h.items[id] = map[int64]map[string]any{}
			}
			h.items[id][itemID] = h.itemData(itemID)
			h.emit(order.TableOrderItem, op, id, h.items[id][itemID])
		case loading:
			return
		case r < 80:
			h.items[id][itemID] = h.itemData(itemID)
			h.emit(order.TableOrderItem, "update", id, h.items[id][itemID])
		default:
			h.emit(order.TableOrderItem, "delete", id, it)
			delete(h.items[id], itemID)
		}
	}
}

func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sqlJoin is SELECT ... FROM order o JOIN order_item i USING (orderId)
// LEFT JOIN products p ON p.productId = i.itemId over the final tables,
// rendered one row per line.
func (h *history) sqlJoin() []string {
	var rows []string
	for _, orderID := range sortedKeys(h.orders) {
		for _, itemID := range sortedKeys(h.items[orderID]) {
			rows = append(rows, h.joinRow(orderID, itemID))
		}
	}
	return rows
}

// joinRow renders the current join row of an existing order-item.
func (h *history) joinRow(orderID, itemID int64) string {
	str := func(d map[string]any, k string) string {
		if v, ok := d[k]; ok {
			return fmt.Sprint(v)
		}
		return "NULL"
	}
	o, it := h.orders[orderID], h.items[orderID][itemID]
	dt, _ := time.Parse("2006-01-02T15:04:05.000Z", o["orderDateTime"].(string))
	name, price := "NULL", "NULL"
	if p, ok := h.products[itemID]; ok {
		name, price = p.ProductName, p.ProductPrice.String()
	}
	return fmt.Sprintf("%d/%d order[%s %s %s %s %s %s %s] item[%s %s %s] product[%s %s]",
		orderID, itemID,
		order.MustDecimal(str(o, "orderAmount")), str(o, "orderStatus"), dt.Format(order.OrderDateTimeLayout),
		str(o, "shipToName"), str(o, "shipToCity"), str(o, "shipToState"), str(o, "shipToZip"),
		str(it, "itemQuantity"), order.MustDecimal(str(it, "itemAmount")), str(it, "itemStatus"), name, price)
}

// render formats an enriched row like joinRow.
func render(e *order.Enriched) string {
	s := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	price := "NULL"
	if e.ProductPrice != nil {
		price = e.ProductPrice.String()
	}
	qty := "NULL"
	if e.ItemQuantity != nil {
		qty = fmt.Sprint(*e.ItemQuantity)
	}
	return fmt.Sprintf("%d/%d order[%s %s %s %s %s %s %s] item[%s %s %s] product[%s %s]",
		e.OrderID, e.ItemID, e.OrderAmount, s(e.OrderStatus), s(e.OrderDateTime),
		s(e.ShipToName), s(e.ShipToCity), s(e.ShipToState), s(e.ShipToZip),
		qty, e.ItemAmount, s(e.ItemStatus), s(e.ProductName), price)
}

// checkStream asserts what holds for every record enrich wrote, not just
// the final state: an upsert carries a row the SQL join really had at some
// point (never a mix of images that did not coexist), and the versions of
// one order-item never go back, so the sink's version rule keeps the last.
func (h *history) checkStream(t *testing.T, rows []order.Enriched) {
	t.Helper()
	last := map[[2]int64]int64{}
	for _, e := range rows {
		k := [2]int64{e.OrderID, e.ItemID}
		if e.Version < last[k] {
			t.Errorf("order-item %d/%d: version %d emitted after %d", e.OrderID, e.ItemID, e.Version, last[k])
		}
		last[k] = e.Version
		if !e.IsDelete() && !h.joined[k][render(&e)] {
			t.Errorf("emitted a row the join never had: %s", render(&e))
		}
	}
}

// tableRows renders the OrderEnriched table like sqlJoin.
func tableRows(t *testing.T, db *dynamodb.Client, table string) []string {
	t.Helper()
	var rows []string
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background(), harnessRetries)
		if err != nil {
			t.Fatal(err)
		}
		for _, av := range page.Items {
			it, err := sink.DecodeItem(av)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, render(&it.Enriched))
		}
	}
	slices.SortFunc(rows, func(a, b string) int { return compareRowKeys(a, b) })
	return rows
}

// compareRowKeys orders rendered rows by (orderId, itemId) numerically.
func compareRowKeys(a, b string) int {
	var ao, ai, bo, bi int64
	fmt.Sscanf(a, "%d/%d", &ao, &ai)
	fmt.Sscanf(b, "%d/%d", &bo, &bi)
	if ao != bo {
		return int(ao - bo)
	}
	return int(ai - bi)
}

// lockedRand is a rand.Rand safe for the handler's concurrent calls.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) chance(p float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64() < p
}

// flakyDB wraps the real state table with the failures DynamoDB produces
// under load: throttled calls and partially processed batches.
type flakyDB struct {
	DB
	rng  *lockedRand
	rate float64
}

func (f flakyDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if f.rng.chance(f.rate) {
		return nil, throttled()
	}
	for table, ka := range in.RequestItems {
		if len(ka.Keys) > 1 && f.rng.chance(f.rate) {
			half := len(ka.Keys) / 2
			part := *in
			part.RequestItems = map[string]ddbtypes.KeysAndAttributes{table: {Keys: ka.Keys[:half], ConsistentRead: ka.ConsistentRead}}
			out, err := f.DB.BatchGetItem(ctx, &part, opts...)
			if err == nil {
				out.UnprocessedKeys = map[string]ddbtypes.KeysAndAttributes{table: {Keys: ka.Keys[half:], ConsistentRead: ka.ConsistentRead}}
			}
			return out, err
		}
	}
	return f.DB.BatchGetItem(ctx, in, opts...)
}

func (f flakyDB) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if f.rng.chance(f.rate) {
		return nil, throttled()
	}
	return f.DB.Query(ctx, in, opts...)
}

func (f flakyDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if f.rng.chance(f.rate) {
		return nil, throttled()
	}
	for table, reqs := range in.RequestItems {
		if len(reqs) > 1 && f.rng.chance(f.rate) {
			half := len(reqs) / 2
			part := *in
			part.RequestItems = map[string][]ddbtypes.WriteRequest{table: reqs[:half]}
			out, err := f.DB.BatchWriteItem(ctx, &part, opts...)
			if err == nil {
				out.UnprocessedItems = map[string][]ddbtypes.WriteRequest{table: reqs[half:]}
			}
			return out, err
		}
	}
	return f.DB.BatchWriteItem(ctx, in, opts...)
}

// deliver hands one shard's records to handle as Lambda's event source
// mapping does: in order, in batches of random size; after reported
// failures it retries from the lowest failed record, after an error it
// retries the batch, and now and then it delivers a completed batch again
// (delivery is at least once).
func deliver(t *testing.T, rng *rand.Rand, maxBatch int, recs []events.KinesisEventRecord,
	handle func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error)) (retries int) {
	t.Helper()
	index := make(map[string]int, len(recs))
	for i, r := range recs {
		index[r.Kinesis.SequenceNumber] = i
	}
	for pos, stuck := 0, 0; pos < len(recs); {
		batch := recs[pos:min(pos+1+rng.IntN(maxBatch), len(recs))]
		resp, err := handle(context.Background(), events.KinesisEvent{Records: slices.Clone(batch)})
		if err != nil || len(resp.BatchItemFailures) > 0 {
			if stuck++; stuck > 100 {
				t.Fatalf("no progress at record %d after %d retries: %v", pos, stuck, err)
			}
			retries++
			if err == nil {
				lowest := len(recs)
				for _, f := range resp.BatchItemFailures {
					i, ok := index[f.ItemIdentifier]
					if !ok || i < pos || i >= pos+len(batch) {
						t.Fatalf("reported failure %q is not a record of the batch", f.ItemIdentifier)
					}
					lowest = min(lowest, i)
				}
				pos = lowest
			}
			continue
		}
		stuck = 0
		if rng.IntN(8) == 0 {
			continue
		}
		pos += len(batch)
	}
	return retries
}

// shardsOf splits records by partition key over n shards, keeping order.
func shardsOf(recs []events.KinesisEventRecord, n int) [][]events.KinesisEventRecord {
	out := make([][]events.KinesisEventRecord, n)
	for _, r := range recs {
		var k int
		fmt.Sscanf(r.Kinesis.PartitionKey, "%d", &k)
		out[k%n] = append(out[k%n], r)
	}
	return out
}

// asKinesis turns what enrich wrote into the sink's Kinesis records.
func asKinesis(entries []putEntry) []events.KinesisEventRecord {
	recs := make([]events.KinesisEventRecord, len(entries))
	arrival := time.Now()
	for i, e := range entries {
		seq := fmt.Sprintf("49654226190374217584376545318930211358523283025%09d", i+1)
		recs[i] = events.KinesisEventRecord{
			EventSource: "aws:kinesis", EventID: "shardId-000000000000:" + seq,
			EventSourceArn: "arn:aws:kinesis:us-east-1:123456789012:stream/order-item-enriched",
			Kinesis: events.KinesisRecord{Data: e.data, PartitionKey: e.key, SequenceNumber: seq,
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: arrival.Add(time.Duration(i) * time.Millisecond)}},
		}
	}
	return recs
}

// flakyTable wraps the real OrderEnriched table with throttled writes, as
// enrich meets them when it writes the table itself (one hop).
type flakyTable struct {
	sink.DB
	rng  *lockedRand
	rate float64
}

func (f flakyTable) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f.rng.chance(f.rate) {
		return nil, throttled()
	}
	return f.DB.PutItem(ctx, in, opts...)
}

func (f flakyTable) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if f.rng.chance(f.rate) {
		return nil, throttled()
	}
	return f.DB.DeleteItem(ctx, in, opts...)
}

// pipelineShape is how enriched rows reach OrderEnriched.
type pipelineShape struct {
	name string
	// oneHop: enrich writes the table itself; otherwise a sink writes
	// what enrich put on the enriched stream (the original's two hops).
	oneHop bool
	// stream: enrich also publishes to the enriched stream.
	stream bool
}

var pipelineShapes = []pipelineShape{
	{name: "two hops", stream: true},
	{name: "one hop", oneHop: true},
	{name: "one hop with the enriched stream", oneHop: true, stream: true},
}

// TestEnrichAndSinkConvergeToTheSQLJoin replays one random history through
// every shape of the pipeline, with throttling and partial batches
// everywhere and Lambda's retries and redeliveries, and checks that
// OrderEnriched ends as the SQL join of the final source tables and is
// the same in every shape.
func TestEnrichAndSinkConvergeToTheSQLJoin(t *testing.T) {
	ddbURL := testenv.StartDynalite(t)
	db := dynamodb.NewFromConfig(testenv.AWSConfig(t, ddbURL), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	products := refdata.Catalogue{}
	for id, p := range testProducts {
		products[id] = p
	}
	for id := int64(1); id <= 9; id++ { // items 10-12 stay unknown products
		if _, ok := products[id]; !ok {
			products[id] = order.Product{ProductID: id, ProductName: fmt.Sprintf("Product %d", id), ProductPrice: order.MustDecimal(fmt.Sprintf("%d.05", id))}
		}
	}
	retryOnce := retry.Policy{MaxAttempts: 2, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}

	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprintf("random history with seed %d", seed), func(t *testing.T) {
			ctx := context.Background()
			h := newHistory(rand.New(rand.NewPCG(seed, 0x5eed)), products)
			start := h.src.clock
			// The full load, then three stretches of changes with days
			// between them, in which DynamoDB's TTL deletes what has
			// expired: the join must not depend on how old its state is.
			phases := []struct {
				gap    time.Duration
				steps  int
				recsTo int
			}{{0, 30, 0}, {8 * 24 * time.Hour, 130, 0}, {30 * 24 * time.Hour, 130, 0}, {400 * 24 * time.Hour, 140, 0}}
			for i := range phases {
				h.src.clock = h.src.clock.Add(phases[i].gap)
				for range phases[i].steps {
					h.step(i == 0)
				}
				phases[i].recsTo = len(h.recs)
			}
			want := h.sqlJoin()

			tables := make([][]string, len(pipelineShapes))
			for si, shape := range pipelineShapes {
				stateTable, outTable := fmt.Sprintf("EnrichState%d_%d", seed, si), fmt.Sprintf("OrderEnriched%d_%d", seed, si)
				if err := CreateStateTable(ctx, db, stateTable); err != nil {
					t.Fatal(err)
				}
				if err := sink.CreateTable(ctx, db, outTable); err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(seed, 0xde11))
				clock := enrichtest.NewClock(start)
				flaky := &lockedRand{r: rand.New(rand.NewPCG(seed, 0xf1a7))}
				out := &fakeStream{
					failEntry: func(int, string, order.Enriched) bool { return flaky.chance(0.1) },
					shuffle:   func(n int, swap func(i, j int)) { flaky.mu.Lock(); flaky.r.Shuffle(n, swap); flaky.mu.Unlock() },
				}
				cfg := Config{StateTable: stateTable, Retry: retryOnce, Now: clock.Now}
				deps := Deps{DB: flakyDB{DB: db, rng: flaky, rate: 0.1}, Products: staticProducts(products), DLQ: &fakeDLQ{}}
				if shape.stream {
					cfg.OutputStream, deps.Stream = "order-item-enriched", out
				}
				if shape.oneHop {
					cfg.OutputTable, deps.Table = outTable, flakyTable{DB: db, rng: flaky, rate: 0.1}
				}
				enrich, err := New(cfg, deps)
				if err != nil {
					t.Fatal(err)
				}
				retries, expired, delivered := 0, 0, 0
				for _, phase := range phases {
					if phase.gap > 0 {
						expired += expireState(t, db, stateTable, clock.Advance(phase.gap))
					}
					for _, shard := range shardsOf(h.recs[delivered:phase.recsTo], 2) {
						retries += deliver(t, rng, 40, shard, enrich.Handle)
					}
					delivered = phase.recsTo
				}
				if expired == 0 {
					t.Errorf("%s: no state row expired between the phases; the test proves little", shape.name)
				}
				if shape.stream {
					h.checkStream(t, out.rows())
				}
				if !shape.oneHop {
					sinkH, err := sink.New(sink.Config{TableName: outTable, Retry: fastRetry}, db, &fakeDLQ{})
					if err != nil {
						t.Fatal(err)
					}
					for _, shard := range shardsOf(asKinesis(out.entries), 2) {
						deliver(t, rng, 100, shard, sinkH.Handle)
					}
				}

				got := tableRows(t, db, outTable)
				if !slices.Equal(got, want) {
					t.Errorf("%s: OrderEnriched differs from the SQL join of the final tables (%d source records, %d enriched records)\n got %s\nwant %s",
						shape.name, len(h.recs), len(out.entries), strings.Join(got, "\n     "), strings.Join(want, "\n     "))
				}
				if len(want) == 0 || retries == 0 {
					t.Errorf("%s: the history exercised too little: %d joined rows, %d retried batches", shape.name, len(want), retries)
				}
				tables[si] = got
				t.Logf("%s: %d source records, %d enriched records, %d joined rows, %d retried batches, %d state rows expired",
					shape.name, len(h.recs), len(out.entries), len(want), retries, expired)
			}
			for si := 1; si < len(tables); si++ {
				if !slices.Equal(tables[si], tables[0]) {
					t.Errorf("OrderEnriched after %s differs from after %s", pipelineShapes[si].name, pipelineShapes[0].name)
				}
			}
		})
	}
}
