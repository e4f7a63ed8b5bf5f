package enrich

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/join"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// itemSize is an item's size by DynamoDB's rules: attribute names and
// string values count their UTF-8 bytes, a number 1 byte per two
// significant digits plus 1, a Boolean 1. Storage adds 100 bytes of
// overhead per item on top (storageOverhead).
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
func itemSize(t *testing.T, item map[string]types.AttributeValue) int {
	t.Helper()
	n := 0
	for name, v := range item {
		n += len(name)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			digits := strings.Trim(strings.NewReplacer("-", "", ".", "").Replace(v.Value), "0")
			n += (len(digits)+1)/2 + 1
		case *types.AttributeValueMemberBOOL:
			n++
		default:
			t.Fatalf("attribute %s: size rule for %T not implemented", name, v)
		}
	}
	return n
}

const storageOverhead = 100

// The README's cost notes quote these sizes: a state row per order and
// per item of a typical order, with a seven-digit orderId (a million
// orders) and row images as the sample data has them.
const (
	readmeOrderRowBytes = 415
	readmeItemRowBytes  = 302
)

func TestStateRowSizesQuotedInTheREADME(t *testing.T) {
	const pk = "1000001"
	version := int64(1793610902120123) // microseconds since the epoch, 2026
	ts := "2026-11-02 09:15:02.120123"
	pos := "shardId-000000000003:49654226190374217584376545318930211358523283025000000001" // Lambda's eventID
	amount, itemAmount := order.MustDecimal("959.18"), order.MustDecimal("945.18")
	o := encodeOrder(pk, &join.OrderRow{
		Version: version, SourceTimestamp: ts, Position: pos, Amount: &amount, Status: ptr("DELIVERED"),
		DateTime: ptr("2026-11-02 09:15:02.120"), ShipToName: ptr("Maria Garcia"), ShipToAddress: ptr("12 Harbor St"),
		ShipToCity: ptr("Seattle"), ShipToState: ptr("WA"), ShipToZip: ptr("98101"),
	}, 0)
	it := encodeItem(pk, &join.ItemRow{
		ItemID: 42, Version: version, SourceTimestamp: ts, Position: pos, Quantity: ptr(int64(2)), Amount: &itemAmount, Status: ptr("DELIVERED"),
	}, 0)
	got := [2]int{itemSize(t, o) + storageOverhead, itemSize(t, it) + storageOverhead}
	if want := [2]int{readmeOrderRowBytes, readmeItemRowBytes}; got != want {
		t.Errorf("stored bytes per order row and item row = %v, README says %v: update its cost notes", got, want)
	}
}
