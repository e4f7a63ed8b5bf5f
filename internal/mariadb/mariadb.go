// Package mariadb runs a private, throwaway MariaDB server from the machine's
// packages: its own data directory, a free loopback port, a private socket,
// and the binlog configured the way DMS needs it on RDS (ROW, FULL). Local
// mode and the end-to-end tests use it as the source database.
package mariadb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/childproc"
)

// ErrNotInstalled means the MariaDB server binaries are missing; the error
// wrapping it names the command that installs them.
var ErrNotInstalled = errors.New("MariaDB server not installed")

// InstallCommand installs the server binaries on Debian and Ubuntu.
const InstallCommand = "`sudo apt-get install mariadb-server`"

// The binaries the server needs, as Debian and Ubuntu's mariadb-server
// install them: mariadbd in /usr/sbin, which a normal user's PATH lacks, so
// the lookup also searches the system directories. ETL_MARIADBD and
// ETL_MARIADB_INSTALL_DB name them when they are elsewhere.
var (
	serverProgram  = childproc.Program{Name: "mariadbd", Env: "ETL_MARIADBD", Install: InstallCommand}
	installProgram = childproc.Program{Name: "mariadb-install-db", Env: "ETL_MARIADB_INSTALL_DB", Install: InstallCommand}
)

// Config tunes the server. The zero value is ready to use.
type Config struct {
	// ServerID is the server's replication id; 0 means 1. A binlog reader
	// must use a different one.
	ServerID uint32
	// TempDir is where the data directory is created; empty uses os.TempDir.
	TempDir string
	// Output receives the server's log; nil keeps only its tail for errors.
	Output io.Writer
	// ExtraArgs are appended to mariadbd's command line.
	ExtraArgs []string
}

// Server is a running private MariaDB.
type Server struct {
	dir      string
	socket   string
	port     int
	serverID uint32
	child    *childproc.Child
	cmdPath  string
	log      *childproc.Buffer // the tail, which explains a failed start
	stopOnce sync.Once
	stopErr  error
}

// startTimeout bounds how long a fresh server may take to accept connections.
const startTimeout = 60 * time.Second

// stopGrace is how long Stop waits for a clean shutdown before it kills.
const stopGrace = 20 * time.Second

// startAttempts bounds retries when a port picked as free is taken before
// the server binds it.
const startAttempts = 3

// Installed reports whether the MariaDB server binaries can be found, with
// an error wrapping ErrNotInstalled that names the missing one, where it
// was looked for and the command that installs it.
func Installed() error {
	_, err := binaries()
	return err
}

type paths struct{ server, install string }

