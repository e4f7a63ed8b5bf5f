package local_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/enrich/enrichtest"
	"github.com/unified-streaming-etl/etl/internal/local"
	"github.com/unified-streaming-etl/etl/internal/ops"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
	"github.com/unified-streaming-etl/etl/internal/verify"
)

// startPipeline runs a local pipeline for the test.
func startPipeline(t *testing.T, cfg local.Config) *local.Pipeline {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs MariaDB, kinesalite and dynalite; skipped under -short")
	}
	cfg.Root = testenv.RepoRoot(t)
	// Warnings (retries, injected failures) show with the test's output.
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := local.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start the pipeline: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

func waitIdle(t *testing.T, p *local.Pipeline) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatalf("wait for the pipeline: %v", err)
	}
}

// converged checks OrderEnriched against the SQL join of the source
// tables and that nothing was set aside on the way.
func converged(t *testing.T, p *local.Pipeline) []sink.Item {
	t.Helper()
	diffs, items, err := p.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range diffs {
		if i == 20 {
			t.Errorf("... %d differences in all", len(diffs))
			break
		}
		t.Errorf("OrderEnriched differs from the source join: %s", d)
	}
	if dl := p.DeadLetters(); len(dl) > 0 {
		t.Errorf("%d dead letters, first: %s: %s", len(dl), dl[0].Reason, dl[0].Data)
	}
	if f := p.Failures(); len(f) > 0 {
		t.Errorf("%d batches given up, first: %+v", len(f), f[0])
	}
	return items
}

// TestSampleDataConverges runs the sample data through every shape of the
// pipeline; the enhanced fan-out shape with AWS delivery timing, the only
// place its push delivery differs from polling.
func TestSampleDataConverges(t *testing.T) {
	for _, cfg := range []local.Config{
		{Shape: local.ShapeDefault}, {Shape: local.ShapeOriginal}, {Shape: local.ShapeEFO, AWSTiming: true},
	} {
		t.Run(fmt.Sprintf("shape %s, AWS timing %v", cfg.Shape, cfg.AWSTiming), func(t *testing.T) { sampleDataConverges(t, cfg) })
	}
}

