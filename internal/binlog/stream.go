package binlog

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"
)

// txn collects the rows of one source transaction. Its records are
// shipped when the commit event arrives: only then is the commit time
// known, and a transaction's records are never split by another's.
type txn struct {
	id      uint64 // GTID sequence number (MariaDB) or GNO (MySQL); 0 until known
	gtid    string
	records []*record
	// standalone marks a MariaDB event group without COMMIT (DDL and other
	// non-transactional statements): its single statement ends it.
	standalone bool
}

// follow streams the binlog from start until ctx ends.
func (r *Reader) follow(ctx context.Context, w *writer, start mysql.Position) error {
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: r.cfg.ServerID,
		Flavor:   r.cfg.Flavor,
		Host:     r.cfg.Host,
		Port:     uint16(r.cfg.Port),
		User:     r.cfg.User,
		Password: r.cfg.Password,
		// DATETIME and DECIMAL as exact text, TIMESTAMP rendered in UTC.
		TimestampStringLocation: time.UTC,
		// A reconnect in the middle of a transaction would resume without
		// its table-map events; failing is the honest outcome and Run's
		// caller decides what to do.
		DisableRetrySync: true,
		Logger:           slog.New(quietHandler{r.log.Handler()}),
	})
	defer syncer.Close()
	streamer, err := syncer.StartSync(start)
	if err != nil {
		return fmt.Errorf("binlog: start replication at %s: %w", start, err)
	}

	pos := start
	var cur *txn
	for {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("binlog: read event after %s: %w", pos, err)
		}
		if re, ok := ev.Event.(*replication.RotateEvent); ok {
			pos = mysql.Position{Name: string(re.NextLogName), Pos: uint32(re.Position)}
		} else if ev.Header.LogPos > 0 {
			pos.Pos = ev.Header.LogPos
		}

		switch e := ev.Event.(type) {
		case *replication.MariadbGTIDEvent:
			cur = &txn{id: e.GTID.SequenceNumber, gtid: e.GTID.String(), standalone: e.IsStandalone()}
		case *replication.GTIDEvent:
			cur = &txn{id: uint64(e.GNO), gtid: mysqlGTID(e)}
		case *replication.QueryEvent:
			switch q := strings.TrimSpace(string(e.Query)); {
			case strings.EqualFold(q, "BEGIN"):
				if cur == nil {
					cur = &txn{}
				}
			case strings.EqualFold(q, "ROLLBACK"):
				// Written for a rolled-back transaction that also touched
				// non-transactional tables: its InnoDB changes never happened.
				cur = nil
			case strings.EqualFold(q, "COMMIT"):
				if err := r.commit(ctx, w, cur, ev.Header, 0); err != nil {
					return err
				}
				cur = nil
			default:
				if schema, name, ok := truncatedTable(q, string(e.Schema)); ok && schema == r.cfg.Schema && slices.Contains(r.cfg.Tables, name) {
					if err := r.emitTruncate(ctx, w, schema, name); err != nil {
						return err
					}
				}
				// DDL (or a statement-format event): table definitions may
				// have changed; they are read again when next needed.
				clear(r.tables)
				if cur != nil && cur.standalone {
					cur = nil
				}
			}
		case *replication.RowsEvent:
			if cur == nil {
				cur = &txn{}
			}
			if err := r.collectRows(ctx, cur, e, ev.Header, pos); err != nil {
				return err
			}
		case *replication.XIDEvent:
			if err := r.commit(ctx, w, cur, ev.Header, e.XID); err != nil {
				return err
			}
			cur = nil
		}
		if cur == nil {
			shipped, _ := w.shipped()
			r.pos.set(w.issued(), pos, shipped)
		}
	}
}

func mysqlGTID(e *replication.GTIDEvent) string {
	if u, err := uuid.FromBytes(e.SID); err == nil {
		return u.String() + ":" + strconv.FormatInt(e.GNO, 10)
	}
	return hex.EncodeToString(e.SID) + ":" + strconv.FormatInt(e.GNO, 10)
}

