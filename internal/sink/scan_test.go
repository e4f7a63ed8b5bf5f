package sink_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/sink"
)

// pagedTable serves its pages in turn, each pointing at the next through
// LastEvaluatedKey, and records the requests.
type pagedTable struct {
	pages [][]map[string]types.AttributeValue
	fail  error
	reqs  []dynamodb.ScanInput
}

func (p *pagedTable) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	p.reqs = append(p.reqs, *in)
	if p.fail != nil {
		return nil, p.fail
	}
	i := 0
	if n, ok := in.ExclusiveStartKey["page"].(*types.AttributeValueMemberN); ok {
		i, _ = strconv.Atoi(n.Value)
	}
	out := &dynamodb.ScanOutput{Items: p.pages[i]}
	if i+1 < len(p.pages) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{"page": &types.AttributeValueMemberN{Value: strconv.Itoa(i + 1)}}
	}
	return out, nil
}

func stored(orderID, itemID int64) map[string]types.AttributeValue {
	av := sink.Key(orderID, itemID)
	av[sink.AttrVersion] = &types.AttributeValueMemberN{Value: "1"}
	return av
}

func TestScanItems(t *testing.T) {
	t.Run("every page is read consistently and the items come back in key order", func(t *testing.T) {
		table := &pagedTable{pages: [][]map[string]types.AttributeValue{
			{stored(1002, 1), stored(1001, 2)},
			{stored(1001, 1)},
		}}
		var progress []int
		items, err := sink.ScanItems(context.Background(), table, "OrderEnriched", func(n int) { progress = append(progress, n) })
		if err != nil {
			t.Fatal(err)
		}
		var keys [][2]int64
		for _, it := range items {
			keys = append(keys, [2]int64{it.OrderID, it.ItemID})
		}
		if want := [][2]int64{{1001, 1}, {1001, 2}, {1002, 1}}; !slices.Equal(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}
		if !slices.Equal(progress, []int{2, 1}) {
			t.Errorf("progress %v, want one report per page: [2 1]", progress)
		}
		if len(table.reqs) != 2 {
			t.Fatalf("%d Scan calls, want 2", len(table.reqs))
		}
		for i, r := range table.reqs {
			if aws.ToString(r.TableName) != "OrderEnriched" || !aws.ToBool(r.ConsistentRead) {
				t.Errorf("Scan %d: table %q, consistent read %v", i+1, aws.ToString(r.TableName), aws.ToBool(r.ConsistentRead))
			}
		}
		if table.reqs[1].ExclusiveStartKey == nil {
			t.Error("the second Scan does not start after the first page")
		}
	})

	t.Run("a failed Scan names the table", func(t *testing.T) {
		denied := errors.New("AccessDeniedException")
		_, err := sink.ScanItems(context.Background(), &pagedTable{fail: denied}, "OrderEnriched", nil)
		if !errors.Is(err, denied) || !strings.Contains(err.Error(), "scan OrderEnriched") {
			t.Errorf("error %v", err)
		}
	})

	t.Run("an item that is not an order-item is named by its key", func(t *testing.T) {
		odd := stored(7, 0)
		odd[sink.AttrItemID] = &types.AttributeValueMemberS{Value: "x"}
		_, err := sink.ScanItems(context.Background(), &pagedTable{pages: [][]map[string]types.AttributeValue{{stored(1, 1), odd}}}, "OrderEnriched", nil)
		if err == nil || !strings.Contains(err.Error(), `OrderEnriched holds an item that is not an enriched order-item (orderId 7, itemId "x")`) {
			t.Errorf("error %v", err)
		}
	})
}

func TestDecodeKey(t *testing.T) {
	o, i, err := sink.DecodeKey(sink.Key(1001, 7))
	if err != nil || o != 1001 || i != 7 {
		t.Errorf("DecodeKey(Key(1001, 7)) = %d, %d, %v", o, i, err)
	}
	_, _, err = sink.DecodeKey(map[string]types.AttributeValue{
		sink.AttrOrderID: &types.AttributeValueMemberS{Value: "1001"},
		sink.AttrItemID:  &types.AttributeValueMemberN{Value: "1.5"},
	})
	if err == nil || !strings.Contains(err.Error(), sink.AttrOrderID+" is not a number") || !strings.Contains(err.Error(), sink.AttrItemID+" 1.5") {
		t.Errorf("error %v, want both attributes named", err)
	}
}
