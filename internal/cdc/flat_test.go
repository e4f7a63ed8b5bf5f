package cdc_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

func ptr[T any](v T) *T { return &v }

func TestAppendFlatWritesWhatJSONMarshalWrites(t *testing.T) {
	cases := []struct {
		name string
		c    order.Change
	}{
		{"an order with every column", order.Change{
			RecordType: order.TableOrder, Operation: order.OpUpdate, OrderID: 1001,
			OrderAmount: ptr(order.MustDecimal("139.97")), OrderStatus: ptr("SHIPPED"),
			ShipToName: ptr("Maria Garcia"), ShipToAddress: ptr("1200 Pine St, Apt 4B"), ShipToCity: ptr("Seattle"),
			ShipToState: ptr("WA"), ShipToZip: ptr("98101"), OrderDateTime: ptr("2024-03-18 09:41:22.183"),
			SourceTimestamp: "2024-03-19 14:02:11.004120", Version: 1710856931004120,
		}},
		{"an item with every column", order.Change{
			RecordType: order.TableOrderItem, Operation: order.OpInsert, OrderID: 1001, ItemID: ptr(int64(17)),
			ItemQuantity: ptr(int64(3)), ItemAmount: ptr(order.MustDecimal("-0.5")), ItemStatus: ptr(""),
			SourceTimestamp: "2024-03-18 09:41:27.538101", Version: -1,
		}},
		{"a change with only its key", order.Change{RecordType: order.TableOrder, Operation: order.OpDelete}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if got := cdc.AppendFlat(nil, &tc.c); string(got) != string(want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendFlatEscapesStringsSoTheyReadBack(t *testing.T) {
	cases := []struct{ name, in, readBack string }{
		{"an empty string", "", ""},
		{"quotes and backslashes", `say "hi" \ bye`, `say "hi" \ bye`},
		{"control characters", "\x00\x01\x1f\t\n\r\b\f\x7f", "\x00\x01\x1f\t\n\r\b\f\x7f"},
		{"non-ASCII letters and emoji", "Hauptstraße 🌲", "Hauptstraße 🌲"},
		{"JavaScript line separators", "a\u2028b\u2029c", "a\u2028b\u2029c"},
		{"HTML characters", "<b>&amp;</b>", "<b>&amp;</b>"},
		{"invalid UTF-8", "a\xffb\xc3", "a\uFFFDb\uFFFD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := order.Change{RecordType: order.TableOrder, Operation: order.OpInsert, OrderID: 1, ShipToName: ptr(tc.in)}
			out := cdc.AppendFlat(nil, &c)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %q", out)
			}
			var back order.Change
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			if back.ShipToName == nil || *back.ShipToName != tc.readBack {
				t.Fatalf("read back %q from %s, want %q", *back.ShipToName, out, tc.readBack)
			}
			if strings.ContainsRune(string(out), '\u2028') || strings.ContainsRune(string(out), '\u2029') {
				t.Fatalf("line separators left raw in %s", out)
			}
		})
	}
}

func TestAppendFlatAppends(t *testing.T) {
	c := order.Change{RecordType: order.TableOrderItem, Operation: order.OpLoad, OrderID: 7, ItemID: ptr(int64(1))}
	dst := []byte(`{"records":[`)
	out := cdc.AppendFlat(dst, &c)
	want := `{"records":[{"recordType":"order_item","operation":"load","orderId":7,"itemId":1,"sourceTimestamp":"","version":0}`
	if string(out) != want {
		t.Fatalf("got %s", out)
	}
	var back order.Change
	if err := json.Unmarshal(out[len(dst):], &back); err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("read back %+v, %v", back, err)
	}
}
