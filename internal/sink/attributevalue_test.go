package sink

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/order"
)

func avNumber(d *order.Decimal) *attributevalue.Number {
	if d == nil {
		return nil
	}
	n := attributevalue.Number(d.String())
	return &n
}

// avAttributes is attributes() written with attributevalue, for
// BenchmarkEncodeItem.
func avAttributes(c *change, updatedAt string) (map[string]types.AttributeValue, error) {
	r := &c.rec
	return attributevalue.MarshalMap(storedItem{
		OrderID: &c.key.orderID, ItemID: &c.key.itemID, Version: &c.version, UpdatedAt: &updatedAt,
		EventTS: r.EventTS, OrderAmount: avNumber(r.OrderAmount), OrderStatus: r.OrderStatus,
		OrderDateTime: r.OrderDateTime, ShipToName: r.ShipToName, ShipToAddress: r.ShipToAddress,
		ShipToCity: r.ShipToCity, ShipToState: r.ShipToState, ShipToZip: r.ShipToZip,
		ItemAmount: avNumber(r.ItemAmount), ItemQuantity: r.ItemQuantity, ItemStatus: r.ItemStatus,
		ProductName: r.ProductName, ProductPrice: avNumber(r.ProductPrice),
	})
}

// benchChanges are the 400 distinct writes of the sink's 500-record
// benchmark batch.
func benchChanges() []change {
	s := func(v string) *string { return &v }
	out := make([]change, 400)
	for i := range out {
		k := key{orderID: 1000 + int64(i/3), itemID: int64(i%3 + 1)}
		amount := order.MustDecimal(fmt.Sprintf("%d.%02d", (k.orderID*7919+int64(i)*104729)%99999999, (k.orderID+int64(i))%100))
		item := order.MustDecimal(fmt.Sprintf("%d.%02d", (k.itemID*31+int64(i))%100000, (k.itemID*7+int64(i))%100))
		price := order.MustDecimal("19.99")
		qty := int64(i%4 + 1)
		zip := "98101"
		if i%97 == 0 {
			zip = ""
		}
		out[i] = change{key: k, version: 1772366398000000 + int64(i), rec: order.Enriched{
			EventTS: s("2026-03-01 12:00:00.250"), OrderID: k.orderID, OrderAmount: &amount,
			OrderStatus: s("PLACED"), OrderDateTime: s("2026-03-01 11:59:58.250"),
			ShipToName: s("Customer " + strconv.FormatInt(k.orderID, 10)), ShipToAddress: s(strconv.Itoa(i) + " Pine St"),
			ShipToCity: s("Seattle"), ShipToState: s("WA"), ShipToZip: &zip,
			ItemID: k.itemID, ItemAmount: &item, ItemQuantity: &qty, ItemStatus: s("PLACED"),
			ProductName: s("Product " + strconv.FormatInt(k.itemID, 10)), ProductPrice: &price,
			Version: 1772366398000000 + int64(i),
		}}
	}
	return out
}

const benchUpdatedAt = "2026-03-01T12:00:01.5Z"

// Both encoders produce the same items, so BenchmarkEncodeItem compares
// equal work, and DecodeItem reads every one back to its record.
func TestAttributeValueEncodingMatchesTheHandWrittenOne(t *testing.T) {
	for _, c := range benchChanges() {
		want := attributes(&c, benchUpdatedAt)
		got, err := avAttributes(&c, benchUpdatedAt)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("attributevalue item %v, hand-written %v", got, want)
		}
		it, err := DecodeItem(want)
		if err != nil || !reflect.DeepEqual(it.Enriched, c.rec) || it.UpdatedAt.Format(time.RFC3339Nano) != benchUpdatedAt {
			t.Fatalf("decoded %+v (%v), want %+v", it, err, c.rec)
		}
	}
}

func BenchmarkEncodeItem(b *testing.B) {
	changes := benchChanges()
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range changes {
				_ = attributes(&changes[i], benchUpdatedAt)
			}
		}
	})
	b.Run("attributevalue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range changes {
				if _, err := avAttributes(&changes[i], benchUpdatedAt); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkDecodeItem reads the 400 items back; DecodeItem's comment
// gives the figures of the hand-written decoder it replaced.
func BenchmarkDecodeItem(b *testing.B) {
	changes := benchChanges()
	items := make([]map[string]types.AttributeValue, len(changes))
	for i := range changes {
		items[i] = attributes(&changes[i], benchUpdatedAt)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range items {
			if _, err := DecodeItem(it); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Amounts reach order.Decimal as their exact text, never through float64,
// and a key of the wrong type or a missing version fails the item.
func TestDecodeItemKeepsAmountsExactAndNeedsItsKeys(t *testing.T) {
	item := map[string]types.AttributeValue{
		AttrOrderID: number(1), AttrItemID: number(2), AttrVersion: number(3),
		AttrOrderAmount: &types.AttributeValueMemberN{Value: "12345678901234567890.01"},
	}
	it, err := DecodeItem(item)
	if err != nil || it.OrderAmount == nil || it.OrderAmount.String() != "12345678901234567890.01" {
		t.Errorf("DecodeItem = %+v, %v; want orderAmount 12345678901234567890.01", it, err)
	}
	delete(item, AttrVersion)
	if _, err := DecodeItem(item); err == nil || !strings.Contains(err.Error(), "missing version") {
		t.Errorf("an item without version: error %v", err)
	}
	item[AttrVersion], item[AttrItemID] = number(3), &types.AttributeValueMemberS{Value: "2"}
	if _, err := DecodeItem(item); err == nil {
		t.Error("an item whose itemId is a string was accepted")
	}
}
