// Package enrich is the Go join processor (docs/design.md §4): a Kinesis handler
// that reads DMS change records from the unified order stream, joins
// orders with their items and the product catalogue, and writes the
// enriched order-items (docs/design.md §3.4) to OrderEnriched itself, with
// the sink's versioned, conditional writes (sink.Writer): one hop. With an
// output stream configured it also publishes every enriched change there,
// keyed by orderId, at least once; with only an output stream it is the
// original's first hop, and the sink writes the table. Join state lives
// in a DynamoDB table so that an item still joins an order that arrived
// days earlier.
//
// Join state holds the live rows of both source tables (and the items
// still waiting for their order) for as long as the source rows exist:
// they never expire, so the join stays exact however long an order lives.
// Only tombstones of deleted rows expire, TombstoneRetention after the
// delete, when no older change of theirs can be delivered any more (see
// state.go).
//
// One invocation reads the state of every order its batch touches in bulk
// (BatchGetItem, or Query for orders whose own row changes), folds the
// changes in with internal/join, stores the new state with BatchWriteItem,
// then writes the enriched rows (PutItem and DeleteItem on OrderEnriched,
// each conditional on the row's version; PutRecords to the enriched
// stream when configured, for the orders the table took), and only then
// forwards the old keys' deletes of moved rows (rekey.go).
//
// Why state goes first: the join skips a change older than the stored
// row but re-applies one of the same version. If the rows of an order
// cannot all be written, its records are reported and Lambda redelivers
// them; against the stored state the older changes are skipped and the
// latest change of each row is re-applied, which writes exactly the rows
// of the failed attempt again with their final content. Had the state not
// been stored, a redelivery split into smaller batches would write rows
// older than ones already written (an upsert after a delete, which the
// version condition could not tell apart). Rows of one order-item are
// collapsed to the last before writing, and the table admits a write only
// if it is not older than the stored row, so concurrent writes and
// retries leave the newest row whichever lands first. Why the rows go
// before the forwarded deletes: the old key's delete may be applied by
// another invocation at once; had the new row not been written, both keys
// would be missing from OrderEnriched for as long as the retry took. If the state cannot be stored, nothing of
// the order is emitted. BatchWriteItem is not atomic, so part of the
// order's new state may have been stored: its redelivery then meets rows
// from later in the stream than the change being re-applied. Each state
// row keeps the stream position of the change that wrote it, and the join
// emits no pair whose other side is ahead of the change (join.Ahead); the
// later record, delivered again after it, emits the pair. So per
// order-item the output never goes back in version, every upsert pairs
// images that coexisted in the source, and a retried batch writes
// duplicates at worst, which the version condition makes no-ops.
package enrich