func sampleDataConverges(t *testing.T, cfg local.Config) {
	p := startPipeline(t, cfg)
	ctx := context.Background()
	if _, err := p.RunSQL(ctx, filepath.Join(p.Root(), "sql", "orders-data-setup.sql")); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, p)

	var golden []order.Enriched
	b, err := os.ReadFile("testdata/sample-enriched.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	items := converged(t, p)

	t.Run("OrderEnriched holds exactly the expected enriched rows", func(t *testing.T) {
		for _, d := range verify.Compare(golden, items) {
			t.Errorf("%s", d)
		}
	})

	t.Run("the source join computed from MariaDB agrees with the expected rows", func(t *testing.T) {
		products, err := p.Products()
		if err != nil {
			t.Fatal(err)
		}
		want, err := verify.Expected(ctx, p.DB(), products)
		if err != nil {
			t.Fatal(err)
		}
		goldenItems := make([]sink.Item, len(golden))
		for i, g := range golden {
			goldenItems[i].Enriched = g
		}
		for _, d := range verify.Compare(want, goldenItems) {
			t.Errorf("%s", d)
		}
	})

	t.Run("latency is measured for every item from its commit", func(t *testing.T) {
		l := p.Latency(items)
		if l.Count != len(golden) || l.Unmeasured != 0 || l.Avg <= 0 || l.P99 < l.P50 || l.Max > time.Minute {
			t.Errorf("latency %+v", l)
		}
	})

	t.Run("the dump is a JSON array of items with plain, exact values", func(t *testing.T) {
		var buf bytes.Buffer
		if err := p.Dump(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		dec.UseNumber()
		var dump []map[string]any
		if err := dec.Decode(&dump); err != nil {
			t.Fatalf("dump is not a JSON array: %v", err)
		}
		if len(dump) != len(golden) {
			t.Fatalf("dump has %d objects, want %d", len(dump), len(golden))
		}
		first := dump[0]
		if first["orderId"] != json.Number("1001") || first["itemId"] != json.Number("1") ||
			first["orderAmount"] != json.Number("959.18") || first["productName"] != "Handcrafted Marble Kettle" {
			t.Errorf("first object %v", first)
		}
		if _, ok := first["version"].(json.Number); !ok {
			t.Errorf("version %v is not a number", first["version"])
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(first["updatedAt"])); err != nil {
			t.Errorf("updatedAt: %v", err)
		}
	})
}

// history generates random transactions over a few orders: inserts,
// updates and deletes of orders and items, items whose product is not in
// the catalogue, NULL columns.
type history struct {
	rng       *rand.Rand
	firstID   int
	orders    int
	itemIDs   []int
	statusSeq atomic.Int64
}

func newHistory(seed uint64, firstID, orders int) *history {
	// 5000 is not a product: its rows join with no product name or price.
	return &history{rng: rand.New(rand.NewPCG(seed, 99)), firstID: firstID, orders: orders, itemIDs: []int{1, 2, 3, 17, 42, 108, 5000}}
}

func (h *history) amount() string { return fmt.Sprintf("%d.%02d", h.rng.IntN(5000), h.rng.IntN(100)) }

func (h *history) op() []string {
	id := h.firstID + h.rng.IntN(h.orders)
	item := h.itemIDs[h.rng.IntN(len(h.itemIDs))]
	status := fmt.Sprintf("S%d", h.statusSeq.Add(1))
	switch n := h.rng.IntN(100); {
	case n < 25:
		addr := "NULL"
		if h.rng.IntN(4) > 0 {
			addr = fmt.Sprintf("'%d Side St'", h.rng.IntN(100))
		}
		return []string{fmt.Sprintf("INSERT INTO orders.`order` VALUES (%d, %s, '%s', '2026-01-%02d 10:%02d:%02d.%03d', 'Name %d', %s, 'City', 'ST', '00%03d') "+
			"ON DUPLICATE KEY UPDATE orderAmount = VALUES(orderAmount), orderStatus = VALUES(orderStatus), shipToAddress = VALUES(shipToAddress)",
			id, h.amount(), status, h.rng.IntN(28)+1, h.rng.IntN(60), h.rng.IntN(60), h.rng.IntN(1000), id, addr, h.rng.IntN(1000))}
	case n < 35:
		return []string{fmt.Sprintf("UPDATE orders.`order` SET orderStatus = '%s', shipToName = NULL WHERE orderId = %d", status, id)}
	case n < 42:
		// Items first: the foreign key has no cascade (cascaded deletes
		// never reach the binlog).
		return []string{
			fmt.Sprintf("DELETE FROM orders.order_item WHERE orderId = %d", id),
			fmt.Sprintf("DELETE FROM orders.`order` WHERE orderId = %d", id),
		}
	case n < 75:
		return []string{fmt.Sprintf("INSERT INTO orders.order_item SELECT orderId, %d, %d, %s, '%s' FROM orders.`order` WHERE orderId = %d "+
			"ON DUPLICATE KEY UPDATE itemQuantity = VALUES(itemQuantity), itemAmount = VALUES(itemAmount), itemStatus = VALUES(itemStatus)",
			item, h.rng.IntN(9)+1, h.amount(), status, id)}
	case n < 88:
		return []string{fmt.Sprintf("UPDATE orders.order_item SET itemQuantity = itemQuantity + 1, itemStatus = '%s' WHERE orderId = %d AND itemId = %d", status, id, item)}
	default:
		return []string{fmt.Sprintf("DELETE FROM orders.order_item WHERE orderId = %d AND itemId = %d", id, item)}
	}
}

// transactions groups ops into transactions of one to four ops.
func (h *history) transactions(ops int) [][]string {
	var txs [][]string
	for ops > 0 {
		var tx []string
		for n := min(ops, h.rng.IntN(4)+1); n > 0; n-- {
			tx = append(tx, h.op()...)
			ops--
		}
		txs = append(txs, tx)
	}
	return txs
}

// script writes transactions as a SQL file.
func script(t *testing.T, txs [][]string) string {
	t.Helper()
	var b strings.Builder
	for _, tx := range txs {
		b.WriteString("START TRANSACTION;\n")
		for _, s := range tx {
			b.WriteString(s + ";\n")
		}
		b.WriteString("COMMIT;\n")
	}
	path := filepath.Join(t.TempDir(), "preload.sql")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// apply commits transactions from several sessions at once, retrying the
// ones that lose a deadlock.
func apply(t *testing.T, db *sql.DB, txs [][]string, workers int) {
	t.Helper()
	ch := make(chan []string)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tx := range ch {
				for {
					err := exec(db, tx)
					if err == nil {
						break
					}
					if !strings.Contains(err.Error(), "Deadlock") && !strings.Contains(err.Error(), "Lock wait timeout") {
						errs <- err
						for range ch {
						}
						return
					}
				}
			}
		}()
	}
	for _, tx := range txs {
		ch <- tx
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func exec(db *sql.DB, stmts []string) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.Exec(s); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return tx.Commit()
}

func rowCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM orders.order_item i JOIN orders.`order` o ON o.orderId = i.orderId").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// flaky wraps handlers so that some invocations fail: enrich reports a
// random record as failed, the sink returns an error. Lambda's retry
// semantics must absorb both.
func flaky(seed uint64, failures *atomic.Int64) func(string, poller.Handler) poller.Handler {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 5))
	roll := func(pct int) int {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(100) >= pct {
			return -1
		}
		return rng.IntN(1 << 30)
	}
	return func(function string, h poller.Handler) poller.Handler {
		return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			switch function {
			case local.EnrichFunction:
				if r := roll(15); r >= 0 {
					// Handle the records before the failed one, then report
					// it: Lambda must resume exactly there.
					i := r % len(ev.Records)
					failures.Add(1)
					resp, err := h(ctx, events.KinesisEvent{Records: ev.Records[:i]})
					if err != nil {
						return resp, err
					}
					return events.KinesisEventResponse{BatchItemFailures: append(resp.BatchItemFailures,
						events.KinesisBatchItemFailure{ItemIdentifier: ev.Records[i].Kinesis.SequenceNumber})}, nil
				}
			case local.SinkFunction:
				if roll(10) >= 0 {
					failures.Add(1)
					return events.KinesisEventResponse{}, fmt.Errorf("injected failure")
				}
			}
			return h(ctx, ev)
		}
	}
}

