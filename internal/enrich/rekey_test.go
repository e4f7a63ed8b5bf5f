package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// routingStream sends each PutRecords call to the fake of the stream it
// names: the enriched output or the unified source stream.
type routingStream struct {
	out, src *fakeStream
}

func (r routingStream) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if aws.ToString(in.StreamName) == "unified-order-stream" {
		return r.src.PutRecords(ctx, in, opts...)
	}
	return r.out.PutRecords(ctx, in, opts...)
}

type rekeyFixture struct {
	fixture
	src *fakeStream
}

func newRekeyFixture(t *testing.T) *rekeyFixture {
	t.Helper()
	f := &rekeyFixture{fixture: fixture{db: newFakeDB(), stream: &fakeStream{}, dead: &fakeDLQ{}}, src: &fakeStream{}}
	h, err := New(Config{
		StateTable: "EnrichState", OutputStream: "order-item-enriched", SourceStream: "unified-order-stream",
		Source: "enrich-test", Retry: fastRetry, Now: func() time.Time { return testNow },
	}, Deps{DB: f.db, Stream: routingStream{out: f.stream, src: f.src}, Products: testProducts, DLQ: f.dead})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

// newMoveFixture joins order 1 with its item 7, and order 2, and returns
// the update, not yet applied, that moves item 7 to order 2.
func newMoveFixture(t *testing.T) (*source, *rekeyFixture, events.KinesisEventRecord) {
	t.Helper()
	s := newSource()
	f := newRekeyFixture(t)
	f.run(t, event(s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1), s.order("insert", 2, "OTHER")))
	return s, f, withBefore(s.item("update", 2, 7, 3), map[string]any{"orderId": 1, "itemId": 7})
}

// withBefore adds a DMS before image (ColumnFilter pk-only) to an update.
func withBefore(r events.KinesisEventRecord, before map[string]any) events.KinesisEventRecord {
	var rec cdc.Record
	if err := json.Unmarshal(r.Kinesis.Data, &rec); err != nil {
		panic(err)
	}
	rec.BeforeImage = before
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	r.Kinesis.Data = b
	return r
}

// asArrival turns what the handler put on the source stream into the
// Kinesis records Lambda would deliver from it.
func asArrival(entries []putEntry) []events.KinesisEventRecord {
	var out []events.KinesisEventRecord
	for i, e := range entries {
		seq := fmt.Sprintf("49654226190374217584376545318930211358523283026%09d", i+1)
		out = append(out, events.KinesisEventRecord{
			EventSource: "aws:kinesis", EventName: "aws:kinesis:record",
			Kinesis: events.KinesisRecord{Data: e.data, PartitionKey: e.key, SequenceNumber: seq},
		})
	}
	return out
}

func (f *rekeyFixture) run(t *testing.T, ev events.KinesisEvent) []order.Enriched {
	t.Helper()
	f.stream.mu.Lock()
	f.stream.entries = nil
	f.stream.mu.Unlock()
	if resp := f.handle(t, ev); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v", seqs(resp))
	}
	return f.stream.rows()
}

