// Package cdctest builds DMS Kinesis records for the pipeline's source
// tables, shaped as DMS writes them (json-unformatted, full CDC metadata), so
// tests and benchmarks run on realistic input without a database.
package cdctest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/order"
)

var (
	statuses = []string{"PENDING", "PAID", "SHIPPED", "DELIVERED"}
	names    = []string{"Maria Garcia", "Chen Wei", "Aisha Okafor", "Lena Müller", "Sam O'Neil", "Priya Natarajan"}
	streets  = []string{"1200 Pine St, Apt 4B", "88 Harbor Blvd", "5 Elm Ct", "Hauptstraße 12", "77 Old Mill Rd"}
	cities   = []struct{ city, state, zip string }{
		{"Seattle", "WA", "98101"}, {"San Francisco", "CA", "94105"}, {"Austin", "TX", "73301"},
		{"Portland", "OR", "97201"}, {"Boise", "ID", "83702"},
	}
)

// Records returns n data records as DMS would stream them for a sequence of
// orders: each order row followed by its one to four item rows, with an
// occasional update of an order's status. The same n always yields the same
// records.
func Records(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	ts := time.Date(2024, 3, 18, 9, 41, 27, 531842000, time.UTC)
	txID := int64(8754110919)
	out := make([][]byte, 0, n)
	add := func(table, op string, pk int64, data map[string]any) {
		ts = ts.Add(time.Duration(50+rng.IntN(900)) * time.Microsecond)
		txID += int64(1 + rng.IntN(3))
		recID := int64(1)
		out = append(out, marshal(cdc.Record{
			Data: data,
			Metadata: cdc.Metadata{
				Timestamp:               ts.Format(cdc.TimestampLayout),
				RecordType:              cdc.RecordTypeData,
				Operation:               op,
				PartitionKeyType:        cdc.PartitionKeyAttribute,
				PartitionKeyValue:       fmt.Sprint(pk),
				SchemaName:              order.SourceSchema,
				TableName:               table,
				TransactionID:           json.RawMessage(fmt.Sprint(txID)),
				TransactionRecordID:     &recID,
				PrevTransactionID:       json.RawMessage(fmt.Sprint(txID - 1)),
				PrevTransactionRecordID: &recID,
				CommitTimestamp:         ts.Truncate(time.Second).Format(cdc.TimestampLayout),
				StreamPosition:          fmt.Sprintf("mysql-bin-changelog.000412:%d:-1:%d:%d:mysql-bin-changelog.000412:%d", txID%9999991, txID%9999991+67, txID, txID%9999991-149),
			},
		}))
	}
	for orderID := int64(1001); len(out) < n; orderID++ {
		c := cities[rng.IntN(len(cities))]
		items := 1 + rng.IntN(4)
		var total int64 // cents
		item := make([]map[string]any, items)
		for i := range item {
			qty := int64(1 + rng.IntN(5))
			price := int64(199 + rng.IntN(20000))
			total += qty * price
			item[i] = map[string]any{
				"orderId":      orderID,
				"itemId":       int64(1 + rng.IntN(250)),
				"itemQuantity": qty,
				"itemAmount":   cents(qty * price),
				"itemStatus":   "PENDING",
			}
		}
		o := map[string]any{
			"orderId":       orderID,
			"orderAmount":   cents(total),
			"orderStatus":   "PENDING",
			"orderDateTime": ts.Add(-3 * time.Second).Format("2006-01-02T15:04:05.000Z"),
			"shipToName":    names[rng.IntN(len(names))],
			"shipToAddress": streets[rng.IntN(len(streets))],
			"shipToCity":    c.city,
			"shipToState":   c.state,
			"shipToZip":     c.zip,
		}
		add(order.TableOrder, order.OpInsert, orderID, o)
		for _, it := range item {
			add(order.TableOrderItem, order.OpInsert, orderID, it)
		}
		if rng.IntN(4) == 0 {
			o["orderStatus"] = statuses[1+rng.IntN(len(statuses)-1)]
			add(order.TableOrder, order.OpUpdate, orderID, o)
		}
	}
	return out[:n]
}

// cents renders an amount in cents as DMS writes a DECIMAL(10,2): a JSON
// number with two fraction digits.
func cents(v int64) json.Number {
	return json.Number(fmt.Sprintf("%d.%02d", v/100, v%100))
}

func marshal(r cdc.Record) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // only plain values go in; a failure is a bug in this package
	}
	return b
}
