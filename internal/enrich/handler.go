package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/join"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/refdata"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// Deps are the handler's clients.
type Deps struct {
	DB DB // the join-state table
	// Table writes OrderEnriched (Config.OutputTable): PutItem and
	// DeleteItem only, through sink.Writer.
	Table sink.DB
	// Stream puts records on the enriched stream (Config.OutputStream)
	// and the old keys' deletes on the source stream (Config.SourceStream).
	Stream   Stream
	Products Products   // the product catalogue (see Reference)
	DLQ      dlq.Sender // nil: dead letters are logged (no DLQ configured)
}

// Handler is the enrich Lambda's handler. It is safe for concurrent use by
// invocations whose batches share no order (which Lambda guarantees per
// shard and partition key).
type Handler struct {
	cfg      Config
	db       DB
	table    *sink.Writer // nil: no OutputTable
	stream   Stream
	products Products
	dlq      dlq.Sender
	retry    retry.Policy
}

// New returns a handler. DB and Products are required; Table with
// OutputTable, Stream with OutputStream or SourceStream.
func New(cfg Config, deps Deps) (*Handler, error) {
	cfg = cfg.withDefaults()
	var errs []error
	if cfg.StateTable == "" {
		errs = append(errs, errors.New("state table name is required"))
	}
	if cfg.OutputTable == "" && cfg.OutputStream == "" {
		errs = append(errs, errors.New("an output table or an output stream is required"))
	}
	if deps.DB == nil || deps.Products == nil {
		errs = append(errs, errors.New("DB and Products are required"))
	}
	if cfg.OutputTable != "" && deps.Table == nil {
		errs = append(errs, errors.New("an output table needs a Table client"))
	}
	if (cfg.OutputStream != "" || cfg.SourceStream != "") && deps.Stream == nil {
		errs = append(errs, errors.New("an output or source stream needs a Stream client"))
	}
	if deps.DLQ == nil {
		deps.DLQ = dlq.Log{Logger: cfg.Logger}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("enrich: %w", err)
	}
	policy := cfg.Retry
	retryable := policy.Retryable
	if retryable == nil {
		retryable = retry.IsRetryable
	}
	policy.Retryable = func(err error) bool { return errors.Is(err, errPartial) || retryable(err) }
	h := &Handler{cfg: cfg, db: deps.DB, stream: deps.Stream, products: deps.Products, dlq: deps.DLQ, retry: policy}
	if cfg.OutputTable != "" {
		w, err := sink.NewWriter(sink.WriterConfig{TableName: cfg.OutputTable, Retry: cfg.Retry, Now: cfg.Now}, deps.Table)
		if err != nil {
			return nil, fmt.Errorf("enrich: %w", err)
		}
		h.table = w
	}
	return h, nil
}

// group is the work of one order within a batch.
type group struct {
	orderID int64
	pk      string
	recs    []int // indexes of its records in the event, in stream order
	changes []order.Change
	part    *join.Partition
	stale   map[string]bool  // sort keys of rows read whose expiry must change
	out     []order.Enriched // collapsed: one row per item
	err     error            // why the order could not be completed
	// refused: DynamoDB refused the order's state as invalid, so its
	// records go to the dead-letter queue rather than back to Lambda.
	refused bool
	// refusedRow: what DynamoDB refused was an OrderEnriched row.
	refusedRow bool
	// rowRefusal is DynamoDB's refusal of one of the order's OrderEnriched
	// rows, applied (reject) once the order's old keys are forwarded: the
	// state was stored, so its moves happened (refuseRows).
	rowRefusal error
}

func (g *group) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// reject fails the order for good: DynamoDB refused its state.
func (g *group) reject(err error) {
	g.fail(err)
	g.refused = true
}

// deadLetter is a record that can never succeed.
type deadLetter struct {
	rec    int
	reason string
}

// batch is one invocation's work.
type batch struct {
	ev     *events.KinesisEvent
	groups []*group
	dead   []deadLetter
	// Records that are not row changes of the two source tables: DMS
	// control records, and records of other tables or schemas. The event
	// source mapping has no filter, so every record of the stream is
	// counted here, joined, or dead-lettered.
	control, foreign int
}

