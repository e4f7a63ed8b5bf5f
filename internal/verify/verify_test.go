package verify

import (
	"slices"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

func TestCompare(t *testing.T) {
	s := func(v string) *string { return &v }
	d := func(v string) *order.Decimal { x := order.MustDecimal(v); return &x }
	row := func(orderID, itemID int64, amount string) order.Enriched {
		return order.Enriched{OrderID: orderID, ItemID: itemID, OrderAmount: d(amount), OrderStatus: s("PLACED"), ProductName: s("Kettle")}
	}
	item := func(e order.Enriched) sink.Item { return sink.Item{Enriched: e} }

	want := []order.Enriched{row(1, 1, "10.50"), row(1, 2, "3"), row(2, 7, "1")}
	t.Run("equal content has no differences, whatever the decimal's spelling", func(t *testing.T) {
		got := []sink.Item{item(row(1, 1, "10.5")), item(row(1, 2, "3.00")), item(row(2, 7, "1"))}
		if diffs := Compare(want, got); len(diffs) != 0 {
			t.Errorf("differences %v", diffs)
		}
	})
	t.Run("missing, unexpected and changed rows are each reported", func(t *testing.T) {
		changed := row(1, 2, "3")
		changed.ProductName = nil
		changed.OrderStatus = s("SHIPPED")
		got := []sink.Item{item(changed), item(row(2, 7, "1")), item(row(3, 1, "1"))}
		var names []string
		for _, d := range Compare(want, got) {
			names = append(names, d.String())
		}
		wantDiffs := []string{
			"order 1 item 1: missing",
			"order 1 item 2: differs in [orderStatus productName]",
			"order 3 item 1: unexpected",
		}
		if !slices.Equal(names, wantDiffs) {
			t.Errorf("differences %q, want %q", names, wantDiffs)
		}
	})
}
