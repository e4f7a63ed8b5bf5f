package local

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// WriteItemsTable prints enriched items as an aligned table.
func WriteItemsTable(w io.Writer, items []sink.Item) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tITEM\tORDER STATUS\tORDER AMOUNT\tORDERED AT\tSHIP TO\tITEM STATUS\tQTY\tITEM AMOUNT\tPRODUCT\tPRICE")
	for _, it := range items {
		e := &it.Enriched
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.OrderID, e.ItemID, orDash(e.OrderStatus), decimal(e.OrderAmount), orDash(e.OrderDateTime),
			shipTo(e), orDash(e.ItemStatus), quantity(e.ItemQuantity), decimal(e.ItemAmount),
			orDash(e.ProductName), decimal(e.ProductPrice))
	}
	return tw.Flush()
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

// decimal shows an amount with at least two fraction digits, as money
// reads; the stored value is exact either way.
func decimal(d *order.Decimal) string {
	if d == nil {
		return "-"
	}
	s := d.String()
	switch i := strings.IndexByte(s, '.'); {
	case i < 0:
		s += ".00"
	case len(s)-i == 2:
		s += "0"
	}
	return s
}

func quantity(q *int64) string {
	if q == nil {
		return "-"
	}
	return strconv.FormatInt(*q, 10)
}

func shipTo(e *order.Enriched) string {
	var parts []string
	for _, s := range []*string{e.ShipToName, e.ShipToCity, e.ShipToState} {
		if s != nil && *s != "" {
			parts = append(parts, *s)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// String renders the latency summary on one line.
func (l Latency) String() string {
	if l.Count == 0 {
		return "no item could be measured"
	}
	return fmt.Sprintf("avg %s, p50 %s, p95 %s, p99 %s, max %s over %d items",
		Millis(l.Avg), Millis(l.P50), Millis(l.P95), Millis(l.P99), Millis(l.Max), l.Count)
}

// Millis renders a duration in milliseconds below a second, in seconds
// from there.
func Millis(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

// LatencyDefinition says what the latency figures measure, for reports.
const LatencyDefinition = "measured per item, from the moment the COMMIT of the source transaction " +
	"that produced the item's current version returned to its client, to the DynamoDB write of that version " +
	"(the item's updatedAt)"
