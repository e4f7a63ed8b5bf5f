package mariadb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/mariadb"
)

func startServer(t *testing.T) *mariadb.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("mariadb: starts a real server; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := mariadb.Start(ctx, mariadb.Config{ServerID: 7})
	if errors.Is(err, mariadb.ErrNotInstalled) {
		t.Fatalf("%v", err)
	}
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func TestServer(t *testing.T) {
	s := startServer(t)
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	t.Run("binlog is configured the way DMS requires it on RDS", func(t *testing.T) {
		want := map[string]string{
			"log_bin":              "ON",
			"binlog_format":        "ROW",
			"binlog_row_image":     "FULL",
			"binlog_checksum":      "NONE",
			"binlog_row_metadata":  "FULL",
			"server_id":            "7",
			"character_set_server": "utf8mb4",
		}
		for name, value := range want {
			var got string
			if err := db.QueryRow("SELECT @@GLOBAL." + name).Scan(&got); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got != value && !(value == "ON" && got == "1") {
				t.Errorf("@@%s = %q, want %q", name, got, value)
			}
		}
	})

	t.Run("root can write and read over TCP with its password", func(t *testing.T) {
		for _, q := range []string{
			"CREATE DATABASE probe",
			"CREATE TABLE probe.t (id INT PRIMARY KEY, amount DECIMAL(10,2), at DATETIME(3))",
			"INSERT INTO probe.t VALUES (1, 12.50, '2020-05-01 17:11:49.973')",
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		var amount, at string
		if err := db.QueryRow("SELECT amount, at FROM probe.t WHERE id = 1").Scan(&amount, &at); err != nil {
			t.Fatal(err)
		}
		if amount != "12.50" || at != "2020-05-01 17:11:49.973" {
			t.Errorf("read back (%s, %s), want exact text (12.50, 2020-05-01 17:11:49.973)", amount, at)
		}
	})

	t.Run("the server listens on loopback with a private socket", func(t *testing.T) {
		if s.Host() != "127.0.0.1" || s.Port() == 0 {
			t.Errorf("address %s, want 127.0.0.1 and a port", s.Addr())
		}
		if fi, err := os.Stat(s.Socket()); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("socket %s missing: %v", s.Socket(), err)
		}
	})

	t.Run("root without a password or with a wrong one is refused over TCP", func(t *testing.T) {
		if s.Password() == "" {
			t.Fatal("the server has no root password")
		}
		for _, password := range []string{"", "wrong"} {
			c := mysql.NewConfig()
			c.User, c.Passwd, c.Net, c.Addr = s.User(), password, "tcp", s.Addr()
			other, err := sql.Open("mysql", c.FormatDSN())
			if err != nil {
				t.Fatal(err)
			}
			err = other.Ping()
			other.Close()
			var myErr *mysql.MySQLError
			if !errors.As(err, &myErr) || myErr.Number != 1045 {
				t.Errorf("root with password %q: got %v, want access denied (1045)", password, err)
			}
		}
	})

	t.Run("files the server reads and writes are confined to a private directory", func(t *testing.T) {
		var dir string
		if err := db.QueryRow("SELECT @@GLOBAL.secure_file_priv").Scan(&dir); err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(s.DataDir(), "files") + "/"; dir != want && dir+"/" != want {
			t.Errorf("secure_file_priv = %q, want %q", dir, want)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
		}
		out := filepath.Join(t.TempDir(), "outfile")
		if _, err := db.Exec("SELECT 1 INTO OUTFILE '" + out + "'"); err == nil {
			t.Errorf("SELECT ... INTO OUTFILE wrote %s, outside secure_file_priv", out)
		}
	})

	t.Run("as root the server runs as the unprivileged account", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root switches the server to another account")
		}
		if _, err := user.Lookup(mariadb.ServerAccount); err != nil {
			t.Skipf("no %s account on this machine", mariadb.ServerAccount)
		}
		fi, err := os.Stat(filepath.Join(s.DataDir(), "data", "ibdata1"))
		if err != nil {
			t.Fatal(err)
		}
		owner, err := user.LookupId(strconv.FormatUint(uint64(fi.Sys().(*syscall.Stat_t).Uid), 10))
		if err != nil {
			t.Fatal(err)
		}
		if owner.Username != mariadb.ServerAccount {
			t.Errorf("the server's files belong to %s, want %s", owner.Username, mariadb.ServerAccount)
		}
	})

	t.Run("stop shuts the server down and deletes its files", func(t *testing.T) {
		dir := s.DataDir()
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("data directory %s still exists after Stop (err=%v)", dir, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err == nil {
			t.Error("server still answers after Stop")
		}
		if err := s.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

func TestTwoServersRunSideBySide(t *testing.T) {
	a, b := startServer(t), startServer(t)
	if a.Port() == b.Port() || a.DataDir() == b.DataDir() {
		t.Fatalf("servers share port %d or directory %s", a.Port(), a.DataDir())
	}
}

func TestServersStartConcurrently(t *testing.T) {
	if testing.Short() {
		t.Skip("mariadb: starts real servers; skipped under -short")
	}
	// Parallel test binaries start servers at the same moment; their
	// bootstraps must not share temporary files.
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			s, err := mariadb.Start(ctx, mariadb.Config{})
			if err == nil {
				err = s.Stop()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestServerOutsidePATH(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
		t.Skip("mariadbd is not in /usr/sbin here")
	}
	// A normal Debian user's PATH: /usr/sbin, where mariadbd lives, is not on it.
	t.Setenv("PATH", "/usr/local/bin:/usr/bin:/bin")

	t.Run("the server binaries in /usr/sbin are found and the server starts", func(t *testing.T) {
		if err := mariadb.Installed(); err != nil {
			t.Fatalf("Installed() = %v", err)
		}
		startServer(t)
	})

	t.Run("ETL_MARIADBD naming a missing file is reported with the variable and the install command", func(t *testing.T) {
		t.Setenv("ETL_MARIADBD", filepath.Join(t.TempDir(), "mariadbd"))
		err := mariadb.Installed()
		if !errors.Is(err, mariadb.ErrNotInstalled) {
			t.Fatalf("Installed() = %v, want ErrNotInstalled", err)
		}
		if !strings.Contains(err.Error(), "$ETL_MARIADBD") {
			t.Errorf("error %q does not name $ETL_MARIADBD", err)
		}
	})
}
