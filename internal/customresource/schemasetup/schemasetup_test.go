package schemasetup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
	etlsql "github.com/unified-streaming-etl/etl/sql"
)

const (
	adminArn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:DatabaseSecret-AbCdEf"
	replArn  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ReplicationSecret-GhIjKl"
)

// fakeSecrets serves secret strings by ARN, as Secrets Manager would.
type fakeSecrets struct {
	mu      sync.Mutex
	values  map[string]string
	calls   int
	failErr error
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failErr != nil {
		return nil, f.failErr
	}
	v, ok := f.values[*in.SecretId]
	if !ok {
		return nil, &smtypes.ResourceNotFoundException{Message: strPtr("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{ARN: in.SecretId, SecretString: &v}, nil
}

func (f *fakeSecrets) set(arn string, v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.values == nil {
		f.values = map[string]string{}
	}
	f.values[arn] = string(b)
}

func strPtr(s string) *string { return &s }

// rdsSecret is the JSON RDS generates for an attached database secret.
func rdsSecret(user, password, host string, port int) map[string]any {
	return map[string]any{
		"username": user, "password": password, "engine": "mysql",
		"host": host, "port": port, "dbInstanceIdentifier": "unifiedstreametldatastack-database",
	}
}

func request(typ cfn.RequestType, props map[string]any) customresource.Request {
	req := customresource.Request{Event: cfn.Event{
		RequestType:        typ,
		RequestID:          "5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a",
		StackID:            "arn:aws:cloudformation:eu-west-1:123456789012:stack/UnifiedStreamETLDataStack/6c1c2a10-5f3e-11f1-9c0d-0a1b2c3d4e5f",
		LogicalResourceID:  "OrdersSchema",
		ResourceType:       "Custom::OrdersSchema",
		ResourceProperties: props,
	}}
	if typ != customresource.Create {
		req.PhysicalResourceID = schemasetup.PhysicalResourceID
		req.OldResourceProperties = props
	}
	return req
}

func ctxWithLogger() context.Context {
	return customresource.WithLogger(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestPropertiesAreCheckedBeforeConnecting(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{
			"ServiceToken":         "arn:aws:lambda:eu-west-1:123456789012:function:provider",
			"DatabaseSecretArn":    adminArn,
			"ReplicationSecretArn": replArn,
			// Nothing listens on port 1: reaching the network would fail
			// differently from the error each case expects.
			"Host": "127.0.0.1",
			"Port": "1",
		}
	}
	secrets := func() *fakeSecrets {
		f := &fakeSecrets{}
		f.set(adminArn, rdsSecret("admin", "admin-pw", "db.internal", 3306))
		f.set(replArn, map[string]any{"username": "dms_user", "password": "dms-pw"})
		return f
	}
	tests := []struct {
		name    string
		change  func(props map[string]any, s *fakeSecrets)
		wantErr string
	}{
		{"both secrets are required", func(p map[string]any, _ *fakeSecrets) {
			delete(p, "DatabaseSecretArn")
			delete(p, "ReplicationSecretArn")
		}, "missing required properties: DatabaseSecretArn, ReplicationSecretArn"},
		{"an unknown TLS mode is refused", func(p map[string]any, _ *fakeSecrets) { p["TlsMode"] = "preferred" }, `TlsMode: "preferred"`},
		{"a port must be a TCP port", func(p map[string]any, _ *fakeSecrets) { p["Port"] = "70000" }, "property Port"},
		{"a script digest from another build is refused", func(p map[string]any, _ *fakeSecrets) { p["ScriptSha256"] = strings.Repeat("0", 64) }, "another version of sql/ordersdb-setup.sql"},
		{"a CA bundle must hold certificates", func(p map[string]any, _ *fakeSecrets) { p["CaBundle"] = "not a certificate" }, "CaBundle: no PEM certificates"},
		{"the replication secret must be dms_user's", func(_ map[string]any, s *fakeSecrets) {
			s.set(replArn, map[string]any{"username": "admin", "password": "x"})
		}, `the secret is for user "admin"`},
		{"the replication secret needs a password", func(_ map[string]any, s *fakeSecrets) {
			s.set(replArn, map[string]any{"username": "dms_user"})
		}, "ReplicationSecretArn: the secret has no password"},
		{"a host comes from the secret or the Host property", func(p map[string]any, s *fakeSecrets) {
			delete(p, "Host")
			s.set(adminArn, map[string]any{"username": "admin", "password": "pw"})
		}, "the database host is unknown"},
		{"a secret that is not JSON is reported without its content", func(_ map[string]any, s *fakeSecrets) {
			s.values[adminArn] = "admin:hunter2"
		}, "DatabaseSecretArn: the secret is not a JSON object"},
		{"a missing secret names the property", func(_ map[string]any, s *fakeSecrets) { delete(s.values, replArn) }, "ReplicationSecretArn: read secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props, s := valid(), secrets()
			tt.change(props, s)
			h := &schemasetup.Handler{Secrets: s, ConnectTimeout: time.Second}
			_, err := h.OnEvent(ctxWithLogger(), request(customresource.Create, props))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
	t.Run("a Secrets Manager failure is wrapped, not replaced", func(t *testing.T) {
		denied := &smtypes.InvalidRequestException{Message: strPtr("denied")}
		h := &schemasetup.Handler{Secrets: &fakeSecrets{failErr: denied}}
		_, err := h.OnEvent(ctxWithLogger(), request(customresource.Create, valid()))
		var got *smtypes.InvalidRequestException
		if !errors.As(err, &got) {
			t.Errorf("err = %v, want it to wrap the Secrets Manager error", err)
		}
	})
	t.Run("the digest the stack passes is the SHA-256 of the embedded script", func(t *testing.T) {
		sum := sha256.Sum256([]byte(etlsql.OrdersDBSetup))
		if schemasetup.ScriptSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("ScriptSHA256 = %s", schemasetup.ScriptSHA256)
		}
	})
}

func TestDeleteNeverTouchesTheDatabase(t *testing.T) {
	s := &fakeSecrets{}
	h := &schemasetup.Handler{Secrets: s}
	req := request(customresource.Delete, map[string]any{"DatabaseSecretArn": adminArn, "ReplicationSecretArn": replArn})
	resp, err := h.OnEvent(ctxWithLogger(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.PhysicalResourceID != schemasetup.PhysicalResourceID {
		t.Errorf("physical ID = %q, want it kept", resp.PhysicalResourceID)
	}
	if s.calls != 0 {
		t.Errorf("Delete read %d secrets; it must not even connect", s.calls)
	}
}

// testCA is a certificate authority and a server certificate for 127.0.0.1
// and localhost, written as the PEM files MariaDB reads.
type testCA struct {
	caPEM             string
	certFile, keyFile string
	caFile            string
	otherCAPEM        string // a CA that did not sign the server
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caTemplate := func(cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	caKey := newKey()
	ca := caTemplate("Test RDS Root CA")
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	otherKey := newKey()
	other := caTemplate("Some Other CA")
	otherDER, err := x509.CreateCertificate(rand.Reader, other, other, &otherKey.PublicKey, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	serverKey := newKey()
	server := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano() + 1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, server, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	c := testCA{
		caPEM:      pemOf("CERTIFICATE", caDER),
		otherCAPEM: pemOf("CERTIFICATE", otherDER),
		certFile:   filepath.Join(dir, "server.pem"),
		keyFile:    filepath.Join(dir, "server-key.pem"),
		caFile:     filepath.Join(dir, "ca.pem"),
	}
	for file, content := range map[string]string{c.certFile: pemOf("CERTIFICATE", serverDER), c.keyFile: pemOf("PRIVATE KEY", keyDER), c.caFile: c.caPEM} {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// tlsDatabase is a MariaDB that, like the RDS instance, accepts only TLS
// connections and has an admin account with a password.
type tlsDatabase struct {
	server *mariadb.Server
	ca     testCA
	admin  *sql.DB // over TLS, for checks
}

func startTLSDatabase(t *testing.T) *tlsDatabase {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a MariaDB server; skipped under -short")
	}
	ca := newTestCA(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := mariadb.Start(ctx, mariadb.Config{ExtraArgs: []string{
		"--ssl-ca=" + ca.caFile, "--ssl-cert=" + ca.certFile, "--ssl-key=" + ca.keyFile,
	}})
	if err != nil {
		t.Fatalf("start MariaDB: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	root, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, q := range []string{
		"CREATE USER 'admin'@'%' IDENTIFIED BY 'admin-pw'",
		"GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION",
		// As the RDS parameter group sets it: no plaintext logins.
		"SET GLOBAL require_secure_transport = ON",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	d := &tlsDatabase{server: s, ca: ca}
	d.admin = d.open(t, "admin", "admin-pw")
	// Every success below then proves the handler used TLS.
	plain, err := sql.Open("mysql", "admin:admin-pw@tcp("+s.Addr()+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.PingContext(ctx); err == nil {
		t.Fatal("the test database accepts plaintext logins")
	}
	return d
}

// open connects as user over TLS verified against the test CA.
func (d *tlsDatabase) open(t *testing.T, user, password string) *sql.DB {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(d.ca.caPEM))
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", d.server.Addr()
	cfg.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	return db
}

func (d *tlsDatabase) props(extra map[string]any) map[string]any {
	p := map[string]any{
		"ServiceToken":         "arn:aws:lambda:eu-west-1:123456789012:function:provider",
		"DatabaseSecretArn":    adminArn,
		"ReplicationSecretArn": replArn,
		"Host":                 d.server.Host(),
		"Port":                 strconv.Itoa(d.server.Port()),
		"CaBundle":             d.ca.caPEM,
		"ScriptSha256":         schemasetup.ScriptSHA256,
	}
	for k, v := range extra {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return p
}

func (d *tlsDatabase) secrets(adminPassword, dmsPassword string) *fakeSecrets {
	f := &fakeSecrets{}
	f.set(adminArn, rdsSecret("admin", adminPassword, d.server.Host(), d.server.Port()))
	f.set(replArn, map[string]any{"username": "dms_user", "password": dmsPassword, "engine": "mysql", "host": d.server.Host(), "port": d.server.Port()})
	return f
}

func TestSchemaSetupAgainstMariaDB(t *testing.T) {
	d := startTLSDatabase(t)
	ctx := ctxWithLogger()

	t.Run("create applies the schema over verified TLS and creates a working DMS user", func(t *testing.T) {
		h := &schemasetup.Handler{Secrets: d.secrets("admin-pw", "first-dms-pw")}
		resp, err := h.OnEvent(ctx, request(customresource.Create, d.props(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if resp.PhysicalResourceID != schemasetup.PhysicalResourceID || resp.Data["ScriptSha256"] != schemasetup.ScriptSHA256 {
			t.Errorf("response = %+v", resp)
		}
		var tables int
		if err := d.admin.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'orders' AND TABLE_NAME IN ('order', 'order_item')").Scan(&tables); err != nil || tables != 2 {
			t.Fatalf("orders tables = %d, %v; want 2", tables, err)
		}
		dms := d.open(t, "dms_user", "first-dms-pw")
		var grants []string
		rows, err := dms.Query("SHOW GRANTS")
		if err != nil {
			t.Fatalf("dms_user cannot log in: %v", err)
		}
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				t.Fatal(err)
			}
			grants = append(grants, g)
		}
		all := strings.Join(grants, "\n")
		// MariaDB spells REPLICATION CLIENT as BINLOG MONITOR.
		for _, want := range []string{"REPLICATION SLAVE", "SELECT ON `orders`.*"} {
			if !strings.Contains(all, want) {
				t.Errorf("dms_user grants lack %q:\n%s", want, all)
			}
		}
	})

	t.Run("update re-applies safely: data is kept and the DMS password follows its secret", func(t *testing.T) {
		for _, q := range []string{
			"INSERT INTO orders.`order` (orderId, orderAmount, orderStatus, orderDateTime) VALUES (9001, 12.50, 'PLACED', '2026-11-21 10:00:00.000')",
			"INSERT INTO orders.order_item (orderId, itemId, itemQuantity, itemAmount, itemStatus) VALUES (9001, 7, 1, 12.50, 'PLACED')",
		} {
			if _, err := d.admin.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		h := &schemasetup.Handler{Secrets: d.secrets("admin-pw", "rotated-dms-pw")}
		resp, err := h.OnEvent(ctx, request(customresource.Update, d.props(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if resp.PhysicalResourceID != schemasetup.PhysicalResourceID {
			t.Errorf("physical ID changed to %q: CloudFormation would delete the old one", resp.PhysicalResourceID)
		}
		var items int
		if err := d.admin.QueryRow("SELECT COUNT(*) FROM orders.order_item WHERE orderId = 9001").Scan(&items); err != nil || items != 1 {
			t.Errorf("order items after update = %d, %v; want the row kept", items, err)
		}
		if err := d.open(t, "dms_user", "rotated-dms-pw").Ping(); err != nil {
			t.Errorf("dms_user cannot log in with the new password: %v", err)
		}
		if err := d.open(t, "dms_user", "first-dms-pw").Ping(); err == nil {
			t.Error("dms_user still logs in with the old password")
		}
	})

	t.Run("require mode encrypts without a CA bundle", func(t *testing.T) {
		h := &schemasetup.Handler{Secrets: d.secrets("admin-pw", "rotated-dms-pw")}
		if _, err := h.OnEvent(ctx, request(customresource.Update, d.props(map[string]any{"TlsMode": "require", "CaBundle": nil}))); err != nil {
			t.Fatal(err)
		}
	})

	certFailures := []struct {
		name  string
		props map[string]any
	}{
		{"a server certificate from another CA is refused at once", map[string]any{"CaBundle": d.ca.otherCAPEM}},
		{"verify-full without a bundle does not trust a private CA", map[string]any{"CaBundle": nil}},
	}
	for _, tt := range certFailures {
		t.Run(tt.name, func(t *testing.T) {
			h := &schemasetup.Handler{Secrets: d.secrets("admin-pw", "rotated-dms-pw"), ConnectTimeout: time.Minute}
			start := time.Now()
			_, err := h.OnEvent(ctx, request(customresource.Update, d.props(tt.props)))
			if err == nil || !strings.Contains(err.Error(), "set property CaBundle") {
				t.Fatalf("err = %v, want a certificate error with a CaBundle hint", err)
			}
			if elapsed := time.Since(start); elapsed > 20*time.Second {
				t.Errorf("took %s: a certificate error must not be retried", elapsed)
			}
		})
	}

	t.Run("a wrong admin password fails at once", func(t *testing.T) {
		h := &schemasetup.Handler{Secrets: d.secrets("wrong-pw", "rotated-dms-pw"), ConnectTimeout: time.Minute}
		start := time.Now()
		_, err := h.OnEvent(ctx, request(customresource.Update, d.props(nil)))
		var myErr *mysql.MySQLError
		if !errors.As(err, &myErr) || myErr.Number != 1045 {
			t.Fatalf("err = %v, want access denied (1045)", err)
		}
		if elapsed := time.Since(start); elapsed > 20*time.Second {
			t.Errorf("took %s: an authentication error must not be retried", elapsed)
		}
	})

	t.Run("it waits for a database that starts accepting connections late", func(t *testing.T) {
		addr := lateProxy(t, d.server.Addr(), 2*time.Second)
		host, port, _ := net.SplitHostPort(addr)
		h := &schemasetup.Handler{
			Secrets:        d.secrets("admin-pw", "rotated-dms-pw"),
			ConnectTimeout: 45 * time.Second,
			RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 500 * time.Millisecond,
		}
		start := time.Now()
		if _, err := h.OnEvent(ctx, request(customresource.Update, d.props(map[string]any{"Host": host, "Port": port}))); err != nil {
			t.Fatalf("err = %v, want success once the database answers", err)
		}
		if elapsed := time.Since(start); elapsed < 2*time.Second {
			t.Errorf("succeeded after %s, before the database was reachable", elapsed)
		}
	})

	t.Run("it gives up on an unreachable database after the connect timeout", func(t *testing.T) {
		h := &schemasetup.Handler{
			Secrets:        d.secrets("admin-pw", "rotated-dms-pw"),
			ConnectTimeout: 2 * time.Second,
			RetryBaseDelay: 50 * time.Millisecond, RetryMaxDelay: 200 * time.Millisecond,
		}
		_, err := h.OnEvent(ctx, request(customresource.Update, d.props(map[string]any{"Port": strconv.Itoa(closedPort(t))})))
		if err == nil || !strings.Contains(err.Error(), "database not reachable after") {
			t.Fatalf("err = %v", err)
		}
	})
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// lateProxy returns a loopback address that refuses connections for delay
// and then forwards them to target, like an instance that is still coming
// up.
func lateProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(closedPort(t)))
	done := make(chan struct{})
	var l net.Listener
	var mu sync.Mutex
	go func() {
		select {
		case <-time.After(delay):
		case <-done:
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("proxy: %v", err)
			return
		}
		mu.Lock()
		l = ln
		mu.Unlock()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		if l != nil {
			l.Close()
		}
	})
	return addr
}
