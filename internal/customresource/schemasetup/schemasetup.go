// Package schemasetup is the custom resource that applies
// sql/ordersdb-setup.sql (the orders schema and the DMS replication user)
// to the orders database before DMS starts. It runs inside the VPC.
//
// Create and Update read the database's admin secret and the replication
// user's secret from Secrets Manager, connect over TLS (retrying while the
// instance is still becoming reachable), set @dms_password in the session
// and run the script statement by statement. The script is idempotent, so
// an Update re-applies it safely and also brings dms_user's password in
// line with its secret. Delete does nothing: customer data is never
// dropped by a stack operation.
package schemasetup

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/unified-streaming-etl/etl/internal/rdsca"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/retry"
	"github.com/unified-streaming-etl/etl/internal/sqlscript"
	etlsql "github.com/unified-streaming-etl/etl/sql"
)

// PhysicalResourceID identifies the applied schema; it never changes, so an
// Update never makes CloudFormation "replace" (delete) it.
const PhysicalResourceID = "orders-schema"

// ScriptName names the script in errors.
const ScriptName = "ordersdb-setup.sql"

// ReplicationUser is the account the script creates for DMS; the
// replication secret must be this user's.
const ReplicationUser = "dms_user"

// TLS modes.
const (
	// TLSVerifyFull verifies the server's certificate chain against
	// CaBundle (or the system roots when it is empty) and its host name.
	TLSVerifyFull = "verify-full"
	// TLSRequire encrypts without verifying the server: only for databases
	// whose CA cannot be supplied, since it does not stop an impostor.
	TLSRequire = "require"
)

// Defaults.
const (
	// DefaultConnectTimeout bounds how long the handler waits for the
	// database to accept connections.
	DefaultConnectTimeout = 5 * time.Minute
	// deadlineReserve is kept from the invocation's deadline for applying
	// the script and answering after the connection retries.
	deadlineReserve = time.Minute
	dialTimeout     = 10 * time.Second
	ioTimeout       = time.Minute
)

// ScriptSHA256 is the hex SHA-256 of the embedded script. The stack passes
// the same digest (computed from sql.OrdersDBSetup at synth) as property
// ScriptSha256: a changed script then changes the property, which is what
// makes CloudFormation send the Update that re-applies it.
var ScriptSHA256 = digest(etlsql.OrdersDBSetup)

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Properties are the custom resource's properties.
type Properties struct {
	// DatabaseSecretArn is the RDS-generated admin secret: JSON with
	// username, password, host and port. Required.
	DatabaseSecretArn string `json:"DatabaseSecretArn"`
	// ReplicationSecretArn is dms_user's secret: JSON with username and
	// password. Required.
	ReplicationSecretArn string `json:"ReplicationSecretArn"`
	// Host and Port override the admin secret's. Passing the instance's
	// endpoint also makes a replaced instance trigger an Update.
	Host string `json:"Host"`
	Port string `json:"Port"`
	// CaBundle is PEM text of the CA certificates the server's certificate
	// must chain to (for RDS: the RDS CA bundle).
	CaBundle string `json:"CaBundle"`
	// TlsMode is verify-full (default) or require.
	TlsMode string `json:"TlsMode"`
	// ScriptSha256, when set, must match the script built into the
	// function: a mismatch means a stale function build.
	ScriptSha256 string `json:"ScriptSha256"`
}

func (p *Properties) validate() error {
	var missing []string
	if p.DatabaseSecretArn == "" {
		missing = append(missing, "DatabaseSecretArn")
	}
	if p.ReplicationSecretArn == "" {
		missing = append(missing, "ReplicationSecretArn")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required properties: %s", strings.Join(missing, ", "))
	}
	switch p.TlsMode {
	case "":
		p.TlsMode = TLSVerifyFull
	case TLSVerifyFull, TLSRequire:
	default:
		return fmt.Errorf("property TlsMode: %q is not %s or %s", p.TlsMode, TLSVerifyFull, TLSRequire)
	}
	if p.Port != "" {
		if _, err := parsePort(p.Port); err != nil {
			return fmt.Errorf("property Port: %w", err)
		}
	}
	if p.ScriptSha256 != "" && !strings.EqualFold(p.ScriptSha256, ScriptSHA256) {
		return fmt.Errorf("property ScriptSha256 %s does not match the script built into this function (%s): the function was built from another version of sql/%s", p.ScriptSha256, ScriptSHA256, ScriptName)
	}
	return nil
}

// SecretsManager is the part of the Secrets Manager client the handler uses.
type SecretsManager interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Handler handles the schema-setup custom resource. It has no isComplete
// step: the work fits in one invocation.
type Handler struct {
	Secrets SecretsManager
	// ConnectTimeout bounds the wait for the database; 0 means
	// DefaultConnectTimeout. The invocation's deadline also bounds it.
	ConnectTimeout time.Duration
	// RetryBaseDelay and RetryMaxDelay shape the backoff between connection
	// attempts; 0 means 1 s and 15 s.
	RetryBaseDelay, RetryMaxDelay time.Duration
}

