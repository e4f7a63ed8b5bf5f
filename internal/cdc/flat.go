package cdc

import (
	"strconv"

	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// AppendFlat appends the flat-record JSON of c (docs/design.md §3.3) to dst and
// returns the extended buffer. The bytes are those json.Marshal writes for
// c, less its HTML escaping: members in the order of order.Change's fields,
// nil fields omitted, decimals as exact JSON numbers. json.Unmarshal into an
// order.Change reads back what c holds (invalid UTF-8, which no Decode
// result contains, becomes U+FFFD as encoding/json would make it).
func AppendFlat(dst []byte, c *order.Change) []byte {
	dst = append(dst, `{"recordType":`...)
	dst = jsonscan.AppendString(dst, c.RecordType)
	dst = append(dst, `,"operation":`...)
	dst = jsonscan.AppendString(dst, c.Operation)
	dst = append(dst, `,"orderId":`...)
	dst = strconv.AppendInt(dst, c.OrderID, 10)
	dst = appendInt(dst, `,"itemId":`, c.ItemID)
	dst = appendInt(dst, `,"itemQuantity":`, c.ItemQuantity)
	dst = appendDecimal(dst, `,"orderAmount":`, c.OrderAmount)
	dst = appendDecimal(dst, `,"itemAmount":`, c.ItemAmount)
	dst = appendOptString(dst, `,"orderStatus":`, c.OrderStatus)
	dst = appendOptString(dst, `,"itemStatus":`, c.ItemStatus)
	dst = appendOptString(dst, `,"shipToName":`, c.ShipToName)
	dst = appendOptString(dst, `,"shipToAddress":`, c.ShipToAddress)
	dst = appendOptString(dst, `,"shipToCity":`, c.ShipToCity)
	dst = appendOptString(dst, `,"shipToState":`, c.ShipToState)
	dst = appendOptString(dst, `,"shipToZip":`, c.ShipToZip)
	dst = appendOptString(dst, `,"orderDateTime":`, c.OrderDateTime)
	dst = append(dst, `,"sourceTimestamp":`...)
	dst = jsonscan.AppendString(dst, c.SourceTimestamp)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, c.Version, 10)
	dst = appendInt(dst, `,"oldOrderId":`, c.OldOrderID)
	dst = appendInt(dst, `,"oldItemId":`, c.OldItemID)
	return append(dst, '}')
}

func appendInt(dst []byte, member string, v *int64) []byte {
	if v == nil {
		return dst
	}
	return strconv.AppendInt(append(dst, member...), *v, 10)
}

func appendDecimal(dst []byte, member string, v *order.Decimal) []byte {
	if v == nil {
		return dst
	}
	return append(append(dst, member...), v.String()...)
}

func appendOptString(dst []byte, member string, v *string) []byte {
	if v == nil {
		return dst
	}
	return jsonscan.AppendString(append(dst, member...), *v)
}
