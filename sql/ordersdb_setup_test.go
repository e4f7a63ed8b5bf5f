package sql_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/sqlscript"
	"github.com/unified-streaming-etl/etl/internal/testenv"
	etlsql "github.com/unified-streaming-etl/etl/sql"
)

// TestOrdersDBSetupWithoutPassword runs ordersdb-setup.sql without
// @dms_password every way the README and the deploy run it, and checks
// that it fails and changes nothing: no schema, no replication user.
func TestOrdersDBSetupWithoutPassword(t *testing.T) {
	server, db := testenv.StartMariaDB(t, mariadb.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	script, err := filepath.Abs("ordersdb-setup.sql")
	if err != nil {
		t.Fatal(err)
	}
	nothingChanged := func(t *testing.T) {
		t.Helper()
		var schemas, users int
		if err := db.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'orders'), (SELECT COUNT(*) FROM mysql.user WHERE User = 'dms_user')").Scan(&schemas, &users); err != nil {
			t.Fatal(err)
		}
		if schemas != 0 || users != 0 {
			t.Errorf("after the failed run: %d orders schemas and %d dms_user accounts, want none", schemas, users)
		}
	}
	client := func(t *testing.T) string {
		t.Helper()
		for _, name := range []string{"mariadb", "mysql"} {
			if path, err := exec.LookPath(name); err == nil {
				return path
			}
		}
		t.Fatal("no mariadb or mysql client (apt-get install mariadb-client)")
		return ""
	}
	clientArgs := []string{"-h", server.Host(), "-P", strconv.Itoa(server.Port()), "-u", server.User()}
	// The client reads the password from MYSQL_PWD, which keeps it off the
	// command line.
	command := func(t *testing.T, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, client(t), args...)
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+server.Password())
		return cmd
	}

	t.Run("the client's SOURCE, which goes on after errors, creates nothing", func(t *testing.T) {
		out, _ := command(t, append(clientArgs, "-e", "SOURCE "+script)...).CombinedOutput()
		if !strings.Contains(string(out), "Set @dms_password before running ordersdb-setup.sql") {
			t.Errorf("output does not say why it stopped:\n%s", out)
		}
		nothingChanged(t)
	})

	t.Run("a < redirect fails and creates nothing", func(t *testing.T) {
		cmd := command(t, clientArgs...)
		cmd.Stdin = strings.NewReader(etlsql.OrdersDBSetup)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("the client exited 0:\n%s", out)
		}
		if !strings.Contains(string(out), "Set @dms_password before running ordersdb-setup.sql") {
			t.Errorf("output does not say why it stopped:\n%s", out)
		}
		nothingChanged(t)
	})

	t.Run("a program running it statement by statement (the schema-setup resource) fails and creates nothing", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = sqlscript.Run(ctx, conn, "ordersdb-setup.sql", etlsql.OrdersDBSetup)
		if err == nil || !strings.Contains(err.Error(), "Set @dms_password") {
			t.Errorf("Run error = %v, want the @dms_password message", err)
		}
		nothingChanged(t)
	})

	t.Run("an empty password counts as none", func(t *testing.T) {
		out, _ := command(t, append(clientArgs, "-e", "SET @dms_password = '';\nSOURCE "+script)...).CombinedOutput()
		if !strings.Contains(string(out), "Set @dms_password before running ordersdb-setup.sql") {
			t.Errorf("output does not say why it stopped:\n%s", out)
		}
		nothingChanged(t)
	})

	t.Run("setting the password in the same session then running it again works", func(t *testing.T) {
		out, err := command(t, append(clientArgs, "-e", "SOURCE "+script+"\nSET @dms_password = 'x-Secret-1';\nSOURCE "+script)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		var users int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM mysql.user WHERE User = 'dms_user'").Scan(&users); err != nil || users != 1 {
			t.Errorf("dms_user accounts = %d (%v), want 1", users, err)
		}
	})
}