// Handle processes one Kinesis batch. Records it cannot complete are
// reported by sequence number; malformed records go to the dead-letter
// queue. It returns an error only when no record could be processed.
func (h *Handler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	started := time.Now()
	b := h.decode(&ev)
	emitted := 0
	if len(b.groups) > 0 {
		cat, err := h.products.Catalogue(ctx)
		if err != nil {
			return events.KinesisEventResponse{}, fmt.Errorf("enrich: %w", err)
		}
		// Unfinished orders are reported rather than cut off by Lambda's
		// timeout, which would fail the whole batch.
		work, cancel := retry.WithDeadlineReserve(ctx, h.cfg.DeadlineReserve)
		now := h.cfg.Now()
		h.read(work, b.groups, now)
		h.join(b, cat)
		h.store(work, b.groups, now)
		if h.table != nil {
			emitted = h.write(work, b.groups)
		}
		if h.cfg.OutputStream != "" {
			// Only the rows of orders the table took: the others are
			// delivered again and published then.
			n := h.emit(work, b.groups)
			if h.table == nil {
				emitted = n
			}
		}
		h.forward(work, b.groups)
		cancel()
		b.refuseRows()
		b.deadLetterRefused()
	}
	dlqFailed, dlqErr := h.sendDeadLetters(ctx, b)

	failed := make(map[int]bool)
	var orderErr error
	var failedOrders []int64
	for _, g := range b.groups {
		if g.err == nil || g.refused {
			continue
		}
		orderErr = firstError(orderErr, g.err)
		failedOrders = append(failedOrders, g.orderID)
		for _, i := range g.recs {
			failed[i] = true
		}
	}
	if len(failedOrders) > 0 {
		// One line per batch: a throttled table fails many orders at once.
		h.cfg.Logger.WarnContext(ctx, "orders not completed; Lambda will retry their records",
			"orders", len(failedOrders), "orderIds", failedOrders[:min(len(failedOrders), 20)], "error", orderErr)
	}
	for _, i := range dlqFailed {
		failed[i] = true
	}
	firstErr := firstError(orderErr, dlqErr)

	// An empty list, not null, like the sink: both mean success to Lambda.
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for i, r := range ev.Records {
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
		}
	}
	// Info, like the sink's: the counts account for every record.
	h.cfg.Logger.InfoContext(ctx, "batch processed",
		"records", len(ev.Records), "orders", len(b.groups), "emitted", emitted,
		"skippedControl", b.control, "skippedForeign", b.foreign,
		"deadLetters", len(b.dead), "failedOrders", len(failedOrders), "failedRecords", len(resp.BatchItemFailures),
		"durationMs", time.Since(started).Milliseconds())
	if len(ev.Records) > 0 && len(resp.BatchItemFailures) == len(ev.Records) {
		return events.KinesisEventResponse{}, fmt.Errorf("enrich: no record of the batch could be processed: %w", firstErr)
	}
	return resp, nil
}

