package local_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/local"
)

// order and item rows for the scenarios below.
func orderRow(id int, status string) string {
	return fmt.Sprintf("INSERT INTO orders.`order` VALUES (%d, 10.00, '%s', '2026-01-02 10:00:00.000', 'Name %d', '1 Main St', 'City', 'ST', '00001')", id, status, id)
}

func itemRow(orderID, itemID int) string {
	return fmt.Sprintf("INSERT INTO orders.order_item VALUES (%d, %d, 1, 5.00, 'OPEN')", orderID, itemID)
}

func mustExec(t *testing.T, p *local.Pipeline, stmts ...string) {
	t.Helper()
	if err := exec(p.DB(), stmts); err != nil {
		t.Fatal(err)
	}
}

func keys(p *local.Pipeline, t *testing.T) []string {
	t.Helper()
	var out []string
	for _, it := range converged(t, p) {
		out = append(out, fmt.Sprintf("%d/%d", it.OrderID, it.ItemID))
	}
	return out
}

func TestKeyChangingUpdatesConverge(t *testing.T) {
	p := startPipeline(t, local.Config{})
	mustExec(t, p, orderRow(1, "NEW"), orderRow(2, "NEW"), orderRow(3, "NEW"), itemRow(1, 1), itemRow(1, 2), itemRow(2, 3))
	waitIdle(t, p)
	converged(t, p)

	mustExec(t, p, "UPDATE orders.order_item SET itemId = 17 WHERE orderId = 1 AND itemId = 1") // a product swapped
	mustExec(t, p, "UPDATE orders.order_item SET orderId = 2 WHERE orderId = 1 AND itemId = 2") // an item moved
	mustExec(t, p, "UPDATE orders.`order` SET orderId = 30 WHERE orderId = 3")                  // an order without items renumbered
	// Later changes of both orders must not bring the old rows back.
	mustExec(t, p, "UPDATE orders.`order` SET orderStatus = 'SHIPPED' WHERE orderId IN (1, 2)")
	mustExec(t, p, itemRow(30, 42))
	waitIdle(t, p)

	got := strings.Join(keys(p, t), " ")
	if want := "1/17 2/2 2/3 30/42"; got != want {
		t.Errorf("OrderEnriched holds %s, want %s", got, want)
	}

	t.Run("MySQL refuses to renumber an order that has items, so their rows never need moving", func(t *testing.T) {
		err := exec(p.DB(), []string{"UPDATE orders.`order` SET orderId = 20 WHERE orderId = 2"})
		if err == nil || !strings.Contains(err.Error(), "foreign key constraint fails") {
			t.Errorf("renumbering an order with items: %v, want a foreign key error", err)
		}
	})
}

// rekeyOp is history.op plus updates that change keys: an item's product
// swapped (itemId), an item moved to another order (orderId), and an order
// renumbered after its items are deleted. IGNORE skips a change whose new
// key exists.
func rekeyOp(h *history) []string {
	n := h.rng.IntN(100)
	if n >= 30 {
		return h.op()
	}
	id := h.firstID + h.rng.IntN(h.orders)
	other := h.firstID + h.rng.IntN(h.orders)
	newItem := h.itemIDs[h.rng.IntN(len(h.itemIDs))]
	// Each key change records how many rows it changed, so the test can
	// tell that the history really changed keys.
	counted := func(kind, update string) []string {
		return []string{update, fmt.Sprintf("INSERT INTO rekey.changed VALUES ('%s', ROW_COUNT())", kind)}
	}
	switch {
	case n < 12:
		return counted("itemId", fmt.Sprintf("UPDATE IGNORE orders.order_item SET itemId = %d WHERE orderId = %d ORDER BY itemQuantity, itemId LIMIT 1", newItem, id))
	case n < 24:
		return counted("item orderId", fmt.Sprintf("UPDATE IGNORE orders.order_item SET orderId = %d WHERE orderId = %d "+
			"AND EXISTS (SELECT 1 FROM orders.`order` WHERE orderId = %d) ORDER BY itemId DESC LIMIT 1", other, id, other))
	default:
		// The foreign key lets an order be renumbered only without items.
		// The new number is drawn from twice the history's range, so that
		// about half the attempts find it free however the concurrent
		// transactions interleave, and renumbered orders stay in the join.
		to := h.firstID + h.rng.IntN(2*h.orders)
		return append([]string{fmt.Sprintf("DELETE FROM orders.order_item WHERE orderId = %d", id)},
			counted("order orderId", fmt.Sprintf("UPDATE IGNORE orders.`order` SET orderId = %d WHERE orderId = %d", to, id))...)
	}
}

