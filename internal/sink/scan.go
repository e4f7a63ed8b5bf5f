package sink

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Scan reads the whole table with consistent reads and returns its items
// as stored, ordered by (orderId, itemId). progress, when not nil, gets the
// item count of every page, so a long scan can show progress.
func Scan(ctx context.Context, db dynamodb.ScanAPIClient, table string, progress func(items int)) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	pages := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", table, err)
		}
		out = append(out, page.Items...)
		if progress != nil {
			progress(len(page.Items))
		}
	}
	// An item with a malformed key sorts as 0; ScanItems reports it.
	slices.SortFunc(out, func(a, b map[string]types.AttributeValue) int {
		ao, ai, _ := DecodeKey(a)
		bo, bi, _ := DecodeKey(b)
		return cmp.Or(cmp.Compare(ao, bo), cmp.Compare(ai, bi))
	})
	return out, nil
}

// ScanItems is Scan with every item decoded; an item that is not an
// enriched order-item is an error naming its key.
func ScanItems(ctx context.Context, db dynamodb.ScanAPIClient, table string, progress func(items int)) ([]Item, error) {
	raw, err := Scan(ctx, db, table, progress)
	if err != nil {
		return nil, err
	}
	items := make([]Item, len(raw))
	for i, av := range raw {
		if items[i], err = DecodeItem(av); err != nil {
			return nil, fmt.Errorf("%s holds an item that is not an enriched order-item (%s): %w", table, describeKey(av), err)
		}
	}
	return items, nil
}

// describeKey names an item by its key attributes as stored, whatever
// their type.
func describeKey(av map[string]types.AttributeValue) string {
	parts := make([]string, 0, 2)
	for _, name := range []string{AttrOrderID, AttrItemID} {
		v := "absent"
		switch a := av[name].(type) {
		case *types.AttributeValueMemberN:
			v = a.Value
		case *types.AttributeValueMemberS:
			v = strconv.Quote(a.Value)
		case nil:
		default:
			v = fmt.Sprintf("%T", a)
		}
		parts = append(parts, name+" "+v)
	}
	return strings.Join(parts, ", ")
}
