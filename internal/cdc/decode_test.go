package cdc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// decodeCase is one expectation for Decode: the exact flat record it must
// produce, or that the record is not data, or the exact malformed message.
type decodeCase struct {
	name    string
	input   []byte
	flat    string // expected AppendFlat output
	notData bool
	err     string
	// truncate: the record is a source table's TRUNCATE, refused with
	// ErrTruncate and a message that says what to do.
	truncate bool
}

// check runs Decode on the case's input and, for accepted records, checks
// the flat JSON byte for byte and that reading that JSON back gives the
// decoded change.
func (tc decodeCase) check(t *testing.T) {
	t.Helper()
	c, err := cdc.Decode(tc.input)
	switch {
	case tc.truncate:
		if !errors.Is(err, cdc.ErrTruncate) || errors.Is(err, cdc.ErrNotData) {
			t.Fatalf("got %v, want ErrTruncate", err)
		}
		if !strings.Contains(err.Error(), "truncate procedure") {
			t.Fatalf("message %q does not point to the procedure", err)
		}
	case tc.notData:
		if !errors.Is(err, cdc.ErrNotData) {
			t.Fatalf("got %v, want ErrNotData", err)
		}
	case tc.err != "":
		if err == nil {
			t.Fatalf("accepted; want error %q", tc.err)
		}
		if errors.Is(err, cdc.ErrNotData) {
			t.Fatalf("got ErrNotData (%v); want malformed %q", err, tc.err)
		}
		if err.Error() != tc.err {
			t.Fatalf("error %q, want %q", err, tc.err)
		}
	default:
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		if got := string(cdc.AppendFlat(nil, &c)); got != tc.flat {
			t.Fatalf("flat record\n got %s\nwant %s", got, tc.flat)
		}
		var back order.Change
		if err := json.Unmarshal([]byte(tc.flat), &back); err != nil {
			t.Fatalf("expected flat record does not read back: %v", err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("decoded %+v, but the flat record reads back as %+v", c, back)
		}
	}
}

func TestDecodeFixtures(t *testing.T) {
	cases := []struct {
		file string
		decodeCase
	}{
		{"order-load.json", decodeCase{name: "a full-load order row keeps every column",
			flat: `{"recordType":"order","operation":"load","orderId":1001,"orderAmount":139.97,"orderStatus":"PENDING","shipToName":"Maria Garcia","shipToAddress":"1200 Pine St, Apt 4B","shipToCity":"Seattle","shipToState":"WA","shipToZip":"98101","orderDateTime":"2024-03-18 09:41:22.183","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`}},
		{"order-insert.json", decodeCase{name: "an inserted order drops its amount's trailing zero and ignores transaction details",
			flat: `{"recordType":"order","operation":"insert","orderId":1002,"orderAmount":42.5,"orderStatus":"PENDING","shipToName":"Chen Wei","shipToAddress":"88 Harbor Blvd","shipToCity":"San Francisco","shipToState":"CA","shipToZip":"94105","orderDateTime":"2024-03-18 09:45:03.007","sourceTimestamp":"2024-03-18 09:45:03.412907","version":1710755103412907}`}},
		{"order-update.json", decodeCase{name: "an order update takes the after image and ignores the before image",
			flat: `{"recordType":"order","operation":"update","orderId":1001,"orderAmount":139.97,"orderStatus":"SHIPPED","shipToName":"Maria Garcia","shipToAddress":"1200 Pine St, Apt 4B","shipToCity":"Seattle","shipToState":"WA","shipToZip":"98101","orderDateTime":"2024-03-18 09:41:22.183","sourceTimestamp":"2024-03-19 14:02:11.004120","version":1710856931004120}`}},
		{"order-delete.json", decodeCase{name: "an order delete carries the deleted row",
			flat: `{"recordType":"order","operation":"delete","orderId":1002,"orderAmount":42.5,"orderStatus":"PENDING","shipToName":"Chen Wei","shipToAddress":"88 Harbor Blvd","shipToCity":"San Francisco","shipToState":"CA","shipToZip":"94105","orderDateTime":"2024-03-18 09:45:03.007","sourceTimestamp":"2024-03-20 08:15:59.999999","version":1710922559999999}`}},
		{"order-item-load.json", decodeCase{name: "a full-load item row keeps every column",
			flat: `{"recordType":"order_item","operation":"load","orderId":1001,"itemId":17,"itemQuantity":3,"itemAmount":59.97,"itemStatus":"PENDING","sourceTimestamp":"2024-03-18 09:41:27.538101","version":1710754887538101}`}},
		{"order-item-insert.json", decodeCase{name: "an inserted item keeps its key and amount",
			flat: `{"recordType":"order_item","operation":"insert","orderId":1002,"itemId":42,"itemQuantity":1,"itemAmount":42.5,"itemStatus":"PENDING","sourceTimestamp":"2024-03-18 09:45:03.413551","version":1710755103413551}`}},
		{"order-item-update.json", decodeCase{name: "an item update takes the new quantity and amount",
			flat: `{"recordType":"order_item","operation":"update","orderId":1001,"itemId":17,"itemQuantity":4,"itemAmount":79.96,"itemStatus":"PENDING","sourceTimestamp":"2024-03-19 14:05:40.250000","version":1710857140250000}`}},
		{"order-item-delete.json", decodeCase{name: "an item delete carries the deleted row",
			flat: `{"recordType":"order_item","operation":"delete","orderId":1002,"itemId":42,"itemQuantity":1,"itemAmount":42.5,"itemStatus":"PENDING","sourceTimestamp":"2024-03-20 08:15:59.998731","version":1710922559998731}`}},
		{"order-item-update-item-id-changed.json", decodeCase{name: "an item update whose before image has another itemId carries the old key",
			flat: `{"recordType":"order_item","operation":"update","orderId":2001,"itemId":3,"itemQuantity":1,"itemAmount":19.99,"itemStatus":"PENDING","sourceTimestamp":"2024-03-21 10:00:01.100200","version":1711015201100200,"oldOrderId":2001,"oldItemId":1}`}},
		{"order-item-update-moved.json", decodeCase{name: "an item moved to another order carries its old order and item id",
			flat: `{"recordType":"order_item","operation":"update","orderId":2002,"itemId":1,"itemQuantity":2,"itemAmount":39.98,"itemStatus":"PENDING","sourceTimestamp":"2024-03-21 10:00:02.200300","version":1711015202200300,"oldOrderId":2001,"oldItemId":1}`}},
		{"order-item-update-same-key.json", decodeCase{name: "an item update whose before image has the same key is an update in place",
			flat: `{"recordType":"order_item","operation":"update","orderId":2001,"itemId":3,"itemQuantity":5,"itemAmount":99.95,"itemStatus":"SHIPPED","sourceTimestamp":"2024-03-21 10:00:03.300400","version":1711015203300400}`}},
		{"order-update-order-id-changed.json", decodeCase{name: "an order update whose before image has another orderId carries the old orderId",
			flat: `{"recordType":"order","operation":"update","orderId":2010,"orderAmount":10,"orderStatus":"PENDING","shipToName":"Chen Wei","shipToAddress":"88 Harbor Blvd","shipToCity":"San Francisco","shipToState":"CA","shipToZip":"94105","orderDateTime":"2024-03-21 09:59:00.000","sourceTimestamp":"2024-03-21 10:00:04.400500","version":1711015204400500,"oldOrderId":2003}`}},
		{"malformed-before-image-item-id.json", decodeCase{name: "a before image whose itemId is not an integer is malformed",
			err: `before-image.itemId: "three" is not an integer`}},
		{"order-numbers-as-strings.json", decodeCase{name: "an order with numbers as strings and a UUID transaction id decodes the same way",
			flat: `{"recordType":"order","operation":"insert","orderId":1003,"orderAmount":2599.9,"orderStatus":"PENDING","shipToName":"Aisha Okafor","shipToAddress":"5 Elm Ct","shipToCity":"Austin","shipToState":"TX","shipToZip":"73301","orderDateTime":"2024-03-18 10:00:00.500","sourceTimestamp":"2024-03-18 10:00:00.812345","version":1710756000812345}`}},
		{"order-item-numbers-as-strings.json", decodeCase{name: "an item with numbers as strings decodes the same way",
			flat: `{"recordType":"order_item","operation":"insert","orderId":1003,"itemId":205,"itemQuantity":2,"itemAmount":1299.95,"itemStatus":"PENDING","sourceTimestamp":"2024-03-18 10:00:00.813002","version":1710756000813002}`}},
		{"order-space-datetime.json", decodeCase{name: "a space-separated datetime without zone is kept as it is, and non-ASCII text survives",
			flat: `{"recordType":"order","operation":"insert","orderId":1004,"orderAmount":18,"orderStatus":"PENDING","shipToName":"Lena Müller","shipToAddress":"Hauptstraße 12","shipToCity":"Portland","shipToState":"OR","shipToZip":"97201","orderDateTime":"2024-03-18 10:15:42.070","sourceTimestamp":"2024-03-18 10:15:42.301774","version":1710756942301774}`}},
		{"order-iso-datetime-no-fraction.json", decodeCase{name: "datetimes without a fraction get zero milliseconds and quotes in text are escaped",
			flat: `{"recordType":"order","operation":"load","orderId":1005,"orderAmount":250,"orderStatus":"PENDING","shipToName":"Sam O'Neil","shipToAddress":"77 \"The Old Mill\" Rd","shipToCity":"Boise","shipToState":"ID","shipToZip":"83702","orderDateTime":"2024-03-18 11:20:05.000","sourceTimestamp":"2024-03-18 11:20:06.000000","version":1710760806000000}`}},
		{"order-item-old-spelling.json", decodeCase{name: "the old itemQuanity spelling is read as itemQuantity",
			flat: `{"recordType":"order_item","operation":"insert","orderId":1001,"itemId":23,"itemQuantity":5,"itemAmount":24.95,"itemStatus":"BACKORDERED","sourceTimestamp":"2024-03-18 09:41:30.120044","version":1710754890120044}`}},
		{"order-nulls-absent.json", decodeCase{name: "an order whose null columns are absent omits them",
			flat: `{"recordType":"order","operation":"insert","orderId":1006,"orderStatus":"DRAFT","sourceTimestamp":"2024-03-18 12:00:00.000001","version":1710763200000001}`}},
		{"order-item-nulls-absent.json", decodeCase{name: "an item with only its key omits everything else",
			flat: `{"recordType":"order_item","operation":"insert","orderId":1006,"itemId":9,"sourceTimestamp":"2024-03-18 12:00:00.000002","version":1710763200000002}`}},
		{"control-create-table.json", decodeCase{name: "a create-table control record is not data", notData: true}},
		{"control-truncate-order-item.json", decodeCase{name: "a truncate of order_item is refused, not dropped as a control record", truncate: true}},
		{"control-truncate-foreign-table.json", decodeCase{name: "a truncate of another table is not data", notData: true}},
		{"control-apply-exceptions.json", decodeCase{name: "DMS's awsdms_apply_exceptions control record is not data", notData: true}},
		{"foreign-table.json", decodeCase{name: "a row of another table in the schema is not data", notData: true}},
		{"foreign-schema.json", decodeCase{name: "an order table in another schema is not data", notData: true}},
		{"malformed-invalid-json.json", decodeCase{name: "a record cut short is invalid JSON",
			err: "invalid JSON: unexpected end of input"}},
		{"malformed-order-id-abc.json", decodeCase{name: "an orderId of abc is not an integer",
			err: `data.orderId: "abc" is not an integer`}},
		{"malformed-missing-order-id.json", decodeCase{name: "an order without orderId is missing its key",
			err: "data.orderId is missing"}},
		{"malformed-unknown-operation.json", decodeCase{name: "an unknown operation is named in the error",
			err: `metadata.operation: "upsert" is not load, insert, update or delete`}},
		{"malformed-amount-comma.json", decodeCase{name: "an amount with a decimal comma is not a decimal",
			err: `data.orderAmount: "12,50" is not a decimal`}},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.file] = true
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tc.input = b
			tc.check(t)
		})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("fixture %s has no expectation", f)
		}
	}
}

