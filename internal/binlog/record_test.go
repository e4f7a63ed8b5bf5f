package binlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/cdc"
)

func orderItemTable() *table {
	return &table{schema: "orders", name: "order_item", partitionCol: 0, primaryKey: []int{0, 1}, columns: []column{
		{name: "orderId", dataType: "int"}, {name: "itemId", dataType: "int"},
		{name: "itemQuantity", dataType: "int"}, {name: "itemAmount", dataType: "decimal", precision: 10, scale: 2},
		{name: "itemStatus", dataType: "varchar", length: 32, nullable: true},
	}}
}

func TestAppendRecord(t *testing.T) {
	tbl := orderItemTable()
	rec := &record{
		table: tbl, op: opUpdate, schemaName: "orders", tableName: "order_item", partition: "1001",
		values:    []value{number("1001"), number("17"), number("4"), {kind: kindDecimal, text: "80.00"}, {kind: kindString, text: "a \"quoted\"\n\x01 \xff status"}},
		timestamp: time.Date(2026, 11, 2, 9, 15, 2, 120000000, time.UTC).UnixMicro(),
		txn:       &txnInfo{id: 42, recordID: 2, commitTS: time.Date(2026, 11, 2, 9, 15, 2, 0, time.UTC), streamPos: "mysql-bin.000001:1234:0"},
		prev:      &txnRef{id: 42, recordID: 1},
	}
	t.Run("a data record has DMS's shape and exact values", func(t *testing.T) {
		enc := encoder{partitionKeyType: cdc.PartitionKeyAttribute}
		b := enc.appendRecord(nil, rec)
		var got cdc.Record
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not JSON: %v: %s", err, b)
		}
		m := got.Metadata
		if m.Timestamp != "2026-11-02T09:15:02.120000Z" || m.RecordType != "data" || m.Operation != "update" ||
			m.PartitionKeyType != "attribute-name" || m.PartitionKeyValue != "1001" || m.SchemaName != "orders" ||
			m.TableName != "order_item" || string(m.TransactionID) != "42" || *m.TransactionRecordID != 2 ||
			string(m.PrevTransactionID) != "42" || *m.PrevTransactionRecordID != 1 ||
			m.CommitTimestamp != "2026-11-02T09:15:02.000000Z" || m.StreamPosition != "mysql-bin.000001:1234:0" {
			t.Errorf("metadata %+v", m)
		}
		if got.Data["itemAmount"] != "80.00" || got.Data["itemStatus"] != "a \"quoted\"\n\x01 \ufffd status" || got.Data["orderId"] != 1001.0 {
			t.Errorf("data %v", got.Data)
		}
		c, err := cdc.Decode(b)
		if err != nil || c.ItemAmount.String() != "80" || *c.ItemQuantity != 4 {
			t.Errorf("cdc.Decode: %+v, %v", c, err)
		}
	})
	t.Run("every record is one line, as DMS's json-unformatted writes it", func(t *testing.T) {
		// The value holds a newline: escaped, it must not split the record.
		enc := encoder{partitionKeyType: cdc.PartitionKeyAttribute, controlDetails: true}
		for name, b := range map[string][]byte{
			"data":    enc.appendRecord(nil, rec),
			"control": enc.appendRecord(nil, &record{control: true, op: opCreateTable, table: tbl, schemaName: "orders", tableName: "order_item", timestamp: rec.timestamp}),
		} {
			if bytes.ContainsAny(b, "\n\r") {
				t.Errorf("%s record spans lines: %q", name, b)
			}
		}
	})
	t.Run("a create-table control record carries the table definition under task-id", func(t *testing.T) {
		enc := encoder{partitionKeyType: cdc.PartitionKeyAttribute, controlDetails: true}
		b := enc.appendRecord(nil, &record{control: true, op: opCreateTable, table: tbl, schemaName: "orders", tableName: "order_item", timestamp: rec.timestamp})
		var got struct {
			Control struct {
				TableDef struct {
					Columns    map[string]map[string]any `json:"columns"`
					PrimaryKey []string                  `json:"primary-key"`
				} `json:"table-def"`
			} `json:"control"`
			Metadata cdc.Metadata `json:"metadata"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not JSON: %v: %s", err, b)
		}
		td := got.Control.TableDef
		if td.Columns["itemAmount"]["type"] != "NUMERIC" || td.Columns["itemAmount"]["scale"] != 2.0 ||
			td.Columns["orderId"]["type"] != "INT4" || td.Columns["itemStatus"]["nullable"] != true ||
			len(td.PrimaryKey) != 2 || got.Metadata.PartitionKeyType != cdc.PartitionKeyTaskID || got.Metadata.RecordType != "control" {
			t.Errorf("control record %s", b)
		}
	})
}

func TestAppendRecordKeyChangeAndTruncate(t *testing.T) {
	tbl := orderItemTable()
	ts := time.Date(2026, 11, 2, 9, 15, 2, 120000000, time.UTC).UnixMicro()
	t.Run("an update carries the old primary key as DMS's pk-only before image", func(t *testing.T) {
		enc := encoder{partitionKeyType: cdc.PartitionKeyAttribute}
		b := enc.appendRecord(nil, &record{
			table: tbl, op: opUpdate, schemaName: "orders", tableName: "order_item", partition: "1002", timestamp: ts,
			values: []value{number("1002"), number("17"), number("4"), {kind: kindDecimal, text: "80.00"}, {kind: kindString, text: "OPEN"}},
			before: []value{number("1001"), number("16")},
		})
		var got cdc.Record
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not JSON: %v: %s", err, b)
		}
		if len(got.BeforeImage) != 2 || got.BeforeImage["orderId"] != 1001.0 || got.BeforeImage["itemId"] != 16.0 {
			t.Errorf("before image %v, want orderId 1001 and itemId 16 only", got.BeforeImage)
		}
		c, err := cdc.Decode(b)
		if err != nil || c.OldOrderID == nil || *c.OldOrderID != 1001 || c.OldItemID == nil || *c.OldItemID != 16 {
			t.Errorf("cdc.Decode: %+v, %v", c, err)
		}
	})
	t.Run("a truncate is a control record under task-id that the decoder refuses", func(t *testing.T) {
		enc := encoder{partitionKeyType: cdc.PartitionKeyAttribute, controlDetails: true}
		b := enc.appendRecord(nil, &record{control: true, op: opTruncateTable, schemaName: "orders", tableName: "order_item", timestamp: ts})
		var got cdc.Record
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not JSON: %v: %s", err, b)
		}
		m := got.Metadata
		if got.Data != nil || m.RecordType != cdc.RecordTypeControl || m.Operation != "truncate-table" || m.PartitionKeyType != cdc.PartitionKeyTaskID {
			t.Errorf("record %s", b)
		}
		if _, err := cdc.Decode(b); !errors.Is(err, cdc.ErrTruncate) {
			t.Errorf("cdc.Decode = %v, want ErrTruncate", err)
		}
	})
}

func TestTruncatedTable(t *testing.T) {
	tests := []struct {
		query, schema, name string
		ok                  bool
	}{
		{"TRUNCATE TABLE orders.order_item", "orders", "order_item", true},
		{"truncate `orders`.`order_item`;", "orders", "order_item", true},
		{"TRUNCATE order_item", "orders", "order_item", true},
		{"TRUNCATE TABLE other.order_item", "other", "order_item", true},
		{"DELETE FROM orders.order_item", "", "", false},
		{"ALTER TABLE orders.order_item TRUNCATE PARTITION p0", "", "", false},
	}
	for _, tt := range tests {
		schema, name, ok := truncatedTable(tt.query, "orders")
		if schema != tt.schema || name != tt.name || ok != tt.ok {
			t.Errorf("truncatedTable(%q) = %q, %q, %v; want %q, %q, %v", tt.query, schema, name, ok, tt.schema, tt.name, tt.ok)
		}
	}
}

func TestISODatetime(t *testing.T) {
	for in, want := range map[string]string{
		"2020-05-01 17:11:49.973": "2020-05-01T17:11:49.973Z",
		"2020-05-01 17:11:49":     "2020-05-01T17:11:49Z",
		"0000-00-00 00:00:00":     "0000-00-00 00:00:00",
	} {
		if got := isoDatetime(in); got != want {
			t.Errorf("isoDatetime(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkAppendRecord measures encoding one order-item change as DMS
// JSON, the reader's per-record CPU cost.
func BenchmarkAppendRecord(b *testing.B) {
	tbl := orderItemTable()
	rec := &record{
		table: tbl, op: opInsert, schemaName: "orders", tableName: "order_item", partition: "1001",
		values:    []value{number("1001"), number("17"), number("4"), {kind: kindDecimal, text: "80.00"}, {kind: kindString, text: "PLACED"}},
		timestamp: time.Now().UnixMicro(),
		txn:       &txnInfo{id: 42, recordID: 2, commitTS: time.Now(), streamPos: "mysql-bin.000001:1234:0"},
	}
	enc := encoder{partitionKeyType: cdc.PartitionKeyAttribute}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.appendRecord(buf[:0], rec)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
