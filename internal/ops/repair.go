package ops

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// RepairResult says what Repair put on the stream.
type RepairResult struct {
	// Orders are the orderIds repaired, ascending.
	Orders []int64
	// OrderRecords and ItemRecords count the load records sent.
	OrderRecords, ItemRecords int
	// ItemDeletes are the table's items the source does not have, sent as
	// item deletes.
	ItemDeletes []Key
	// Version is the time every record carries, as in Resend.
	Version time.Time
}

// repairOrders bounds the orderIds of one query.
const repairOrders = 500

// RepairOrders names the orders a repair re-sends for the report: those
// with rows missing, unexpected or differing, and, with drift, those with
// catalogue drift too; ascending.
func (r Report) RepairOrders(drift bool) []int64 {
	var ids []int64
	for _, k := range slices.Concat(r.Missing, r.Unexpected) {
		ids = append(ids, k.OrderID)
	}
	ms := r.Differing
	if drift {
		ms = slices.Concat(ms, r.Drift)
	}
	for _, m := range ms {
		ids = append(ids, m.OrderID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Repair puts the orders the report names back on the unified stream, so
// that the pipeline itself brings OrderEnriched back to the source join
// while CDC keeps running: under one consistent snapshot, each order and
// its items as DMS load records, as Resend sends every row (same version
// rules: the database's time from just before the snapshot, so a change
// committed meanwhile wins); and, for each of the report's unexpected
// items that the source does not have in the snapshot, an item delete of
// that key, which enrich turns into a delete of the enriched row whether
// or not it knows the order (docs/design.md §4.1). The foreign key from
// order_item to order means an item the source has always has its order,
// so an unexpected item is either sent as a load or deleted.
//
// drift also repairs rows whose only difference is catalogue drift: they
// are re-enriched with today's catalogue.
func Repair(ctx context.Context, db *sql.DB, kin Kinesis, stream string, r Report, drift bool) (RepairResult, error) {
	res := RepairResult{Orders: r.RepairOrders(drift)}
	if len(res.Orders) == 0 {
		return res, nil
	}
	snap, err := openSnapshot(ctx, db)
	if err != nil {
		return res, err
	}
	defer snap.close(ctx)
	res.Version = snap.stamp

	s := &sender{kin: kin, stream: stream}
	items := map[Key]bool{}
	for chunk := range slices.Chunk(res.Orders, repairOrders) {
		list, args := inList(chunk)
		in := "WHERE orderId IN " + list + " "
		n, err := s.table(ctx, snap, order.TableOrder, selectOrders+in+"ORDER BY orderId", args, orderColumns, nil)
		res.OrderRecords += n
		if err != nil {
			return res, err
		}
		n, err = s.table(ctx, snap, order.TableOrderItem, selectItems+in+"ORDER BY orderId, itemId", args, itemColumns, func(data map[string]any) {
			items[Key{data["orderId"].(int64), data["itemId"].(int64)}] = true
		})
		res.ItemRecords += n
		if err != nil {
			return res, err
		}
	}
	// After the loads on the same shard, so the order's rows are stored
	// first; the deletes name keys the loads do not.
	meta := snap.meta(order.TableOrderItem, order.OpDelete)
	for _, k := range r.Unexpected {
		if items[k] {
			continue
		}
		rec := cdc.Record{Data: map[string]any{"orderId": k.OrderID, "itemId": k.ItemID}, Metadata: meta}
		if err := s.record(ctx, k.OrderID, rec); err != nil {
			return res, err
		}
		res.ItemDeletes = append(res.ItemDeletes, k)
	}
	return res, s.flush(ctx)
}

// inList is the placeholder list "(?,?,...)" of a non-empty IN predicate
// and its arguments, the ids.
func inList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "(?" + strings.Repeat(",?", len(ids)-1) + ")", args
}
