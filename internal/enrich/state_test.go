package enrich

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/join"
	"github.com/unified-streaming-etl/etl/internal/order"
)

func ptr[T any](v T) *T { return &v }

func TestStateRowsRoundTrip(t *testing.T) {
	amount := order.MustDecimal("12345678.90")
	tests := []struct {
		name string
		item map[string]types.AttributeValue
		want stateRow
	}{
		{
			name: "an order row keeps every column and its exact amount",
			item: encodeOrder("1002", &join.OrderRow{
				Version: 1710755220000001, SourceTimestamp: "2024-03-18 09:47:00.000001", Amount: &amount,
				Status: ptr("SHIPPED"), DateTime: ptr("2024-03-18 09:45:03.007"), ShipToName: ptr("Chen Wei"),
				ShipToAddress: ptr("88 Harbor Blvd"), ShipToCity: ptr("San Francisco"), ShipToState: ptr("CA"), ShipToZip: ptr("94105"),
			}, 1711360000),
			want: stateRow{sk: "order", ttl: 1711360000, order: &join.OrderRow{
				Version: 1710755220000001, SourceTimestamp: "2024-03-18 09:47:00.000001", Amount: &amount,
				Status: ptr("SHIPPED"), DateTime: ptr("2024-03-18 09:45:03.007"), ShipToName: ptr("Chen Wei"),
				ShipToAddress: ptr("88 Harbor Blvd"), ShipToCity: ptr("San Francisco"), ShipToState: ptr("CA"), ShipToZip: ptr("94105"),
			}},
		},
		{
			name: "an item row with null columns and an expiry (older versions) reads back with nils",
			item: encodeItem("1002", &join.ItemRow{ItemID: 42, Version: 7, Quantity: ptr(int64(3))}, 1711360000),
			want: stateRow{sk: "item#42", ttl: 1711360000, item: &join.ItemRow{ItemID: 42, Version: 7, Quantity: ptr(int64(3))}},
		},
		{
			name: "a live row is written without expiry",
			item: encodeItem("1002", &join.ItemRow{ItemID: 42, Version: 7, Quantity: ptr(int64(3))}, 0),
			want: stateRow{sk: "item#42", item: &join.ItemRow{ItemID: 42, Version: 7, Quantity: ptr(int64(3))}},
		},
		{
			name: "a tombstone stays a tombstone",
			item: encodeOrder("1002", &join.OrderRow{Version: 9, Deleted: true}, 1711360000),
			want: stateRow{sk: "order", ttl: 1711360000, order: &join.OrderRow{Version: 9, Deleted: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRow(tt.item)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRowRejectsForeignRows(t *testing.T) {
	valid := func() map[string]types.AttributeValue {
		return encodeItem("1", &join.ItemRow{ItemID: 7, Version: 1}, 1)
	}
	tests := []struct {
		name   string
		change func(map[string]types.AttributeValue)
		want   string
	}{
		{"a row without version", func(m map[string]types.AttributeValue) { delete(m, attrVersion) }, "version: missing"},
		{"an amount that is not a number", func(m map[string]types.AttributeValue) {
			m["itemAmount"] = &types.AttributeValueMemberS{Value: "12.5"}
		}, "itemAmount: want a number"},
		{"an unknown sort key", func(m map[string]types.AttributeValue) {
			m[attrSK] = &types.AttributeValueMemberS{Value: "customer"}
		}, `unknown sort key "customer"`},
		{"an item key that is not a number", func(m map[string]types.AttributeValue) {
			m[attrSK] = &types.AttributeValueMemberS{Value: "item#x"}
		}, `item key "item#x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is an error naming the attribute", func(t *testing.T) {
			m := valid()
			tt.change(m)
			if _, err := decodeRow(m); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLiveRowsHaveNoTTLAttribute(t *testing.T) {
	live := encodeOrder("1", &join.OrderRow{Version: 1, Status: ptr("NEW")}, 0)
	if _, ok := live[attrTTL]; ok {
		t.Errorf("live row %v carries %q: DynamoDB would expire it", live, attrTTL)
	}
	tomb := encodeItem("1", &join.ItemRow{ItemID: 7, Version: 2, Deleted: true}, 1711360000)
	if n, ok := tomb[attrTTL].(*types.AttributeValueMemberN); !ok || n.Value != "1711360000" {
		t.Errorf("tombstone %v: want %q = 1711360000 (epoch seconds, a Number)", tomb, attrTTL)
	}
}

func TestWhichRowsAReadIgnoresOrRewrites(t *testing.T) {
	now := time.Date(2024, 3, 18, 10, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second).Unix(), now.Add(time.Hour).Unix()
	tests := []struct {
		name          string
		row           stateRow
		absent, stale bool
	}{
		{"a live row without expiry is kept as it is", stateRow{order: &join.OrderRow{}}, false, false},
		{"a live row from older code, not yet expired, is rewritten without expiry", stateRow{ttl: future, order: &join.OrderRow{}}, false, true},
		{"a live row from older code past its expiry is still the best knowledge, and rewritten", stateRow{ttl: past, item: &join.ItemRow{}}, false, true},
		{"a tombstone within its retention is kept as it is", stateRow{ttl: future, item: &join.ItemRow{Deleted: true}}, false, false},
		{"a tombstone past its retention is absent although DynamoDB has not deleted it yet", stateRow{ttl: past, order: &join.OrderRow{Deleted: true}}, true, false},
		{"a tombstone without expiry is rewritten with one", stateRow{item: &join.ItemRow{Deleted: true}}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.row.absent(now); got != tt.absent {
				t.Errorf("absent = %v, want %v", got, tt.absent)
			}
			if got := tt.row.stale(); got != tt.stale {
				t.Errorf("stale = %v, want %v", got, tt.stale)
			}
		})
	}
}
