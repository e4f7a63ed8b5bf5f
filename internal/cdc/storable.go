package cdc

import (
	"fmt"

	"github.com/unified-streaming-etl/etl/internal/ddblimit"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// storable reports a value of the change that DynamoDB could not hold in
// the join state or in OrderEnriched (ddblimit has the limits and their
// sources). Refusing it here sends exactly this record to the dead-letter
// queue with the reason; let through, it would fail the state write of
// every order that shares the call.
func storable(c *order.Change) error {
	if c.IsDelete() {
		// A delete needs only its keys: the join keeps no column of a
		// deleted row, so the delete of a row whose values were refused
		// still removes it.
		return nil
	}
	var size int
	num := func(col column, d *order.Decimal) error {
		if d == nil {
			return nil
		}
		s := d.String()
		if err := ddblimit.CheckNumber(s); err != nil {
			return fmt.Errorf("data.%s: %w", columnNames[col], err)
		}
		size += ddblimit.NumberSize(columnNames[col], s)
		return nil
	}
	str := func(col column, s *string) {
		if s != nil {
			size += ddblimit.StringSize(columnNames[col], *s)
		}
	}
	// An int64 has at most 19 digits: 10 bytes and 1.
	const intSize = 11
	size += len(columnNames[colOrderID]) + intSize

	what, limit := "order", order.MaxOrderColumnsSize
	if c.RecordType == order.TableOrder {
		if err := num(colOrderAmount, c.OrderAmount); err != nil {
			return err
		}
		str(colOrderStatus, c.OrderStatus)
		str(colOrderDateTime, c.OrderDateTime)
		str(colShipToName, c.ShipToName)
		str(colShipToAddress, c.ShipToAddress)
		str(colShipToCity, c.ShipToCity)
		str(colShipToState, c.ShipToState)
		str(colShipToZip, c.ShipToZip)
	} else {
		what, limit = "item", order.MaxItemColumnsSize
		if err := num(colItemAmount, c.ItemAmount); err != nil {
			return err
		}
		size += len(columnNames[colItemID]) + intSize
		if c.ItemQuantity != nil {
			size += len(columnNames[colItemQuantity]) + intSize
		}
		str(colItemStatus, c.ItemStatus)
	}
	if size > limit {
		return fmt.Errorf("data: the %s's columns take %d bytes in a DynamoDB item, more than the %d bytes they may (DynamoDB items hold at most %d bytes)",
			what, size, limit, ddblimit.MaxItemSize)
	}
	return nil
}
