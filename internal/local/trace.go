package local

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/binlog"
	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/poller"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// Stages a traced source change passes, in order.
const (
	StageCDC      = "CDC record"     // the binlog reader turned the row change into a DMS record
	StageEnrich   = "joined"         // enrich updated the join state and sent the enriched rows
	StageDynamoDB = "DynamoDB write" // the sink wrote (or deleted) an OrderEnriched item
	stageCommit   = "source commit"  // the COMMIT returned to the client
)

// TraceStage is one stage a source change passed, and when.
type TraceStage struct {
	Stage  string
	Detail string // what happened there, e.g. "order 1004 item 512 deleted"
	At     time.Time
}

// TracedChange is one source row change and the stages it passed, in
// time order. Commit is zero when the change's commit time is unknown
// (rows of the full load).
type TracedChange struct {
	What   string // "order_item 1004/512 delete"
	Commit time.Time
	Stages []TraceStage
}

// tracer records, per record version (one source row change), when each
// stage handled it. Enriched rows carry the larger version of their two
// sides, so an order update's rows are traced under the order's change.
type tracer struct {
	mu      sync.Mutex
	changes map[int64]*TracedChange
	// oneHop: enrich writes OrderEnriched within its invocation, so the
	// join is stamped when the invocation began, before those writes.
	oneHop bool
}

func newTracer() *tracer { return &tracer{changes: map[int64]*TracedChange{}} }

func (t *tracer) add(version int64, what string, s TraceStage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.changes[version]
	if c == nil {
		c = &TracedChange{}
		t.changes[version] = c
	}
	if what != "" {
		c.What = what
	}
	c.Stages = append(c.Stages, s)
}

func (t *tracer) record(e binlog.Emitted) {
	t.add(e.Version, fmt.Sprintf("%s %s %s", e.Table, e.Key, e.Operation), TraceStage{Stage: StageCDC, At: time.Now()})
}

// wrap records each record a handler invocation processed, at the moment
// the invocation returned (what the handler did with it is done then).
func (t *tracer) wrap(function string, h poller.Handler) poller.Handler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		started := time.Now()
		resp, err := h(ctx, ev)
		if err != nil {
			return resp, err
		}
		at := time.Now()
		joinedAt := at
		if t.oneHop {
			joinedAt = started
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		for _, r := range ev.Records {
			if failed[r.Kinesis.SequenceNumber] {
				continue
			}
			if function == SinkFunction {
				var e order.Enriched
				if json.Unmarshal(r.Kinesis.Data, &e) != nil {
					continue
				}
				done := "written"
				if e.IsDelete() {
					done = "deleted"
				}
				t.add(e.Version, "", TraceStage{Stage: StageDynamoDB, Detail: fmt.Sprintf("order %d item %d %s", e.OrderID, e.ItemID, done), At: at})
				continue
			}
			c, err := cdc.Decode(r.Kinesis.Data)
			if err != nil {
				continue // control records and tables the pipeline ignores
			}
			what := fmt.Sprintf("order %d %s", c.OrderID, c.Operation)
			if c.ItemID != nil {
				what = fmt.Sprintf("order %d item %d %s", c.OrderID, *c.ItemID, c.Operation)
			}
			t.add(c.Version, what, TraceStage{Stage: StageEnrich, At: joinedAt})
		}
		return resp, nil
	}
}

// Trace returns every traced source change in commit order, each with its
// stages in time order; nil unless Config.Trace was set.
func (p *Pipeline) Trace() []TracedChange {
	if p.tracer == nil {
		return nil
	}
	p.tracer.mu.Lock()
	defer p.tracer.mu.Unlock()
	out := make([]TracedChange, 0, len(p.tracer.changes))
	for v, c := range p.tracer.changes {
		tc := *c
		tc.Stages = slices.Clone(c.Stages)
		if at, ok := p.commits.committed(v); ok {
			tc.Commit = at
			tc.Stages = append(tc.Stages, TraceStage{Stage: stageCommit, At: at})
		}
		slices.SortStableFunc(tc.Stages, func(a, b TraceStage) int { return a.At.Compare(b.At) })
		out = append(out, tc)
	}
	slices.SortFunc(out, func(a, b TracedChange) int {
		if c := a.Stages[0].At.Compare(b.Stages[0].At); c != 0 {
			return c
		}
		return compareStrings(a.What, b.What)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// traceWrites returns db, wrapped under Config.Trace so that the tracer
// sees each OrderEnriched write enrich makes itself (one hop): there is no
// sink invocation to watch.
func (p *Pipeline) traceWrites(db sink.DB) sink.DB {
	if p.tracer == nil {
		return db
	}
	return tracedTable{DB: db, t: p.tracer}
}

type tracedTable struct {
	sink.DB
	t *tracer
}

func (d tracedTable) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := d.DB.PutItem(ctx, in, opts...)
	if err == nil {
		d.written(in.Item, in.Item[sink.AttrVersion], "written")
	}
	return out, err
}

func (d tracedTable) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	out, err := d.DB.DeleteItem(ctx, in, opts...)
	if err == nil {
		d.written(in.Key, in.ExpressionAttributeValues[":v"], "deleted")
	}
	return out, err
}

func (d tracedTable) written(key map[string]ddbtypes.AttributeValue, version ddbtypes.AttributeValue, done string) {
	n, ok := version.(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return
	}
	orderID, itemID, err := sink.DecodeKey(key)
	if err != nil {
		return
	}
	d.t.add(v, "", TraceStage{Stage: StageDynamoDB, Detail: fmt.Sprintf("order %d item %d %s", orderID, itemID, done), At: time.Now()})
}