// TestOrdersDBSetupRefusesUnsafePasswordsUnderNoBackslashEscapes runs the
// script where the server's sql_mode has NO_BACKSLASH_ESCAPES (in which
// QUOTE() no longer protects a string literal) with passwords that would
// inject SQL or break out of their literal, and shows that it changes
// nothing and that the error carries no password. A usable password still
// works in that mode.
func TestOrdersDBSetupRefusesUnsafePasswordsUnderNoBackslashEscapes(t *testing.T) {
	server, db := testenv.StartMariaDB(t, mariadb.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Every new session starts in the mode, as with a parameter group
	// that sets it.
	if _, err := db.ExecContext(ctx, "SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')"); err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(0) // new sessions from here on

	nothingChanged := func(t *testing.T) {
		t.Helper()
		var schemas, users int
		if err := db.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'orders'), (SELECT COUNT(*) FROM mysql.user WHERE User IN ('dms_user', 'evil'))").Scan(&schemas, &users); err != nil {
			t.Fatal(err)
		}
		if schemas != 0 || users != 0 {
			t.Errorf("%d orders schemas and %d dms_user or injected accounts, want none", schemas, users)
		}
	}

	for name, password := range map[string]string{
		// With QUOTE() under NO_BACKSLASH_ESCAPES the literal ends after
		// "a\" and a second account follows in the same CREATE USER.
		"a quote that injects a second account": `a', "evil"@"%" IDENTIFIED BY "pw" #`,
		"a double quote":                        `pass"word`,
		"a backslash":                           `pass\word`,
		"a NUL character":                       "pass\x00word",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := schemasetup.Apply(ctx, db, password)
			switch {
			case err == nil:
				t.Error("the script accepted the password")
			case !strings.Contains(err.Error(), "@dms_password must not contain quotes, backslashes or NUL characters"):
				t.Errorf("error does not say why: %v", err)
			case strings.Contains(err.Error(), password):
				t.Errorf("error carries the password: %v", err)
			}
			nothingChanged(t)
		})
	}

	t.Run("the client's SOURCE, which goes on after errors, creates nothing", func(t *testing.T) {
		script, err := filepath.Abs("ordersdb-setup.sql")
		if err != nil {
			t.Fatal(err)
		}
		var client string
		for _, name := range []string{"mariadb", "mysql"} {
			if path, err := exec.LookPath(name); err == nil {
				client = path
				break
			}
		}
		if client == "" {
			t.Fatal("no mariadb or mysql client (apt-get install mariadb-client)")
		}
		// In this mode both backslashes are part of the password.
		cmd := exec.CommandContext(ctx, client, "-h", server.Host(), "-P", strconv.Itoa(server.Port()), "-u", server.User(),
			"-e", `SET @dms_password = 'pass\\word';`+"\nSOURCE "+script)
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+server.Password())
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "@dms_password must not contain quotes, backslashes or NUL characters") {
			t.Errorf("output does not say why it stopped:\n%s", out)
		}
		nothingChanged(t)
	})

	t.Run("a usable password works in this mode, which the session gets back", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SET @dms_password = 'Usable-Pass_1;{}'"); err != nil {
			t.Fatal(err)
		}
		if _, err := sqlscript.Run(ctx, conn, "ordersdb-setup.sql", etlsql.OrdersDBSetup); err != nil {
			t.Fatal(err)
		}
		var mode string
		if err := conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(mode, "NO_BACKSLASH_ESCAPES") {
			t.Errorf("session sql_mode after the script = %q, want the caller's mode back", mode)
		}
		c, err := mysql.ParseDSN(server.DSN("orders"))
		if err != nil {
			t.Fatal(err)
		}
		c.User, c.Passwd = "dms_user", "Usable-Pass_1;{}"
		dms, err := sql.Open("mysql", c.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer dms.Close()
		if err := dms.PingContext(ctx); err != nil {
			t.Errorf("dms_user cannot log in with its password: %v", err)
		}
	})
}