// OnEvent applies the script on Create and Update and does nothing on
// Delete.
func (h *Handler) OnEvent(ctx context.Context, req customresource.Request) (customresource.Response, error) {
	log := customresource.Logger(ctx)
	if req.RequestType == customresource.Delete {
		log.InfoContext(ctx, "delete: the schema and its data are kept")
		return customresource.Response{PhysicalResourceID: req.PhysicalResourceID}, nil
	}
	p, err := customresource.ValidProperties(req, (*Properties).validate)
	if err != nil {
		return customresource.Response{}, err
	}
	admin, err := h.secret(ctx, "DatabaseSecretArn", p.DatabaseSecretArn)
	if err != nil {
		return customresource.Response{}, err
	}
	repl, err := h.secret(ctx, "ReplicationSecretArn", p.ReplicationSecretArn)
	if err != nil {
		return customresource.Response{}, err
	}
	if repl.Username != ReplicationUser {
		return customresource.Response{}, fmt.Errorf("ReplicationSecretArn: the secret is for user %q, but %s creates %q", repl.Username, ScriptName, ReplicationUser)
	}
	if repl.Password == "" {
		return customresource.Response{}, errors.New("ReplicationSecretArn: the secret has no password")
	}
	cfg, err := mysqlConfig(p, admin)
	if err != nil {
		return customresource.Response{}, err
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return customresource.Response{}, fmt.Errorf("database configuration: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(1)

	log = log.With("address", cfg.Addr, "user", cfg.User, "tlsMode", p.TlsMode)
	ctx = customresource.WithLogger(ctx, log)
	if err := h.waitForDatabase(ctx, db, p.TlsMode); err != nil {
		return customresource.Response{}, err
	}
	n, err := Apply(ctx, db, repl.Password)
	if err != nil {
		return customresource.Response{}, err
	}
	log.InfoContext(ctx, "schema applied", "statements", n, "scriptSha256", ScriptSHA256)
	if err := checkReplicationLogin(ctx, cfg, repl); err != nil {
		return customresource.Response{}, err
	}
	return customresource.Response{
		PhysicalResourceID: PhysicalResourceID,
		Data: map[string]any{
			"ScriptSha256": ScriptSHA256,
			"Statements":   strconv.Itoa(n),
		},
	}, nil
}

// Apply runs ordersdb-setup.sql on one connection of db with @dms_password
// set to dmsPassword and returns how many statements ran. The password goes
// to the server as a bound parameter, never inside SQL text.
func Apply(ctx context.Context, db *sql.DB, dmsPassword string) (int, error) {
	stmts, err := sqlscript.Split(etlsql.OrdersDBSetup)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ScriptName, err)
	}
	// Session variables live on one connection.
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET @dms_password = ?", dmsPassword); err != nil {
		return 0, sqlscript.Withhold("set @dms_password", err, dmsPassword)
	}
	// The connection may go back to a pool: leave no password behind.
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "SET @dms_password = NULL") }()
	// The error becomes the CloudFormation event's reason: it must not
	// carry the password.
	return sqlscript.ExecWith(ctx, conn, ScriptName, stmts, PasswordOptions(dmsPassword))
}

// PasswordOptions are the sqlscript options for running ordersdb-setup.sql
// with password: errors from the statements that handle it, or that contain
// it, keep only the server's error number.
func PasswordOptions(password string) sqlscript.Options {
	return sqlscript.Options{
		Secrets:   []string{password},
		Sensitive: func(st sqlscript.Statement) bool { return etlsql.CarriesPassword(st.SQL) },
	}
}

// checkReplicationLogin logs in as the replication user with its secret's
// password, the way DMS will, and reads the tables DMS replicates, so that
// a password or grant problem fails the deployment here rather than the
// DMS task later.
func checkReplicationLogin(ctx context.Context, admin *mysql.Config, repl dbSecret) error {
	cfg := admin.Clone()
	cfg.User = repl.Username
	cfg.Passwd = repl.Password
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("replication user configuration: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	for _, table := range []string{"orders.`order`", "orders.order_item"} {
		// LIMIT 1: proves the SELECT grant without scanning a large table.
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1 FROM "+table+" LIMIT 1").Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check %s: read %s as the replication user: %w", ReplicationUser, table, err)
		}
	}
	return nil
}

