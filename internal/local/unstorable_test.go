package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/local"
)

// One change DynamoDB cannot store (a 40-digit amount, after the column was
// widened past DynamoDB's 38 significant digits) must cost exactly that
// change: it is dead-lettered with its reason, and every other order of a
// 1,000-order history reaches OrderEnriched although its join state shared
// BatchWriteItem calls with the bad order's.
func TestUnstorableAmountLosesNoValidOrder(t *testing.T) {
	const (
		firstID = 300000
		orders  = 1000
		badID   = firstID + 417
		forty   = "12345678901234567890123456789012345678.91"
	)
	widen := filepath.Join(t.TempDir(), "widen.sql")
	if err := os.WriteFile(widen, []byte("ALTER TABLE orders.`order` MODIFY orderAmount DECIMAL(45,2) NOT NULL;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, local.Config{PreloadSQL: widen})

	var txs [][]string
	for i := range orders {
		id := firstID + i
		amount := fmt.Sprintf("%d.%02d", 10+i%900, i%100)
		if id == badID {
			amount = forty
		}
		txs = append(txs, []string{
			fmt.Sprintf("INSERT INTO orders.`order` VALUES (%d, %s, 'PLACED', '2026-11-02 09:15:02.120', 'Name %d', '%d Side St', 'City', 'ST', '00%03d')",
				id, amount, id, i, i%1000),
			fmt.Sprintf("INSERT INTO orders.order_item VALUES (%d, %d, %d, %d.99, 'PLACED')", id, 1+i%50, 1+i%5, i%300),
		})
	}
	apply(t, p.DB(), txs, 4)
	waitIdle(t, p)

	diffs, _, err := p.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every valid order reaches OrderEnriched; only the bad order's row is missing", func(t *testing.T) {
		if len(diffs) != 1 || diffs[0].OrderID != badID || diffs[0].Problem != "missing" {
			for i, d := range diffs {
				if i == 20 {
					t.Errorf("... %d differences in all", len(diffs))
					break
				}
				t.Errorf("difference: %s", d)
			}
			t.Errorf("want only order %d missing", badID)
		}
	})
	t.Run("exactly the bad change is dead-lettered, with its reason", func(t *testing.T) {
		dl := p.DeadLetters()
		if len(dl) != 1 {
			t.Fatalf("%d dead letters, want 1: %+v", len(dl), dl)
		}
		m := dl[0]
		if m.Source != local.EnrichFunction || m.PartitionKey != fmt.Sprint(badID) ||
			!strings.Contains(string(m.Data), forty) || !strings.Contains(string(m.Data), `"table-name":"order"`) {
			t.Errorf("dead letter %s/%s %s, want the enrich function's insert of order %d", m.Source, m.PartitionKey, m.Data, badID)
		}
		if want := "data.orderAmount: " + forty + " has more than 38 significant digits"; !strings.Contains(m.Reason, want) {
			t.Errorf("reason %q, want it to contain %q", m.Reason, want)
		}
	})
	t.Run("no batch was given up", func(t *testing.T) {
		if f := p.Failures(); len(f) > 0 {
			t.Errorf("%d batches given up, first: %+v", len(f), f[0])
		}
	})
}
