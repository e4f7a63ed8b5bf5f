package enrich

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/sink"
)

// fakeTable records the OrderEnriched writes enrich makes itself (one
// hop) in a call log it shares with the state table and the streams, and
// fails the writes a test plans.
type fakeTable struct {
	mu     sync.Mutex
	log    *callLog
	writes []string // "put 1/7" or "delete 1/7", with the condition checked
	fail   func(orderID, itemID string) error
}

type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.calls); n == 0 || l.calls[n-1] != s {
		l.calls = append(l.calls, s)
	}
}

func (f *fakeTable) record(op, table, cond string, key map[string]ddbtypes.AttributeValue) error {
	o := key[sink.AttrOrderID].(*ddbtypes.AttributeValueMemberN).Value
	i := key[sink.AttrItemID].(*ddbtypes.AttributeValueMemberN).Value
	f.log.add("table")
	if table != "OrderEnriched" || !strings.Contains(cond, "#v <= :v") {
		return fmt.Errorf("%s %s/%s: table %q, condition %q: want OrderEnriched and the version condition", op, o, i, table, cond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(o, i); err != nil {
			return err
		}
	}
	f.writes = append(f.writes, op+" "+o+"/"+i)
	return nil
}

func (f *fakeTable) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, f.record("put", *in.TableName, *in.ConditionExpression, in.Item)
}

func (f *fakeTable) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return &dynamodb.DeleteItemOutput{}, f.record("delete", *in.TableName, *in.ConditionExpression, in.Key)
}

type oneHopFixture struct {
	fixture
	table *fakeTable
	src   *fakeStream
	log   *callLog
}