// collectRows turns a rows event of a captured table into records of the
// current transaction.
func (r *Reader) collectRows(ctx context.Context, cur *txn, e *replication.RowsEvent, h *replication.EventHeader, pos mysql.Position) error {
	tm := e.Table
	if tm == nil || string(tm.Schema) != r.cfg.Schema || !slices.Contains(r.cfg.Tables, string(tm.Table)) {
		return nil
	}
	t, err := r.tableFor(ctx, tm)
	if err != nil {
		return err
	}
	var op string
	step, img := 1, 0
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		op = opInsert
	case replication.EnumRowsEventTypeUpdate:
		// Rows alternate before and after images; DMS sends the after image.
		op, step, img = opUpdate, 2, 1
	case replication.EnumRowsEventTypeDelete:
		op = opDelete
	default:
		return nil
	}
	unsigned := tm.UnsignedMap()
	enums := tm.EnumStrValueMap()
	for i := img; i < len(e.Rows); i += step {
		row := e.Rows[i]
		if len(row) != len(t.columns) {
			return fmt.Errorf("binlog: %s.%s row has %d columns, table has %d", t.schema, t.name, len(row), len(t.columns))
		}
		values := make([]value, len(row))
		for j, v := range row {
			values[j] = binaryValue(t.columns[j], tm.ColumnType[j], unsignedAt(unsigned, t.columns[j], j), enums[j], v)
		}
		var before []value
		if op == opUpdate && len(t.primaryKey) > 0 && len(e.Rows[i-1]) == len(t.columns) {
			// The row before the after image is the before image (full,
			// with binlog_row_image=FULL); DMS's pk-only filter keeps
			// its primary-key columns.
			before = make([]value, len(t.primaryKey))
			for k, j := range t.primaryKey {
				before[k] = binaryValue(t.columns[j], tm.ColumnType[j], unsignedAt(unsigned, t.columns[j], j), enums[j], e.Rows[i-1][j])
			}
		}
		cur.records = append(cur.records, &record{
			table:      t,
			op:         op,
			values:     values,
			before:     before,
			partition:  t.partitionKey(values),
			schemaName: t.schema,
			tableName:  t.name,
			txn:        &txnInfo{streamPos: pos.Name + ":" + strconv.FormatUint(uint64(h.LogPos), 10) + ":" + strconv.Itoa(i/step)},
		})
	}
	return nil
}

func unsignedAt(m map[int]bool, c column, i int) bool {
	if m != nil {
		return m[i]
	}
	return c.unsigned
}

// tableFor returns the definition that names a table-map event's columns.
// Column names come from the event itself when the source writes full row
// metadata (binlog_row_metadata=FULL), otherwise from information_schema.
func (r *Reader) tableFor(ctx context.Context, tm *replication.TableMapEvent) (*table, error) {
	name := string(tm.Table)
	names := tm.ColumnNameString()
	t := r.tables[name]
	fits := func(t *table) bool {
		if t == nil {
			return false
		}
		if len(names) > 0 {
			return t.sameColumns(names)
		}
		return uint64(len(t.columns)) == tm.ColumnCount
	}
	if !fits(t) {
		loaded, err := loadTable(ctx, r.db, r.cfg.Schema, name, r.cfg.PartitionKey)
		if err != nil && len(names) == 0 {
			return nil, fmt.Errorf("binlog: %w", err)
		}
		t = loaded
		if !fits(t) {
			if len(names) == 0 {
				return nil, fmt.Errorf("binlog: %s.%s has %d columns in the binlog and a different definition now; enable binlog_row_metadata=FULL", r.cfg.Schema, name, tm.ColumnCount)
			}
			// The table changed again since this event was written: the
			// event's own names are authoritative, types come from values.
			t = &table{schema: r.cfg.Schema, name: name, partitionCol: -1}
			for i, n := range names {
				t.columns = append(t.columns, column{name: n})
				if n == r.cfg.PartitionKey {
					t.partitionCol = i
				}
			}
		}
		r.tables[name] = t
	}
	return t, nil
}

// commit ships a transaction's records with the commit's metadata.
func (r *Reader) commit(ctx context.Context, w *writer, cur *txn, h *replication.EventHeader, xid uint64) error {
	if cur == nil || len(cur.records) == 0 {
		return nil
	}
	id := cur.id
	if id == 0 {
		id = xid
	}
	commitTS := time.Unix(int64(h.Timestamp), 0)
	var buf []byte
	for i, rec := range cur.records {
		rec.timestamp = r.clock.next()
		rec.txn.id, rec.txn.recordID, rec.txn.commitTS = id, int64(i+1), commitTS
		rec.prev = r.prev
		r.prev = &txnRef{id: id, recordID: rec.txn.recordID}
		buf = r.enc.appendRecord(buf[:0], rec)
		r.notify(rec, cur.gtid)
		if err := w.enqueue(ctx, rec.partition, append([]byte(nil), buf...)); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		switch rec.op {
		case opInsert:
			r.inserts.Add(1)
		case opUpdate:
			r.updates.Add(1)
		case opDelete:
			r.deletes.Add(1)
		}
	}
	return nil
}

