package local

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// Items reads OrderEnriched as decoded items, ordered by key.
func (p *Pipeline) Items(ctx context.Context) ([]sink.Item, error) {
	return sink.ScanItems(ctx, p.DynamoDB, TableName, nil)
}

// Expected computes what OrderEnriched must hold from the source itself:
// orders joined with their items, left-joined with the product catalogue,
// ordered by key.
func Expected(ctx context.Context, db *sql.DB, products refdata.Catalogue) ([]order.Enriched, error) {
	rows, err := db.QueryContext(ctx, "SELECT o.orderId, o.orderAmount, o.orderStatus, o.orderDateTime, "+
		"o.shipToName, o.shipToAddress, o.shipToCity, o.shipToState, o.shipToZip, "+
		"i.itemId, i.itemQuantity, i.itemAmount, i.itemStatus "+
		"FROM orders.`order` o JOIN orders.order_item i ON i.orderId = o.orderId "+
		"ORDER BY o.orderId, i.itemId")
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

// Verify compares OrderEnriched with the join of the source tables.
func (p *Pipeline) Verify(ctx context.Context) ([]Difference, []sink.Item, error) {
	products, err := p.Products()
	if err != nil {
		return nil, nil, err
	}
	want, err := Expected(ctx, p.db, products)
	if err != nil {
		return nil, nil, err
	}
	got, err := p.Items(ctx)
	if err != nil {
		return nil, nil, err
	}
	return Compare(want, got), got, nil
}

// Products reads the pipeline's product catalogue.
func (p *Pipeline) Products() (refdata.Catalogue, error) {
	f, err := os.Open(p.cfg.Products)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return refdata.Parse(f)
}

// Dump writes OrderEnriched as a JSON array with one object per item on
// its own line. Attributes are plain JSON values: numbers exactly as
// stored, strings, booleans, null; orderId and itemId first, the rest by
// name.
func (p *Pipeline) Dump(ctx context.Context, w io.Writer) error {
	raw, err := sink.Scan(ctx, p.DynamoDB, TableName, nil)
	if err != nil {
		return err
	}
	return WriteDump(w, raw)
}

// WriteDump is Dump for items already read.
func WriteDump(w io.Writer, items []map[string]types.AttributeValue) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	for n, av := range items {
		if n > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n{")
		names := make([]string, 0, len(av))
		for k := range av {
			if k != sink.AttrOrderID && k != sink.AttrItemID {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		names = append([]string{sink.AttrOrderID, sink.AttrItemID}, names...)
		first := true
		for _, k := range names {
			v, ok := av[k]
			if !ok {
				continue
			}
			val, err := plainJSON(v)
			if err != nil {
				return fmt.Errorf("attribute %s: %w", k, err)
			}
			if !first {
				buf.WriteString(",")
			}
			first = false
			name, _ := json.Marshal(k)
			buf.Write(name)
			buf.WriteString(":")
			buf.Write(val)
		}
		buf.WriteString("}")
	}
	buf.WriteString("\n]\n")
	_, err := w.Write(buf.Bytes())
	return err
}

// plainJSON renders one DynamoDB attribute value as plain JSON.
func plainJSON(v types.AttributeValue) ([]byte, error) {
	switch v := v.(type) {
	case *types.AttributeValueMemberN:
		if !json.Valid([]byte(v.Value)) {
			return nil, fmt.Errorf("number %q is not valid JSON", v.Value)
		}
		return []byte(v.Value), nil
	case *types.AttributeValueMemberS:
		return json.Marshal(v.Value)
	case *types.AttributeValueMemberBOOL:
		return json.Marshal(v.Value)
	case *types.AttributeValueMemberNULL:
		return []byte("null"), nil
	case *types.AttributeValueMemberL:
		parts := make([]json.RawMessage, len(v.Value))
		for i, e := range v.Value {
			b, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			parts[i] = b
		}
		return json.Marshal(parts)
	case *types.AttributeValueMemberM:
		m := make(map[string]json.RawMessage, len(v.Value))
		for k, e := range v.Value {
			b, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			m[k] = b
		}
		return json.Marshal(m)
	default:
		return nil, fmt.Errorf("unsupported attribute type %T", v)
	}
}
