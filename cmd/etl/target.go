package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/rdsca"
	"github.com/unified-streaming-etl/etl/internal/repo"

	"github.com/unified-streaming-etl/etl/internal/ops"
)

// envDSN is where the DSN is read from when --dsn is not given: an
// environment variable keeps the password out of the shell history and
// the process list.
const envDSN = "ETL_MYSQL_DSN"

// dbFlags say how a command reaches the orders database: a DSN, or a
// deployed data stack's outputs and secrets.
type dbFlags struct {
	dsn         string
	passwordEnv string
	stack       string
	host        string
	port        int
	caBundle    string
	serverName  string
	insecure    bool
}

func (f *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dsn, "dsn", "", "the database as a go-sql-driver/mysql `DSN` without a password, user@tcp(host:3306)/ (default $"+envDSN+", which may hold one: user:password@tcp(host:3306)/)")
	fs.StringVar(&f.passwordEnv, "password-env", "", "read the DSN user's password from this environment `variable` instead of the DSN")
	fs.StringVar(&f.stack, "stack", "", "the deployed data `stack` ("+ops.DataStack+"): connect as its admin user, from its outputs and secret, over TLS verified with the RDS CA")
	fs.StringVar(&f.host, "host", "", "with --stack: dial this `host` instead of the database endpoint, e.g. 127.0.0.1 at the local end of a port forward")
	fs.IntVar(&f.port, "port", 0, "with --stack: dial this `port` (the local end of a port forward)")
	fs.StringVar(&f.caBundle, "ca-bundle", "", "PEM `file` of the CAs the server certificate must chain to (default with --stack: the RDS CAs of "+rdsca.PackageDir+")")
	fs.StringVar(&f.serverName, "tls-server-name", "", "the `name` the server certificate must carry (default: the database endpoint, or the DSN's host)")
	fs.BoolVar(&f.insecure, "insecure-skip-tls-for-non-loopback", false, "INSECURE: allow a DSN naming another host without verified TLS (tls=true or --ca-bundle), so that anyone on the network path can read the password and data")
}

// newDBFlagSet is newFlagSet for a command that reaches the orders
// database, with the database flags registered.
func newDBFlagSet(name, synopsis, description string, stderr io.Writer) (*flag.FlagSet, *dbFlags) {
	fs := newFlagSet(name, synopsis, description, stderr)
	df := &dbFlags{}
	df.register(fs)
	return fs, df
}

// parse parses a command's arguments and checks the database flags among
// them, so that a command fails on its flags before any work.
func (f *dbFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	return f.check(fs)
}

// check reports flag combinations that cannot work, before any work.
func (f *dbFlags) check(fs *flag.FlagSet) error {
	var msg string
	switch {
	case f.stack != "" && f.dsn != "":
		msg = "give either --dsn or --stack, not both"
	case f.dsn != "" && dsnHasPassword(f.dsn):
		msg = "--dsn must not hold a password: command lines show in the process list and the shell history. Put the DSN in $" + envDSN + " instead, or the password in a variable named by --password-env"
	case f.stack != "" && f.insecure:
		msg = "--insecure-skip-tls-for-non-loopback is for --dsn; with --stack TLS is always verified"
	case f.stack != "" && f.passwordEnv != "":
		msg = "--password-env is for --dsn; with --stack the password comes from the stack's admin secret"
	case f.stack == "" && (f.host != "" || f.port != 0):
		msg = "--host and --port go with --stack; with a DSN, put the address in the DSN"
	case f.port < 0 || f.port > 65535:
		msg = fmt.Sprintf("--port %d is not a TCP port", f.port)
	case f.stack == "" && f.dsn == "" && os.Getenv(envDSN) == "":
		msg = "name the database: --dsn (or $" + envDSN + ") for any MySQL, or --stack " + ops.DataStack + " for the deployed one"
	default:
		return nil
	}
	return usageError(fs, msg)
}

// dsnHasPassword reports whether dsn carries a password. A DSN that does
// not parse is left to the parser's own error later.
func dsnHasPassword(dsn string) bool {
	cfg, err := mysql.ParseDSN(dsn)
	return err == nil && cfg.Passwd != ""
}

// target resolves the database; replication also reads dms_user's secret
// (stack targets only).
func (f *dbFlags) target(ctx context.Context, replication bool) (ops.Target, error) {
	var bundle []byte
	if f.caBundle != "" {
		b, err := os.ReadFile(f.caBundle)
		if err != nil {
			return ops.Target{}, fmt.Errorf("--ca-bundle: %w", err)
		}
		bundle = b
	}
	tlsOpts := ops.TLSOptions{CABundle: bundle, ServerName: f.serverName, InsecureSkipTLSForNonLoopback: f.insecure}
	if f.stack == "" {
		dsn := f.dsn
		if dsn == "" {
			dsn = os.Getenv(envDSN)
		}
		var password string
		if f.passwordEnv != "" {
			if password = os.Getenv(f.passwordEnv); password == "" {
				return ops.Target{}, fmt.Errorf("--password-env: environment variable %s is empty or not set", f.passwordEnv)
			}
		}
		return ops.DSNTarget(dsn, password, tlsOpts)
	}

	if len(bundle) == 0 {
		root, err := repo.Root()
		if err == nil {
			bundle, err = rdsca.FromPackage(ctx, filepath.Join(root, rdsca.PackageDir))
		}
		if err != nil {
			return ops.Target{}, fmt.Errorf("%w; or pass --ca-bundle with the RDS CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)", err)
		}
		tlsOpts.CABundle = bundle
	}
	clients, err := loadAWSClients(ctx)
	if err != nil {
		return ops.Target{}, err
	}
	return ops.StackTarget(ctx, clients.CloudFormation, clients.SecretsManager, ops.StackOptions{
		Stack: f.stack, Host: f.host, Port: f.port, TLS: tlsOpts, Replication: replication,
	})
}

// defaultProducts is the repository's catalogue.
func defaultProducts() (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", fmt.Errorf("%w: pass --products", err)
	}
	return filepath.Join(root, ops.ProductsFile), nil
}

// ticker says when to print progress: at most once per interval.
type ticker struct {
	every time.Duration
	last  time.Time
}

func newTicker(every time.Duration) *ticker { return &ticker{every: every, last: time.Now()} }

func (t *ticker) due() bool {
	if now := time.Now(); now.Sub(t.last) >= t.every {
		t.last = now
		return true
	}
	return false
}

// since formats the time since start for people.
func since(start time.Time) string { return human(time.Since(start)) }

// human formats a duration for people: ms below a second, else 0.1 s.
func human(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
