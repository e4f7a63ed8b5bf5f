package binlog

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/unified-streaming-etl/etl/internal/cdc/jsonscan"
)

// table is what the reader knows about one captured source table.
type table struct {
	schema, name string
	columns      []column
	primaryKey   []int // column indexes, in key order
	partitionCol int   // index of the partition-key column, -1 if the table lacks it
}

type column struct {
	name      string
	dataType  string // information_schema DATA_TYPE, lower case: "int", "decimal", ...
	unsigned  bool
	nullable  bool
	precision int // DECIMAL precision, DATETIME fractional digits
	scale     int
	length    int // character columns
}

// loadTable reads a table's columns and primary key from information_schema.
func loadTable(ctx context.Context, db *sql.DB, schema, name, partitionKey string) (*table, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
		       COALESCE(NUMERIC_PRECISION, 0), COALESCE(NUMERIC_SCALE, 0),
		       COALESCE(CHARACTER_MAXIMUM_LENGTH, 0), COALESCE(DATETIME_PRECISION, 0)
		FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
		ORDER BY ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
	}
	defer rows.Close()
	t := &table{schema: schema, name: name, partitionCol: -1}
	for rows.Next() {
		var (
			c                          column
			columnType, nullable       string
			prec, scale, length, dtPrc int64
		)
		if err := rows.Scan(&c.name, &c.dataType, &columnType, &nullable, &prec, &scale, &length, &dtPrc); err != nil {
			return nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
		}
		c.dataType = strings.ToLower(c.dataType)
		c.unsigned = strings.Contains(strings.ToLower(columnType), "unsigned")
		c.nullable = nullable == "YES"
		c.precision, c.scale, c.length = int(prec), int(scale), int(min(length, 1<<31-1))
		if isTemporal(c.dataType) {
			c.precision = int(dtPrc)
		}
		if c.name == partitionKey {
			t.partitionCol = len(t.columns)
		}
		t.columns = append(t.columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s.%s: %w", schema, name, err)
	}
	if len(t.columns) == 0 {
		return nil, fmt.Errorf("table %s.%s does not exist", schema, name)
	}

	keys, err := db.QueryContext(ctx, `
		SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
		ORDER BY ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s.%s: %w", schema, name, err)
	}
	defer keys.Close()
	for keys.Next() {
		var col string
		if err := keys.Scan(&col); err != nil {
			return nil, fmt.Errorf("read primary key of %s.%s: %w", schema, name, err)
		}
		if i := t.columnIndex(col); i >= 0 {
			t.primaryKey = append(t.primaryKey, i)
		}
	}
	if err := keys.Err(); err != nil {
		return nil, fmt.Errorf("read primary key of %s.%s: %w", schema, name, err)
	}
	return t, nil
}

func (t *table) columnIndex(name string) int {
	for i, c := range t.columns {
		if c.name == name {
			return i
		}
	}
	return -1
}

// sameColumns reports whether names (from a binlog table-map event) match
// the table's columns, in order.
func (t *table) sameColumns(names []string) bool {
	if len(names) != len(t.columns) {
		return false
	}
	for i, n := range names {
		if t.columns[i].name != n {
			return false
		}
	}
	return true
}

// partitionKey is the Kinesis partition key of a data record: the value of
// the partition-key column, as DMS's attribute-name mapping uses it, or
// schema.table when the table lacks that column.
func (t *table) partitionKey(values []value) string {
	if t.partitionCol >= 0 && t.partitionCol < len(values) && values[t.partitionCol].kind != kindNull {
		return values[t.partitionCol].text
	}
	return t.schema + "." + t.name
}

// appendTableDef writes the table definition DMS puts in control records
// when IncludeControlDetails is set, with DMS's own type names.
func (t *table) appendTableDef(dst []byte) []byte {
	dst = append(dst, `{"columns":{`...)
	for i, c := range t.columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonscan.AppendString(dst, c.name)
		dst = append(dst, `:{"type":`...)
		dst = jsonscan.AppendString(dst, dmsType(c))
		switch {
		case c.dataType == "decimal" || c.dataType == "numeric":
			dst = append(dst, `,"precision":`...)
			dst = strconv.AppendInt(dst, int64(c.precision), 10)
			dst = append(dst, `,"scale":`...)
			dst = strconv.AppendInt(dst, int64(c.scale), 10)
		case c.length > 0:
			dst = append(dst, `,"length":`...)
			dst = strconv.AppendInt(dst, int64(c.length), 10)
		case isTemporal(c.dataType) && c.precision > 0:
			dst = append(dst, `,"precision":`...)
			dst = strconv.AppendInt(dst, int64(c.precision), 10)
		}
		dst = append(dst, `,"nullable":`...)
		dst = strconv.AppendBool(dst, c.nullable)
		dst = append(dst, '}')
	}
	dst = append(dst, `},"primary-key":[`...)
	for i, k := range t.primaryKey {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonscan.AppendString(dst, t.columns[k].name)
	}
	return append(dst, "]}"...)
}

// dmsType maps a MySQL column type to the DMS data type it becomes
// (DMS user guide, "Source data types for MySQL").
func dmsType(c column) string {
	u := ""
	if c.unsigned {
		u = "U"
	}
	switch c.dataType {
	case "tinyint":
		return u + "INT1"
	case "smallint":
		return u + "INT2"
	case "mediumint", "int", "integer":
		return u + "INT4"
	case "bigint":
		return u + "INT8"
	case "decimal", "numeric":
		return "NUMERIC"
	case "float":
		return "REAL4"
	case "double", "real":
		return "REAL8"
	case "date":
		return "DATE"
	case "datetime", "timestamp":
		return "DATETIME"
	case "time":
		return "STRING"
	case "year":
		return "INT2"
	case "bit":
		return "BYTES"
	case "binary", "varbinary", "tinyblob":
		return "BYTES"
	case "blob", "mediumblob", "longblob":
		return "BLOB"
	case "text", "mediumtext", "longtext", "json":
		return "NCLOB"
	default:
		return "WSTRING"
	}
}

func isTemporal(dataType string) bool {
	switch dataType {
	case "datetime", "timestamp", "time":
		return true
	}
	return false
}
