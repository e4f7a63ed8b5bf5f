package sink_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/dlq"
)

// itemKey is an OrderEnriched primary key in the fakes.
type itemKey struct{ orderID, itemID int64 }

// fakeTable is an in-memory OrderEnriched table that evaluates the sink's
// version condition the way DynamoDB does, and can be told to fail.
type fakeTable struct {
	mu    sync.Mutex
	items map[itemKey]map[string]types.AttributeValue
	puts  []*dynamodb.PutItemInput
	dels  []*dynamodb.DeleteItemInput
	// fail, when set, is consulted before every call; a non-nil error is
	// returned instead of performing it.
	fail func(k itemKey, call int) error
	// calls counts calls per key, retries included.
	calls map[itemKey]int
}

func newFakeTable() *fakeTable {
	return &fakeTable{items: map[itemKey]map[string]types.AttributeValue{}, calls: map[itemKey]int{}}
}

const wantCondition = "attribute_not_exists(orderId) OR #v <= :v"

func keyOf(av map[string]types.AttributeValue) (itemKey, error) {
	o, ok1 := av["orderId"].(*types.AttributeValueMemberN)
	i, ok2 := av["itemId"].(*types.AttributeValueMemberN)
	if !ok1 || !ok2 {
		return itemKey{}, errors.New("key attributes missing or not numbers")
	}
	oid, err1 := strconv.ParseInt(o.Value, 10, 64)
	iid, err2 := strconv.ParseInt(i.Value, 10, 64)
	if err1 != nil || err2 != nil {
		return itemKey{}, errors.New("key attributes are not integers")
	}
	return itemKey{oid, iid}, nil
}

func versionOf(av map[string]types.AttributeValue) int64 {
	n, _ := av["version"].(*types.AttributeValueMemberN)
	if n == nil {
		return 0
	}
	v, _ := strconv.ParseInt(n.Value, 10, 64)
	return v
}

// admits evaluates "attribute_not_exists(orderId) OR version <= :v".
func (f *fakeTable) admits(k itemKey, cond *string, names map[string]string, values map[string]types.AttributeValue) error {
	if cond == nil || *cond != wantCondition || names["#v"] != "version" {
		return fmt.Errorf("unexpected condition %v %v", cond, names)
	}
	v, ok := values[":v"].(*types.AttributeValueMemberN)
	if !ok {
		return errors.New(":v missing")
	}
	nv, _ := strconv.ParseInt(v.Value, 10, 64)
	if cur, ok := f.items[k]; ok && versionOf(cur) > nv {
		return &types.ConditionalCheckFailedException{Message: strPtr("The conditional request failed")}
	}
	return nil
}

func (f *fakeTable) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	k, err := keyOf(in.Item)
	if err != nil {
		return nil, err
	}
	if err := f.before(ctx, k); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, in)
	if err := f.admits(k, in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues); err != nil {
		return nil, err
	}
	f.items[k] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeTable) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	k, err := keyOf(in.Key)
	if err != nil {
		return nil, err
	}
	if len(in.Key) != 2 {
		return nil, errors.New("key has extra attributes")
	}
	if err := f.before(ctx, k); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dels = append(f.dels, in)
	if err := f.admits(k, in.ConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues); err != nil {
		return nil, err
	}
	delete(f.items, k)
	return &dynamodb.DeleteItemOutput{}, nil
}

func (f *fakeTable) before(ctx context.Context, k itemKey) error {
	f.mu.Lock()
	f.calls[k]++
	call := f.calls[k]
	fail := f.fail
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if fail == nil {
		return nil
	}
	err := fail(k, call)
	if errors.Is(err, errHang) {
		<-ctx.Done() // like an SDK call that never gets an answer
		return fmt.Errorf("send request: %w", ctx.Err())
	}
	return err
}

// errHang makes a fake call block until its context ends.
var errHang = errors.New("hang")

func (f *fakeTable) put(k itemKey, version int64, status string) {
	f.items[k] = map[string]types.AttributeValue{
		"orderId":    &types.AttributeValueMemberN{Value: strconv.FormatInt(k.orderID, 10)},
		"itemId":     &types.AttributeValueMemberN{Value: strconv.FormatInt(k.itemID, 10)},
		"version":    &types.AttributeValueMemberN{Value: strconv.FormatInt(version, 10)},
		"itemStatus": &types.AttributeValueMemberS{Value: status},
	}
}

// captureDLQ is a dlq.Sender that keeps what it is given, or fails.
type captureDLQ struct {
	mu   sync.Mutex
	msgs []dlq.Message
	err  error
}

func (c *captureDLQ) Send(_ context.Context, msgs []dlq.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.msgs = append(c.msgs, msgs...)
	return nil
}

func strPtr(s string) *string { return &s }