// binaryValue converts a value decoded from a binlog row image.
func binaryValue(c column, colType byte, unsigned bool, enum []string, v any) value {
	switch v := v.(type) {
	case nil:
		return value{kind: kindNull}
	case int8:
		if unsigned {
			return number(strconv.FormatUint(uint64(uint8(v)), 10))
		}
		return number(strconv.FormatInt(int64(v), 10))
	case int16:
		if unsigned {
			return number(strconv.FormatUint(uint64(uint16(v)), 10))
		}
		return number(strconv.FormatInt(int64(v), 10))
	case int32:
		if unsigned {
			if colType == mysql.MYSQL_TYPE_INT24 {
				return number(strconv.FormatUint(uint64(uint32(v)&0xFFFFFF), 10))
			}
			return number(strconv.FormatUint(uint64(uint32(v)), 10))
		}
		return number(strconv.FormatInt(int64(v), 10))
	case int64:
		if colType == mysql.MYSQL_TYPE_ENUM || colType == mysql.MYSQL_TYPE_STRING && len(enum) > 0 {
			// ENUM values arrive as 1-based indexes; full row metadata names them.
			if v >= 1 && int(v) <= len(enum) {
				return value{kind: kindString, text: enum[v-1]}
			}
		}
		if unsigned {
			return number(strconv.FormatUint(uint64(v), 10))
		}
		return number(strconv.FormatInt(v, 10))
	case int:
		return number(strconv.Itoa(v))
	case uint64:
		return number(strconv.FormatUint(v, 10))
	case float32:
		return number(strconv.FormatFloat(float64(v), 'g', -1, 32))
	case float64:
		return number(strconv.FormatFloat(v, 'g', -1, 64))
	case string:
		switch colType {
		case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
			return value{kind: kindDecimal, text: v}
		case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
			return value{kind: kindDatetime, text: v}
		}
		return value{kind: kindString, text: v}
	case []byte:
		switch c.dataType {
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			return value{kind: kindBinary, text: strings.ToUpper(hex.EncodeToString(v))}
		}
		if utf8.Valid(v) {
			return value{kind: kindString, text: string(v)}
		}
		return value{kind: kindBinary, text: strings.ToUpper(hex.EncodeToString(v))}
	default:
		return value{kind: kindString, text: fmt.Sprint(v)}
	}
}

func number(s string) value { return value{kind: kindNumber, text: s} }

// truncatePattern matches TRUNCATE [TABLE] [schema.]table as a client
// writes it, with or without backquotes and a final semicolon.
var truncatePattern = regexp.MustCompile("(?is)^truncate\\s+(?:table\\s+)?(?:`?([^`.\\s]+)`?\\.)?`?([^`.\\s;]+)`?\\s*;?$")

// truncatedTable returns the table a TRUNCATE statement names; a table
// without a schema is in the statement's default schema.
func truncatedTable(query, defaultSchema string) (schema, name string, ok bool) {
	m := truncatePattern.FindStringSubmatch(query)
	if m == nil {
		return "", "", false
	}
	schema = m[1]
	if schema == "" {
		schema = defaultSchema
	}
	return schema, m[2], true
}

// emitTruncate writes the control record of a TRUNCATE of a captured
// table. MySQL logs TRUNCATE as a statement, not as row deletes, so this
// record is all a consumer learns of it; like every control record it is
// keyed by task, schema and table, not by orderId.
func (r *Reader) emitTruncate(ctx context.Context, w *writer, schema, name string) error {
	rec := &record{control: true, op: opTruncateTable, schemaName: schema, tableName: name}
	rec.timestamp = r.clock.next()
	rec.partition = r.cfg.TaskID + "." + schema + "." + name
	if err := w.enqueue(ctx, rec.partition, r.enc.appendRecord(nil, rec)); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	r.controls.Add(1)
	return nil
}
