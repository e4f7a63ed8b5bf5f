// Package mariadb runs a private, throwaway MariaDB server from the machine's
// packages: its own data directory, a free loopback port, a private socket,
// and the binlog configured the way DMS needs it on RDS (ROW, FULL). Local
// mode and the end-to-end tests use it as the source database.
//
// The server is locked down for a shared machine: it listens on 127.0.0.1
// only, root has a random password (no account is open without one),
// SELECT ... INTO OUTFILE and LOAD DATA INFILE are confined to a private
// directory, and when this process runs as root the server runs as the
// unprivileged "mysql" account the distribution package creates.
package mariadb

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
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
	// ExtraArgs are appended to mariadbd's command line. An argument
	// --name=/absolute/path that names an existing file (a TLS key or
	// certificate) is given to the server as a copy in its private
	// directory, owned by the account it runs as, which may not be able to
	// read the original.
	ExtraArgs []string
}

// Server is a running private MariaDB.
type Server struct {
	dir      string
	password string
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

// ServerAccount is the unprivileged account the server runs as when this
// process runs as root; Debian's mariadb-server package creates it.
const ServerAccount = "mysql"

// runAs says which account the server runs as. As root, both binaries need
// --user (mariadbd refuses to run as root without it): the unprivileged
// ServerAccount when it exists, so that a compromised server cannot write
// root-owned files; root only on a machine without that account. As any
// other user, --user must be absent (only root may switch users) and the
// server runs as that user.
type runAs struct {
	arg      []string
	uid, gid int // -1 when the files need no change of owner
}

func serverAccount() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup(ServerAccount)
	if err != nil {
		// No unprivileged account to switch to: root is all there is.
		return runAs{arg: []string{"--user=root"}, uid: -1, gid: -1}, nil
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return runAs{}, fmt.Errorf("mariadb: account %s: uid %q: %w", ServerAccount, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return runAs{}, fmt.Errorf("mariadb: account %s: gid %q: %w", ServerAccount, u.Gid, err)
	}
	return runAs{arg: []string{"--user=" + ServerAccount}, uid: uid, gid: gid}, nil
}

// privateDir creates a 0700 directory the server account owns.
func (r runAs) privateDir(path string) error {
	if err := os.Mkdir(path, 0o700); err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	return r.own(path)
}

func (r runAs) own(path string) error {
	if r.uid < 0 {
		return nil
	}
	if err := os.Lchown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	return nil
}

// serverFiles rewrites every --name=/path argument that names an existing
// file to a 0600 copy in dir/conf that the server account owns.
func (r runAs) serverFiles(dir string, args []string) ([]string, error) {
	if r.uid < 0 {
		return args, nil
	}
	out := slices.Clone(args)
	conf := filepath.Join(dir, "conf")
	for i, arg := range args {
		name, path, ok := strings.Cut(arg, "=")
		if !ok || !strings.HasPrefix(name, "--") || !filepath.IsAbs(path) {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue // not a file (or not one to read): passed on as given
		}
		if _, err := os.Stat(conf); os.IsNotExist(err) {
			if err := r.privateDir(conf); err != nil {
				return nil, err
			}
		}
		copyPath := filepath.Join(conf, strconv.Itoa(i)+"-"+filepath.Base(path))
		if err := os.WriteFile(copyPath, b, 0o600); err != nil {
			return nil, fmt.Errorf("mariadb: %w", err)
		}
		if err := r.own(copyPath); err != nil {
			return nil, err
		}
		out[i] = name + "=" + copyPath
	}
	return out, nil
}

// newPassword is a random root password of hex digits: nothing in it needs
// quoting in SQL, a DSN or a shell.
func newPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// initSQL gives every root account mariadb-install-db created the password
// before the server accepts its first connection (the server runs
// --init-file at startup: https://mariadb.com/docs/reference/mdb/cli/mariadbd/init-file/).
// install-db also creates root@<hostname>: it could only match a
// connection from a non-loopback address, which the server never accepts,
// and is dropped all the same. sql_log_bin=0 keeps these statements out of
// the binlog the CDC reader replays.
func initSQL(password string) string {
	return "SET sql_log_bin=0;\n" +
		"DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');\n" +
		"FLUSH PRIVILEGES;\n" +
		"ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '" + password + "';\n" +
		"ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '" + password + "';\n" +
		"ALTER USER IF EXISTS 'root'@'::1' IDENTIFIED BY '" + password + "';\n"
}

func start(ctx context.Context, cfg Config, bins paths, dir string) (*Server, error) {
	as, err := serverAccount()
	if err != nil {
		return nil, err
	}
	// The server must reach its own directory; MkdirTemp made it 0700.
	if err := as.own(dir); err != nil {
		return nil, err
	}
	datadir := filepath.Join(dir, "data")
	// A private tmpdir: servers bootstrapping side by side in the shared
	// /tmp collide on their temporary table names.
	tmpdir := filepath.Join(dir, "tmp")
	// The only directory SELECT ... INTO OUTFILE and LOAD DATA INFILE may
	// use; empty secure_file_priv would allow any path the server can write.
	// https://mariadb.com/kb/en/server-system-variables/#secure_file_priv
	filesdir := filepath.Join(dir, "files")
	for _, d := range []string{tmpdir, filesdir} {
		if err := as.privateDir(d); err != nil {
			return nil, err
		}
	}
	installArgs := append([]string{
		"--no-defaults",
		"--datadir=" + datadir,
		"--tmpdir=" + tmpdir,
		// Password authentication for root, so that TCP clients can log in
		// with the password initSQL sets.
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		"--skip-name-resolve",
	}, as.arg...)
	install := exec.CommandContext(ctx, bins.install, installArgs...)
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb: %s: %w: %s", bins.install, err, lastLines(out, 10))
	}
	password := newPassword()
	initFile := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(initFile, []byte(initSQL(password)), 0o600); err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	// The server reads it once at startup; it holds the password.
	defer os.Remove(initFile)
	if err := as.own(initFile); err != nil {
		return nil, err
	}
	extra, err := as.serverFiles(dir, cfg.ExtraArgs)
	if err != nil {
		return nil, err
	}
	cfg.ExtraArgs = extra
	var lastErr error
	for range startAttempts {
		port, err := childproc.FreePort()
		if err != nil {
			return nil, fmt.Errorf("mariadb: pick a free port: %w", err)
		}
		s, err := launch(ctx, cfg, bins.server, as, dir, port, password)
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

func launch(ctx context.Context, cfg Config, server string, as runAs, dir string, port int, password string) (*Server, error) {
	s := &Server{
		dir:      dir,
		password: password,
		socket:   filepath.Join(dir, "mysqld.sock"),
		port:     port,
		serverID: cfg.ServerID,
		log:      childproc.NewTailBuffer(8 << 10),
	}
	datadir := filepath.Join(dir, "data")
	args := []string{
		"--no-defaults",
		"--datadir=" + datadir,
		"--tmpdir=" + filepath.Join(dir, "tmp"),
		"--secure-file-priv=" + filepath.Join(dir, "files"),
		"--init-file=" + filepath.Join(dir, "init.sql"),
		"--socket=" + s.socket,
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--port=" + strconv.Itoa(port),
		// https://mariadb.com/kb/en/server-system-variables/#bind_address
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
	args = append(args, as.arg...)
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

// User is the administrative account.
func (s *Server) User() string { return "root" }

// Password is User's password, random for each server.
func (s *Server) Password() string { return s.password }

// ServerID is the server's replication id.
func (s *Server) ServerID() uint32 { return s.serverID }

// DataDir is the directory that holds the server's files; Stop deletes it.
func (s *Server) DataDir() string { return s.dir }

// DSN returns a go-sql-driver/mysql data source name for database db (may
// be empty) over TCP as root with its password, in UTC, with DATETIME as text (so no
// precision is lost to time.Time formatting) and parameters interpolated
// client-side (one round trip per statement).
func (s *Server) DSN(db string) string {
	c := mysql.NewConfig()
	c.User = s.User()
	c.Passwd = s.Password()
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