// waitForDatabase pings db until it answers, a non-transient error occurs
// or the connect timeout passes.
func (h *Handler) waitForDatabase(ctx context.Context, db *sql.DB, tlsMode string) error {
	log := customresource.Logger(ctx)
	timeout := h.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline) - deadlineReserve; left < timeout {
			timeout = max(left, dialTimeout)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base, maxDelay := h.RetryBaseDelay, h.RetryMaxDelay
	if base <= 0 {
		base = time.Second
	}
	if maxDelay <= 0 {
		maxDelay = 15 * time.Second
	}
	policy := retry.Policy{
		MaxAttempts:    1 << 20, // bounded by wctx, not by a count
		BaseDelay:      base,
		MaxDelay:       maxDelay,
		AttemptTimeout: dialTimeout + 5*time.Second,
		Retryable:      transientConnectError,
	}
	attempts := 0
	err := policy.Do(wctx, func(ctx context.Context) error {
		attempts++
		err := db.PingContext(ctx)
		if err != nil && transientConnectError(err) {
			log.WarnContext(ctx, "database not reachable yet; retrying", "attempt", attempts, "error", err)
		}
		return err
	})
	switch {
	case err == nil:
		log.InfoContext(ctx, "connected to the database", "attempts", attempts)
		return nil
	case isCertificateError(err):
		hint := "set property CaBundle to the CA bundle of the database's certificate (for RDS: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)"
		if tlsMode == TLSRequire {
			hint = "the server's certificate is invalid"
		}
		return fmt.Errorf("verify the database's TLS certificate: %w; %s", err, hint)
	case !transientConnectError(err):
		return fmt.Errorf("connect to the database: %w", err)
	default:
		return fmt.Errorf("database not reachable after %d attempts in %s: %w", attempts, timeout.Round(time.Second), err)
	}
}

// transientConnectError reports whether a failed connection attempt may
// succeed later: network errors, timeouts, a server still starting or out
// of connections. Certificate and authentication failures will not fix
// themselves, so they end the wait at once.
func transientConnectError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, mysql.ErrNoTLS) || isCertificateError(err) {
		return false
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1040, // ER_CON_COUNT_ERROR: too many connections
			1053, // ER_SERVER_SHUTDOWN
			1129, // ER_HOST_IS_BLOCKED, cleared by the server in time
			1927: // ER_CONNECTION_KILLED
			return true
		}
		return false
	}
	var tlsRecord tls.RecordHeaderError
	if errors.As(err, &tlsRecord) {
		return false // not a TLS server at all
	}
	// Whatever remains (refused or reset connections, DNS not yet
	// resolving the new instance, timeouts, bad connections) is the
	// network or an instance that is still coming up.
	return true
}

func isCertificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// dbSecret is the JSON of an RDS database secret.
type dbSecret struct {
	Username string          `json:"username"`
	Password string          `json:"password"`
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"` // a number in RDS secrets; a string in hand-made ones
}

func (h *Handler) secret(ctx context.Context, property, arn string) (dbSecret, error) {
	out, err := h.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil {
		return dbSecret{}, fmt.Errorf("%s: read secret: %w", property, err)
	}
	if out.SecretString == nil {
		return dbSecret{}, fmt.Errorf("%s: the secret has no string value", property)
	}
	var s dbSecret
	if err := json.Unmarshal([]byte(*out.SecretString), &s); err != nil {
		// The error text holds no secret material: encoding/json reports
		// positions and types, not values.
		return dbSecret{}, fmt.Errorf("%s: the secret is not a JSON object with username and password: %w", property, err)
	}
	if s.Username == "" {
		return dbSecret{}, fmt.Errorf("%s: the secret has no username", property)
	}
	return s, nil
}

func mysqlConfig(p Properties, admin dbSecret) (*mysql.Config, error) {
	host := p.Host
	if host == "" {
		host = admin.Host
	}
	if host == "" {
		return nil, errors.New("the database host is unknown: DatabaseSecretArn's secret has no host and property Host is not set")
	}
	if admin.Password == "" {
		return nil, errors.New("DatabaseSecretArn: the secret has no password")
	}
	port := 3306
	switch {
	case p.Port != "":
		port, _ = parsePort(p.Port) // validated
	case len(admin.Port) > 0 && string(admin.Port) != "null":
		raw := strings.Trim(string(admin.Port), `"`)
		n, err := parsePort(raw)
		if err != nil {
			return nil, fmt.Errorf("DatabaseSecretArn: the secret's port: %w", err)
		}
		port = n
	}
	tlsCfg, err := tlsConfig(p, host)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User = admin.Username
	cfg.Passwd = admin.Password
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	cfg.TLS = tlsCfg
	cfg.Timeout = dialTimeout
	cfg.ReadTimeout = ioTimeout
	cfg.WriteTimeout = ioTimeout
	return cfg, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a TCP port", s)
	}
	return n, nil
}

// tlsConfig always requires TLS: the RDS parameter group sets
// require_secure_transport, and the admin password must not cross the
// network in the clear.
func tlsConfig(p Properties, host string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if p.TlsMode == TLSRequire {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	if p.CaBundle != "" {
		pool, err := rdsca.CertPool([]byte(p.CaBundle))
		if err != nil {
			return nil, fmt.Errorf("property CaBundle: %w", err)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