func TestRandomHistoriesConverge(t *testing.T) {
	t.Run("a full load and concurrent histories with Lambda's defaults, weeks and months apart", func(t *testing.T) {
		pre := newHistory(1, 1, 40)
		clock := enrichtest.NewClock(time.Now())
		p := startPipeline(t, local.Config{PreloadSQL: script(t, pre.transactions(600)), Now: clock.Now})
		expired := 0
		day := 24 * time.Hour
		// Time passes before each stretch of changes, and DynamoDB's TTL
		// deletes the join state that has expired meanwhile. The last
		// stretch is short, so that many rows it joins are older than
		// every gap.
		for _, stretch := range []struct {
			seed uint64
			gap  time.Duration
			ops  int
		}{{2, 8 * day, 2000}, {3, 30 * day, 2000}, {4, 400 * day, 150}} {
			waitIdle(t, p)
			expired += expireJoinState(t, p, clock.Advance(stretch.gap))
			h := newHistory(stretch.seed, 1, 40)
			apply(t, p.DB(), h.transactions(stretch.ops), 4)
			waitIdle(t, p)
			converged(t, p)
		}
		if expired == 0 {
			t.Error("no join state expired between the histories; the test proves little")
		}
		t.Logf("%d join-state rows expired", expired)
		t.Logf("reader %+v, %d rows", p.ReaderStats(), rowCount(t, p.DB()))
		if n := rowCount(t, p.DB()); n < 20 {
			t.Errorf("the histories left only %d rows; the test proves little", n)
		}
		if st := p.ReaderStats(); st.Loaded == 0 || st.Deleted == 0 || st.Updated == 0 {
			t.Errorf("reader stats %+v: the history should exercise load, update and delete", st)
		}
	})

	for _, shape := range []local.Shape{local.ShapeDefault, local.ShapeOriginal} {
		t.Run(fmt.Sprintf("small batches, one lane, decimals as numbers and injected handler failures, shape %s", shape), func(t *testing.T) {
			smallBatchesConverge(t, shape)
		})
	}
}

func smallBatchesConverge(t *testing.T, shape local.Shape) {
	{
		var failures atomic.Int64
		p := startPipeline(t, local.Config{
			Shards: 1, BatchSize: 7, ParallelizationFactor: 1, BatchWindow: 20 * time.Millisecond,
			DecimalsAsNumbers: true, WrapHandler: flaky(4, &failures), Shape: shape,
		})
		h := newHistory(4, 500, 25)
		apply(t, p.DB(), h.transactions(1500), 3)
		waitIdle(t, p)
		converged(t, p)
		e, s := p.PollerStats()
		t.Logf("%d failures injected; enrich %+v; sink %+v; %d rows", failures.Load(), e, s, rowCount(t, p.DB()))
		if failures.Load() == 0 {
			t.Error("no failure was injected; the test proves little")
		}
	}
}

