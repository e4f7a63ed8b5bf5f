package cdc_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/cdc/cdctest"
	"github.com/unified-streaming-etl/etl/internal/order"
)

// FuzzDecode checks that Decode never panics, that it accepts only valid
// JSON and never drops invalid JSON as not data, and that every change it
// accepts survives AppendFlat and a read back through encoding/json
// unchanged.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, r := range cdctest.Records(8) {
		f.Add(r)
	}
	f.Add(dms("order", "update", `{"orderId":"1.5e3","orderAmount":"1E-3","shipToName":"a\ud800\u00e9\\","orderDateTime":"2020-05-01T01:30:00+02:00"}`))
	f.Add(dms("order_item", "delete", `{"orderId":-9223372036854775808,"itemId":"  12 ","itemQuanity":"0"}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cdc.Decode(data)
		if err != nil {
			if err.Error() == "" || err.Error() == cdc.ErrNotData.Error() {
				t.Fatalf("error %q does not say why", err)
			}
			if errors.Is(err, cdc.ErrNotData) && !json.Valid(data) {
				t.Fatalf("invalid JSON dropped as not data: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if c.RecordType != order.TableOrder && c.RecordType != order.TableOrderItem {
			t.Fatalf("record type %q", c.RecordType)
		}
		if c.RecordType == order.TableOrderItem && c.ItemID == nil {
			t.Fatal("an item without itemId was accepted")
		}
		flat := cdc.AppendFlat(nil, &c)
		if !json.Valid(flat) {
			t.Fatalf("AppendFlat wrote invalid JSON %q", flat)
		}
		var back order.Change
		if err := json.Unmarshal(flat, &back); err != nil {
			t.Fatalf("flat record %s does not read back: %v", flat, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the record\ndecoded   %+v\nread back %+v\nflat %s", c, back, flat)
		}
	})
}

// FuzzDecodeAgreesWithEncodingJSON puts fuzzed text where a string column
// and an integer column go and checks that Decode reads what encoding/json
// reads from the same text: the same string, and the same integer exactly
// when the number is integral and fits in an int64.
func FuzzDecodeAgreesWithEncodingJSON(f *testing.F) {
	f.Add(`Jos\u00e9 \"Pepe\"`, "1001")
	f.Add(`\ud83c\udf32 \ud800 \u0000`, "1.2345678901234567E+17")
	f.Add("caf\xc3\xa9 \xff", "-9223372036854775808")
	f.Add(`a\/b\b\f\n\r\t`, "1.5e3")
	f.Add(``, "9223372036854775808")
	f.Add(`x`, "0E+000000")
	f.Add(`x`, "0E10000000000000000000")
	f.Fuzz(func(t *testing.T, str, num string) {
		rec := dms("order", "insert", `{"orderId":`+num+`,"shipToName":"`+str+`"}`)
		if !json.Valid(rec) {
			return // covered by FuzzDecode
		}
		var want struct {
			Data struct {
				OrderID    json.Number `json:"orderId"`
				ShipToName string      `json:"shipToName"`
			} `json:"data"`
		}
		if err := json.Unmarshal(rec, &want); err != nil {
			return // valid JSON with a non-number orderId, for example
		}
		wantID := new(big.Rat)
		if _, ok := wantID.SetString(want.Data.OrderID.String()); !ok {
			return // an exponent too large for big.Rat to be an oracle
		}
		integral := wantID.IsInt() && wantID.Num().IsInt64()

		c, err := cdc.Decode(rec)
		if !integral {
			if err == nil {
				t.Fatalf("orderId %s accepted as %d", num, c.OrderID)
			}
			return
		}
		if err != nil {
			t.Fatalf("rejected orderId %s: %v", num, err)
		}
		if c.OrderID != wantID.Num().Int64() {
			t.Fatalf("orderId %s read as %d, want %s", num, c.OrderID, wantID.Num())
		}
		if c.ShipToName == nil || *c.ShipToName != want.Data.ShipToName {
			t.Fatalf("shipToName read as %q, encoding/json reads %q", deref(c.ShipToName), want.Data.ShipToName)
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
