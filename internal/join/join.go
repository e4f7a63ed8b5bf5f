// Package join is the order ⋈ order_item join of docs/design.md §4.1 as pure state
// transitions, with no I/O: a Partition holds what the join knows about one
// order (its row and its item rows) and Apply folds one change into it,
// returning the enriched rows the change completes or changes.
//
// Rules:
//   - A row is emitted whenever either side changes and the other side is
//     known: an item that arrives before its order waits in the partition
//     and is emitted when the order arrives; an order change re-emits every
//     known item.
//   - Deletes propagate: an item delete emits a delete for its row; an order
//     delete emits deletes for every known item. Item rows outlive their
//     order, so an order that is inserted again re-joins them, exactly like
//     an SQL join of the final tables.
//   - An update that changes a row's key (from the DMS before image) is the
//     delete of the old key and the upsert of the new one, both at the
//     update's version. When the old key is in the same order (an item's
//     itemId changed) Apply does both. When it is in another order (an item
//     moved to another order, or an order's orderId changed) Apply does the
//     upsert; the delete belongs to the other order's partition, and the
//     caller delivers it there as Change.OldKeyDelete (see internal/enrich).
//   - Products are a left join: a missing product leaves name and price nil.
//   - An enriched row's version is the larger of its two sides' versions.
//
// Deleted rows stay as tombstones carrying the delete's version. A change
// older than the stored row is ignored, so a redelivered change can never
// bring back an older image. A change of the same version is applied again
// and emits its rows again: changes carry full row images, so that is
// harmless, and it is how a redelivered batch re-emits the rows whose
// first write failed (see internal/enrich).
//
// Every row also remembers the stream position of the change that wrote it
// (order.Change.Position). When a redelivered change meets a row of the
// other side that a later record of the same shard wrote, the two images
// never coexisted: the state is ahead of the change, because an earlier
// attempt stored part of a later batch's state before it failed (a
// BatchWriteItem is not atomic). Apply then emits no joined row for that
// pair; the later record is delivered again after this one and emits the
// pair as it really was. Deletes are emitted regardless: a delete of a row
// whose other side is ahead removes the row the earlier change removed,
// and its version (the larger of both sides') still outranks every upsert
// emitted before it. Positions are compared, not versions, because records
// can arrive with older versions than rows already stored (re-sent and
// replayed rows, the old-key deletes enrich puts back) and must still join.
package join

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
)

// ErrInvalidChange marks a change that can never be applied (unknown
// record type or operation, an item without itemId). Retrying it is futile.
var ErrInvalidChange = errors.New("invalid change")

// ErrIncomplete is returned when an order change is applied to a partition
// that was loaded without all its items: re-emitting the order's items
// needs every one of them.
var ErrIncomplete = errors.New("partition was loaded without all its items")

// OrderRow is the join state of an order: its latest image, or a tombstone
// when the latest change deleted it.
type OrderRow struct {
	Version         int64
	SourceTimestamp string
	Position        string // of the change that wrote the row; see Ahead
	Deleted         bool
	Amount          *order.Decimal
	Status          *string
	DateTime        *string
	ShipToName      *string
	ShipToAddress   *string
	ShipToCity      *string
	ShipToState     *string
	ShipToZip       *string
}

// ItemRow is the join state of an order item: its latest image, or a
// tombstone when the latest change deleted it.
type ItemRow struct {
	ItemID          int64
	Version         int64
	SourceTimestamp string
	Position        string // of the change that wrote the row; see Ahead
	Deleted         bool
	Quantity        *int64
	Amount          *order.Decimal
	Status          *string
}

// Partition is the join state of one order. Order is nil while the order
// is unknown. Items holds the item rows that were loaded; AllItems says
// they are all the item rows the state has, which order changes require.
type Partition struct {
	OrderID  int64
	Order    *OrderRow
	Items    map[int64]*ItemRow
	AllItems bool

	orderChanged bool
	itemsChanged map[int64]struct{}
}

// NewPartition returns an empty partition for orderID. allItems says
// whether the caller will load every item row of the order into it.
func NewPartition(orderID int64, allItems bool) *Partition {
	return &Partition{OrderID: orderID, Items: map[int64]*ItemRow{}, AllItems: allItems}
}

