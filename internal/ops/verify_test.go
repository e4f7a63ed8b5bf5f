package ops

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

func dec(t testing.TB, s string) *order.Decimal {
	t.Helper()
	d, err := order.ParseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return &d
}

func ptr[T any](v T) *T { return &v }

// row is a fully populated order-item as the join of the source tables
// gives it.
func row(t testing.TB, orderID, itemID int64) order.Enriched {
	return order.Enriched{
		OrderID: orderID, ItemID: itemID,
		OrderAmount: dec(t, "959.18"), OrderStatus: ptr("DELIVERED"), OrderDateTime: ptr("2026-11-02 09:15:02.120"),
		ShipToName: ptr("Maria Garcia"), ShipToAddress: ptr("12 Harbor St"), ShipToCity: ptr("Seattle"),
		ShipToState: ptr("WA"), ShipToZip: ptr("98101"),
		ItemAmount: dec(t, "945.18"), ItemQuantity: ptr(int64(2)), ItemStatus: ptr("DELIVERED"),
		ProductName: ptr("Handcrafted Marble Kettle"), ProductPrice: dec(t, "472.59"),
	}
}

// item is the table's copy of e, as the sink wrote it.
func item(e order.Enriched, edit func(*order.Enriched)) sink.Item {
	e.Version, e.EventTS = 1767225600000000, ptr("2026-11-02 09:15:03.000")
	if edit != nil {
		edit(&e)
	}
	return sink.Item{Enriched: e}
}

func TestDiff(t *testing.T) {
	a, b, c := row(t, 1001, 1), row(t, 1001, 2), row(t, 1002, 3)
	for _, tc := range []struct {
		name string
		want []order.Enriched
		got  []sink.Item
		// report is Report.Write's output with a limit of 20.
		report []string
		equal  bool
		// consistent: equal apart from catalogue drift.
		consistent bool
	}{
		{
			name: "a table equal to the join passes, bookkeeping fields aside",
			want: []order.Enriched{a, b}, got: []sink.Item{item(a, nil), item(b, nil)},
			equal:  true,
			report: []string{"OK: OrderEnriched matches the join of the source tables (2 rows)"},
		},
		{
			name: "amounts compare as decimals, not as text",
			want: []order.Enriched{a}, got: []sink.Item{item(a, func(e *order.Enriched) { e.ItemAmount = dec(t, "945.180") })},
			equal: true, report: []string{"OK:"},
		},
		{
			name: "a row the table lacks is missing",
			want: []order.Enriched{a, b, c}, got: []sink.Item{item(a, nil), item(c, nil)},
			report: []string{
				"DIFFERENT: OrderEnriched (2 items) differs from the join of the source tables (3 rows) in 1 rows.",
				"Missing (in the source, not in OrderEnriched): 1\n  order 1001 item 2\n",
				"Unexpected (in OrderEnriched, not in the source): 0\n",
				"Differing attributes: 0\n",
			},
		},
		{
			name: "an item the source lacks is unexpected",
			want: []order.Enriched{a}, got: []sink.Item{item(a, nil), item(c, nil)},
			report: []string{"Unexpected (in OrderEnriched, not in the source): 1\n  order 1002 item 3\n"},
		},
		{
			name: "differing attributes show both values as JSON",
			want: []order.Enriched{a, b},
			got: []sink.Item{item(a, nil), item(b, func(e *order.Enriched) {
				e.ItemQuantity = ptr(int64(3))
				e.OrderStatus = ptr("SHIPPED")
				e.ProductPrice = nil
			})},
			report: []string{
				"Differing attributes: 1\n",
				`  order 1001 item 2: orderStatus: source "DELIVERED", table "SHIPPED"; itemQuantity: source 2, table 3; productPrice: source 472.59, table absent` + "\n",
			},
		},
		{
			name: "rows differing only in product columns are catalogue drift, not differences",
			want: []order.Enriched{a, b, c},
			got: []sink.Item{item(a, func(e *order.Enriched) { e.ProductPrice = dec(t, "499") }), item(b, nil), item(c, func(e *order.Enriched) {
				e.ProductName, e.ProductPrice = ptr("Marble Kettle"), dec(t, "450")
			})},
			consistent: true,
			report: []string{
				"OK: OrderEnriched matches the join of the source tables (3 rows): nothing lost, nothing extra; catalogue drift in 2 rows,",
				"Catalogue drift (product columns as of the row's last change, catalogue changed since): 2\n" +
					"  order 1001 item 1: productPrice: source 472.59, table 499\n" +
					`  order 1002 item 3: productName: source "Handcrafted Marble Kettle", table "Marble Kettle"; productPrice: source 472.59, table 450` + "\n",
			},
		},
		{
			name: "drift is still listed beside real differences, and not counted with them",
			want: []order.Enriched{a, b},
			got: []sink.Item{item(a, func(e *order.Enriched) { e.ProductPrice = dec(t, "499") }), item(b, func(e *order.Enriched) {
				e.ItemQuantity = ptr(int64(3))
			})},
			report: []string{
				"in 1 rows.",
				"Differing attributes: 1\n  order 1001 item 2: itemQuantity: source 2, table 3\n",
				"Catalogue drift (product columns as of the row's last change, catalogue changed since): 1\n  order 1001 item 1: productPrice",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Diff(tc.want, tc.got)
			if r.Consistent() != (tc.consistent || tc.equal) {
				t.Errorf("Consistent() = %v, want %v: %+v", r.Consistent(), tc.consistent || tc.equal, r)
			}
			if r.Equal() != tc.equal {
				t.Errorf("Equal() = %v, want %v: %+v", r.Equal(), tc.equal, r)
			}
			var out bytes.Buffer
			if err := r.Write(&out, "OrderEnriched", 20); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.report {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestReportListsTheFirstDifferencesAndCountsAll(t *testing.T) {
	var want []order.Enriched
	for i := range 30 {
		want = append(want, row(t, int64(2000+i), 7))
	}
	r := Diff(want, nil)
	if r.Differences() != 30 || len(r.Missing) != 30 {
		t.Fatalf("%d differences, %d missing", r.Differences(), len(r.Missing))
	}
	var out bytes.Buffer
	if err := r.Write(&out, "T", 5); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "Missing (in the source, not in T): 30\n") || !strings.Contains(s, "  ... and 25 more\n") {
		t.Errorf("report:\n%s", s)
	}
	if got := strings.Count(s, "\n  order "); got != 5 {
		t.Errorf("%d rows listed, want 5:\n%s", got, s)
	}
	if !strings.Contains(s, fmt.Sprintf("order %d item 7", 2004)) || strings.Contains(s, "order 2005 item 7") {
		t.Errorf("not the first five rows:\n%s", s)
	}
}

// BenchmarkDiff compares a 100,000-row join with a table that differs in
// 1% of its rows, the in-memory part of etl verify.
func BenchmarkDiff(b *testing.B) {
	const n = 100_000
	want := make([]order.Enriched, n)
	got := make([]sink.Item, n)
	for i := range n {
		want[i] = row(b, int64(1+i/4), int64(1+i%4))
		got[i] = item(want[i], nil)
		if i%100 == 0 {
			got[i].ItemQuantity = ptr(int64(9))
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if r := Diff(want, got); len(r.Differing) != n/100 {
			b.Fatalf("%d differing rows", len(r.Differing))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