// rekeyLog creates the table rekeyOp records its key changes in, outside
// the captured schema.
func rekeyLog(t *testing.T, p *local.Pipeline) {
	t.Helper()
	mustExec(t, p, "CREATE DATABASE IF NOT EXISTS rekey", "CREATE TABLE IF NOT EXISTS rekey.changed (kind VARCHAR(20), n INT)")
}

// rekeyed checks that the history changed keys of every kind.
func rekeyed(t *testing.T, p *local.Pipeline) {
	t.Helper()
	rows, err := p.DB().Query("SELECT kind, SUM(n) FROM rekey.changed GROUP BY kind ORDER BY kind")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var kind string
		var n int
		if err := rows.Scan(&kind, &n); err != nil {
			t.Fatal(err)
		}
		got[kind] = n
	}
	t.Logf("key changes: %v", got)
	for _, kind := range []string{"itemId", "item orderId", "order orderId"} {
		if got[kind] < 10 {
			t.Errorf("only %d %s changes; the test proves little", got[kind], kind)
		}
	}
}

func rekeyTransactions(h *history, ops int) [][]string {
	var txs [][]string
	for ops > 0 {
		var tx []string
		for n := min(ops, h.rng.IntN(3)+1); n > 0; n-- {
			tx = append(tx, rekeyOp(h)...)
			ops--
		}
		txs = append(txs, tx)
	}
	return txs
}

// convergesAfterRekeys applies ops operations of h, key changes among
// them, on workers concurrent sessions, and checks that p converges
// and that the history changed keys of every kind.
func convergesAfterRekeys(t *testing.T, p *local.Pipeline, h *history, ops, workers int) {
	t.Helper()
	rekeyLog(t, p)
	apply(t, p.DB(), rekeyTransactions(h, ops), workers)
	waitIdle(t, p)
	converged(t, p)
	rekeyed(t, p)
}

func TestRandomHistoriesWithKeyChangesConverge(t *testing.T) {
	t.Run("concurrent histories on two shards with Lambda's defaults", func(t *testing.T) {
		p := startPipeline(t, local.Config{})
		convergesAfterRekeys(t, p, newHistory(11, 1, 30), 1500, 4)
		if n := rowCount(t, p.DB()); n < 20 {
			t.Errorf("the history left only %d rows; the test proves little", n)
		}
	})
	t.Run("one lane, small batches and injected handler failures", func(t *testing.T) {
		var failures atomic.Int64
		p := startPipeline(t, local.Config{
			Shards: 3, BatchSize: 9, ParallelizationFactor: 2, WrapHandler: flaky(12, &failures),
		})
		convergesAfterRekeys(t, p, newHistory(12, 300, 20), 1000, 3)
		if failures.Load() == 0 {
			t.Error("no failure was injected; the test proves little")
		}
	})
}

func TestTruncateIsRefusedLoudly(t *testing.T) {
	p := startPipeline(t, local.Config{})
	mustExec(t, p, orderRow(1, "NEW"), orderRow(2, "NEW"), itemRow(1, 1), itemRow(1, 2), itemRow(2, 3))
	waitIdle(t, p)
	converged(t, p)

	if err := exec(p.DB(), []string{"TRUNCATE TABLE orders.`order`"}); err == nil {
		t.Fatal("MySQL truncated orders.order although order_item references it")
	}
	if _, err := p.DB().Exec("TRUNCATE TABLE orders.order_item"); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, p)

	t.Run("the truncate reaches the dead-letter queue with its reason", func(t *testing.T) {
		dl := p.DeadLetters()
		if len(dl) != 1 {
			t.Fatalf("%d dead letters, want 1", len(dl))
		}
		if r := dl[0].Reason; !strings.Contains(r, "truncate-table for orders.order_item") || !strings.Contains(r, "truncate procedure") {
			t.Errorf("reason %q", r)
		}
	})
	t.Run("the enriched rows stay, and verify reports each of them", func(t *testing.T) {
		diffs, items, err := p.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 3 || len(diffs) != 3 {
			t.Errorf("%d items and %d differences, want the 3 truncated rows in both", len(items), len(diffs))
		}
		for _, d := range diffs {
			if d.Problem != "unexpected" {
				t.Errorf("difference %s, want unexpected", d)
			}
		}
	})
}
