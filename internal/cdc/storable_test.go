package cdc_test

import (
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
)

func TestDecodeRefusesValuesDynamoDBCannotStore(t *testing.T) {
	forty := "12345678901234567890123456789012345678.91"
	thirtyEight := "123456789012345678901234567890123456.78"
	tooLarge := "1" + strings.Repeat("0", 126)
	longAddress := strings.Repeat("a", 300_000)
	longStatus := strings.Repeat("s", 70_000)
	cases := []decodeCase{
		{name: "an amount of 38 significant digits is kept",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemAmount":"`+thirtyEight+`"}`),
			flat:  itemHead + `1,"itemId":2,"itemAmount":` + thirtyEight + itemTail},
		{name: "an amount of 40 significant digits is refused, naming the column",
			input: dms("order", "update", `{"orderId":1,"orderAmount":"`+forty+`"}`),
			err:   "data.orderAmount: " + forty + " has more than 38 significant digits (40), more than a DynamoDB number holds"},
		{name: "an amount given as a JSON number is checked the same way",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemAmount":`+forty+`}`),
			err:   "data.itemAmount: " + forty + " has more than 38 significant digits (40), more than a DynamoDB number holds"},
		{name: "an amount beyond DynamoDB's range is refused",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemAmount":"1e126"}`),
			err:   "data.itemAmount: " + tooLarge + " is beyond the largest DynamoDB number (9.99…E+125)"},
		{name: "order columns too long for an item are refused with their size",
			input: dms("order", "insert", `{"orderId":1,"shipToAddress":"`+longAddress+`"}`),
			err:   "data: the order's columns take 300031 bytes in a DynamoDB item, more than the 262144 bytes they may (DynamoDB items hold at most 400000 bytes)"},
		{name: "item columns too long for an item are refused with their size",
			input: dms("order_item", "update", `{"orderId":1,"itemId":2,"itemStatus":"`+longStatus+`"}`),
			err:   "data: the item's columns take 70045 bytes in a DynamoDB item, more than the 65536 bytes they may (DynamoDB items hold at most 400000 bytes)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.check)
	}

	t.Run("a delete needs only its keys, so an unstorable value does not stop it", func(t *testing.T) {
		c, err := cdc.Decode(dms("order", "delete", `{"orderId":1,"orderAmount":"`+forty+`","shipToAddress":"`+longAddress+`"}`))
		if err != nil || !c.IsDelete() || c.OrderID != 1 {
			t.Fatalf("Decode = %+v, %v; want the delete of order 1", c, err)
		}
	})
}
