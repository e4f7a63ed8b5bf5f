// Package enrich is the Go join processor (docs/design.md §4): a Kinesis handler
// that reads DMS change records from the unified order stream, joins
// orders with their items and the product catalogue, and writes enriched
// order-item records (docs/design.md §3.4) to the enriched stream. Join state lives
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
// changes in with internal/join, stores the new state with BatchWriteItem
// and only then writes the enriched rows with PutRecords.
//
// Why state goes first: the join skips a change older than the stored
// row but re-applies one of the same version. If the rows of an order
// cannot all be written, its records are reported and Lambda redelivers
// them; against the stored state the older changes are skipped and the
// latest change of each row is re-applied, which re-emits exactly the
// rows of the failed attempt with their final content. Had the state not
// been stored, a redelivery split into smaller batches would emit rows
// older than ones already written (an upsert after a delete, which the
// sink could not tell apart). If the state cannot be stored, nothing of
// the order is emitted. BatchWriteItem is not atomic, so part of the
// order's new state may have been stored: its redelivery then meets rows
// from later in the stream than the change being re-applied. Each state
// row keeps the stream position of the change that wrote it, and the join
// emits no pair whose other side is ahead of the change (join.Ahead); the
// later record, delivered again after it, emits the pair. So per
// order-item the output never goes back in version, every upsert pairs
// images that coexisted in the source, and a retried batch emits
// duplicates at worst.
package enrich