func firstError(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// decode turns the event into per-order groups, in order of first
// appearance, keeping each order's changes in stream order.
func (h *Handler) decode(ev *events.KinesisEvent) *batch {
	b := &batch{ev: ev}
	byOrder := make(map[int64]*group)
	for i := range ev.Records {
		c, err := cdc.Decode(ev.Records[i].Kinesis.Data)
		switch {
		case errors.Is(err, cdc.ErrControl):
			b.control++
			continue
		case errors.Is(err, cdc.ErrNotData):
			b.foreign++
			continue
		}
		if err != nil {
			b.dead = append(b.dead, deadLetter{rec: i, reason: err.Error()})
			continue
		}
		g := byOrder[c.OrderID]
		if g == nil {
			g = &group{orderID: c.OrderID, pk: partitionKey(c.OrderID)}
			byOrder[c.OrderID] = g
			b.groups = append(b.groups, g)
		}
		c.Position = ev.Records[i].EventID
		g.recs = append(g.recs, i)
		g.changes = append(g.changes, c)
	}
	return b
}

// deadLetterRefused sets aside every record of the orders whose state
// DynamoDB refused: retrying them cannot succeed, and reporting them
// would hold up their shard until Lambda gives up on the whole batch.
func (b *batch) deadLetterRefused() {
	dead := make(map[int]bool, len(b.dead))
	for _, d := range b.dead {
		dead[d.rec] = true
	}
	for _, g := range b.groups {
		if !g.refused {
			continue
		}
		reason := fmt.Sprintf("DynamoDB refused the join state of order %d: %v", g.orderID, g.err)
		switch {
		case g.refusedRow && sink.IsUnstorable(g.err):
			// Checked before sending: never reached DynamoDB.
			reason = fmt.Sprintf("an OrderEnriched row of order %d cannot be stored in DynamoDB: %v", g.orderID, g.err)
		case g.refusedRow:
			reason = fmt.Sprintf("DynamoDB refused an OrderEnriched row of order %d: %v", g.orderID, g.err)
		}
		for _, i := range g.recs {
			if !dead[i] {
				b.dead = append(b.dead, deadLetter{rec: i, reason: reason})
			}
		}
	}
}

// read loads the state of every group: a Query for orders with an order
// change (which needs all their items), BatchGetItem for the order row and
// changed items of the rest. Calls run concurrently, bounded.
func (h *Handler) read(ctx context.Context, groups []*group, now time.Time) {
	byPK := make(map[string]*group, len(groups))
	for _, g := range groups {
		byPK[g.pk] = g
	}
	var queries []*group
	var keys []map[string]types.AttributeValue
	for _, g := range groups {
		all := false
		for i := range g.changes {
			if join.NeedsAllItems(&g.changes[i]) {
				all = true
				break
			}
		}
		g.part = join.NewPartition(g.orderID, all)
		g.stale = make(map[string]bool)
		if all {
			queries = append(queries, g)
			continue
		}
		seen := map[int64]bool{}
		keys = append(keys, key(g.pk, skOrder))
		for i := range g.changes {
			// Changes without an item id are refused by the join; they
			// have no state to read.
			for _, id := range join.ItemsRead(&g.changes[i]) {
				if !seen[id] {
					seen[id] = true
					keys = append(keys, key(g.pk, itemSortKey(id)))
				}
			}
		}
	}

	type result struct {
		rows   []map[string]types.AttributeValue
		failed []*group
		err    error
	}
	nGets := (len(keys) + maxBatchGetKeys - 1) / maxBatchGetKeys
	results := make([]result, len(queries)+nGets)
	h.parallel(len(results), func(i int) {
		res := &results[i]
		if i < len(queries) {
			res.rows, res.err = h.query(ctx, queries[i].pk)
			if res.err != nil {
				res.failed = []*group{queries[i]}
			}
			return
		}
		lo := (i - len(queries)) * maxBatchGetKeys
		var unread []map[string]types.AttributeValue
		res.rows, unread, res.err = h.batchGet(ctx, keys[lo:min(lo+maxBatchGetKeys, len(keys))])
		for _, k := range unread {
			res.failed = append(res.failed, byPK[pkOf(k)])
		}
	})

	for _, res := range results {
		for _, g := range res.failed {
			g.fail(res.err)
		}
		for _, item := range res.rows {
			g := byPK[pkOf(item)]
			if g == nil {
				continue
			}
			row, err := decodeRow(item)
			if err != nil {
				g.fail(err)
				continue
			}
			if row.absent(now) {
				continue
			}
			if row.stale() {
				g.stale[row.sk] = true
			}
			if row.order != nil {
				g.part.Order = row.order
			} else {
				g.part.Items[row.item.ItemID] = row.item
			}
		}
	}
}

// join folds each order's changes into its state and collapses the output
// to the last row per item: PutRecords does not keep order within a call,
// so no item may appear twice in one.
func (h *Handler) join(b *batch, cat refdata.Catalogue) {
	for _, g := range b.groups {
		if g.err != nil {
			continue
		}
		var out []order.Enriched
		for i := range g.changes {
			if from, moved := g.changes[i].MovedFrom(); moved && h.cfg.SourceStream == "" {
				b.dead = append(b.dead, deadLetter{rec: g.recs[i], reason: fmt.Sprintf(
					"update moved the row from order %d to order %d, and no source stream (%s) is configured to deliver the old key's delete", from, g.orderID, EnvSourceStream)})
				continue
			}
			var err error
			out, err = g.part.Apply(out, &g.changes[i], cat)
			if errors.Is(err, join.ErrInvalidChange) {
				b.dead = append(b.dead, deadLetter{rec: g.recs[i], reason: err.Error()})
				continue
			}
			if err != nil {
				g.fail(err)
				break
			}
		}
		g.out = collapse(out)
	}
}

// collapse keeps the last row of each item, in the order of those rows.
func collapse(rows []order.Enriched) []order.Enriched {
	if len(rows) < 2 {
		return rows
	}
	last := make(map[int64]int, len(rows))
	for i := range rows {
		last[rows[i].ItemID] = i
	}
	out := rows[:0]
	for i := range rows {
		if last[rows[i].ItemID] == i {
			out = append(out, rows[i])
		}
	}
	return out
}

// write applies the rows of every order whose state was stored to
// OrderEnriched, with the sink's versioned, conditional writes, and fails
// the orders whose rows could not all be written; an order with a row
// DynamoDB refuses is refused like one whose state it refuses. It returns
// how many rows were written or found superseded.
func (h *Handler) write(ctx context.Context, groups []*group) int {
	var rows []order.Enriched
	var owner []*group
	for _, g := range groups {
		if g.err != nil {
			continue
		}
		// collapse left one row per item, so the writes of an order
		// never race each other.
		rows = append(rows, g.out...)
		for range g.out {
			owner = append(owner, g)
		}
	}
	if len(rows) == 0 {
		return 0
	}
	done := 0
	refused := make(map[*group]error)
	for i, r := range h.table.Write(ctx, rows, nil) {
		if r.Outcome.Done() {
			done++
			continue
		}
		err := fmt.Errorf("write OrderEnriched row %d/%d: %w", rows[i].OrderID, rows[i].ItemID, r.Err)
		if r.Outcome != sink.Rejected {
			owner[i].fail(err)
		} else if refused[owner[i]] == nil {
			refused[owner[i]] = err
		}
	}
	// An order with a transient failure is retried whole; only when
	// nothing else fails (forwarding its old keys included) is a refused
	// row the order's fate (refuseRows).
	for g, err := range refused {
		g.rowRefusal = err
	}
	return done
}

// refuseRows sets aside the orders with a refused OrderEnriched row and no
// other failure: their records go to the dead-letter queue.
func (b *batch) refuseRows() {
	for _, g := range b.groups {
		if g.err == nil && g.rowRefusal != nil {
			g.reject(g.rowRefusal)
			g.refusedRow = true
		}
	}
}

// emit writes to the output stream the rows of every order whose state
// was stored and, with a table, whose rows the table took; it marks the
// orders whose rows could not all be written. It returns how many rows
// were written.
func (h *Handler) emit(ctx context.Context, groups []*group) int {
	var recs []outRecord
	for gi, g := range groups {
		if g.err != nil || g.rowRefusal != nil {
			continue
		}
		// The enriched stream is keyed like the unified stream, so an
		// order's rows share a shard and stay in order for the sink.
		pk := strconv.FormatInt(g.orderID, 10)
		for i := range g.out {
			data, err := json.Marshal(&g.out[i])
			if err != nil {
				g.fail(fmt.Errorf("encode enriched row %d/%d: %w", g.orderID, g.out[i].ItemID, err))
				break
			}
			recs = append(recs, outRecord{group: gi, key: pk, data: data})
		}
	}
	return len(recs) - h.putAll(ctx, h.cfg.OutputStream, recs, groups, func(err error) error { return err })
}

// putAll puts recs on stream in chunks, in parallel, and fails the group
// of every record that could not be put with wrap(the call's error). It
// returns how many records were not put.
func (h *Handler) putAll(ctx context.Context, stream string, recs []outRecord, groups []*group, wrap func(error) error) int {
	chunks := chunkRecords(recs)
	type result struct {
		failed []int
		err    error
	}
	results := make([]result, len(chunks))
	h.parallel(len(chunks), func(i int) {
		results[i].failed, results[i].err = h.putRecords(ctx, stream, chunks[i])
	})
	failed := 0
	for i, res := range results {
		for _, j := range res.failed {
			groups[chunks[i][j].group].fail(wrap(res.err))
		}
		failed += len(res.failed)
	}
	return failed
}

// store writes the new state of every order that was joined: the rows the
// batch changed, and the rows it read whose expiry is wrong for their kind
// (live rows from older versions of this code still carry one). Live rows
// are written without expiry, tombstones with TombstoneRetention from now.
// An order change reads every row of its order, so touching an order
// converges all of them; an item change converges its order row and
// itself. An order whose state could not be stored emits nothing (see the
// package doc for why state goes first).
func (h *Handler) store(ctx context.Context, groups []*group, now time.Time) {
	tombstoneTTL := now.Add(h.cfg.TombstoneRetention).Unix()
	ttl := func(deleted bool) int64 {
		if deleted {
			return tombstoneTTL
		}
		return 0
	}
	var rows []map[string]types.AttributeValue
	byPK := make(map[string]*group, len(groups))
	for _, g := range groups {
		if g.err != nil {
			continue
		}
		byPK[g.pk] = g
		p := g.part
		if p.Order != nil && (p.OrderChanged() || g.stale[skOrder]) {
			rows = append(rows, encodeOrder(g.pk, p.Order, ttl(p.Order.Deleted)))
		}
		changed := p.ChangedItems()
		isChanged := make(map[int64]bool, len(changed))
		for _, id := range changed {
			isChanged[id] = true
			rows = append(rows, encodeItem(g.pk, p.Items[id], ttl(p.Items[id].Deleted)))
		}
		for id, it := range p.Items {
			if !isChanged[id] && g.stale[itemSortKey(id)] {
				rows = append(rows, encodeItem(g.pk, it, ttl(it.Deleted)))
			}
		}
	}
	n := (len(rows) + maxBatchWriteOps - 1) / maxBatchWriteOps
	results := make([]map[string]writeFailure, n)
	h.parallel(n, func(i int) {
		lo := i * maxBatchWriteOps
		results[i] = h.writeState(ctx, rows[lo:min(lo+maxBatchWriteOps, len(rows))])
	})
	for _, failed := range results {
		for pk, f := range failed {
			if f.refused {
				byPK[pk].reject(f.err)
			} else {
				byPK[pk].fail(f.err)
			}
		}
	}
}

// sendDeadLetters sends the batch's dead letters (malformed records, the
// records of orders DynamoDB refused) to the DLQ and returns the indexes of
// those it could not deliver.
func (h *Handler) sendDeadLetters(ctx context.Context, b *batch) ([]int, error) {
	if len(b.dead) == 0 {
		return nil, nil
	}
	now := h.cfg.Now()
	msgs := make([]dlq.Message, len(b.dead))
	for i, d := range b.dead {
		msgs[i] = dlq.FromKinesis(b.ev.Records[d.rec], h.cfg.Source, d.reason, now)
		h.cfg.Logger.WarnContext(ctx, "record sent to the dead-letter queue",
			"sequenceNumber", b.ev.Records[d.rec].Kinesis.SequenceNumber, "reason", d.reason)
	}
	err := h.dlq.Send(ctx, msgs)
	if err == nil {
		return nil, nil
	}
	err = fmt.Errorf("dead-letter queue: %w", err)
	var sendErr *dlq.SendError
	var failed []int
	if errors.As(err, &sendErr) {
		for _, i := range sendErr.Failed {
			if i >= 0 && i < len(b.dead) {
				failed = append(failed, b.dead[i].rec)
			}
		}
	} else {
		for _, d := range b.dead {
			failed = append(failed, d.rec)
		}
	}
	h.cfg.Logger.ErrorContext(ctx, "records could not be dead-lettered; Lambda will retry them",
		"records", len(failed), "error", err)
	return failed, err
}

// parallel runs fn(0..n-1) with at most Concurrency calls at once. fn
// records its outcome in its caller's results, so no call's failure stops
// the others.
func (h *Handler) parallel(n int, fn func(i int)) {
	var g errgroup.Group
	g.SetLimit(h.cfg.Concurrency)
	for i := range n {
		g.Go(func() error { fn(i); return nil })
	}
	_ = g.Wait() // every fn returns nil
}
