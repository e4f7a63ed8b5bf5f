package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unified-streaming-etl/etl/internal/ddblimit"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// key identifies one OrderEnriched item.
type key struct{ orderID, itemID int64 }

// change is one decoded enriched record, ready to write.
type change struct {
	key     key
	delete  bool
	version int64
	rec     order.Enriched
}

// wireRecord decodes an enriched record while telling an absent orderId or
// itemId apart from zero: the embedded fields with the same JSON names are
// shadowed by these pointers.
type wireRecord struct {
	order.Enriched
	OrderID *int64 `json:"orderId"`
	ItemID  *int64 `json:"itemId"`
}

// decode turns a Kinesis record into a change, or says why it cannot be one.
//
// Records from the Go processor carry op and version. Records from the KDA
// SQL application carry neither: they are upserts, and their version is the
// record's approximate arrival time on the enriched stream in microseconds.
// KDA writes each order-item's rows in the order it computes them, so the
// later arrival is the newer row and wins, as it did in the original sink;
// and since versions from the Go processor are source commit times, also in
// microseconds, a table fed by both stays ordered by time.
//
// fallbackVersion stands in for a missing arrival time.
func decode(r *events.KinesisEventRecord, fallbackVersion int64) (change, error) {
	var w wireRecord
	if err := json.Unmarshal(r.Kinesis.Data, &w); err != nil {
		return change{}, fmt.Errorf("invalid enriched record: %w", describeJSONError(err))
	}
	switch {
	case w.OrderID == nil && w.ItemID == nil:
		return change{}, errors.New("invalid enriched record: missing orderId and itemId")
	case w.OrderID == nil:
		return change{}, errors.New("invalid enriched record: missing orderId")
	case w.ItemID == nil:
		return change{}, errors.New("invalid enriched record: missing itemId")
	}
	c := change{key: key{*w.OrderID, *w.ItemID}, rec: w.Enriched}
	c.rec.OrderID, c.rec.ItemID = *w.OrderID, *w.ItemID

	switch c.rec.Op {
	case "", order.EnrichedUpsert:
	case order.EnrichedDelete:
		c.delete = true
	default:
		return change{}, fmt.Errorf("invalid enriched record: unknown op %q (want %q or %q)", c.rec.Op, order.EnrichedUpsert, order.EnrichedDelete)
	}

	switch v := c.rec.Version; {
	case v < 0:
		return change{}, fmt.Errorf("invalid enriched record: negative version %d", v)
	case v > 0:
		c.version = v
	default:
		if c.version = arrivalVersion(r); c.version == 0 {
			c.version = fallbackVersion
		}
	}

	for _, a := range [...]struct {
		name string
		d    *order.Decimal
	}{{"orderAmount", c.rec.OrderAmount}, {"itemAmount", c.rec.ItemAmount}, {"productPrice", c.rec.ProductPrice}} {
		// A number DynamoDB cannot hold would be refused by every write.
		if a.d == nil {
			continue
		}
		if err := ddblimit.CheckNumber(a.d.String()); err != nil {
			return change{}, fmt.Errorf("invalid enriched record: %s %w", a.name, err)
		}
	}
	return c, nil
}

// arrivalVersion is the version of an unversioned (KDA) record: its
// approximate arrival time in microseconds. The event carries it as float
// seconds; Kinesis stamps whole milliseconds, so rounding recovers them.
func arrivalVersion(r *events.KinesisEventRecord) int64 {
	t := r.Kinesis.ApproximateArrivalTimestamp.Time
	if t.IsZero() {
		return 0
	}
	return order.VersionOf(t.Round(1e6))
}

// describeJSONError turns encoding/json's messages, which name Go types,
// into ones that name the record's fields.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		field := typeErr.Field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		return fmt.Errorf("field %s: JSON %s where %s is expected", field, typeErr.Value, article(kindOf(typeErr.Type.Kind().String())))
	}
	return err
}

func kindOf(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64":
		return "integer"
	}
	return goKind
}

func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}
