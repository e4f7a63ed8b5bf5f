package cdc

import (
	"errors"
	"fmt"

	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// ErrNotData marks a well-formed DMS record that carries no row change for
// the pipeline: a control record, a table other than orders.order and
// orders.order_item (DMS's own awsdms_apply_exceptions among them), or a
// record of another schema. Callers drop such records; the wrapped message
// says which case it was.
var ErrNotData = errors.New("not data for us")

// ErrControl marks a DMS control record; errors wrapping it also wrap
// ErrNotData.
var ErrControl = errors.New("control record")

// ErrTruncate marks the control record of a TRUNCATE TABLE of
// orders.order or orders.order_item. It is not malformed, but nothing
// downstream can apply it: the truncated rows have no row changes, and
// DMS keys control records by task, not by order, so the record is not
// ordered against the orders' changes on other shards. Callers refuse it
// loudly (dead-letter queue, alarm) instead of dropping it like other
// control records.
var ErrTruncate = errors.New("TRUNCATE TABLE of a source table")

// Decode turns one DMS Kinesis record (docs/design.md §3.2) into a flat change
// (docs/design.md §3.3). It returns an error wrapping ErrNotData for records that
// are not order or order-item row changes, and any other error for
// malformed input, with a message that says precisely what is wrong.
//
// Decoding is tolerant where DMS output varies: numbers may be JSON numbers
// or strings (integers in exponent form too, if integral), decimals are kept
// exact, datetimes may use 'T' or a space with or without fraction and zone,
// absent or null columns leave their fields nil, the old column spelling
// itemQuanity is read as itemQuantity, unknown members are ignored, and
// names (members, schema, table, values of record-type and operation) match
// without regard to ASCII case, as MySQL's identifiers and encoding/json do.
// Values DynamoDB could not store (numbers beyond its precision or range,
// columns too long for an item) are malformed: the error names the column
// or the size.
func Decode(data []byte) (order.Change, error) {
	var r record
	if err := r.scan(data); err != nil {
		return order.Change{}, err
	}
	return r.change()
}

// column is a source column Decode reads.
type column uint8

const (
	colOrderID column = iota
	colOrderAmount
	colOrderStatus
	colOrderDateTime
	colShipToName
	colShipToAddress
	colShipToCity
	colShipToState
	colShipToZip
	colItemID
	colItemQuantity
	colItemQuanity // the original schema's spelling
	colItemAmount
	colItemStatus
	numColumns
)

// columnNames spell the columns as the source tables do (docs/design.md §3.1).
var columnNames = [numColumns]string{
	colOrderID:       "orderId",
	colOrderAmount:   "orderAmount",
	colOrderStatus:   "orderStatus",
	colOrderDateTime: "orderDateTime",
	colShipToName:    "shipToName",
	colShipToAddress: "shipToAddress",
	colShipToCity:    "shipToCity",
	colShipToState:   "shipToState",
	colShipToZip:     "shipToZip",
	colItemID:        "itemId",
	colItemQuantity:  "itemQuantity",
	colItemQuanity:   "itemQuanity",
	colItemAmount:    "itemAmount",
	colItemStatus:    "itemStatus",
}

func columnOf(name []byte) (column, bool) {
	for c, n := range columnNames {
		if jsonscan.EqualFold(name, n) {
			return column(c), true
		}
	}
	return 0, false
}

// record is what one pass over a DMS record collects: the metadata members
// and the raw values of the known columns. Values are interpreted only once
// the metadata says the record is ours, so a foreign table's odd columns
// never make it malformed.
type record struct {
	data jsonscan.Kind // kind of the "data" member
	cols [numColumns]jsonscan.Token

	before        jsonscan.Kind // kind of the BeforeImageField member
	beforeOrderID jsonscan.Token
	beforeItemID  jsonscan.Token

	meta             jsonscan.Kind // kind of the "metadata" member
	timestamp        jsonscan.Token
	recordType       jsonscan.Token
	operation        jsonscan.Token
	partitionKeyType jsonscan.Token
	schemaName       jsonscan.Token
	tableName        jsonscan.Token
}

// scan reads the whole text, so that input which is not valid JSON is
// rejected whatever it contains.
func (r *record) scan(data []byte) error {
	s := jsonscan.New(data)
	if s.Peek() != '{' {
		if s.AtEnd() {
			return errors.New("invalid JSON: empty input")
		}
		t, err := s.Value(1)
		if err == nil {
			err = s.End()
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("record is %s, not a JSON object", t.Kind)
	}
	done, err := s.OpenObject()
	for !done && err == nil {
		var k jsonscan.Token
		if k, err = s.Key(); err != nil {
			return err
		}
		switch name := k.Bytes(); {
		case jsonscan.EqualFold(name, "data"):
			err = r.scanData(&s)
		case jsonscan.EqualFold(name, "metadata"):
			err = r.scanMetadata(&s)
		case jsonscan.EqualFold(name, BeforeImageField):
			err = r.scanBefore(&s)
		default:
			_, err = s.Value(2)
		}
		if err != nil {
			return err
		}
		done, err = s.NextMember()
	}
	if err != nil {
		return err
	}
	return s.End()
}

func (r *record) scanData(s *jsonscan.Scanner) error {
	r.cols = [numColumns]jsonscan.Token{} // a repeated member replaces the earlier one
	return scanObject(s, &r.data, func(name []byte, v jsonscan.Token) {
		if c, ok := columnOf(name); ok {
			r.cols[c] = v
		}
	})
}

// scanBefore collects the key columns of the before image; with DMS's
// ColumnFilter pk-only they are all it holds.
func (r *record) scanBefore(s *jsonscan.Scanner) error {
	r.beforeOrderID, r.beforeItemID = jsonscan.Token{}, jsonscan.Token{}
	return scanObject(s, &r.before, func(name []byte, v jsonscan.Token) {
		switch {
		case jsonscan.EqualFold(name, columnNames[colOrderID]):
			r.beforeOrderID = v
		case jsonscan.EqualFold(name, columnNames[colItemID]):
			r.beforeItemID = v
		}
	})
}

func (r *record) scanMetadata(s *jsonscan.Scanner) error {
	return scanObject(s, &r.meta, func(name []byte, v jsonscan.Token) {
		switch {
		case jsonscan.EqualFold(name, "timestamp"):
			r.timestamp = v
		case jsonscan.EqualFold(name, "record-type"):
			r.recordType = v
		case jsonscan.EqualFold(name, "operation"):
			r.operation = v
		case jsonscan.EqualFold(name, "partition-key-type"):
			r.partitionKeyType = v
		case jsonscan.EqualFold(name, "schema-name"):
			r.schemaName = v
		case jsonscan.EqualFold(name, "table-name"):
			r.tableName = v
		}
	})
}

// scanObject reads a top-level member's value: it records the value's kind
// in *kind and, when it is an object, passes each of its members to visit
// (a value of another kind is skipped and reported by change).
func scanObject(s *jsonscan.Scanner, kind *jsonscan.Kind, visit func(name []byte, v jsonscan.Token)) error {
	if s.Peek() != '{' {
		t, err := s.Value(2)
		*kind = t.Kind
		return err
	}
	*kind = jsonscan.Object
	done, err := s.OpenObject()
	for !done && err == nil {
		var k, v jsonscan.Token
		if k, err = s.Key(); err != nil {
			return err
		}
		if v, err = s.Value(3); err != nil {
			return err
		}
		visit(k.Bytes(), v)
		done, err = s.NextMember()
	}
	return err
}

// change interprets what scan collected.
func (r *record) change() (order.Change, error) {
	switch r.meta {
	case jsonscan.Object:
	case jsonscan.Absent, jsonscan.Null:
		return order.Change{}, errors.New("metadata is missing")
	default:
		return order.Change{}, fmt.Errorf("metadata: expected an object, got %s", r.meta)
	}

	m := metaReader{}
	recordType := m.str("record-type", r.recordType)
	partitionKeyType := m.str("partition-key-type", r.partitionKeyType)
	schema := m.str("schema-name", r.schemaName)
	table := m.str("table-name", r.tableName)
	operation := m.str("operation", r.operation)
	timestamp := m.str("timestamp", r.timestamp)
	if m.err != nil {
		return order.Change{}, m.err
	}

	// DMS marks control records by record-type, and task-level ones also by
	// partition-key-type; either is enough.
	switch {
	case jsonscan.EqualFold(recordType, RecordTypeControl) || jsonscan.EqualFold(partitionKeyType, PartitionKeyTaskID):
		if isTruncate(operation) && isOurs(schema, table) {
			return order.Change{}, fmt.Errorf("%w: control record %s for %s: TRUNCATE deletes rows without row changes, so the enriched rows "+
				"and join state of the table's rows are still there; follow the README's truncate procedure",
				ErrTruncate, operation, qualified(schema, table))
		}
		what := ""
		if len(operation) > 0 {
			what += " " + string(operation)
		}
		if len(table) > 0 {
			what += " for " + qualified(schema, table)
		}
		return order.Change{}, fmt.Errorf("%w: %w%s", ErrNotData, ErrControl, what)
	case len(recordType) == 0:
		return order.Change{}, errors.New("metadata.record-type is missing")
	case !jsonscan.EqualFold(recordType, RecordTypeData):
		return order.Change{}, fmt.Errorf("%w: record-type %q", ErrNotData, recordType)
	case len(schema) == 0:
		return order.Change{}, errors.New("metadata.schema-name is missing")
	case len(table) == 0:
		return order.Change{}, errors.New("metadata.table-name is missing")
	}

	var c order.Change
	switch {
	case !jsonscan.EqualFold(schema, order.SourceSchema):
		return order.Change{}, fmt.Errorf("%w: table %s", ErrNotData, qualified(schema, table))
	case jsonscan.EqualFold(table, order.TableOrder):
		c.RecordType = order.TableOrder
	case jsonscan.EqualFold(table, order.TableOrderItem):
		c.RecordType = order.TableOrderItem
	default:
		return order.Change{}, fmt.Errorf("%w: table %s", ErrNotData, qualified(schema, table))
	}

	switch {
	case jsonscan.EqualFold(operation, order.OpLoad):
		c.Operation = order.OpLoad
	case jsonscan.EqualFold(operation, order.OpInsert):
		c.Operation = order.OpInsert
	case jsonscan.EqualFold(operation, order.OpUpdate):
		c.Operation = order.OpUpdate
	case jsonscan.EqualFold(operation, order.OpDelete):
		c.Operation = order.OpDelete
	case len(operation) == 0:
		return order.Change{}, errors.New("metadata.operation is missing")
	default:
		return order.Change{}, fmt.Errorf("metadata.operation: %s is not load, insert, update or delete", r.operation.Quoted())
	}

	if len(timestamp) == 0 {
		return order.Change{}, errors.New("metadata.timestamp is missing")
	}
	ts, ok := parseDateTime(timestamp)
	if !ok {
		return order.Change{}, fmt.Errorf("metadata.timestamp: %s is not a timestamp", r.timestamp.Quoted())
	}
	var buf [32]byte
	c.SourceTimestamp = string(appendDateTime(buf[:0], ts, 6))
	c.Version = order.VersionOf(ts)

	switch r.data {
	case jsonscan.Object:
	case jsonscan.Absent, jsonscan.Null:
		return order.Change{}, errors.New("data is missing")
	default:
		return order.Change{}, fmt.Errorf("data: expected an object, got %s", r.data)
	}

	d := columnReader{cols: r.cols}
	c.OrderID = d.required(colOrderID)
	if c.RecordType == order.TableOrder {
		c.OrderAmount = d.decimal(colOrderAmount)
		c.OrderStatus = d.string(colOrderStatus)
		c.ShipToName = d.string(colShipToName)
		c.ShipToAddress = d.string(colShipToAddress)
		c.ShipToCity = d.string(colShipToCity)
		c.ShipToState = d.string(colShipToState)
		c.ShipToZip = d.string(colShipToZip)
		c.OrderDateTime = d.dateTime(colOrderDateTime)
	} else {
		itemID := d.required(colItemID)
		c.ItemID = &itemID
		if r.cols[colItemQuantity].IsNull() {
			c.ItemQuantity = d.integer(colItemQuanity)
		} else {
			c.ItemQuantity = d.integer(colItemQuantity)
		}
		c.ItemAmount = d.decimal(colItemAmount)
		c.ItemStatus = d.string(colItemStatus)
	}
	if d.err != nil {
		return order.Change{}, d.err
	}
	if err := storable(&c); err != nil {
		return order.Change{}, err
	}
	if c.Operation == order.OpUpdate {
		if err := r.oldKey(&c); err != nil {
			return order.Change{}, err
		}
	}
	return c, nil
}

// oldKey sets the change's old key from the before image when the update
// changed the key. A key column the image lacks is taken as unchanged, so
// an update without a before image is an update in place, as before.
func (r *record) oldKey(c *order.Change) error {
	switch r.before {
	case jsonscan.Object:
	case jsonscan.Absent, jsonscan.Null:
		return nil
	default:
		return fmt.Errorf("%s: expected an object, got %s", BeforeImageField, r.before)
	}
	oldOrder, err := beforeKey(r.beforeOrderID, colOrderID, c.OrderID)
	if err != nil {
		return err
	}
	if c.RecordType == order.TableOrder {
		if oldOrder != c.OrderID {
			c.OldOrderID = &oldOrder
		}
		return nil
	}
	oldItem, err := beforeKey(r.beforeItemID, colItemID, *c.ItemID)
	if err != nil {
		return err
	}
	if oldOrder != c.OrderID || oldItem != *c.ItemID {
		c.OldOrderID, c.OldItemID = &oldOrder, &oldItem
	}
	return nil
}

// beforeKey reads a key column of the before image; absent or null, it is
// the after image's value.
func beforeKey(t jsonscan.Token, c column, after int64) (int64, error) {
	var text []byte
	switch t.Kind {
	case jsonscan.Absent, jsonscan.Null:
		return after, nil
	case jsonscan.Number:
		text = t.Raw
	case jsonscan.String:
		text = trimSpace(t.Bytes())
	default:
		return 0, fmt.Errorf("%s.%s: expected an integer, got %s", BeforeImageField, columnNames[c], t.Kind)
	}
	v, problem := parseInteger(text)
	if problem != "" {
		return 0, fmt.Errorf("%s.%s: %s %s", BeforeImageField, columnNames[c], t.Quoted(), problem)
	}
	return v, nil
}

// isTruncate matches the operation of a truncate control record. The
// exact name DMS writes is not documented for Kinesis targets, so any
// operation naming a truncate counts ("truncate-table", what the local
// reader writes, among them).
func isTruncate(operation []byte) bool {
	const word = "truncate"
	for i := 0; i+len(word) <= len(operation); i++ {
		if jsonscan.EqualFold(operation[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// isOurs reports whether a control record names one of the two source
// tables; a control record without a schema is taken as naming it.
func isOurs(schema, table []byte) bool {
	if len(schema) > 0 && !jsonscan.EqualFold(schema, order.SourceSchema) {
		return false
	}
	return jsonscan.EqualFold(table, order.TableOrder) || jsonscan.EqualFold(table, order.TableOrderItem)
}

// metaReader reads metadata members as strings, keeping the first error.
type metaReader struct{ err error }

// str returns the value of a string member; absent and null read as empty.
func (m *metaReader) str(name string, t jsonscan.Token) []byte {
	switch t.Kind {
	case jsonscan.String:
		return t.Bytes()
	case jsonscan.Absent, jsonscan.Null:
		return nil
	}
	if m.err == nil {
		m.err = fmt.Errorf("metadata.%s: expected a string, got %s", name, t.Kind)
	}
	return nil
}

// qualified names a table for a message; DMS leaves the schema empty on
// some control records.
func qualified(schema, table []byte) string {
	if len(schema) == 0 {
		return string(table)
	}
	return string(schema) + "." + string(table)
}
