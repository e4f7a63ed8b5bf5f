package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
	"github.com/unified-streaming-etl/etl/internal/ops"
	"github.com/unified-streaming-etl/etl/internal/privatefile"
	etlsql "github.com/unified-streaming-etl/etl/sql"
)

func init() {
	register(command{
		name:    "db",
		summary: "apply the SQL scripts to an orders database: `db setup` (schema and DMS user), `db seed` (sample orders)",
		run:     runDB,
	})
}

const dbUsage = `Usage: etl db setup [flags]    apply sql/ordersdb-setup.sql: the orders schema and the DMS user
       etl db seed [flags]     apply sql/orders-data-setup.sql (or --sql FILE): sample orders

Run ` + "`etl db setup --help`" + ` or ` + "`etl db seed --help`" + ` for the flags.
`

func runDB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dbUsage)
		return errUsage
	}
	switch args[0] {
	case "setup":
		return runDBSetup(ctx, args[1:], stdout, stderr)
	case "seed":
		return runDBSeed(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, dbUsage)
		return flag.ErrHelp
	default:
		fmt.Fprintf(stderr, "etl: unknown db command %q\n\n%s", args[0], dbUsage)
		return errUsage
	}
}

const targetHelp = `
The database is either any MySQL or MariaDB, named by a go-sql-driver/mysql
DSN in the variable ETL_MYSQL_DSN (--dsn takes one without a password:
command lines show in the process list; --password-env reads the password
from another variable), or the deployed one: --stack UnifiedStreamETLDataStack reads the
database endpoint and admin secret from the stack's outputs and Secrets
Manager (standard AWS credentials and Region) and connects over TLS verified
with the RDS CA bundle. The database is in private subnets: open a port
forward to its endpoint first (AWS Systems Manager Session Manager, or SSH
through a host in the VPC) and add --host 127.0.0.1 --port <local port>; the
certificate is still checked for the endpoint's name. A DSN naming another
host needs verified TLS (tls=true in the DSN, or --ca-bundle), unless
--insecure-skip-tls-for-non-loopback accepts the risk.`

const setupDescription = `
Applies sql/ordersdb-setup.sql, the script the deploy's schema-setup custom
resource runs: the orders schema (orders.order, orders.order_item) and the
replication user dms_user with the grants DMS needs. Every statement is
idempotent, so running it again is safe. It then logs in as dms_user and
reads both tables, as DMS will, when it knows dms_user's password.

dms_user's password: with --stack, the one in the stack's replication secret
(what DMS uses). With a DSN, the one in the environment variable named by
--dms-password-env; without it, an existing dms_user keeps its password (a
DMS task may be using it) and a new dms_user gets a generated password,
written to the new file named by --generated-dms-password-file (mode 0600; passwords
are never printed). --new-dms-password generates a new one for an existing
user, written the same way.
` + targetHelp

func runDBSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, df := newDBFlagSet("db setup", "db setup [flags]", setupDescription, stderr)
	passwordEnv := fs.String("dms-password-env", "", "with a DSN: set dms_user's password from this environment `variable` (default: keep an existing user's password, generate one for a new user)")
	newPassword := fs.Bool("new-dms-password", false, "with a DSN: give an existing dms_user a new generated password, written to --generated-dms-password-file (a DMS task using the old one stops working)")
	passwordFile := fs.String("generated-dms-password-file", "", "with a DSN: write a generated dms_user password to this new `file`, created with mode 0600 (required when one is generated; it is never printed)")
	if err := df.parse(fs, args); err != nil {
		return err
	}
	switch {
	case df.stack != "" && (*passwordEnv != "" || *newPassword):
		return usageError(fs, "--dms-password-env and --new-dms-password are for a DSN; with --stack the password is the replication secret's, which DMS uses")
	case df.stack != "" && *passwordFile != "":
		return usageError(fs, "--generated-dms-password-file is for a DSN; with --stack the password stays in the replication secret")
	case *passwordEnv != "" && *newPassword:
		return usageError(fs, "give either --dms-password-env or --new-dms-password, not both")
	case *passwordEnv != "" && *passwordFile != "":
		return usageError(fs, "--generated-dms-password-file receives a generated password; with --dms-password-env none is generated")
	case *newPassword && *passwordFile == "":
		return usageError(fs, "--new-dms-password needs --generated-dms-password-file FILE: the generated password goes to that new file (mode 0600), never to the terminal")
	}

	t, err := df.target(ctx, df.stack != "")
	if err != nil {
		return err
	}
	var password string
	if *passwordEnv != "" {
		if password = os.Getenv(*passwordEnv); password == "" {
			return fmt.Errorf("--dms-password-env: environment variable %s is empty or not set", *passwordEnv)
		}
	}

	fmt.Fprintf(stdout, "Database: %s\n", t.Description)
	db, err := t.Open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()

	// What happens to dms_user's password, said afterwards.
	var outcome, generated string
	keep := false
	switch {
	case t.Replication != nil:
		password = t.Replication.Password
		outcome = "password is the one in the stack's replication secret."
	case password != "":
		outcome = "password is set from $" + *passwordEnv + "."
	default:
		exists, err := ops.ReplicationUserExists(ctx, db)
		if err != nil {
			return err
		}
		switch {
		case exists && !*newPassword:
			keep = true
			outcome = "existing password is kept (--new-dms-password generates a new one)."
		case !exists && *passwordFile == "":
			return fmt.Errorf("%s does not exist yet and needs a password: pass --dms-password-env VAR, or --generated-dms-password-file FILE for a generated one (nothing was changed)", schemasetup.ReplicationUser)
		default:
			generated = ops.GeneratePassword()
			// Written before the script runs: a password the database
			// holds must never exist only in this process.
			if err := writePasswordFile(*passwordFile, generated); err != nil {
				return fmt.Errorf("--generated-dms-password-file: %w (nothing was changed)", err)
			}
			what := "password, generated for the new user,"
			if exists {
				what = "password is changed to a new one, which"
			}
			outcome = fmt.Sprintf("%s is in %s (mode 0600): store it in Secrets Manager for the DMS endpoint, then delete the file.", what, *passwordFile)
		}
		password = generated
	}

	started := time.Now()
	fmt.Fprintf(stdout, "Applying %s ... ", schemasetup.ScriptName)
	var n int
	if keep {
		n, err = ops.SetupSchemaKeepingPassword(ctx, db)
	} else {
		n, err = ops.SetupSchema(ctx, t, db, password)
	}
	if err != nil {
		fmt.Fprintln(stdout)
		if generated != "" {
			// The script may have set it before it failed.
			err = fmt.Errorf("%w\n(the generated password for %s is in %s)", err, schemasetup.ReplicationUser, *passwordFile)
		}
		if hint := ops.Hint(err); hint != "" {
			return fmt.Errorf("%w\n(%s)", err, hint)
		}
		return err
	}
	fmt.Fprintf(stdout, "%d statements in %s.\n", n, since(started))
	if !keep {
		fmt.Fprintf(stdout, "Checked: %s logs in and reads orders.order and orders.order_item.\n", schemasetup.ReplicationUser)
	}
	fmt.Fprintf(stdout, "%s's %s\n", schemasetup.ReplicationUser, outcome)
	return nil
}

// writePasswordFile writes password to a new owner-only file.
func writePasswordFile(path, password string) error {
	f, err := privatefile.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, password+"\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const seedDescription = `
Applies sql/orders-data-setup.sql (or --sql FILE) statement by statement on
one connection, as the mysql client would: the sample orders with their
items, then the updates and deletes of their life cycle. The sample script
inserts fixed ids, so it applies once, after etl db setup, to an empty
schema.
` + targetHelp

func runDBSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, df := newDBFlagSet("db seed", "db seed [flags]", seedDescription, stderr)
	file := fs.String("sql", "", "SQL `file` to apply (default: sql/orders-data-setup.sql, built into etl)")
	progressEvery := fs.Duration("progress", 5*time.Second, "how often to report progress on a long script")
	if err := df.parse(fs, args); err != nil {
		return err
	}
	name, script := "orders-data-setup.sql", etlsql.OrdersDataSetup
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		name, script = filepath.Base(*file), string(b)
	}

	t, err := df.target(ctx, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Database: %s\n", t.Description)
	db, err := t.Open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "Applying %s ...\n", name)
	started := time.Now()
	tick := newTicker(*progressEvery)
	n, err := ops.RunScript(ctx, db, name, script, func(done, total int) {
		if tick.due() {
			fmt.Fprintf(stdout, "  %5.0fs  %d/%d statements\n", time.Since(started).Seconds(), done, total)
		}
	})
	if err != nil {
		err = fmt.Errorf("after %d statements: %w", n, err)
		if hint := ops.Hint(err); hint != "" {
			err = fmt.Errorf("%w\n(%s)", err, hint)
		}
		return err
	}
	fmt.Fprintf(stdout, "Applied %d statements in %s.\n", n, since(started))
	// A script about something else may leave no orders schema to count.
	var orders, items int64
	if db.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM orders.`order`), (SELECT COUNT(*) FROM orders.order_item)").Scan(&orders, &items) == nil {
		fmt.Fprintf(stdout, "The database now holds %d orders with %d items.\n", orders, items)
	}
	return nil
}
