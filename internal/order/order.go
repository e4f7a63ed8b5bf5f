// Package order holds the records that flow between the pipeline's parts:
// the flat CDC record (docs/design.md §3.3), the enriched order-item record
// (docs/design.md §3.4) and the product reference data. Every other package
// speaks these types.
package order

import "time"

// Source table names, as DMS reports them in metadata "table-name".
const (
	TableOrder     = "order"
	TableOrderItem = "order_item"
)

// SourceSchema is the MySQL schema that holds both tables.
const SourceSchema = "orders"

// Operations carried by a flat CDC record, as DMS names them.
const (
	OpLoad   = "load"
	OpInsert = "insert"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Operations carried by an enriched record. An absent op means upsert,
// which is what the KDA SQL application emits.
const (
	EnrichedUpsert = "upsert"
	EnrichedDelete = "delete"
)

// Layouts of the timestamps in flat records. KDA SQL parses the first as
// TIMESTAMP; the second keeps DMS's microsecond precision.
const (
	OrderDateTimeLayout   = "2006-01-02 15:04:05.000"
	SourceTimestampLayout = "2006-01-02 15:04:05.000000"
)

// Change is the flat CDC record (docs/design.md §3.3): one row change of either
// source table. Fields that do not belong to RecordType are nil and are
// omitted from JSON.
type Change struct {
	RecordType      string   `json:"recordType"`
	Operation       string   `json:"operation"`
	OrderID         int64    `json:"orderId"`
	ItemID          *int64   `json:"itemId,omitempty"`
	ItemQuantity    *int64   `json:"itemQuantity,omitempty"`
	OrderAmount     *Decimal `json:"orderAmount,omitempty"`
	ItemAmount      *Decimal `json:"itemAmount,omitempty"`
	OrderStatus     *string  `json:"orderStatus,omitempty"`
	ItemStatus      *string  `json:"itemStatus,omitempty"`
	ShipToName      *string  `json:"shipToName,omitempty"`
	ShipToAddress   *string  `json:"shipToAddress,omitempty"`
	ShipToCity      *string  `json:"shipToCity,omitempty"`
	ShipToState     *string  `json:"shipToState,omitempty"`
	ShipToZip       *string  `json:"shipToZip,omitempty"`
	OrderDateTime   *string  `json:"orderDateTime,omitempty"`
	SourceTimestamp string   `json:"sourceTimestamp"`
	Version         int64    `json:"version"`
	// OldOrderID and OldItemID are the row's key before an update that
	// changed it, read from the DMS before image; nil when the key did not
	// change. An order_item key change sets both (the old key is the pair).
	OldOrderID *int64 `json:"oldOrderId,omitempty"`
	OldItemID  *int64 `json:"oldItemId,omitempty"`
	// Position is where the change's record sits in its stream: Lambda's
	// Kinesis eventID, "shardId-…:sequenceNumber". Empty when unknown. It is
	// not part of the record: the processor sets it from the event.
	Position string `json:"-"`
}

// Shares of DynamoDB's item size limit (ddblimit.MaxItemSize) that the
// parts of an enriched row may take: an OrderEnriched item holds one order's
// columns, one item's columns and one product. The decoder sees one side of
// the join at a time and the catalogue is loaded apart from both, so each
// part is held to its own share, counted as DynamoDB counts attribute names
// and values; together they leave room for the keys and the bookkeeping
// attributes (version, updatedAt, event_ts), and each state row fits too.
const (
	MaxOrderColumnsSize = 256 << 10
	MaxItemColumnsSize  = 64 << 10
	MaxProductSize      = 64 << 10 // one line of the catalogue
)

// IsDelete reports whether the change removes its row.
func (c *Change) IsDelete() bool { return c.Operation == OpDelete }

// KeyChanged reports whether c is an update that changed its row's key.
func (c *Change) KeyChanged() bool { return c.OldOrderID != nil }

// MovedFrom reports whether c is an update that moved its row from another
// order, and returns that order's id.
func (c *Change) MovedFrom() (int64, bool) {
	if c.OldOrderID == nil || *c.OldOrderID == c.OrderID {
		return 0, false
	}
	return *c.OldOrderID, true
}

// OldKeyDelete returns the delete of the row's old key that an update which
// changed the key implies: same table, the old key, the update's version.
func (c *Change) OldKeyDelete() Change {
	d := Change{
		RecordType:      c.RecordType,
		Operation:       OpDelete,
		SourceTimestamp: c.SourceTimestamp,
		Version:         c.Version,
		Position:        c.Position,
	}
	if c.OldOrderID != nil {
		d.OrderID = *c.OldOrderID
	}
	if c.OldItemID != nil {
		id := *c.OldItemID
		d.ItemID = &id
	}
	return d
}

// Enriched is the enriched order-item record (docs/design.md §3.4): the columns of
// ORDER_ITEM_ENRICHED_STREAM in sql/kda-orders-setup.sql, plus productPrice,
// op and version from the Go processor. Records from the KDA application
// lack op and version.
type Enriched struct {
	EventTS       *string  `json:"event_ts,omitempty"`
	OrderID       int64    `json:"orderId"`
	OrderAmount   *Decimal `json:"orderAmount"`
	OrderStatus   *string  `json:"orderStatus"`
	OrderDateTime *string  `json:"orderDateTime"`
	ShipToName    *string  `json:"shipToName"`
	ShipToAddress *string  `json:"shipToAddress"`
	ShipToCity    *string  `json:"shipToCity"`
	ShipToState   *string  `json:"shipToState"`
	ShipToZip     *string  `json:"shipToZip"`
	ItemID        int64    `json:"itemId"`
	ItemAmount    *Decimal `json:"itemAmount"`
	ItemQuantity  *int64   `json:"itemQuantity"`
	ItemStatus    *string  `json:"itemStatus"`
	ProductName   *string  `json:"productName"`
	ProductPrice  *Decimal `json:"productPrice,omitempty"`
	Op            string   `json:"op,omitempty"`
	Version       int64    `json:"version,omitempty"`
}

// IsDelete reports whether the record removes its order-item.
func (e *Enriched) IsDelete() bool { return e.Op == EnrichedDelete }

// Product is one line of reference-data/products.json.
type Product struct {
	ProductID    int64   `json:"productId"`
	ProductName  string  `json:"productName"`
	ProductPrice Decimal `json:"productPrice"`
}

// VersionOf turns a source commit time into a record version: microseconds
// since the Unix epoch (docs/design.md §3.6).
func VersionOf(t time.Time) int64 { return t.UnixMicro() }
