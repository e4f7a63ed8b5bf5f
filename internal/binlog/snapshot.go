package binlog

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// fullLoad reads every captured table under one consistent snapshot, queues
// its rows as "load" records and returns the binlog position the snapshot
// corresponds to, from which the binlog is then followed: no change is
// missed and none is read twice.
func (r *Reader) fullLoad(ctx context.Context, w *writer) (mysql.Position, error) {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return mysql.Position{}, fmt.Errorf("binlog: full load: %w", err)
	}
	defer conn.Close()
	pos, err := snapshot(ctx, conn)
	if err != nil {
		return mysql.Position{}, fmt.Errorf("binlog: full load: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // read-only transaction

	for _, name := range r.cfg.Tables {
		if err := r.loadTable(ctx, conn, w, r.tables[name]); err != nil {
			return mysql.Position{}, fmt.Errorf("binlog: full load of %s.%s: %w", r.cfg.Schema, name, err)
		}
	}
	return pos, nil
}

// snapshot opens a consistent-snapshot transaction on conn and returns the
// binlog position it sees. MariaDB reports that position with the snapshot
// itself (binlog_snapshot_file/position), so no lock is taken; MySQL needs
// a brief global read lock while the snapshot starts.
func snapshot(ctx context.Context, conn *sql.Conn) (mysql.Position, error) {
	if _, err := conn.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return mysql.Position{}, err
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return mysql.Position{}, err
	}
	var file, pos sql.NullString
	rows, err := conn.QueryContext(ctx, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return mysql.Position{}, err
	}
	for rows.Next() {
		var name, val string
		if err := rows.Scan(&name, &val); err != nil {
			rows.Close()
			return mysql.Position{}, err
		}
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			file = sql.NullString{String: val, Valid: true}
		case "binlog_snapshot_position":
			pos = sql.NullString{String: val, Valid: true}
		}
	}
	rows.Close()
	if file.Valid && pos.Valid && file.String != "" {
		p, err := strconv.ParseUint(pos.String, 10, 32)
		if err != nil {
			return mysql.Position{}, fmt.Errorf("binlog_snapshot_position %q: %w", pos.String, err)
		}
		return mysql.Position{Name: file.String, Pos: uint32(p)}, nil
	}

	// MySQL: start the snapshot again under FLUSH TABLES WITH READ LOCK.
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		return mysql.Position{}, err
	}
	if _, err := conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		return mysql.Position{}, fmt.Errorf("lock tables for the snapshot: %w", err)
	}
	unlocked := false
	unlock := func() error {
		if unlocked {
			return nil
		}
		unlocked = true
		_, err := conn.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES")
		return err
	}
	defer unlock() //nolint:errcheck // best effort on the error path
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return mysql.Position{}, err
	}
	p, err := masterPosition(ctx, conn)
	if err != nil {
		return mysql.Position{}, err
	}
	return p, unlock()
}

// loadTable streams one table in primary-key order as load records.
func (r *Reader) loadTable(ctx context.Context, conn *sql.Conn, w *writer, t *table) error {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = quoteIdent(c.name)
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteIdent(t.schema) + "." + quoteIdent(t.name)
	if len(t.primaryKey) > 0 {
		keys := make([]string, len(t.primaryKey))
		for i, k := range t.primaryKey {
			keys[i] = quoteIdent(t.columns[k].name)
		}
		q += " ORDER BY " + strings.Join(keys, ", ")
	}
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	var buf []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		values := make([]value, len(raw))
		for i, b := range raw {
			values[i] = textValue(t.columns[i], b)
		}
		rec := &record{
			table:      t,
			op:         opLoad,
			values:     values,
			timestamp:  r.clock.next(),
			partition:  t.partitionKey(values),
			schemaName: t.schema,
			tableName:  t.name,
		}
		buf = r.enc.appendRecord(buf[:0], rec)
		r.notify(rec, "")
		if err := w.enqueue(ctx, rec.partition, append([]byte(nil), buf...)); err != nil {
			return err
		}
		r.loads.Add(1)
	}
	return rows.Err()
}

// textValue converts a column value read over the text protocol.
func textValue(c column, b sql.RawBytes) value {
	if b == nil {
		return value{kind: kindNull}
	}
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "float", "double", "real":
		return value{kind: kindNumber, text: string(b)}
	case "decimal", "numeric":
		return value{kind: kindDecimal, text: string(b)}
	case "datetime", "timestamp":
		return value{kind: kindDatetime, text: string(b)}
	case "bit":
		var n uint64
		for _, x := range b {
			n = n<<8 | uint64(x)
		}
		return value{kind: kindNumber, text: strconv.FormatUint(n, 10)}
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return value{kind: kindBinary, text: strings.ToUpper(hex.EncodeToString(b))}
	default:
		return value{kind: kindString, text: string(b)}
	}
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// notify reports a data record to Config.OnRecord.
func (r *Reader) notify(rec *record, gtid string) {
	if r.cfg.OnRecord == nil {
		return
	}
	r.cfg.OnRecord(Emitted{
		Version:   rec.timestamp,
		Table:     rec.tableName,
		Operation: rec.op,
		Key:       rec.partition,
		GTID:      gtid,
	})
}
