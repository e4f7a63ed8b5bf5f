// Package sql holds the project's SQL scripts, embedded so that programs
// that apply them (the schema-setup Lambda, the etl tool) carry the exact
// text of the commit they were built from instead of reading files at run
// time. Import it under another name where database/sql is also used.
package sql

import _ "embed"

// OrdersDBSetup is ordersdb-setup.sql: the orders schema and the DMS
// replication user. It expects the session variable @dms_password.
//
//go:embed ordersdb-setup.sql
var OrdersDBSetup string

// OrdersDataSetup is orders-data-setup.sql: the sample orders.
//
//go:embed orders-data-setup.sql
var OrdersDataSetup string

// KDAOrdersSetup is kda-orders-setup.sql: the Kinesis Data Analytics SQL
// application code.
//
//go:embed kda-orders-setup.sql
var KDAOrdersSetup string
