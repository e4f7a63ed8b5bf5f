package enrich

// Key changes across orders.
//
// DMS sends an UPDATE that changes a row's key as one update record: the
// after image under "data", the old primary key under the before image
// (cdc.BeforeImageField), keyed by the new orderId. When the old key is in
// the same order (an item's itemId changed) the join deletes the old row
// and upserts the new one in that order's partition. When it is in another
// order (an item moved to another order, or an order's orderId changed)
// the old key's join state and enriched row belong to the old order, whose
// changes arrive on the old orderId's partition key, possibly on another
// shard and processed concurrently by another invocation.
//
// Writing the old order's state from here would race with that
// invocation: it could read the item before the delete, re-emit it with a
// later order change, and bring the row back after this delete. So the
// handler does not touch the old order. It puts the old key's delete
// (order.Change.OldKeyDelete: the old key, operation delete, the update's
// timestamp and so its version) back on the unified stream as a DMS
// record with the old orderId as partition key. Kinesis and Lambda then
// deliver it in order with every other change of the old order, to the
// one invocation that owns that order, and the join's version rules do
// the rest: against an item row written later (the item moved back, a
// newer insert) the older delete is skipped; against the row it replaces
// it leaves a tombstone, and its enriched delete carries the larger of the
// update's and the order's versions, so it outranks every upsert of the
// old row emitted before it. Only the records of one order are ever
// written by one invocation, so the state needs no conditional writes.
//
// The forward happens after the new key's state is stored and its rows
// are emitted. If it fails, the order's records are reported and Lambda
// redelivers them; the update is re-applied at the same version, which
// re-emits the same rows and forwards the same delete, so a retry is a
// duplicate at worst. Between the update and the forwarded delete being
// applied the old row is briefly still in OrderEnriched, like any change
// in flight.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// forward puts the old key's delete of every update that moved a row from
// another order on the source stream, and fails the orders whose deletes
// could not all be put. An order whose new row DynamoDB refused is
// forwarded too: its state was stored, so the move happened, and its
// records are set aside for good afterwards.
func (h *Handler) forward(ctx context.Context, groups []*group) {
	if h.cfg.SourceStream == "" {
		return // moves were dead-lettered by join
	}
	var recs []outRecord
	for gi, g := range groups {
		if g.err != nil {
			continue
		}
		for i := range g.changes {
			from, moved := g.changes[i].MovedFrom()
			if !moved {
				continue
			}
			del := g.changes[i].OldKeyDelete()
			data, err := oldKeyRecord(&del)
			if err != nil {
				g.fail(err)
				break
			}
			recs = append(recs, outRecord{group: gi, key: strconv.FormatInt(from, 10), data: data})
		}
	}
	if len(recs) == 0 {
		return
	}
	h.putAll(ctx, h.cfg.SourceStream, recs, groups, func(err error) error {
		return fmt.Errorf("forward the old key's delete: %w", err)
	})
}

// oldKeyRecord renders the delete of a moved row's old key as the DMS
// record a delete of that key would be: data holds the key columns (DMS
// writes the whole deleted row; the join reads only the key of a delete),
// and the metadata timestamp is the update's, so the decoded change has
// the update's version.
func oldKeyRecord(del *order.Change) ([]byte, error) {
	ts, err := time.Parse(order.SourceTimestampLayout, del.SourceTimestamp)
	if err != nil {
		return nil, fmt.Errorf("old key delete of order %d: source timestamp %q: %w", del.OrderID, del.SourceTimestamp, err)
	}
	data := map[string]any{"orderId": del.OrderID}
	if del.ItemID != nil {
		data["itemId"] = *del.ItemID
	}
	pk := strconv.FormatInt(del.OrderID, 10)
	return json.Marshal(cdc.Record{
		Data: data,
		Metadata: cdc.Metadata{
			Timestamp:         ts.UTC().Format(cdc.TimestampLayout),
			RecordType:        cdc.RecordTypeData,
			Operation:         order.OpDelete,
			PartitionKeyType:  cdc.PartitionKeyAttribute,
			PartitionKeyValue: pk,
			SchemaName:        order.SourceSchema,
			TableName:         del.RecordType,
		},
	})
}