// newOneHopFixture is the default processor: enrich writes OrderEnriched,
// no enriched stream, old keys' deletes put back on the source stream.
func newOneHopFixture(t *testing.T) *oneHopFixture {
	t.Helper()
	log := &callLog{}
	f := &oneHopFixture{fixture: fixture{db: newFakeDB(), dead: &fakeDLQ{}}, table: &fakeTable{log: log},
		src: &fakeStream{failCall: func(int) error { log.add("source stream"); return nil }}, log: log}
	f.db.onWrite = func(int, []ddbtypes.WriteRequest) ([]ddbtypes.WriteRequest, error) { log.add("state"); return nil, nil }
	h, err := New(Config{
		StateTable: "EnrichState", OutputTable: "OrderEnriched", SourceStream: "unified-order-stream",
		Source: "enrich-test", Retry: fastRetry, Now: func() time.Time { return testNow },
	}, Deps{DB: f.db, Table: f.table, Stream: f.src, Products: testProducts, DLQ: f.dead})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func TestOneHopWritesOrderEnrichedItself(t *testing.T) {
	s := newSource()
	o1, i7, i42 := s.order("insert", 1, "NEW"), s.item("insert", 1, 7, 1), s.item("insert", 1, 42, 1)

	t.Run("joined rows are put with the version condition, after the state is stored", func(t *testing.T) {
		f := newOneHopFixture(t)
		if resp := f.handle(t, event(o1, i7, i42)); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %v", seqs(resp))
		}
		got := slices.Sorted(slices.Values(f.table.writes))
		if want := []string{"put 1/42", "put 1/7"}; !slices.Equal(got, want) {
			t.Errorf("writes %v, want %v", got, want)
		}
		if want := []string{"state", "table"}; !slices.Equal(f.log.calls, want) {
			t.Errorf("calls %v, want %v", f.log.calls, want)
		}
	})

	t.Run("a delete is a conditional DeleteItem", func(t *testing.T) {
		f := newOneHopFixture(t)
		f.handle(t, event(o1, i7))
		f.table.writes = nil
		if resp := f.handle(t, event(s.item("delete", 1, 7, 1))); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %v", seqs(resp))
		}
		if want := []string{"delete 1/7"}; !slices.Equal(f.table.writes, want) {
			t.Errorf("writes %v, want %v", f.table.writes, want)
		}
	})

	t.Run("a moved row's old key is forwarded only after the new row is written", func(t *testing.T) {
		f := newOneHopFixture(t)
		o2 := s.order("insert", 2, "NEW")
		move := withBefore(s.item("update", 2, 7, 3), map[string]any{"orderId": 1, "itemId": 7})
		f.handle(t, event(o2, move))
		if want := []string{"state", "table", "source stream"}; !slices.Equal(f.log.calls, want) {
			t.Errorf("calls %v, want %v", f.log.calls, want)
		}
	})

	t.Run("an order whose row cannot be written is reported, and its old keys are not forwarded", func(t *testing.T) {
		f := newOneHopFixture(t)
		f.table.fail = func(o, _ string) error {
			if o == "2" {
				return throttled()
			}
			return nil
		}
		o2 := s.order("insert", 2, "NEW")
		move := withBefore(s.item("update", 2, 7, 3), map[string]any{"orderId": 1, "itemId": 7})
		o3 := s.order("insert", 3, "NEW")
		i3 := s.item("insert", 3, 42, 1)
		resp := f.handle(t, event(o2, move, o3, i3))
		if got := len(resp.BatchItemFailures); got != 2 {
			t.Errorf("%d failures %v, want the 2 records of order 2", got, seqs(resp))
		}
		if slices.Contains(f.log.calls, "source stream") {
			t.Error("the old key's delete was forwarded although the new row was not written")
		}
		if !slices.Contains(f.table.writes, "put 3/42") {
			t.Errorf("writes %v: order 3 was held up by order 2", f.table.writes)
		}
		if len(f.dead.msgs) != 0 {
			t.Errorf("dead letters %v, want none: a throttled write is retried", f.dead.msgs)
		}
	})

	t.Run("a redelivered batch writes the same rows again", func(t *testing.T) {
		f := newOneHopFixture(t)
		calls := 0
		f.table.fail = func(string, string) error {
			if calls++; calls <= 4*2 { // every attempt of the first batch
				return throttled()
			}
			return nil
		}
		ev := event(o1, i7, i42)
		// Nothing of the batch could be done: Lambda retries it whole.
		if _, err := f.h.Handle(context.Background(), ev); err == nil {
			t.Fatal("Handle succeeded, want the error that fails the whole batch")
		}
		if resp := f.handle(t, ev); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("redelivery failures %v", seqs(resp))
		}
		got := slices.Sorted(slices.Values(f.table.writes))
		if want := []string{"put 1/42", "put 1/7"}; !slices.Equal(got, want) {
			t.Errorf("writes %v, want %v", got, want)
		}
	})

	t.Run("a row DynamoDB refuses dead-letters its order's records", func(t *testing.T) {
		f := newOneHopFixture(t)
		f.table.fail = func(o, _ string) error {
			if o == "1" {
				return &smithy.GenericAPIError{Code: "ValidationException", Message: "Item size has exceeded the maximum allowed size"}
			}
			return nil
		}
		resp := f.handle(t, event(o1, i7))
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("failures %v, want none: the records are set aside", seqs(resp))
		}
		if len(f.dead.msgs) != 2 || !strings.Contains(f.dead.msgs[0].Reason, "DynamoDB refused an OrderEnriched row of order 1") {
			t.Errorf("dead letters %+v, want both records with the reason", f.dead.msgs)
		}
	})

	// The move is in the stored state whatever becomes of the new row, so
	// the old order must lose the row: otherwise it keeps it for good, as
	// the dead-lettered records are never delivered again.
	t.Run("a refused row of a moving update still forwards the old key's delete", func(t *testing.T) {
		f := newOneHopFixture(t)
		f.table.fail = func(o, _ string) error {
			if o == "2" {
				return &smithy.GenericAPIError{Code: "ValidationException", Message: "Item size has exceeded the maximum allowed size"}
			}
			return nil
		}
		o2 := s.order("insert", 2, "NEW")
		move := withBefore(s.item("update", 2, 7, 3), map[string]any{"orderId": 1, "itemId": 7})
		if resp := f.handle(t, event(o2, move)); len(resp.BatchItemFailures) != 0 {
			t.Errorf("failures %v, want none: the records are set aside", seqs(resp))
		}
		if !slices.Contains(f.log.calls, "source stream") {
			t.Errorf("calls %v: the old key's delete was not forwarded", f.log.calls)
		}
		if len(f.dead.msgs) != 2 || !strings.Contains(f.dead.msgs[0].Reason, "DynamoDB refused an OrderEnriched row of order 2") {
			t.Errorf("dead letters %+v, want both records with the reason", f.dead.msgs)
		}
	})
}

func TestNewNeedsAnOutput(t *testing.T) {
	deps := Deps{DB: newFakeDB(), Products: testProducts}
	tests := []struct {
		name    string
		cfg     Config
		deps    Deps
		wantErr string
	}{
		{"no table and no stream", Config{StateTable: "S"}, deps, "an output table or an output stream is required"},
		{"a table without a client", Config{StateTable: "S", OutputTable: "OrderEnriched"}, deps, "needs a Table client"},
		{"a stream without a client", Config{StateTable: "S", OutputStream: "enriched"}, deps, "needs a Stream client"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := New(tt.cfg, tt.deps)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
	if _, err := New(Config{StateTable: "S", OutputTable: "OrderEnriched"}, Deps{DB: newFakeDB(), Products: testProducts, Table: &fakeTable{}}); err != nil {
		t.Errorf("one hop without any stream: %v", err)
	}
}