func binaries() (paths, error) {
	var b paths
	var err error
	if b.server, err = serverProgram.Find(); err != nil {
		return b, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	if b.install, err = installProgram.Find(); err != nil {
		return b, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	return b, nil
}

// Start creates a data directory, initialises it with mariadb-install-db and
// runs mariadbd on a free loopback port until Stop. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	bins, err := binaries()
	if err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = 1
	}
	// Unix socket paths are limited to 108 bytes, so the directory name is
	// kept short.
	dir, err := os.MkdirTemp(cfg.TempDir, "etl-mariadb-")
	if err != nil {
		return nil, fmt.Errorf("mariadb: create data directory: %w", err)
	}
	s, err := start(ctx, cfg, bins, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// asRoot is the --user option both binaries need when this process runs as
// root (mariadbd refuses root without it); as any other user it must be
// absent, since only root may switch users.
func asRoot() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

func start(ctx context.Context, cfg Config, bins paths, dir string) (*Server, error) {
	datadir := filepath.Join(dir, "data")
	// A private tmpdir: servers bootstrapping side by side in the shared
	// /tmp collide on their temporary table names.
	tmpdir := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmpdir, 0o700); err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	installArgs := append([]string{
		"--no-defaults",
		"--datadir=" + datadir,
		"--tmpdir=" + tmpdir,
		// A root account without password over TCP: the server listens on
		// loopback only and lives as long as this process.
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--skip-name-resolve",
	}, asRoot()...)
	install := exec.CommandContext(ctx, bins.install, installArgs...)
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb: %s: %w: %s", bins.install, err, lastLines(out, 10))
	}
	var lastErr error
	for range startAttempts {
		port, err := childproc.FreePort()
		if err != nil {
			return nil, fmt.Errorf("mariadb: pick a free port: %w", err)
		}
		s, err := launch(ctx, cfg, bins.server, dir, datadir, tmpdir, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func launch(ctx context.Context, cfg Config, server, dir, datadir, tmpdir string, port int) (*Server, error) {
	s := &Server{
		dir:      dir,
		socket:   filepath.Join(dir, "mysqld.sock"),
		port:     port,
		serverID: cfg.ServerID,
		log:      childproc.NewTailBuffer(8 << 10),
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + datadir,
		"--tmpdir=" + tmpdir,
		"--socket=" + s.socket,
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--skip-name-resolve",
		"--log-error=", // empty: the log goes to stderr, which we keep
		// The binlog as the RDS parameter group configures it for DMS.
		"--server-id=" + strconv.FormatUint(uint64(cfg.ServerID), 10),
		"--log-bin=" + filepath.Join(datadir, "mysql-bin"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--binlog-checksum=NONE",
		// Column names in table-map events, so the binlog reader need not
		// race DDL through information_schema.
		"--binlog-row-metadata=FULL",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_unicode_ci",
		"--default-time-zone=+00:00",
		"--max-connections=500",
		"--innodb-buffer-pool-size=256M",
		// A throwaway server: durability against power loss buys nothing and
		// an fsync per commit would dominate the measured latency.
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
	}
	args = append(args, asRoot()...)
	args = append(args, cfg.ExtraArgs...)
	cmd := exec.Command(server, args...)
	// If this process dies without Stop, the kernel asks the server to
	// shut down cleanly.
	cmd.SysProcAttr = childproc.SysProcAttr(childproc.Terminate)
	var out io.Writer = s.log
	if cfg.Output != nil {
		out = io.MultiWriter(s.log, cfg.Output)
	}
	cmd.Stdout = out
	cmd.Stderr = out

	child, err := childproc.Start(cmd, nil)
	if err != nil {
		return nil, fmt.Errorf("mariadb: start %s: %w", server, err)
	}
	s.child = child
	s.cmdPath = server
	if err := s.waitReady(ctx); err != nil {
		s.child.Kill()
		return nil, err
	}
	return s, nil
}

// waitReady polls the server until it answers a query over TCP, so that
// the root account a client will use is proven, not just the socket.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	defer db.Close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pingCtx, pingCancel := context.WithTimeout(ctx, time.Second)
		err := db.PingContext(pingCtx)
		pingCancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.child.Done():
			return fmt.Errorf("mariadb: %s exited during start (%v): %s", filepath.Base(s.cmdPath), s.child.Err(), lastLines([]byte(s.log.String()), 15))
		case <-ctx.Done():
			return fmt.Errorf("mariadb: server on port %d not ready: %w (last error: %v): %s", s.port, ctx.Err(), err, lastLines([]byte(s.log.String()), 15))
		case <-tick.C:
		}
	}
}

// Host is the address the server listens on.
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.port)) }

// Socket is the path of the server's Unix socket.
func (s *Server) Socket() string { return s.socket }

// User is the administrative account; it has no password.
func (s *Server) User() string { return "root" }

// ServerID is the server's replication id.
func (s *Server) ServerID() uint32 { return s.serverID }

// DataDir is the directory that holds the server's files; Stop deletes it.
func (s *Server) DataDir() string { return s.dir }

// DSN returns a go-sql-driver/mysql data source name for database db (may
// be empty) over TCP as root, in UTC, with DATETIME as text (so no
// precision is lost to time.Time formatting) and parameters interpolated
// client-side (one round trip per statement).
func (s *Server) DSN(db string) string {
	c := mysql.NewConfig()
	c.User = s.User()
	c.Net = "tcp"
	c.Addr = s.Addr()
	c.DBName = db
	c.Loc = time.UTC
	c.Params = map[string]string{"time_zone": "'+00:00'"}
	c.InterpolateParams = true
	return c.FormatDSN()
}

// Stop shuts the server down cleanly (or kills it after a grace period) and
// deletes its data directory. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.child.Stop(stopGrace)
		if err := os.RemoveAll(s.dir); err != nil {
			s.stopErr = fmt.Errorf("mariadb: remove %s: %w", s.dir, err)
		}
	})
	return s.stopErr
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(bytes.ToValidUTF8(b, nil))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
