package ops

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/order"
	"github.com/unified-streaming-etl/etl/internal/sink"
)

// partialTable answers BatchGetItem with at most perCall items and the
// rest as UnprocessedKeys, as DynamoDB does when throttled or past 16 MB;
// it holds every even itemId.
type partialTable struct {
	mu                      sync.Mutex // getItems reads chunks concurrently
	perCall, calls, maxKeys int
	consistent              bool
}

func (p *partialTable) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errors.New("not used")
}

func (p *partialTable) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	req := in.RequestItems["T"]
	p.maxKeys = max(p.maxKeys, len(req.Keys))
	p.consistent = req.ConsistentRead != nil && *req.ConsistentRead
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	n := min(p.perCall, len(req.Keys))
	for _, k := range req.Keys[:n] {
		id, _ := strconv.ParseInt(k[sink.AttrItemID].(*types.AttributeValueMemberN).Value, 10, 64)
		if id%2 == 0 {
			item := map[string]types.AttributeValue{sink.AttrVersion: &types.AttributeValueMemberN{Value: "1"}}
			for name, v := range k {
				item[name] = v
			}
			out.Responses["T"] = append(out.Responses["T"], item)
		}
	}
	if n < len(req.Keys) {
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{"T": {Keys: req.Keys[n:]}}
	}
	return out, nil
}

func TestGetItemsAsksAgainForUnprocessedKeys(t *testing.T) {
	var want []order.Enriched
	for i := range 250 {
		want = append(want, order.Enriched{OrderID: 1, ItemID: int64(i)})
	}
	table := &partialTable{perCall: 40}
	got, err := getItems(context.Background(), table, "T", want)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 125 || got[0].ItemID != 0 || got[124].ItemID != 248 {
		t.Fatalf("got %d items, first %d, last %d; want the 125 even ones in key order", len(got), got[0].ItemID, got[len(got)-1].ItemID)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ItemID <= got[i-1].ItemID {
			t.Fatalf("items out of order at %d", i)
		}
	}
	// 250 keys in chunks of 100, 100 and 50, each answered 40 at a time.
	if table.maxKeys > batchGetKeys || !table.consistent || table.calls != 3+3+2 {
		t.Errorf("%d calls, at most %d keys a call, consistent %v", table.calls, table.maxKeys, table.consistent)
	}
}

// malformedTable answers every key with an item lacking its attributes.
type malformedTable struct{ partialTable }

func (m *malformedTable) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	return &dynamodb.BatchGetItemOutput{
		Responses:       map[string][]map[string]types.AttributeValue{"T": {in.RequestItems["T"].Keys[0]}},
		UnprocessedKeys: map[string]types.KeysAndAttributes{"T": {Keys: in.RequestItems["T"].Keys[1:]}},
	}, nil
}

func TestGetItemsDoesNotRetryMalformedItems(t *testing.T) {
	table := &malformedTable{}
	_, err := getItems(context.Background(), table, "T", []order.Enriched{{OrderID: 1, ItemID: 1}, {OrderID: 1, ItemID: 2}})
	if err == nil || !strings.Contains(err.Error(), "not an enriched order-item") {
		t.Fatalf("err = %v, want the malformed item named", err)
	}
	if table.calls != 1 {
		t.Errorf("%d calls, want 1: a malformed item is not retried", table.calls)
	}
}
