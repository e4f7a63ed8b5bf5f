package ops

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/unified-streaming-etl/etl/internal/rdsca"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
)

// dialTimeout bounds one connection attempt: a missing network path should
// fail in seconds, not after the operating system's minutes.
const dialTimeout = 10 * time.Second

// Target is an orders database the commands connect to.
type Target struct {
	// Config is the driver configuration: credentials, address, TLS.
	Config *mysql.Config
	// Replication holds dms_user's credentials from a stack's replication
	// secret; nil for a DSN target or when not asked for.
	Replication *Credentials
	// Description says which database this is, for messages; it never
	// contains a password.
	Description string
	// viaStack marks a deployed database, whose connection failures get
	// a hint about the network path.
	viaStack bool
}

// TLSOptions adjust how the server's certificate is verified.
type TLSOptions struct {
	// CABundle is PEM text of the CA certificates the server's certificate
	// must chain to. For a DSN target it turns verified TLS on.
	CABundle []byte
	// ServerName is the name the certificate must carry when it differs
	// from the address dialled, as through a port forward.
	ServerName string
	// InsecureSkipTLSForNonLoopback allows a DSN target on another host
	// without verified TLS, where the password and the data can be read or
	// changed on the way. Loopback addresses and Unix sockets never need it.
	InsecureSkipTLSForNonLoopback bool
}

// ErrUnverifiedRemote refuses a connection to another host without
// verified TLS.
var ErrUnverifiedRemote = errors.New("connecting to another host needs verified TLS")

// loopback reports whether the DSN's address stays on this machine: a Unix
// socket, "localhost", or a loopback IP address. A host name other than
// localhost counts as remote; what it resolves to can change.
func loopback(cfg *mysql.Config) bool {
	if cfg.Net == "unix" {
		return true
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host = cfg.Addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DSNTarget parses a go-sql-driver/mysql DSN. password, when not empty,
// replaces the DSN's, so that it need not appear in the DSN.
func DSNTarget(dsn, password string, opts TLSOptions) (Target, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's errors quote no part of the DSN, so no password leaks.
		return Target{}, fmt.Errorf("the DSN is not a go-sql-driver/mysql DSN (user:password@tcp(host:3306)/): %w", err)
	}
	if password != "" {
		cfg.Passwd = password
	}
	switch {
	case len(opts.CABundle) > 0:
		pool, err := rdsca.CertPool(opts.CABundle)
		if err != nil {
			return Target{}, fmt.Errorf("CA bundle: %w", err)
		}
		name := opts.ServerName
		if name == "" {
			name, _, _ = net.SplitHostPort(cfg.Addr)
		}
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: name}
	case opts.ServerName != "":
		if cfg.TLS == nil || cfg.TLS.InsecureSkipVerify {
			return Target{}, errors.New("a TLS server name needs verified TLS: add tls=true to the DSN or give a CA bundle")
		}
		cfg.TLS.ServerName = opts.ServerName
	}
	// tls=skip-verify and tls=preferred (which also falls back to
	// plaintext) check nobody's identity: the password would go to whoever
	// answers.
	verified := cfg.TLS != nil && !cfg.TLS.InsecureSkipVerify && !cfg.AllowFallbackToPlaintext
	if !verified && !loopback(cfg) && !opts.InsecureSkipTLSForNonLoopback {
		return Target{}, fmt.Errorf("%w: %s is not a loopback address; add tls=true to the DSN (the system's CAs) or give a CA bundle, or accept the risk with --insecure-skip-tls-for-non-loopback", ErrUnverifiedRemote, cfg.Addr)
	}
	prepare(cfg)
	desc := fmt.Sprintf("%s as %s", cfg.Addr, cfg.User)
	switch {
	case cfg.TLS == nil:
		desc += ", without TLS"
	case cfg.TLS.InsecureSkipVerify:
		desc += ", TLS not verified"
	default:
		desc += ", TLS verified for " + cfg.TLS.ServerName
	}
	return Target{Config: cfg, Description: desc}, nil
}

// StackOptions say how to reach the database of a deployed data stack.
type StackOptions struct {
	// Stack is the data stack's name or ARN.
	Stack string
	// Host and Port, when set, are dialled instead of the database's
	// endpoint: the local end of a port forward. The certificate is still
	// verified for the endpoint's name.
	Host string
	Port int
	// TLS verifies the server; CABundle is required (the RDS CA bundle).
	TLS TLSOptions
	// Replication also reads dms_user's secret into Target.Replication.
	Replication bool
}

