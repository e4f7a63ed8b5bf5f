// Package sql holds the project's SQL scripts, embedded so that programs
// that apply them (the schema-setup Lambda, the etl tool) carry the exact
// text of the commit they were built from instead of reading files at run
// time. Import it under another name where database/sql is also used.
package sql

import (
	_ "embed"
	"strings"
)

// OrdersDBSetup is ordersdb-setup.sql: the orders schema and the DMS
// replication user. It expects the session variable @dms_password.
//
//go:embed ordersdb-setup.sql
var OrdersDBSetup string

// CarriesPassword reports whether a statement of OrdersDBSetup handles
// @dms_password or a statement built from it, so that an error from it may
// echo the password (a syntax error quotes the text near the error) and
// must not be passed on with the server's message.
func CarriesPassword(statement string) bool {
	for _, marker := range []string{"@dms_password", "@dms_user_sql", "dms_user_stmt"} {
		if strings.Contains(statement, marker) {
			return true
		}
	}
	return false
}

// OrdersDataSetup is orders-data-setup.sql: the sample orders.
//
//go:embed orders-data-setup.sql
var OrdersDataSetup string
