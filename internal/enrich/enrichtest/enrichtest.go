// Package enrichtest holds what tests of the enrich processor need to let
// time pass: a settable clock for the handler and the deletion DynamoDB's
// TTL performs, which the emulators lack.
package enrichtest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Clock is a handler clock (enrich.Config.Now) that moves only when told.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// StateDB is the part of the DynamoDB client ExpireState uses.
type StateDB interface {
	dynamodb.ScanAPIClient
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// ExpireState does what DynamoDB's TTL does once it has caught up: it
// deletes every row of the join-state table whose "ttl" (epoch seconds) is
// not after now, and returns how many it deleted. opts apply to each call
// (a test whose client makes one attempt passes retries).
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
func ExpireState(ctx context.Context, db StateDB, table string, now time.Time, opts ...func(*dynamodb.Options)) (int, error) {
	deleted := 0
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx, opts...)
		if err != nil {
			return deleted, err
		}
		for _, item := range page.Items {
			n, ok := item["ttl"].(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			ttl, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return deleted, fmt.Errorf("state row %v/%v: ttl %q: %w", item["pk"], item["sk"], n.Value, err)
			}
			if ttl > now.Unix() {
				continue
			}
			key := map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
			if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key}, opts...); err != nil {
				return deleted, err
			}
			deleted++
		}
	}
	return deleted, nil
}
