// Package verify compares OrderEnriched with the join of the source
// tables. Local mode checks itself with it and the operator tool checks a
// deployed pipeline with it, so it depends only on the record types and
// database/sql: the operator tool links no emulator or MariaDB code.
package verify

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// Expected computes what OrderEnriched must hold from the source itself:
// orders joined with their items, left-joined with the product catalogue,
// ordered by key.
func Expected(ctx context.Context, db *sql.DB, products refdata.Catalogue) ([]order.Enriched, error) {
	return expected(ctx, db, products, "", nil)
}

// Querier is what ExpectedRange reads with: a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ExpectedRange is Expected for the orders from orderId lo to hi
// inclusive, so a large source can be compared a range at a time.
func ExpectedRange(ctx context.Context, q Querier, products refdata.Catalogue, lo, hi int64) ([]order.Enriched, error) {
	return expected(ctx, q, products, "WHERE o.orderId BETWEEN ? AND ? ", []any{lo, hi})
}

func expected(ctx context.Context, q Querier, products refdata.Catalogue, where string, args []any) ([]order.Enriched, error) {
	rows, err := q.QueryContext(ctx, "SELECT o.orderId, o.orderAmount, o.orderStatus, o.orderDateTime, "+
		"o.shipToName, o.shipToAddress, o.shipToCity, o.shipToState, o.shipToZip, "+
		"i.itemId, i.itemQuantity, i.itemAmount, i.itemStatus "+
		"FROM orders.`order` o JOIN orders.order_item i ON i.orderId = o.orderId "+
		where+"ORDER BY o.orderId, i.itemId", args...)
	if err != nil {
		return nil, fmt.Errorf("join the source tables: %w", err)
	}
	defer rows.Close()
	var out []order.Enriched
	for rows.Next() {
		var (
			e                                        order.Enriched
			orderAmount, itemAmount                  sql.NullString
			status, dt, name, addr, city, state, zip sql.NullString
			itemStatus                               sql.NullString
			qty                                      sql.NullInt64
		)
		if err := rows.Scan(&e.OrderID, &orderAmount, &status, &dt, &name, &addr, &city, &state, &zip,
			&e.ItemID, &qty, &itemAmount, &itemStatus); err != nil {
			return nil, err
		}
		if e.OrderAmount, err = decimalOf(orderAmount); err != nil {
			return nil, err
		}
		if e.ItemAmount, err = decimalOf(itemAmount); err != nil {
			return nil, err
		}
		e.OrderStatus, e.ShipToName, e.ShipToAddress = str(status), str(name), str(addr)
		e.ShipToCity, e.ShipToState, e.ShipToZip, e.ItemStatus = str(city), str(state), str(zip), str(itemStatus)
		if dt.Valid {
			t, err := time.Parse("2006-01-02 15:04:05.999999", dt.String)
			if err != nil {
				return nil, fmt.Errorf("orderDateTime %q: %w", dt.String, err)
			}
			s := t.Format(order.OrderDateTimeLayout)
			e.OrderDateTime = &s
		}
		if qty.Valid {
			e.ItemQuantity = &qty.Int64
		}
		if prod, ok := products[e.ItemID]; ok {
			e.ProductName = &prod.ProductName
			price := prod.ProductPrice
			e.ProductPrice = &price
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func str(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func decimalOf(s sql.NullString) (*order.Decimal, error) {
	if !s.Valid {
		return nil, nil
	}
	d, err := order.ParseDecimal(s.String)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Difference is one way OrderEnriched differs from the source join.
type Difference struct {
	OrderID, ItemID int64
	// Problem is "missing" (in the source, not in DynamoDB), "unexpected"
	// (in DynamoDB, not in the source) or the differing fields.
	Problem string
}

func (d Difference) String() string {
	return fmt.Sprintf("order %d item %d: %s", d.OrderID, d.ItemID, d.Problem)
}

// Compare lists the differences between the expected rows and the items,
// both ordered by key. Amounts compare as exact decimals; the processor's
// bookkeeping fields (event_ts, op, version) are not compared.
func Compare(want []order.Enriched, got []sink.Item) []Difference {
	var diffs []Difference
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		var c int
		switch {
		case i == len(want):
			c = 1
		case j == len(got):
			c = -1
		default:
			c = cmp.Or(cmp.Compare(want[i].OrderID, got[j].OrderID), cmp.Compare(want[i].ItemID, got[j].ItemID))
		}
		switch {
		case c < 0:
			diffs = append(diffs, Difference{want[i].OrderID, want[i].ItemID, "missing"})
			i++
		case c > 0:
			diffs = append(diffs, Difference{got[j].OrderID, got[j].ItemID, "unexpected"})
			j++
		default:
			if fields := differingFields(&want[i], &got[j].Enriched); len(fields) > 0 {
				diffs = append(diffs, Difference{want[i].OrderID, want[i].ItemID, fmt.Sprint("differs in ", fields)})
			}
			i++
			j++
		}
	}
	return diffs
}

func differingFields(w, g *order.Enriched) []string {
	var out []string
	check := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	check("orderAmount", sameDecimal(w.OrderAmount, g.OrderAmount))
	check("orderStatus", sameString(w.OrderStatus, g.OrderStatus))
	check("orderDateTime", sameString(w.OrderDateTime, g.OrderDateTime))
	check("shipToName", sameString(w.ShipToName, g.ShipToName))
	check("shipToAddress", sameString(w.ShipToAddress, g.ShipToAddress))
	check("shipToCity", sameString(w.ShipToCity, g.ShipToCity))
	check("shipToState", sameString(w.ShipToState, g.ShipToState))
	check("shipToZip", sameString(w.ShipToZip, g.ShipToZip))
	check("itemAmount", sameDecimal(w.ItemAmount, g.ItemAmount))
	check("itemQuantity", w.ItemQuantity == nil && g.ItemQuantity == nil ||
		w.ItemQuantity != nil && g.ItemQuantity != nil && *w.ItemQuantity == *g.ItemQuantity)
	check("itemStatus", sameString(w.ItemStatus, g.ItemStatus))
	check("productName", sameString(w.ProductName, g.ProductName))
	check("productPrice", sameDecimal(w.ProductPrice, g.ProductPrice))
	return out
}

func sameString(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func sameDecimal(a, b *order.Decimal) bool {
	return a == nil && b == nil || a != nil && b != nil && a.String() == b.String()
}

// DifferingFields names the enriched attributes in which got differs from
// want, compared as Compare compares them (amounts as exact decimals; the
// bookkeeping fields event_ts, op and version not at all).
func DifferingFields(want, got *order.Enriched) []string { return differingFields(want, got) }