func TestEnrichRestartStillConverges(t *testing.T) {
	var (
		inFlight  atomic.Int64
		delivered atomic.Int64
	)
	p := startPipeline(t, local.Config{
		BatchSize: 25, ParallelizationFactor: 2,
		WrapHandler: func(function string, h poller.Handler) poller.Handler {
			if function != local.EnrichFunction {
				return h
			}
			return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				inFlight.Add(1)
				defer inFlight.Add(-1)
				delivered.Add(int64(len(ev.Records)))
				// Slow enough that a restart finds invocations in flight.
				select {
				case <-time.After(5 * time.Millisecond):
				case <-ctx.Done():
					return events.KinesisEventResponse{}, ctx.Err()
				}
				return h(ctx, ev)
			}
		},
	})
	h := newHistory(7, 1, 30)
	done := make(chan struct{})
	go func() {
		defer close(done)
		apply(t, p.DB(), h.transactions(2500), 2)
	}()

	restarts := 0
	for running := true; running || restarts < 3; {
		select {
		case <-done:
			running = false
		case <-time.After(150 * time.Millisecond):
		}
		// Kill only mid-invocation, so that work is really cut off.
		deadline := time.Now().Add(2 * time.Second)
		for inFlight.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if inFlight.Load() == 0 {
			continue
		}
		if err := p.RestartEnrich(); err != nil {
			t.Fatal(err)
		}
		restarts++
	}
	waitIdle(t, p)
	converged(t, p)

	st := p.ReaderStats()
	written := st.Loaded + st.Inserted + st.Updated + st.Deleted + st.Control
	t.Logf("%d restarts; %d records delivered to enrich for %d in the stream; %d rows", restarts, delivered.Load(), written, rowCount(t, p.DB()))
	if restarts < 3 || delivered.Load() <= written {
		t.Errorf("%d restarts; %d records delivered to enrich for %d in the stream: no redelivery was exercised",
			restarts, delivered.Load(), written)
	}
}

// expireJoinState deletes the join state DynamoDB's TTL would have
// deleted by now (dynalite has no TTL) and returns how many rows it deleted.
func expireJoinState(t *testing.T, p *local.Pipeline, now time.Time) int {
	t.Helper()
	n, err := enrichtest.ExpireState(context.Background(), p.DynamoDB, local.StateTable, now)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestResendBackfillsLostJoinState is the upgrade path from the versions
// whose join state expired: state is lost, `etl resend` puts every source
// row back on the unified stream as a load record, and later changes join
// exactly again.
func TestResendBackfillsLostJoinState(t *testing.T) {
	p := startPipeline(t, local.Config{})
	ctx := context.Background()
	apply(t, p.DB(), newHistory(11, 1, 30).transactions(800), 2)
	waitIdle(t, p)
	converged(t, p)

	// What an older version's TTL left of the state after long enough.
	lost := joinStateRows(t, p, true)
	res, err := ops.Resend(ctx, p.DB(), p.Kinesis, local.UnifiedStream, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitIdle(t, p)
	converged(t, p)
	var orders, items int
	if err := p.DB().QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM orders.`order`), (SELECT COUNT(*) FROM orders.order_item)").Scan(&orders, &items); err != nil {
		t.Fatal(err)
	}
	if res.Orders != orders || res.Items != items || orders == 0 {
		t.Errorf("resent %d orders and %d items, the source has %d and %d", res.Orders, res.Items, orders, items)
	}
	if n := joinStateRows(t, p, false); n != orders+items {
		t.Errorf("join state holds %d rows after the resend, want the %d live source rows", n, orders+items)
	}
	t.Logf("%d state rows lost; resent %d orders and %d items", lost, res.Orders, res.Items)

	// The next changes join against the rebuilt state.
	apply(t, p.DB(), newHistory(12, 1, 30).transactions(150), 2)
	waitIdle(t, p)
	converged(t, p)
}

// joinStateRows counts the join-state rows, deleting them if del.
func joinStateRows(t *testing.T, p *local.Pipeline, del bool) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	pages := dynamodb.NewScanPaginator(p.DynamoDB, &dynamodb.ScanInput{TableName: aws.String(local.StateTable), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			n++
			if !del {
				continue
			}
			key := map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
			if _, err := p.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(local.StateTable), Key: key}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}
