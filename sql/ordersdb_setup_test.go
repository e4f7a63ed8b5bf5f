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

	_ "github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/sqlscript"
	etlsql "github.com/unified-streaming-etl/etl/sql"
)

// TestOrdersDBSetupWithoutPassword runs ordersdb-setup.sql without
// @dms_password every way the README and the deploy run it, and checks
// that it fails and changes nothing: no schema, no replication user.
func TestOrdersDBSetupWithoutPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MariaDB server; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server, err := mariadb.Start(ctx, mariadb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Stop() })
	db, err := sql.Open("mysql", server.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

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