// dms builds a compact DMS record for the given table and operation around
// a data object given as JSON text.
func dms(table, op, data string) []byte {
	return []byte(`{"data":` + data + `,"metadata":{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"` + op +
		`","partition-key-type":"attribute-name","schema-name":"orders","table-name":"` + table + `","transaction-id":8754110919}}`)
}

// withMetadata builds a record with an item row and the given metadata.
func withMetadata(meta string) []byte {
	return []byte(`{"data":{"orderId":1,"itemId":2},"metadata":` + meta + `}`)
}

const (
	itemTail = `,"sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`
	itemHead = `{"recordType":"order_item","operation":"insert","orderId":`
)

func TestDecodeNumbers(t *testing.T) {
	cases := []decodeCase{
		{name: "a BIGINT in scientific notation is read exactly",
			input: dms("order_item", "insert", `{"orderId":1.2345678901234567E+17,"itemId":"1.5e3","itemQuantity":2}`),
			flat:  itemHead + `123456789012345670,"itemId":1500,"itemQuantity":2` + itemTail},
		{name: "the largest int64 keeps every digit",
			input: dms("order_item", "insert", `{"orderId":9223372036854775807,"itemId":"-9223372036854775808"}`),
			flat:  itemHead + `9223372036854775807,"itemId":-9223372036854775808` + itemTail},
		{name: "integral values in any exact notation are integers",
			input: dms("order_item", "insert", `{"orderId":"100e-2","itemId":1.000,"itemQuantity":"0E+000000"}`),
			flat:  itemHead + `1,"itemId":1,"itemQuantity":0` + itemTail},
		{name: "a huge exponent is out of range, not slow",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemQuantity":"1e999999999999"}`),
			err:   `data.itemQuantity: "1e999999999999" is out of range`},
		{name: "a huge negative exponent is not an integer",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemQuantity":7e-999999999999}`),
			err:   `data.itemQuantity: 7e-999999999999 is not an integer`},
		{name: "an integer past int64 is out of range",
			input: dms("order_item", "insert", `{"orderId":9223372036854775808,"itemId":1}`),
			err:   "data.orderId: 9223372036854775808 is out of range"},
		{name: "a fractional quantity is not an integer",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemQuantity":1.5}`),
			err:   "data.itemQuantity: 1.5 is not an integer"},
		{name: "numbers in strings may carry surrounding spaces",
			input: dms("order_item", "insert", `{"orderId":" 7 ","itemId":"8","itemAmount":" 19.90 "}`),
			flat:  itemHead + `7,"itemId":8,"itemAmount":19.9` + itemTail},
		{name: "decimals keep digits float64 would lose",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemAmount":12345678901234567.89}`),
			flat:  itemHead + `1,"itemId":2,"itemAmount":12345678901234567.89` + itemTail},
		{name: "a decimal in exponent form is normalised",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemAmount":"1.999E+2"}`),
			flat:  itemHead + `1,"itemId":2,"itemAmount":199.9` + itemTail},
		{name: "a boolean key is a type error",
			input: dms("order_item", "insert", `{"orderId":true,"itemId":2}`),
			err:   "data.orderId: expected an integer, got a boolean"},
		{name: "an empty string is not an integer",
			input: dms("order_item", "insert", `{"orderId":"","itemId":2}`),
			err:   `data.orderId: "" is not an integer`},
		{name: "a null key is missing",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":null}`),
			err:   "data.itemId is missing"},
		{name: "an item without itemId is missing its key",
			input: dms("order_item", "insert", `{"orderId":1,"itemQuantity":2}`),
			err:   "data.itemId is missing"},
		{name: "an amount given as an object is a type error",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemAmount":{"value":1}}`),
			err:   "data.itemAmount: expected a decimal, got an object"},
		{name: "itemQuantity wins over the old spelling when both are present",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemQuanity":9,"itemQuantity":3}`),
			flat:  itemHead + `1,"itemId":2,"itemQuantity":3` + itemTail},
		{name: "the old spelling is used when itemQuantity is null",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"itemQuantity":null,"itemQuanity":9}`),
			flat:  itemHead + `1,"itemId":2,"itemQuantity":9` + itemTail},
		{name: "a huge error value is shortened in the message",
			input: dms("order_item", "insert", `{"orderId":"`+strings.Repeat("x", 500)+`","itemId":2}`),
			err:   `data.orderId: "` + strings.Repeat("x", 64) + `"… is not an integer`},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.check)
	}
}

func TestDecodeText(t *testing.T) {
	const orderHead = `{"recordType":"order","operation":"update","orderId":1`
	cases := []decodeCase{
		{name: "escapes in strings are decoded",
			input: dms("order", "update", `{"orderId":1,"shipToName":"Jos\u00e9 \"Pepe\" \\ Ruiz\n","shipToCity":"\ud83c\udf32 Town"}`),
			flat:  orderHead + `,"shipToName":"José \"Pepe\" \\ Ruiz\n","shipToCity":"🌲 Town","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "a numeric ZIP code is kept as its text",
			input: dms("order", "update", `{"orderId":1,"shipToZip":98101}`),
			flat:  orderHead + `,"shipToZip":"98101","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "an unpaired surrogate becomes U+FFFD as encoding/json reads it",
			input: dms("order", "update", `{"orderId":1,"shipToName":"a\ud800b"}`),
			flat:  orderHead + `,"shipToName":"a` + "\uFFFD" + `b","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "invalid UTF-8 becomes U+FFFD",
			input: dms("order", "update", "{\"orderId\":1,\"shipToName\":\"a\xffb\"}"),
			flat:  orderHead + `,"shipToName":"a` + "\uFFFD" + `b","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "explicit nulls are omitted like absent columns",
			input: dms("order", "update", `{"orderId":1,"orderAmount":null,"orderStatus":null,"orderDateTime":null,"shipToName":null}`),
			flat:  orderHead + `,"sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "unknown and before-image columns are ignored",
			input: dms("order", "update", `{"orderId":1,"BI_orderStatus":"PENDING","orderStatus":"PAID","notes":{"a":[1,2,{"b":null}]}}`),
			flat:  orderHead + `,"orderStatus":"PAID","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "column names match regardless of case",
			input: dms("order", "update", `{"ORDERID":1,"orderstatus":"PAID"}`),
			flat:  orderHead + `,"orderStatus":"PAID","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "item columns on an order row are left out",
			input: dms("order", "update", `{"orderId":1,"itemId":2,"itemAmount":3}`),
			flat:  orderHead + `,"sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`},
		{name: "order columns on an item row are left out, even malformed ones",
			input: dms("order_item", "insert", `{"orderId":1,"itemId":2,"orderAmount":"n/a","shipToName":"X"}`),
			flat:  itemHead + `1,"itemId":2` + itemTail},
		{name: "a boolean status is a type error",
			input: dms("order", "update", `{"orderId":1,"orderStatus":false}`),
			err:   "data.orderStatus: expected a string, got a boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.check)
	}
}

func TestDecodeDateTimes(t *testing.T) {
	cases := []struct {
		name, in, want, err string
	}{
		{name: "ISO with Z and milliseconds", in: "2020-05-01T17:11:49.973Z", want: "2020-05-01 17:11:49.973"},
		{name: "space form with milliseconds", in: "2020-05-01 17:11:49.973", want: "2020-05-01 17:11:49.973"},
		{name: "ISO without fraction or zone", in: "2020-05-01T17:11:49", want: "2020-05-01 17:11:49.000"},
		{name: "one fraction digit", in: "2020-05-01 17:11:49.9", want: "2020-05-01 17:11:49.900"},
		{name: "nanoseconds truncate to milliseconds", in: "2020-05-01T17:11:49.999999999Z", want: "2020-05-01 17:11:49.999"},
		{name: "an offset converts to UTC", in: "2020-05-01T01:30:00.000+02:00", want: "2020-04-30 23:30:00.000"},
		{name: "a compact negative offset converts to UTC", in: "2020-12-31T23:00:00-0130", want: "2021-01-01 00:30:00.000"},
		{name: "leap day", in: "2024-02-29 00:00:00", want: "2024-02-29 00:00:00.000"},
		{name: "surrounding spaces are ignored", in: " 2020-05-01 17:11:49 ", want: "2020-05-01 17:11:49.000"},
		{name: "no leap day in 2023", in: "2023-02-29 00:00:00", err: `"2023-02-29 00:00:00" is not a datetime`},
		{name: "month 13", in: "2020-13-01 00:00:00", err: `"2020-13-01 00:00:00" is not a datetime`},
		{name: "MySQL's zero date", in: "0000-00-00 00:00:00", err: `"0000-00-00 00:00:00" is not a datetime`},
		{name: "a date alone", in: "2020-05-01", err: `"2020-05-01" is not a datetime`},
		{name: "a point without digits", in: "2020-05-01 17:11:49.", err: `"2020-05-01 17:11:49." is not a datetime`},
		{name: "text after the zone", in: "2020-05-01T17:11:49Zx", err: `"2020-05-01T17:11:49Zx" is not a datetime`},
		{name: "hour 24", in: "2020-05-01 24:00:00", err: `"2020-05-01 24:00:00" is not a datetime`},
		{name: "an offset past year 9999", in: "9999-12-31T23:30:00-01:00", err: `"9999-12-31T23:30:00-01:00" is not a datetime`},
	}
	for _, tc := range cases {
		t.Run("orderDateTime "+tc.name, func(t *testing.T) {
			input := dms("order", "insert", `{"orderId":1,"orderDateTime":"`+tc.in+`"}`)
			dc := decodeCase{input: input}
			if tc.err != "" {
				dc.err = "data.orderDateTime: " + tc.err
			} else {
				dc.flat = `{"recordType":"order","operation":"insert","orderId":1,"orderDateTime":"` + tc.want +
					`","sourceTimestamp":"2024-03-18 09:41:27.531842","version":1710754887531842}`
			}
			dc.check(t)
		})
	}
	t.Run("orderDateTime given as a number is a type error", decodeCase{
		input: dms("order", "insert", `{"orderId":1,"orderDateTime":1588353109973}`),
		err:   "data.orderDateTime: expected a datetime string, got a number",
	}.check)

	stamps := []struct{ name, in, want, version string }{
		{"a DMS timestamp keeps its microseconds", "2019-10-31T22:53:59.721201Z", "2019-10-31 22:53:59.721201", "1572562439721201"},
		{"a space-separated timestamp without zone is UTC", "2019-10-31 22:53:59.7", "2019-10-31 22:53:59.700000", "1572562439700000"},
		{"a timestamp with an offset converts to UTC", "2019-11-01T00:53:59.721201+02:00", "2019-10-31 22:53:59.721201", "1572562439721201"},
		{"a timestamp before 1970 has a negative version", "1969-12-31T23:59:59.999999Z", "1969-12-31 23:59:59.999999", "-1"},
	}
	for _, tc := range stamps {
		t.Run("metadata timestamp: "+tc.name, decodeCase{
			input: withMetadata(`{"timestamp":"` + tc.in + `","record-type":"data","operation":"load","schema-name":"orders","table-name":"order_item"}`),
			flat:  `{"recordType":"order_item","operation":"load","orderId":1,"itemId":2,"sourceTimestamp":"` + tc.want + `","version":` + tc.version + `}`,
		}.check)
	}
}

func TestDecodeMetadata(t *testing.T) {
	cases := []decodeCase{
		{name: "table, schema and operation match regardless of case",
			input: withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"DATA","operation":"Insert","schema-name":"ORDERS","table-name":"Order_Item"}`),
			flat:  itemHead + `1,"itemId":2` + itemTail},
		{name: "member names match regardless of case",
			input: []byte(`{"Data":{"orderId":1,"itemId":2},"METADATA":{"Timestamp":"2024-03-18T09:41:27.531842Z","Record-Type":"data","Operation":"insert","Schema-Name":"orders","Table-Name":"order_item"}}`),
			flat:  itemHead + `1,"itemId":2` + itemTail},
		{name: "metadata may come before data and members may be escaped",
			input: []byte(`{"metadata":{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders","table-\u006eame":"order_item"},"data":{"orderId":1,"itemId":2}}`),
			flat:  itemHead + `1,"itemId":2` + itemTail},
		{name: "transaction ids of any type are ignored",
			input: withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":"order_item","transaction-id":{"lsn":[1,2]},"prev-transaction-id":null}`),
			flat:  itemHead + `1,"itemId":2` + itemTail},
		{name: "a data record of awsdms_apply_exceptions is not data",
			input:   withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":"awsdms_apply_exceptions"}`),
			notData: true},
		{name: "a task-level record is not data even if marked as data",
			input:   withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","partition-key-type":"task-id","schema-name":"orders","table-name":"order"}`),
			notData: true},
		{name: "a control record without schema or table is not data",
			input:   []byte(`{"control":{},"metadata":{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"control","operation":"drop-table","partition-key-type":"task-id","schema-name":"","table-name":""}}`),
			notData: true},
		{name: "a record type other than data or control is not data",
			input:   withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"heartbeat","schema-name":"orders","table-name":"order"}`),
			notData: true},
		{name: "a record without metadata is malformed",
			input: []byte(`{"data":{"orderId":1}}`),
			err:   "metadata is missing"},
		{name: "metadata that is not an object is malformed",
			input: []byte(`{"data":{"orderId":1},"metadata":"orders.order"}`),
			err:   "metadata: expected an object, got a string"},
		{name: "a record without record-type is malformed",
			input: withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","operation":"insert","schema-name":"orders","table-name":"order"}`),
			err:   "metadata.record-type is missing"},
		{name: "a data record without table-name is malformed",
			input: withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders"}`),
			err:   "metadata.table-name is missing"},
		{name: "a data record without schema-name is malformed",
			input: withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","table-name":"order"}`),
			err:   "metadata.schema-name is missing"},
		{name: "a table name that is a number is a type error",
			input: withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":7}`),
			err:   "metadata.table-name: expected a string, got a number"},
		{name: "a data record without operation is malformed",
			input: withMetadata(`{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","schema-name":"orders","table-name":"order"}`),
			err:   "metadata.operation is missing"},
		{name: "a data record without timestamp is malformed",
			input: withMetadata(`{"record-type":"data","operation":"insert","schema-name":"orders","table-name":"order"}`),
			err:   "metadata.timestamp is missing"},
		{name: "a timestamp that is not a datetime is malformed",
			input: withMetadata(`{"timestamp":"yesterday","record-type":"data","operation":"insert","schema-name":"orders","table-name":"order"}`),
			err:   `metadata.timestamp: "yesterday" is not a timestamp`},
		{name: "a data record without data is malformed",
			input: []byte(`{"metadata":{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":"order"}}`),
			err:   "data is missing"},
		{name: "data that is an array is malformed",
			input: []byte(`{"data":[1001],"metadata":{"timestamp":"2024-03-18T09:41:27.531842Z","record-type":"data","operation":"insert","schema-name":"orders","table-name":"order"}}`),
			err:   "data: expected an object, got an array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.check)
	}
}

func TestDecodeRejectsInvalidJSON(t *testing.T) {
	good := string(dms("order_item", "insert", `{"orderId":1,"itemId":2}`))
	cases := []struct{ name, in, err string }{
		{"empty input", "", "invalid JSON: empty input"},
		{"white space only", " \n\t", "invalid JSON: empty input"},
		{"a JSON array", `[{"data":{}}]`, "record is an array, not a JSON object"},
		{"a JSON string", `"orders"`, "record is a string, not a JSON object"},
		{"text after the record", good + ` {}`, fmt.Sprintf("invalid JSON: unexpected '{' at offset %d", len(good)+1)},
		{"a trailing comma", `{"data":{"orderId":1,},"metadata":{}}`, `invalid JSON: unexpected '}' at offset 21`},
		{"a single-quoted string", `{'data':{}}`, `invalid JSON: unexpected '\'' at offset 1`},
		{"a raw newline in a string", "{\"data\":{\"shipToName\":\"a\nb\"}}", "invalid JSON: control character 0x0a in string at offset 24"},
		{"a bad escape", `{"data":{"shipToName":"a\qb"}}`, `invalid JSON: bad escape \q at offset 24`},
		{"a short unicode escape", `{"data":{"shipToName":"\u12"}}`, `invalid JSON: bad \u escape at offset 23`},
		{"a number with a leading zero", `{"data":{"orderId":01}}`, `invalid JSON: unexpected '1' at offset 20`},
		{"a number with a bare point", `{"data":{"orderId":1.}}`, `invalid JSON: unexpected '}' at offset 21`},
		{"NaN", `{"data":{"orderAmount":NaN}}`, `invalid JSON: unexpected 'N' at offset 23`},
		{"a misspelt literal in an ignored member", `{"x":nul,"data":{}}`, `invalid JSON: unexpected ',' at offset 8`},
		{"an unclosed ignored array", `{"before-image":[1,2`, "invalid JSON: unexpected end of input"},
		{"a missing colon", `{"data" {}}`, `invalid JSON: unexpected '{' at offset 8`},
		{"a non-string member name", `{data:{}}`, `invalid JSON: unexpected 'd' at offset 1`},
		{"a byte order mark", "\xef\xbb\xbf" + good, "invalid JSON: unexpected byte 0xef at offset 0"},
		{"nesting deeper than encoding/json allows", `{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
			"invalid JSON: nested deeper than 10000 at offset 10004"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if json.Valid([]byte(tc.in)) && !strings.Contains(tc.err, "not a JSON object") && !strings.Contains(tc.err, "nested") {
				t.Fatalf("test input is valid JSON")
			}
			decodeCase{input: []byte(tc.in), err: tc.err}.check(t)
		})
	}
}