func TestHandleKeyChanges(t *testing.T) {
	t.Run("an itemId change deletes the old row, upserts the new one and tombstones the old item's state", func(t *testing.T) {
		s := newSource()
		f := newRekeyFixture(t)
		f.run(t, event(s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1)))
		swap := withBefore(s.item("update", 1, 42, 1), map[string]any{"orderId": 1, "itemId": 7})
		got := f.run(t, event(swap))
		if want := []string{"delete 1/7", "upsert 1/42 NEW qty=1"}; !slices.Equal(summaries(got), want) {
			t.Errorf("emitted %v, want %v", summaries(got), want)
		}
		c, _ := cdc.Decode(swap.Kinesis.Data)
		if r, ok := f.db.row("1", "item#7"); !ok || !r.item.Deleted || r.item.Version != c.Version {
			t.Errorf("old item state = %+v (found %v), want a tombstone at the update's version %d", r.item, ok, c.Version)
		}
		if len(f.src.entries) != 0 {
			t.Errorf("a change within one order put %d records back on the source stream", len(f.src.entries))
		}
		if got := summaries(f.run(t, event(s.order("update", 1, "SHIPPED")))); !slices.Equal(got, []string{"upsert 1/42 SHIPPED qty=1"}) {
			t.Errorf("a later order update emitted %v, want only the new row", got)
		}
	})

	t.Run("a move to another order upserts the new row and its old key's delete reaches the old order through the source stream", func(t *testing.T) {
		s, f, move := newMoveFixture(t)
		moved, _ := cdc.Decode(move.Kinesis.Data)
		if got := summaries(f.run(t, event(move))); !slices.Equal(got, []string{"upsert 2/7 OTHER qty=3"}) {
			t.Errorf("the move emitted %v, want only the new row", got)
		}
		if len(f.src.entries) != 1 || f.src.entries[0].key != "1" {
			t.Fatalf("source stream got %+v, want one record keyed by the old orderId 1", f.src.entries)
		}
		del, err := cdc.Decode(f.src.entries[0].data)
		if err != nil {
			t.Fatalf("the forwarded record does not decode: %v", err)
		}
		if del.RecordType != order.TableOrderItem || del.Operation != order.OpDelete || del.OrderID != 1 ||
			del.ItemID == nil || *del.ItemID != 7 || del.Version != moved.Version {
			t.Errorf("forwarded change = %+v, want the delete of 1/7 at version %d", del, moved.Version)
		}
		if got := summaries(f.run(t, event(asArrival(f.src.entries)...))); !slices.Equal(got, []string{"delete 1/7"}) {
			t.Errorf("the forwarded delete emitted %v, want delete 1/7", got)
		}
		if got := summaries(f.run(t, event(s.order("update", 1, "SHIPPED")))); len(got) != 0 {
			t.Errorf("the old order's next update emitted %v, want nothing", got)
		}
	})

	t.Run("an old order's later update applied before the forwarded delete is outranked by that delete", func(t *testing.T) {
		s, f, move := newMoveFixture(t)
		later := s.order("update", 1, "SHIPPED") // committed after the move, on order 1's shard
		f.run(t, event(move))
		stale := f.run(t, event(later))
		if len(stale) != 1 || stale[0].IsDelete() {
			t.Fatalf("the later update emitted %v; the test expects the stale upsert it races with", summaries(stale))
		}
		fix := f.run(t, event(asArrival(f.src.entries)...))
		if len(fix) != 1 || !fix[0].IsDelete() || fix[0].Version < stale[0].Version {
			t.Errorf("forwarded delete emitted %+v, want a delete of 1/7 whose version is at least the stale upsert's %d", fix, stale[0].Version)
		}
	})

	t.Run("a forwarded delete older than the row it names leaves the row alone", func(t *testing.T) {
		s := newSource()
		f := newRekeyFixture(t)
		f.run(t, event(s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1), s.order("insert", 2, "OTHER")))
		away := withBefore(s.item("update", 2, 7, 1), map[string]any{"orderId": 1, "itemId": 7})
		back := withBefore(s.item("update", 1, 7, 5), map[string]any{"orderId": 2, "itemId": 7})
		f.run(t, event(away))
		toOld := slices.Clone(f.src.entries) // the delete of 1/7
		f.run(t, event(back))                // the item moved back first on order 1's shard
		if got := summaries(f.run(t, event(asArrival(toOld)...))); len(got) != 0 {
			t.Errorf("the late delete of 1/7 emitted %v, want nothing: the item is back in order 1", got)
		}
		if r, ok := f.db.row("1", "item#7"); !ok || r.item.Deleted || *r.item.Quantity != 5 {
			t.Errorf("state of 1/7 = %+v, want the moved-back row", r.item)
		}
	})

	t.Run("an order whose orderId changed is deleted under its old id through the source stream", func(t *testing.T) {
		s := newSource()
		f := newRekeyFixture(t)
		f.run(t, event(s.order("insert", 3, "NEW")))
		renumbered := withBefore(s.order("update", 4, "NEW"), map[string]any{"orderId": 3})
		f.run(t, event(renumbered, s.item("insert", 4, 7, 1)))
		if len(f.src.entries) != 1 || f.src.entries[0].key != "3" {
			t.Fatalf("source stream got %+v, want one record keyed by 3", f.src.entries)
		}
		del, err := cdc.Decode(f.src.entries[0].data)
		if err != nil || del.RecordType != order.TableOrder || del.Operation != order.OpDelete || del.OrderID != 3 {
			t.Fatalf("forwarded change = %+v (%v), want the delete of order 3", del, err)
		}
		f.run(t, event(asArrival(f.src.entries)...))
		if r, ok := f.db.row("3", "order"); !ok || !r.order.Deleted {
			t.Errorf("state of order 3 = %+v, want a tombstone", r.order)
		}
	})

	t.Run("a move whose old key's delete cannot be put is reported for retry, and the retry is harmless", func(t *testing.T) {
		s, f, move := newMoveFixture(t)
		f.src.failCall = func(int) error { return throttled() }
		resp := f.handle(t, event(move, s.order("insert", 5, "UNRELATED")))
		if got := seqs(resp); !slices.Equal(got, []string{move.Kinesis.SequenceNumber}) {
			t.Fatalf("failures %v, want the move reported", got)
		}
		f.src.failCall = nil
		if got := summaries(f.run(t, event(move))); !slices.Equal(got, []string{"upsert 2/7 OTHER qty=3"}) {
			t.Errorf("the retry emitted %v", got)
		}
		if len(f.src.entries) != 1 {
			t.Errorf("the retry put %d records on the source stream, want 1", len(f.src.entries))
		}
	})
}

func TestHandleDeadLettersAMoveWithoutASourceStream(t *testing.T) {
	s := newSource()
	f := newFixture(t, nil) // no SourceStream
	move := withBefore(s.item("update", 2, 7, 3), map[string]any{"orderId": 1, "itemId": 7})
	resp := f.handle(t, event(s.order("insert", 2, "OTHER"), move))
	if len(resp.BatchItemFailures) != 0 || len(f.dead.msgs) != 1 || !strings.Contains(f.dead.msgs[0].Reason, EnvSourceStream) {
		t.Errorf("failures %v, dead letters %+v; want the move dead-lettered naming %s", seqs(resp), f.dead.msgs, EnvSourceStream)
	}
}
