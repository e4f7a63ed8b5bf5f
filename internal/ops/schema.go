package ops

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
	"github.com/unified-streaming-etl/etl/internal/sqlscript"
	etlsql "github.com/unified-streaming-etl/etl/sql"
)

// SetupSchema applies sql/ordersdb-setup.sql (the schema the deploy's
// custom resource applies, with @dms_password bound, never in SQL text) and
// then logs in as dms_user with that password and reads both tables, as
// DMS will, so that a password or grant problem shows here rather than in
// a failing DMS task. It returns how many statements ran.
func SetupSchema(ctx context.Context, t Target, db *sql.DB, dmsPassword string) (int, error) {
	if dmsPassword == "" {
		return 0, errors.New("the DMS user's password is empty")
	}
	n, err := schemasetup.Apply(ctx, db, dmsPassword)
	if err != nil {
		return n, err
	}
	repl, err := t.OpenAs(schemasetup.ReplicationUser, dmsPassword)
	if err != nil {
		return n, err
	}
	defer repl.Close()
	for _, table := range []string{"orders.`order`", "orders.order_item"} {
		// LIMIT 1 proves the SELECT grant without reading the table.
		var one int
		if err := repl.QueryRowContext(ctx, "SELECT 1 FROM "+table+" LIMIT 1").Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return n, fmt.Errorf("check %s: read %s as %s: %w", schemasetup.ReplicationUser, table, schemasetup.ReplicationUser, err)
		}
	}
	return n, nil
}

// passwordAlphabet avoids characters that need quoting in a DSN, a shell
// or a DMS endpoint setting.
const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// GeneratePassword returns a random 24-character password with upper- and
// lower-case letters and digits (what password-validation plugins ask for
// by default), about 140 bits of entropy.
func GeneratePassword() string {
	for {
		p := make([]byte, 0, 24)
		for range 24 {
			var b [1]byte
			// Rejection sampling keeps the choice uniform: 57 letters in 256.
			for {
				_, _ = rand.Read(b[:])
				if int(b[0]) < 256-256%len(passwordAlphabet) {
					break
				}
			}
			p = append(p, passwordAlphabet[int(b[0])%len(passwordAlphabet)])
		}
		s := string(p)
		if strings.ContainsAny(s, "ABCDEFGHJKLMNPQRSTUVWXYZ") && strings.ContainsAny(s, "abcdefghijkmnopqrstuvwxyz") && strings.ContainsAny(s, "23456789") {
			return s
		}
	}
}

// RunScript executes a SQL script statement by statement on one
// connection (session variables carry over, as in the mysql client),
// stopping at the first error, which names the script's line. progress, if
// set, is called after each statement with the count done and the total.
func RunScript(ctx context.Context, db *sql.DB, name, script string, progress func(done, total int)) (int, error) {
	stmts, err := sqlscript.Split(script)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	for i := range stmts {
		if _, err := sqlscript.Exec(ctx, conn, name, stmts[i:i+1]); err != nil {
			return i, err
		}
		if progress != nil {
			progress(i+1, len(stmts))
		}
	}
	return len(stmts), nil
}

// Hint explains the server errors an operator meets when the scripts run
// out of order, or "" for other errors.
func Hint(err error) string {
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		return ""
	}
	switch myErr.Number {
	case 1146, 1049: // ER_NO_SUCH_TABLE, ER_BAD_DB_ERROR
		return "the orders schema is missing: run `etl db setup` first"
	case 1062: // ER_DUP_ENTRY
		return "those rows already exist: the sample data inserts fixed ids, so it applies once, to an empty schema"
	case 1142, 1044, 1227: // ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR
		return "the user lacks a privilege the script needs: connect as the database's admin user"
	}
	return ""
}

// ReplicationUserExists reports whether the script's replication user
// (dms_user@'%') exists. It reads mysql.user, which an administrative
// account may read (the RDS master user can).
func ReplicationUserExists(ctx context.Context, db *sql.DB) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = '%'", schemasetup.ReplicationUser).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for %s in mysql.user: %w", schemasetup.ReplicationUser, err)
	}
	return n > 0, nil
}

// SetupSchemaKeepingPassword applies sql/ordersdb-setup.sql to a database
// where dms_user already exists without changing its password, which a
// running DMS task may be using: it leaves out the script's ALTER USER
// (the only statement that changes an existing user's password; CREATE
// USER IF NOT EXISTS leaves an existing user alone) and gives the script
// a throwaway @dms_password. Nothing can log in as dms_user to check it,
// since its password is not known here.
func SetupSchemaKeepingPassword(ctx context.Context, db *sql.DB) (int, error) {
	stmts, err := sqlscript.Split(etlsql.OrdersDBSetup)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", schemasetup.ScriptName, err)
	}
	kept := stmts[:0:0]
	for _, st := range stmts {
		if !strings.Contains(strings.ToUpper(st.SQL), "ALTER USER") {
			kept = append(kept, st)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	throwaway := GeneratePassword()
	if _, err := conn.ExecContext(ctx, "SET @dms_password = ?", throwaway); err != nil {
		return 0, sqlscript.Withhold("set @dms_password", err, throwaway)
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "SET @dms_password = NULL") }()
	return sqlscript.ExecWith(ctx, conn, schemasetup.ScriptName, kept, schemasetup.PasswordOptions(throwaway))
}
