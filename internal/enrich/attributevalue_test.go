package enrich

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/join"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// avStateRow is a join-state row as feature/dynamodb/attributevalue would
// encode it: the attributes of encodeOrder and encodeItem, amounts as
// exact-text Numbers. It exists to measure the hand-written state row
// codec against attributevalue (encodeOrder's comment has the figures).
type avStateRow struct {
	PK              string                 `dynamodbav:"pk"`
	SK              string                 `dynamodbav:"sk"`
	Version         int64                  `dynamodbav:"version"`
	TTL             int64                  `dynamodbav:"ttl,omitempty"`
	SourceTimestamp string                 `dynamodbav:"sourceTimestamp,omitempty"`
	Deleted         bool                   `dynamodbav:"deleted,omitempty"`
	OrderAmount     *attributevalue.Number `dynamodbav:"orderAmount,omitempty"`
	OrderStatus     *string                `dynamodbav:"orderStatus,omitempty"`
	OrderDateTime   *string                `dynamodbav:"orderDateTime,omitempty"`
	ShipToName      *string                `dynamodbav:"shipToName,omitempty"`
	ShipToAddress   *string                `dynamodbav:"shipToAddress,omitempty"`
	ShipToCity      *string                `dynamodbav:"shipToCity,omitempty"`
	ShipToState     *string                `dynamodbav:"shipToState,omitempty"`
	ShipToZip       *string                `dynamodbav:"shipToZip,omitempty"`
	ItemQuantity    *int64                 `dynamodbav:"itemQuantity,omitempty"`
	ItemAmount      *attributevalue.Number `dynamodbav:"itemAmount,omitempty"`
	ItemStatus      *string                `dynamodbav:"itemStatus,omitempty"`
}

func avNumber(d *order.Decimal) *attributevalue.Number {
	if d == nil {
		return nil
	}
	n := attributevalue.Number(d.String())
	return &n
}

func avDecimal(n *attributevalue.Number) (*order.Decimal, error) {
	if n == nil {
		return nil, nil
	}
	d, err := order.ParseDecimal(string(*n))
	return &d, err
}

func avEncodeOrder(pk string, r *join.OrderRow, ttl int64) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(avStateRow{
		PK: pk, SK: skOrder, Version: r.Version, TTL: ttl, SourceTimestamp: r.SourceTimestamp, Deleted: r.Deleted,
		OrderAmount: avNumber(r.Amount), OrderStatus: r.Status, OrderDateTime: r.DateTime,
		ShipToName: r.ShipToName, ShipToAddress: r.ShipToAddress, ShipToCity: r.ShipToCity,
		ShipToState: r.ShipToState, ShipToZip: r.ShipToZip,
	})
}

func avEncodeItem(pk string, r *join.ItemRow, ttl int64) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(avStateRow{
		PK: pk, SK: itemSortKey(r.ItemID), Version: r.Version, TTL: ttl, SourceTimestamp: r.SourceTimestamp, Deleted: r.Deleted,
		ItemQuantity: r.Quantity, ItemAmount: avNumber(r.Amount), ItemStatus: r.Status,
	})
}

func avDecodeRow(item map[string]types.AttributeValue) (stateRow, error) {
	var v avStateRow
	if err := attributevalue.UnmarshalMap(item, &v); err != nil {
		return stateRow{}, err
	}
	if _, ok := item[attrVersion]; !ok {
		return stateRow{}, fmt.Errorf("state row %s/%s: version: missing", v.PK, v.SK)
	}
	row := stateRow{sk: v.SK, ttl: v.TTL}
	switch {
	case v.SK == skOrder:
		amount, err := avDecimal(v.OrderAmount)
		if err != nil {
			return stateRow{}, err
		}
		row.order = &join.OrderRow{
			Version: v.Version, SourceTimestamp: v.SourceTimestamp, Deleted: v.Deleted, Amount: amount,
			Status: v.OrderStatus, DateTime: v.OrderDateTime, ShipToName: v.ShipToName, ShipToAddress: v.ShipToAddress,
			ShipToCity: v.ShipToCity, ShipToState: v.ShipToState, ShipToZip: v.ShipToZip,
		}
	case strings.HasPrefix(v.SK, skItemPrefix):
		id, err := strconv.ParseInt(v.SK[len(skItemPrefix):], 10, 64)
		if err != nil {
			return stateRow{}, err
		}
		amount, err := avDecimal(v.ItemAmount)
		if err != nil {
			return stateRow{}, err
		}
		row.item = &join.ItemRow{
			ItemID: id, Version: v.Version, SourceTimestamp: v.SourceTimestamp, Deleted: v.Deleted,
			Quantity: v.ItemQuantity, Amount: amount, Status: v.ItemStatus,
		}
	default:
		return stateRow{}, fmt.Errorf("unknown sort key %q", v.SK)
	}
	return row, nil
}

