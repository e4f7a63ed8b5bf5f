package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unified-streaming-etl/etl/internal/order"
)

// Attribute names of an OrderEnriched item (docs/design.md §3.5). The enriched
// attributes keep the record's field names.
const (
	AttrOrderID       = "orderId"
	AttrItemID        = "itemId"
	AttrEventTS       = "event_ts"
	AttrOrderAmount   = "orderAmount"
	AttrOrderStatus   = "orderStatus"
	AttrOrderDateTime = "orderDateTime"
	AttrShipToName    = "shipToName"
	AttrShipToAddress = "shipToAddress"
	AttrShipToCity    = "shipToCity"
	AttrShipToState   = "shipToState"
	AttrShipToZip     = "shipToZip"
	AttrItemAmount    = "itemAmount"
	AttrItemQuantity  = "itemQuantity"
	AttrItemStatus    = "itemStatus"
	AttrProductName   = "productName"
	AttrProductPrice  = "productPrice"
	AttrVersion       = "version"
	AttrUpdatedAt     = "updatedAt"
)

// Item is an OrderEnriched item read back: the enriched record (Op empty,
// Version set) and the time of the write that produced it.
type Item struct {
	order.Enriched
	UpdatedAt time.Time
}

// Key is the primary key of the item for (orderID, itemID), for GetItem
// and DeleteItem.
func Key(orderID, itemID int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrOrderID: number(orderID),
		AttrItemID:  number(itemID),
	}
}

// attributes encodes a change as an item. Amounts go from the decimal's
// exact text to a Number; absent or null fields are left out.
func attributes(c *change, updatedAt string) map[string]types.AttributeValue {
	r := &c.rec
	av := make(map[string]types.AttributeValue, 18)
	av[AttrOrderID] = number(c.key.orderID)
	av[AttrItemID] = number(c.key.itemID)
	av[AttrVersion] = number(c.version)
	av[AttrUpdatedAt] = &types.AttributeValueMemberS{Value: updatedAt}
	putS(av, AttrEventTS, r.EventTS)
	putN(av, AttrOrderAmount, r.OrderAmount)
	putS(av, AttrOrderStatus, r.OrderStatus)
	putS(av, AttrOrderDateTime, r.OrderDateTime)
	putS(av, AttrShipToName, r.ShipToName)
	putS(av, AttrShipToAddress, r.ShipToAddress)
	putS(av, AttrShipToCity, r.ShipToCity)
	putS(av, AttrShipToState, r.ShipToState)
	putS(av, AttrShipToZip, r.ShipToZip)
	putN(av, AttrItemAmount, r.ItemAmount)
	if r.ItemQuantity != nil {
		av[AttrItemQuantity] = number(*r.ItemQuantity)
	}
	putS(av, AttrItemStatus, r.ItemStatus)
	putS(av, AttrProductName, r.ProductName)
	putN(av, AttrProductPrice, r.ProductPrice)
	return av
}

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func putS(av map[string]types.AttributeValue, name string, s *string) {
	if s != nil {
		av[name] = &types.AttributeValueMemberS{Value: *s}
	}
}

func putN(av map[string]types.AttributeValue, name string, d *order.Decimal) {
	if d != nil {
		av[name] = &types.AttributeValueMemberN{Value: d.String()}
	}
}

// DecodeItem reads an OrderEnriched item back into an Item.
func DecodeItem(av map[string]types.AttributeValue) (Item, error) {
	var it Item
	var errs []error
	getInt := func(name string, dst *int64, required bool) bool {
		v, ok := av[name]
		if !ok {
			if required {
				errs = append(errs, fmt.Errorf("missing %s", name))
			}
			return false
		}
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a number", name))
			return false
		}
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return false
		}
		*dst = i
		return true
	}
	getS := func(name string) *string {
		v, ok := av[name]
		if !ok {
			return nil
		}
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a string", name))
			return nil
		}
		return &s.Value
	}
	getN := func(name string) *order.Decimal {
		v, ok := av[name]
		if !ok {
			return nil
		}
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a number", name))
			return nil
		}
		d, err := order.ParseDecimal(n.Value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return nil
		}
		return &d
	}

	e := &it.Enriched
	getInt(AttrOrderID, &e.OrderID, true)
	getInt(AttrItemID, &e.ItemID, true)
	getInt(AttrVersion, &e.Version, true)
	var qty int64
	if getInt(AttrItemQuantity, &qty, false) {
		e.ItemQuantity = &qty
	}
	e.EventTS = getS(AttrEventTS)
	e.OrderAmount = getN(AttrOrderAmount)
	e.OrderStatus = getS(AttrOrderStatus)
	e.OrderDateTime = getS(AttrOrderDateTime)
	e.ShipToName = getS(AttrShipToName)
	e.ShipToAddress = getS(AttrShipToAddress)
	e.ShipToCity = getS(AttrShipToCity)
	e.ShipToState = getS(AttrShipToState)
	e.ShipToZip = getS(AttrShipToZip)
	e.ItemAmount = getN(AttrItemAmount)
	e.ItemStatus = getS(AttrItemStatus)
	e.ProductName = getS(AttrProductName)
	e.ProductPrice = getN(AttrProductPrice)
	if s := getS(AttrUpdatedAt); s != nil {
		t, err := time.Parse(time.RFC3339Nano, *s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", AttrUpdatedAt, err))
		}
		it.UpdatedAt = t
	}
	if len(errs) > 0 {
		return Item{}, fmt.Errorf("sink: decode OrderEnriched item: %w", errors.Join(errs...))
	}
	return it, nil
}

// TableAPI is the part of the DynamoDB client CreateTable uses.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	dynamodb.DescribeTableAPIClient
}

// CreateTable creates an OrderEnriched table (orderId N hash, itemId N
// range, on-demand) and waits until it is active. It is for emulators and
// tests; deployed tables come from the process stack. A table that already
// exists is waited for, not an error.
func CreateTable(ctx context.Context, client TableAPI, name string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrOrderID), AttributeType: types.ScalarAttributeTypeN},
			{AttributeName: aws.String(AttrItemID), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrOrderID), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrItemID), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("sink: create table %s: %w", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		// The default polls every 20 s; emulators take well under one.
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 2*time.Minute); err != nil {
		return fmt.Errorf("sink: wait for table %s: %w", name, err)
	}
	return nil
}