// NeedsAllItems reports whether applying c needs every item row of its
// order: order changes re-emit (or delete) all of them.
func NeedsAllItems(c *order.Change) bool { return c.RecordType == order.TableOrder }

// ItemsRead returns the ids of the item rows of c's order that applying c
// reads: its item, and the old item of an update that changed the itemId
// within the order.
func ItemsRead(c *order.Change) []int64 {
	if c.RecordType != order.TableOrderItem || c.ItemID == nil {
		return nil
	}
	if old, ok := oldItemInOrder(c); ok {
		return []int64{*c.ItemID, old}
	}
	return []int64{*c.ItemID}
}

// oldItemInOrder returns the old itemId of an item update that changed the
// key within the same order.
func oldItemInOrder(c *order.Change) (int64, bool) {
	if c.OldOrderID == nil || c.OldItemID == nil || *c.OldOrderID != c.OrderID || c.ItemID == nil || *c.OldItemID == *c.ItemID {
		return 0, false
	}
	return *c.OldItemID, true
}

// OrderChanged reports whether Apply changed the order row.
func (p *Partition) OrderChanged() bool { return p.orderChanged }

// ChangedItems returns the ids of the item rows Apply changed, ascending.
func (p *Partition) ChangedItems() []int64 {
	ids := make([]int64, 0, len(p.itemsChanged))
	for id := range p.itemsChanged {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Apply folds c into the partition and appends the enriched rows it emits
// to dst. Changes of one order must be applied in stream order. A change
// older than the row it targets changes nothing and emits nothing.
func (p *Partition) Apply(dst []order.Enriched, c *order.Change, products refdata.Catalogue) ([]order.Enriched, error) {
	if c.OrderID != p.OrderID {
		return dst, fmt.Errorf("join: change of order %d applied to partition of order %d", c.OrderID, p.OrderID)
	}
	switch c.Operation {
	case order.OpLoad, order.OpInsert, order.OpUpdate, order.OpDelete:
	default:
		return dst, fmt.Errorf("%w: unknown operation %q", ErrInvalidChange, c.Operation)
	}
	switch c.RecordType {
	case order.TableOrder:
		if !p.AllItems {
			return dst, ErrIncomplete
		}
		return p.applyOrder(dst, c, products), nil
	case order.TableOrderItem:
		if c.ItemID == nil {
			return dst, fmt.Errorf("%w: order_item change of order %d without itemId", ErrInvalidChange, c.OrderID)
		}
		if _, ok := oldItemInOrder(c); ok {
			del := c.OldKeyDelete()
			dst = p.applyItem(dst, &del, products)
		}
		return p.applyItem(dst, c, products), nil
	default:
		return dst, fmt.Errorf("%w: unknown record type %q", ErrInvalidChange, c.RecordType)
	}
}

func (p *Partition) applyOrder(dst []order.Enriched, c *order.Change, products refdata.Catalogue) []order.Enriched {
	if p.Order != nil && c.Version < p.Order.Version {
		return dst
	}
	row := &OrderRow{Version: c.Version, SourceTimestamp: c.SourceTimestamp, Position: c.Position}
	if c.IsDelete() {
		row.Deleted = true
	} else {
		row.Amount, row.Status, row.DateTime = c.OrderAmount, c.OrderStatus, c.OrderDateTime
		row.ShipToName, row.ShipToAddress, row.ShipToCity = c.ShipToName, c.ShipToAddress, c.ShipToCity
		row.ShipToState, row.ShipToZip = c.ShipToState, c.ShipToZip
	}
	p.Order = row
	p.orderChanged = true
	// Sorted so that the output does not depend on map order.
	ids := make([]int64, 0, len(p.Items))
	for id, it := range p.Items {
		if !it.Deleted {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		it := p.Items[id]
		switch {
		case row.Deleted:
			dst = append(dst, deleted(p.OrderID, id, row.Version, row.SourceTimestamp, it.Version, it.SourceTimestamp))
		case !Ahead(it.Position, c.Position):
			dst = append(dst, joined(p.OrderID, row, it, products))
		}
	}
	return dst
}

func (p *Partition) applyItem(dst []order.Enriched, c *order.Change, products refdata.Catalogue) []order.Enriched {
	id := *c.ItemID
	if old := p.Items[id]; old != nil && c.Version < old.Version {
		return dst
	}
	row := &ItemRow{ItemID: id, Version: c.Version, SourceTimestamp: c.SourceTimestamp, Position: c.Position}
	if c.IsDelete() {
		row.Deleted = true
	} else {
		row.Quantity, row.Amount, row.Status = c.ItemQuantity, c.ItemAmount, c.ItemStatus
	}
	p.Items[id] = row
	if p.itemsChanged == nil {
		p.itemsChanged = map[int64]struct{}{}
	}
	p.itemsChanged[id] = struct{}{}
	switch {
	case row.Deleted:
		// Emitted even when the order is unknown: a delete of a row the
		// sink does not have is harmless, and it removes a row whose order
		// state has expired.
		var ov int64
		var ots string
		if p.Order != nil {
			ov, ots = p.Order.Version, p.Order.SourceTimestamp
		}
		dst = append(dst, deleted(p.OrderID, id, row.Version, row.SourceTimestamp, ov, ots))
	case p.Order != nil && !p.Order.Deleted && !Ahead(p.Order.Position, c.Position):
		dst = append(dst, joined(p.OrderID, p.Order, row, products))
	}
	return dst
}

// Ahead reports whether stream position a is later than b in the same
// shard. Positions are Kinesis eventIDs ("shardId-…:sequenceNumber"). A
// shard is read in sequence-number order (iterators start AT or AFTER a
// sequence number), so within a shard the larger number is the later
// record; they are decimal strings (leading zeros ignored), compared as
// numbers. Positions in different shards (the stream was resharded) or
// unknown ones are not ordered: Ahead is false, and the change joins as it
// always did.
// https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html
func Ahead(a, b string) bool {
	shardA, seqA, okA := strings.Cut(a, ":")
	shardB, seqB, okB := strings.Cut(b, ":")
	if !okA || !okB || shardA != shardB {
		return false
	}
	seqA, seqB = strings.TrimLeft(seqA, "0"), strings.TrimLeft(seqB, "0")
	if len(seqA) != len(seqB) {
		return len(seqA) > len(seqB)
	}
	return seqA > seqB
}

// joined builds the upsert of an order-item from both sides.
func joined(orderID int64, o *OrderRow, it *ItemRow, products refdata.Catalogue) order.Enriched {
	version, ts := newer(o.Version, o.SourceTimestamp, it.Version, it.SourceTimestamp)
	e := order.Enriched{
		EventTS:       eventTS(ts),
		OrderID:       orderID,
		OrderAmount:   o.Amount,
		OrderStatus:   o.Status,
		OrderDateTime: o.DateTime,
		ShipToName:    o.ShipToName,
		ShipToAddress: o.ShipToAddress,
		ShipToCity:    o.ShipToCity,
		ShipToState:   o.ShipToState,
		ShipToZip:     o.ShipToZip,
		ItemID:        it.ItemID,
		ItemAmount:    it.Amount,
		ItemQuantity:  it.Quantity,
		ItemStatus:    it.Status,
		Op:            order.EnrichedUpsert,
		Version:       version,
	}
	if p, ok := products[it.ItemID]; ok {
		name, price := p.ProductName, p.ProductPrice
		e.ProductName, e.ProductPrice = &name, &price
	}
	return e
}

// deleted builds the delete of an order-item; its version is the larger of
// the delete's and the other side's, so it outranks every upsert of the row
// emitted before it.
func deleted(orderID, itemID, v1 int64, ts1 string, v2 int64, ts2 string) order.Enriched {
	version, ts := newer(v1, ts1, v2, ts2)
	return order.Enriched{
		EventTS: eventTS(ts),
		OrderID: orderID,
		ItemID:  itemID,
		Op:      order.EnrichedDelete,
		Version: version,
	}
}

func newer(v1 int64, ts1 string, v2 int64, ts2 string) (int64, string) {
	if v2 > v1 {
		return v2, ts2
	}
	return v1, ts1
}

// eventTS is the source commit time of the change that produced the row,
// at millisecond precision like KDA's TIMESTAMP. It is derived from the
// change rather than the clock so that a replay emits identical records.
func eventTS(sourceTimestamp string) *string {
	if sourceTimestamp == "" {
		return nil
	}
	if n := len(order.OrderDateTimeLayout); len(sourceTimestamp) > n {
		sourceTimestamp = sourceTimestamp[:n]
	}
	return &sourceTimestamp
}