// benchState is the state of the enrich benchmark's full-load batch: 100
// orders of 4 items, one tombstone in ten items.
func benchState() (pks []string, orders []*join.OrderRow, items [][]*join.ItemRow) {
	s := func(v string) *string { return &v }
	for o := range 100 {
		amount := order.MustDecimal(fmt.Sprintf("%d.%02d", 1000+o*37, o%100))
		pks = append(pks, strconv.Itoa(1+o))
		orders = append(orders, &join.OrderRow{
			Version: 1772366398000000 + int64(o), SourceTimestamp: "2026-03-01 12:00:00.250", Amount: &amount,
			Status: s("PENDING"), DateTime: s("2026-03-01 11:59:58.250"), ShipToName: s("Customer " + strconv.Itoa(o)),
			ShipToAddress: s(strconv.Itoa(o) + " Pine St"), ShipToCity: s("Seattle"), ShipToState: s("WA"), ShipToZip: s("98101"),
		})
		var its []*join.ItemRow
		for i := range 4 {
			qty := int64(i + 1)
			amt := order.MustDecimal(fmt.Sprintf("%d.%02d", 10+i, (o+i)%100))
			its = append(its, &join.ItemRow{
				ItemID: int64(1 + (o*7+i)%60), Version: 1772366398000000 + int64(o*4+i), SourceTimestamp: "2026-03-01 12:00:00.250",
				Deleted: (o*4+i)%10 == 9, Quantity: &qty, Amount: &amt, Status: s("PLACED"),
			})
		}
		items = append(items, its)
	}
	return pks, orders, items
}

func benchRows() []map[string]types.AttributeValue {
	pks, orders, items := benchState()
	var rows []map[string]types.AttributeValue
	for i, pk := range pks {
		rows = append(rows, encodeOrder(pk, orders[i], 0))
		for _, it := range items[i] {
			var ttl int64
			if it.Deleted {
				ttl = 1772366398 + 14*86400
			}
			rows = append(rows, encodeItem(pk, it, ttl))
		}
	}
	return rows
}

// Both encoders write the same rows and both decoders read them back the
// same, so the benchmarks below compare equal work.
func TestAttributeValueStateRowsMatchTheHandWrittenOnes(t *testing.T) {
	pks, orders, items := benchState()
	for i, pk := range pks {
		want := encodeOrder(pk, orders[i], 0)
		got, err := avEncodeOrder(pk, orders[i], 0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("attributevalue order row %v (%v), hand-written %v", got, err, want)
		}
		for _, it := range items[i] {
			want := encodeItem(pk, it, 7)
			got, err := avEncodeItem(pk, it, 7)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("attributevalue item row %v (%v), hand-written %v", got, err, want)
			}
		}
	}
	for _, row := range benchRows() {
		a, errA := decodeRow(row)
		b, errB := avDecodeRow(row)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("decoded %+v (%v), attributevalue %+v (%v)", a, errA, b, errB)
		}
	}
}

// BenchmarkEncodeStateRows encodes the state rows one full-load batch
// writes (100 orders, 400 items).
func BenchmarkEncodeStateRows(b *testing.B) {
	pks, orders, items := benchState()
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i, pk := range pks {
				_ = encodeOrder(pk, orders[i], 0)
				for _, it := range items[i] {
					_ = encodeItem(pk, it, 0)
				}
			}
		}
	})
	b.Run("attributevalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i, pk := range pks {
				if _, err := avEncodeOrder(pk, orders[i], 0); err != nil {
					b.Fatal(err)
				}
				for _, it := range items[i] {
					if _, err := avEncodeItem(pk, it, 0); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
}

// BenchmarkDecodeStateRows decodes the same 500 rows, as the reads of the
// next batch on those orders would.
func BenchmarkDecodeStateRows(b *testing.B) {
	rows := benchRows()
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range rows {
				if _, err := decodeRow(r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("attributevalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range rows {
				if _, err := avDecodeRow(r); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
