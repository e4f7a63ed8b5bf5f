package binlog

import (
	"strconv"
	"time"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
)

// kind says how a column value is written in a DMS record's "data".
type kind uint8

const (
	kindNull     kind = iota
	kindNumber        // integers and floats: a JSON number, text as MySQL prints it
	kindDecimal       // DECIMAL: exact text, as a JSON string or number (Config.DecimalsAsNumbers)
	kindString        // text, TIME, ENUM names, JSON documents
	kindDatetime      // DATETIME/TIMESTAMP text "YYYY-MM-DD HH:MM:SS[.f]"
	kindBinary        // bytes that are not text: hex, as DMS writes RAW values
)

// value is one column value, already reduced to its text form so that the
// snapshot (text protocol) and the binlog (binary row images) share one
// encoder.
type value struct {
	kind kind
	text string
}

// Record operations and control operations, as DMS names them.
const (
	opLoad        = "load"
	opInsert      = "insert"
	opUpdate      = "update"
	opDelete      = "delete"
	opCreateTable = "create-table"
	// opTruncateTable is the control operation written for a TRUNCATE
	// TABLE. The DMS documentation does not name the operation of a
	// truncate on Kinesis targets; cdc.Decode accepts any operation that
	// names a truncate.
	opTruncateTable = "truncate-table"
)

// record is one DMS record before encoding.
type record struct {
	table      *table // nil for task-level control records
	op         string
	control    bool
	values     []value // data records: one per table column
	before     []value // updates: the primary-key columns of the before image, in key order
	timestamp  int64   // metadata.timestamp, microseconds since the epoch
	txn        *txnInfo
	prev       *txnRef
	partition  string
	schemaName string // control records may name no schema
	tableName  string
}

// txnInfo is the transaction detail DMS adds with IncludeTransactionDetails.
type txnInfo struct {
	id        uint64
	recordID  int64
	commitTS  time.Time
	streamPos string
}

type txnRef struct {
	id       uint64
	recordID int64
}

// appendRecord writes r as one line of DMS JSON.
func (w *encoder) appendRecord(dst []byte, r *record) []byte {
	dst = append(dst, '{')
	if r.control {
		if r.table != nil && w.controlDetails {
			dst = append(dst, `"control":{"table-def":`...)
			dst = r.table.appendTableDef(dst)
			dst = append(dst, `},`...)
		}
	} else {
		dst = append(dst, `"data":{`...)
		first := true
		for i, v := range r.values {
			if v.kind == kindNull && !w.includeNulls {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = jsonscan.AppendString(dst, r.table.columns[i].name)
			dst = append(dst, ':')
			dst = w.appendValue(dst, v)
		}
		dst = append(dst, `},`...)
		if r.before != nil {
			// BeforeImageSettings with ColumnFilter pk-only: the old key.
			dst = append(dst, '"')
			dst = append(dst, cdc.BeforeImageField...)
			dst = append(dst, `":{`...)
			for i, v := range r.before {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = jsonscan.AppendString(dst, r.table.columns[r.table.primaryKey[i]].name)
				dst = append(dst, ':')
				dst = w.appendValue(dst, v)
			}
			dst = append(dst, `},`...)
		}
	}
	dst = append(dst, `"metadata":{"timestamp":`...)
	dst = jsonscan.AppendString(dst, formatTimestamp(time.UnixMicro(r.timestamp)))
	if r.control {
		dst = append(dst, `,"record-type":"control","operation":`...)
	} else {
		dst = append(dst, `,"record-type":"data","operation":`...)
	}
	dst = jsonscan.AppendString(dst, r.op)
	dst = append(dst, `,"partition-key-type":`...)
	if r.control {
		dst = jsonscan.AppendString(dst, cdc.PartitionKeyTaskID)
	} else {
		dst = jsonscan.AppendString(dst, w.partitionKeyType)
		// IncludePartitionValue: the key the record was written with.
		dst = append(dst, `,"partition-key-value":`...)
		dst = jsonscan.AppendString(dst, r.partition)
	}
	dst = append(dst, `,"schema-name":`...)
	dst = jsonscan.AppendString(dst, r.schemaName)
	dst = append(dst, `,"table-name":`...)
	dst = jsonscan.AppendString(dst, r.tableName)
	if t := r.txn; t != nil {
		dst = append(dst, `,"transaction-id":`...)
		dst = strconv.AppendUint(dst, t.id, 10)
		dst = append(dst, `,"transaction-record-id":`...)
		dst = strconv.AppendInt(dst, t.recordID, 10)
		if p := r.prev; p != nil {
			dst = append(dst, `,"prev-transaction-id":`...)
			dst = strconv.AppendUint(dst, p.id, 10)
			dst = append(dst, `,"prev-transaction-record-id":`...)
			dst = strconv.AppendInt(dst, p.recordID, 10)
		}
		dst = append(dst, `,"commit-timestamp":`...)
		dst = jsonscan.AppendString(dst, formatTimestamp(t.commitTS))
		dst = append(dst, `,"stream-position":`...)
		dst = jsonscan.AppendString(dst, t.streamPos)
	}
	return append(dst, "}}"...)
}

// encoder holds the output choices that DMS exposes as endpoint settings.
type encoder struct {
	includeNulls      bool
	decimalsAsNumbers bool
	controlDetails    bool
	partitionKeyType  string
}

func (w *encoder) appendValue(dst []byte, v value) []byte {
	switch v.kind {
	case kindNull:
		return append(dst, "null"...)
	case kindNumber:
		return append(dst, v.text...)
	case kindDecimal:
		if w.decimalsAsNumbers {
			return append(dst, v.text...)
		}
		return jsonscan.AppendString(dst, v.text)
	case kindDatetime:
		return jsonscan.AppendString(dst, isoDatetime(v.text))
	default:
		return jsonscan.AppendString(dst, v.text)
	}
}

// isoDatetime turns MySQL's "2020-05-01 17:11:49.973" into DMS's
// "2020-05-01T17:11:49.973Z". DMS does not shift DATETIME to UTC; it only
// writes it in ISO form. Zero dates are passed through unchanged.
func isoDatetime(s string) string {
	if len(s) < len("2006-01-02 15:04:05") || s[10] != ' ' || s[:4] == "0000" {
		return s
	}
	return s[:10] + "T" + s[11:] + "Z"
}

// formatTimestamp writes a DMS metadata timestamp (UTC, microseconds).
func formatTimestamp(t time.Time) string { return t.UTC().Format(cdc.TimestampLayout) }