// StackTarget resolves the database of a deployed data stack from its
// outputs and the admin secret, connecting as the admin user over TLS
// verified against the CA bundle.
func StackTarget(ctx context.Context, cf CloudFormation, sm SecretsManager, opts StackOptions) (Target, error) {
	if len(opts.TLS.CABundle) == 0 {
		return Target{}, errors.New("a CA bundle is required to verify the database's certificate")
	}
	pool, err := rdsca.CertPool(opts.TLS.CABundle)
	if err != nil {
		return Target{}, fmt.Errorf("CA bundle: %w", err)
	}
	outputs, err := StackOutputs(ctx, cf, opts.Stack)
	if err != nil {
		return Target{}, err
	}
	endpoint, err := outputs.Get(OutputDatabaseEndpoint)
	if err != nil {
		return Target{}, err
	}
	adminArn, err := outputs.Get(OutputDatabaseSecretArn)
	if err != nil {
		return Target{}, err
	}
	admin, err := ReadCredentials(ctx, sm, adminArn)
	if err != nil {
		return Target{}, fmt.Errorf("the database's admin secret: %w", err)
	}
	t := Target{viaStack: true}
	if opts.Replication {
		arn, err := outputs.Get(OutputReplicationSecretArn)
		if err != nil {
			return Target{}, err
		}
		repl, err := ReadCredentials(ctx, sm, arn)
		if err != nil {
			return Target{}, fmt.Errorf("the replication secret: %w", err)
		}
		if repl.Username != schemasetup.ReplicationUser {
			return Target{}, fmt.Errorf("the replication secret %s is for user %q, but the schema script creates %q", arn, repl.Username, schemasetup.ReplicationUser)
		}
		t.Replication = &repl
	}

	host, port := endpoint, admin.Port
	if port == 0 {
		port = 3306
	}
	if opts.Host != "" {
		host = opts.Host
	}
	if opts.Port != 0 {
		port = opts.Port
	}
	name := opts.TLS.ServerName
	if name == "" {
		name = endpoint
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = admin.Username, admin.Password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, strconv.Itoa(port))
	// Always verified: the instance requires TLS, and the admin password
	// must not go to an impostor.
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: name}
	prepare(cfg)
	t.Config = cfg
	t.Description = fmt.Sprintf("%s database %s as %s", opts.Stack, endpoint, admin.Username)
	if opts.Host != "" || opts.Port != 0 {
		t.Description += " via " + cfg.Addr
	}
	t.Description += ", TLS verified"
	return t, nil
}

// prepare sets what the commands rely on whatever the DSN says.
func prepare(cfg *mysql.Config) {
	// The source join reads DATETIME(3) as text, exactly as stored.
	cfg.ParseTime = false
	// One statement per call: a failing statement is then named by its line.
	cfg.MultiStatements = false
	if cfg.Timeout == 0 {
		cfg.Timeout = dialTimeout
	}
}

// Open connects to the target and checks that the database answers. A
// failure says what is probably wrong: the network path, the certificate
// or the credentials.
func (t Target) Open(ctx context.Context) (*sql.DB, error) {
	connector, err := mysql.NewConnector(t.Config)
	if err != nil {
		return nil, fmt.Errorf("database configuration: %w", err)
	}
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w%s", t.Description, err, t.connectHint(err))
	}
	return db, nil
}

// OpenAs returns a pool for another user of the same server, with the
// same address and TLS settings.
func (t Target) OpenAs(user, password string) (*sql.DB, error) {
	cfg := t.Config.Clone()
	cfg.User, cfg.Passwd, cfg.DBName = user, password, ""
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(connector), nil
}

func (t Target) connectHint(err error) string {
	var myErr *mysql.MySQLError
	var netErr net.Error
	switch {
	case isCertificateError(err):
		if t.viaStack {
			return "\n(the certificate did not verify: pass the RDS CA bundle with --ca-bundle, " +
				"https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)"
		}
		return "\n(the certificate did not verify: check the CA bundle and --tls-server-name)"
	case errors.As(err, &myErr) && myErr.Number == 1045:
		return "\n(the server refused the user name or password)"
	case errors.As(err, &myErr) && myErr.Number == 3159:
		return "\n(the server requires TLS: add tls=true to the DSN, or give a CA bundle)"
	case errors.As(err, &myErr) && myErr.Number == 1049:
		return "\n(leave the database name out of the DSN: the scripts name their schema)"
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		if t.viaStack {
			return "\n(the database is in private subnets: open a port forward to its endpoint, " +
				"for example with AWS Systems Manager Session Manager, and pass --host 127.0.0.1 --port <local port>)"
		}
	}
	return ""
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
