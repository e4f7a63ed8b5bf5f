package local_test

import (
	"bufio"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/local"
)

// TestLocalModeIsReachableOnlyFromThisMachine starts the local pipeline
// and checks, from the kernel's socket tables, that every TCP socket
// listening in any process it started is bound to a loopback address, and
// that the database refuses root without its password.
func TestLocalModeIsReachableOnlyFromThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("needs Linux /proc")
	}
	p := startPipeline(t, local.Config{})
	e := p.Endpoints()

	listeners := descendantListeners(t)
	ports := map[int]bool{}
	for _, l := range listeners {
		ports[l.port] = true
		if !l.ip.IsLoopback() {
			t.Errorf("pid %d (%s) listens on %s", l.pid, l.command, net.JoinHostPort(l.ip.String(), strconv.Itoa(l.port)))
		}
	}
	// The walk must have found the services, or it proves nothing.
	for name, port := range map[string]int{"MariaDB": e.MariaDBPort, "kinesalite": urlPort(t, e.Kinesis), "dynalite": urlPort(t, e.DynamoDB)} {
		if !ports[port] {
			t.Errorf("no listener found for %s on port %d among %v", name, port, listeners)
		}
	}

	// From another address of this machine, if it has one, nothing answers.
	for _, ip := range otherAddresses(t) {
		for port := range ports {
			addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s accepts connections", addr)
			}
		}
	}

	for _, password := range []string{"", "wrong"} {
		c := mysql.NewConfig()
		c.User, c.Passwd, c.Net = e.MariaDBUser, password, "tcp"
		c.Addr = net.JoinHostPort(e.MariaDBHost, strconv.Itoa(e.MariaDBPort))
		db, err := sql.Open("mysql", c.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		err = db.Ping()
		db.Close()
		var myErr *mysql.MySQLError
		if !errors.As(err, &myErr) || myErr.Number != 1045 {
			t.Errorf("%s with password %q over TCP: got %v, want access denied (1045)", e.MariaDBUser, password, err)
		}
	}
	if e.MariaDBPassword == "" {
		t.Error("the local MariaDB has no root password")
	}
}

type listener struct {
	pid     int
	command string
	ip      net.IP
	port    int
}

func (l listener) String() string {
	return fmt.Sprintf("%s[%d]@%s", l.command, l.pid, net.JoinHostPort(l.ip.String(), strconv.Itoa(l.port)))
}

// descendantListeners lists the listening TCP sockets of every process
// below this one: the socket inodes in /proc/PID/fd matched against the
// LISTEN rows of /proc/net/tcp and tcp6.
func descendantListeners(t *testing.T) []listener {
	t.Helper()
	parent := map[int]int{}
	command := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue // gone already
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		parent[pid], command[pid] = ppid, s[open+1:end]
	}
	self := os.Getpid()
	isDescendant := func(pid int) bool {
		for seen := 0; pid > 1 && seen < 64; seen++ {
			pid = parent[pid]
			if pid == self {
				return true
			}
		}
		return false
	}
	inodes := map[string]int{} // socket inode → pid
	for pid := range parent {
		if !isDescendant(pid) {
			continue
		}
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("read the descriptors of %s[%d]: %v", command[pid], pid, err)
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = pid
			}
		}
	}
	if len(inodes) == 0 {
		t.Fatal("no sockets in any child process: the walk of /proc found nothing")
	}
	var out []listener
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A is TCP_LISTEN
				continue
			}
			pid, ok := inodes[fields[9]]
			if !ok {
				continue
			}
			ip, port := parseProcAddr(t, fields[1])
			out = append(out, listener{pid: pid, command: command[pid], ip: ip, port: port})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// parseProcAddr decodes /proc/net/tcp's "ADDR:PORT": the address as
// 32-bit words in host (little-endian) order, the port in big-endian hex.
func parseProcAddr(t *testing.T, s string) (net.IP, int) {
	t.Helper()
	addr, portHex, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(addr)
	port, perr := strconv.ParseUint(portHex, 16, 16)
	if !ok || err != nil || perr != nil || len(raw)%4 != 0 {
		t.Fatalf("cannot parse %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	return net.IP(raw), int(port)
}

func urlPort(t *testing.T, endpoint string) int {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("endpoint %s: %v", endpoint, err)
	}
	return port
}

// otherAddresses are this machine's non-loopback unicast addresses.
func otherAddresses(t *testing.T) []net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.IsGlobalUnicast() {
			ips = append(ips, n.IP)
		}
	}
	return ips
}
