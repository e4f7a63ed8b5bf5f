package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/go-sql-driver/mysql"

	"github.com/unified-streaming-etl/etl/internal/cdc"
	"github.com/unified-streaming-etl/etl/internal/mariadb"
	"github.com/unified-streaming-etl/etl/internal/ops"
	"github.com/unified-streaming-etl/etl/internal/sink"
	"github.com/unified-streaming-etl/etl/internal/testenv"
	"github.com/unified-streaming-etl/etl/internal/verify"
)

func TestOperatorCommandUsage(t *testing.T) {
	t.Setenv(envDSN, "")
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string // help, asked for, goes to stdout
		stderr string
	}{
		{name: "db without a subcommand lists setup and seed", args: []string{"db"}, code: 2, stderr: "etl db seed"},
		{name: "db --help lists setup and seed", args: []string{"db", "--help"}, code: 0, stdout: "etl db setup"},
		{name: "an unknown db subcommand is a usage error", args: []string{"db", "drop"}, code: 2, stderr: `unknown db command "drop"`},
		{name: "db setup --help documents the target and password flags", args: []string{"db", "setup", "--help"}, code: 0, stdout: "-dms-password-env"},
		{name: "help db lists setup and seed", args: []string{"help", "db"}, code: 0, stdout: "etl db seed"},
		{name: "db seed --help documents --sql", args: []string{"db", "seed", "--help"}, code: 0, stdout: "-sql file"},
		{name: "load --help documents the rate", args: []string{"load", "--help"}, code: 0, stdout: "-rate"},
		{name: "verify --help documents the exit status", args: []string{"verify", "--help"}, code: 0, stdout: "Exits 0 when the table matches, 1 when it differs"},
		{name: "a command without a database says how to name one", args: []string{"db", "setup"}, code: 2, stderr: "--stack " + ops.DataStack},
		{name: "--dsn and --stack together are refused", args: []string{"db", "seed", "--dsn", "root@tcp(h)/", "--stack", "S"}, code: 2, stderr: "not both"},
		{name: "--host without --stack is refused", args: []string{"load", "--dsn", "root@tcp(h)/", "--host", "127.0.0.1"}, code: 2, stderr: "go with --stack"},
		{name: "a DMS password variable with --stack is refused", args: []string{"db", "setup", "--stack", "S", "--dms-password-env", "P"}, code: 2, stderr: "replication secret"},
		{name: "verify without a table says how to name one", args: []string{"verify", "--dsn", "root@tcp(h)/"}, code: 2, stderr: "--process-stack " + ops.ProcessStack},
		{name: "load refuses zero orders", args: []string{"load", "--dsn", "root@tcp(h)/", "--orders", "0"}, code: 2, stderr: "--orders 0: want 1 or more"},
		{name: "resend --help says what the records' version is", args: []string{"resend", "--help"}, code: 0, stdout: "database's UTC time from just before the snapshot"},
		{name: "resend without a stream says how to name one", args: []string{"resend", "--dsn", "root@tcp(h)/"}, code: 2, stderr: "--common-stack " + ops.CommonStack},
		{name: "a password in --dsn is refused, pointing to the variable", args: []string{"load", "--dsn", "root:Secret1@tcp(127.0.0.1:3306)/"}, code: 2, stderr: "Put the DSN in $" + envDSN},
		{name: "--new-dms-password without a file for it is refused", args: []string{"db", "setup", "--dsn", "root@tcp(127.0.0.1:3306)/", "--new-dms-password"}, code: 2, stderr: "--generated-dms-password-file"},
		{name: "a password file with --stack is refused", args: []string{"db", "setup", "--stack", "S", "--generated-dms-password-file", "f"}, code: 2, stderr: "replication secret"},
		{name: "the TLS waiver with --stack is refused", args: []string{"db", "seed", "--stack", "S", "--insecure-skip-tls-for-non-loopback"}, code: 2, stderr: "always verified"},
		{name: "another host without verified TLS is refused", args: []string{"db", "seed", "--dsn", "root@tcp(db.example.com:3306)/"}, code: 1, stderr: "--insecure-skip-tls-for-non-loopback"},
		{name: "--dms-password-env and --new-dms-password together are refused", args: []string{"db", "setup", "--dsn", "root@tcp(h)/", "--dms-password-env", "P", "--new-dms-password"}, code: 2, stderr: "not both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := etl(c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			if !strings.Contains(stdout, c.stdout) {
				t.Errorf("stdout lacks %q:\n%s", c.stdout, stdout)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr)
			}
		})
	}
}

func etl(args ...string) (code int, stdout, stderr string) {
	return etlRun(context.Background(), args...)
}

// The deployed database as the fake stack describes it: a name the test
// server's certificate carries, which does not resolve, so only the
// --host/--port port forward reaches it.
const (
	dbEndpoint    = "orders.c0ffee0example.us-east-1.rds.amazonaws.com"
	adminSecret   = "arn:aws:secretsmanager:us-east-1:111122223333:secret:OrdersDatabaseSecret-AbCdEf"
	replSecret    = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ReplicationSecret-AbCdEf"
	adminPassword = "Adm1nPassw0rd"
	stackDMSPass  = "Repl1cati0nPassw0rd"
)

// TestOperatorCommands runs the operator commands against a private
// MariaDB (with TLS, like RDS), dynalite as DynamoDB (reached through the
// standard SDK configuration) and in-memory fakes of the CloudFormation,
// Secrets Manager and S3 calls: setup (twice), seed, verify of a matching
// and of a changed table, load, and the --stack path through a port
// forward.
func TestOperatorCommands(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	dir := t.TempDir()
	caFile, otherCAFile, serverArgs := writeTestPKI(t, dir, dbEndpoint)

	type started struct {
		s   *mariadb.Server
		err error
	}
	ch := make(chan started, 1)
	go func() {
		s, err := mariadb.Start(ctx, mariadb.Config{ExtraArgs: serverArgs})
		ch <- started{s, err}
	}()
	dynamo := testenv.StartDynalite(t)
	st := <-ch
	if st.err != nil {
		t.Fatal(st.err)
	}
	server := st.s
	t.Cleanup(func() {
		if err := server.Stop(); err != nil {
			t.Error(err)
		}
	})
	root, err := sql.Open("mysql", server.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	// The deployed database's admin user; root stays for the DSN path.
	for _, q := range []string{
		"CREATE USER 'admin'@'%' IDENTIFIED BY '" + adminPassword + "'",
		"GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	products, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), ops.ProductsFile))
	if err != nil {
		t.Fatal(err)
	}
	useFakeAWS(t, fakeAWS{
		stacks: fakeStacks{
			ops.DataStack: {
				ops.OutputDatabaseEndpoint: dbEndpoint, ops.OutputDatabaseSecretArn: adminSecret, ops.OutputReplicationSecretArn: replSecret,
			},
			ops.ProcessStack: {
				ops.OutputTableName: "OrderEnriched", ops.OutputReferenceDataURI: "s3://reference-bucket/reference-data/products.json",
			},
			ops.CommonStack: {ops.OutputOrderStreamName: "unified-order-stream"},
		},
		secrets: fakeSecrets{
			adminSecret: fmt.Sprintf(`{"username":"admin","password":%q,"engine":"mysql","host":%q,"port":3306}`, adminPassword, dbEndpoint),
			replSecret:  fmt.Sprintf(`{"username":"dms_user","password":%q}`, stackDMSPass),
		},
		objects: fakeObjects{"reference-bucket/reference-data/products.json": products},
	})

	for k, v := range map[string]string{
		envDSN:                        server.DSN(""),
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIDOPERATORTEST",
		"AWS_SECRET_ACCESS_KEY":       "operator-test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_DYNAMODB":   dynamo,
		"TEST_DMS_PASSWORD":           "Env1ronmentPassw0rd",
		"ETL_TEST_ADMIN_PASSWORD":     adminPassword,
	} {
		t.Setenv(k, v)
	}
	port := strconv.Itoa(server.Port())
	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}
	mustRun := func(t *testing.T, args ...string) string {
		t.Helper()
		code, stdout, stderr := etl(args...)
		t.Logf("etl %s\n%s", strings.Join(args, " "), stdout)
		if code != 0 {
			t.Fatalf("etl %s: exit code %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}

	step("db setup applies the schema and is idempotent", func(t *testing.T) {
		for range 2 {
			out := mustRun(t, "db", "setup", "--dms-password-env", "TEST_DMS_PASSWORD")
			for _, want := range []string{"Applying ordersdb-setup.sql ... ", "Checked: dms_user logs in and reads orders.order and orders.order_item."} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		}
		if err := logIn(server.Addr(), "dms_user", "Env1ronmentPassw0rd"); err != nil {
			t.Errorf("dms_user cannot use the password from the environment: %v", err)
		}
	})

	step("db setup without a password keeps the existing one and says so", func(t *testing.T) {
		out := mustRun(t, "db", "setup")
		if !strings.Contains(out, "dms_user's existing password is kept") {
			t.Errorf("output does not say the password was kept:\n%s", out)
		}
		if strings.Contains(out, "mode 0600") {
			t.Errorf("a password was generated for an existing user:\n%s", out)
		}
		if err := logIn(server.Addr(), "dms_user", "Env1ronmentPassw0rd"); err != nil {
			t.Errorf("dms_user lost its password: %v", err)
		}
	})

	// readPasswordFile returns a generated password from its file, which
	// must be owner-only, and checks that the output does not show it.
	readPasswordFile := func(t *testing.T, path, out string) string {
		t.Helper()
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", path, fi.Mode())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pw := strings.TrimSpace(string(b))
		if len(pw) < 20 {
			t.Fatalf("%s holds %d characters, want a generated password", path, len(pw))
		}
		if strings.Contains(out, pw) {
			t.Errorf("the output shows the generated password:\n%s", out)
		}
		return pw
	}

	step("db setup --new-dms-password changes it and writes the new one to a 0600 file, not the terminal", func(t *testing.T) {
		file := filepath.Join(dir, "new-dms-password")
		out := mustRun(t, "db", "setup", "--new-dms-password", "--generated-dms-password-file", file)
		if !strings.Contains(out, "password is changed to a new one, which is in "+file+" (mode 0600)") {
			t.Errorf("output does not say where the password is:\n%s", out)
		}
		pw := readPasswordFile(t, file, out)
		if err := logIn(server.Addr(), "dms_user", pw); err != nil {
			t.Errorf("dms_user cannot use the password in the file: %v", err)
		}
		// A second run must not overwrite the first password's file.
		code, _, stderr := etl("db", "setup", "--new-dms-password", "--generated-dms-password-file", file)
		if code != 1 || !strings.Contains(stderr, "already exists") {
			t.Errorf("second run into the same file: exit code %d, stderr:\n%s", code, stderr)
		}
		if err := logIn(server.Addr(), "dms_user", pw); err != nil {
			t.Errorf("the refused second run changed the password: %v", err)
		}
		if err := logIn(server.Addr(), "dms_user", "Env1ronmentPassw0rd"); err == nil {
			t.Error("dms_user still logs in with the old password")
		}
	})

	step("db setup generates a password for a new dms_user into a 0600 file, and without a file changes nothing", func(t *testing.T) {
		admin, err := sql.Open("mysql", server.DSN(""))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP USER 'dms_user'@'%'"); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := etl("db", "setup")
		if code != 1 || !strings.Contains(stderr, "--generated-dms-password-file FILE") {
			t.Errorf("without a file: exit code %d, stderr:\n%s", code, stderr)
		}
		if err := logIn(server.Addr(), "dms_user", "anything"); err == nil || !strings.Contains(err.Error(), "1045") {
			t.Errorf("after the refused run: %v, want no dms_user (access denied)", err)
		}
		file := filepath.Join(dir, "dms-password")
		out := mustRun(t, "db", "setup", "--generated-dms-password-file", file)
		pw := readPasswordFile(t, file, out)
		if err := logIn(server.Addr(), "dms_user", pw); err != nil {
			t.Errorf("dms_user cannot use the password in the file: %v", err)
		}
	})

	step("db setup --stack connects through a port forward with the certificate verified for the endpoint", func(t *testing.T) {
		out := mustRun(t, "db", "setup", "--stack", ops.DataStack, "--host", "127.0.0.1", "--port", port, "--ca-bundle", caFile)
		for _, want := range []string{
			"Database: " + ops.DataStack + " database " + dbEndpoint + " as admin via 127.0.0.1:" + port + ", TLS verified",
			"password is the one in the stack's replication secret",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if err := logIn(server.Addr(), "dms_user", stackDMSPass); err != nil {
			t.Errorf("dms_user's password is not the replication secret's: %v", err)
		}
	})

	step("a certificate from another CA is refused", func(t *testing.T) {
		code, _, stderr := etl("db", "setup", "--stack", ops.DataStack, "--host", "127.0.0.1", "--port", port, "--ca-bundle", otherCAFile)
		if code != 1 || !strings.Contains(stderr, "certificate") || !strings.Contains(stderr, "--ca-bundle") {
			t.Errorf("exit code %d, stderr:\n%s", code, stderr)
		}
	})

	step("a stack that does not exist is named", func(t *testing.T) {
		code, _, stderr := etl("db", "seed", "--stack", "UnifiedStreamETLDataStak", "--ca-bundle", caFile)
		if code != 1 || !strings.Contains(stderr, "stack UnifiedStreamETLDataStak does not exist") {
			t.Errorf("exit code %d, stderr:\n%s", code, stderr)
		}
	})

	step("db seed applies the sample orders over verified TLS", func(t *testing.T) {
		out := mustRun(t, "db", "seed", "--dsn", "admin@tcp(127.0.0.1:"+port+")/", "--password-env", "ETL_TEST_ADMIN_PASSWORD",
			"--ca-bundle", caFile, "--tls-server-name", dbEndpoint)
		for _, want := range []string{"TLS verified for " + dbEndpoint, "The database now holds 7 orders with 12 items."} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	step("db seed again explains that the rows exist", func(t *testing.T) {
		code, _, stderr := etl("db", "seed")
		if code != 1 || !strings.Contains(stderr, "orders-data-setup.sql:8") || !strings.Contains(stderr, "already exist") {
			t.Errorf("exit code %d, stderr:\n%s", code, stderr)
		}
	})

	ddb := dynamodb.NewFromConfig(testenv.AWSConfig(t, dynamo))
	step("verify exits 0 when OrderEnriched holds the join", func(t *testing.T) {
		writeJoin(t, root, ddb)
		out := mustRun(t, "verify", "--table", "OrderEnriched")
		if !strings.Contains(out, "OK: OrderEnriched matches the join of the source tables (12 rows)") {
			t.Errorf("output:\n%s", out)
		}
	})

	step("verify finds the deployed table and catalogue from the process stack", func(t *testing.T) {
		out := mustRun(t, "verify", "--process-stack", ops.ProcessStack,
			"--stack", ops.DataStack, "--host", "127.0.0.1", "--port", port, "--ca-bundle", caFile)
		for _, want := range []string{
			"Table:    OrderEnriched",
			"Products: s3://reference-bucket/reference-data/products.json (1000 products)",
			"OK: OrderEnriched matches",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	step("verify after a catalogue price change exits 0 and reports the drift count", func(t *testing.T) {
		// The table holds product 17 at its old price, as the pipeline
		// leaves rows that have not changed since.
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), ops.ProductsFile))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if strings.HasPrefix(line, `{"productId":17,`) {
				line = regexp.MustCompile(`"productPrice":[0-9.]+`).ReplaceAllString(line, `"productPrice":0.01`)
			}
			lines = append(lines, line)
		}
		changed := filepath.Join(t.TempDir(), "products.json")
		if err := os.WriteFile(changed, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var rows int
		if err := root.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders.order_item i JOIN orders.`order` o USING (orderId) WHERE i.itemId = 17").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows == 0 {
			t.Fatal("no sample row has product 17; the test proves nothing")
		}

		code, out, stderr := etl("verify", "--table", "OrderEnriched", "--products", changed)
		if code != 0 {
			t.Fatalf("exit code %d\n%s\n%s", code, out, stderr)
		}
		for _, want := range []string{
			fmt.Sprintf("OK: OrderEnriched matches the join of the source tables (12 rows): nothing lost, nothing extra; catalogue drift in %d rows", rows),
			fmt.Sprintf("Catalogue drift (product columns as of the row's last change, catalogue changed since): %d\n  order 1003 item 17: productPrice: source 0.01, table ", rows),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}

		code, out, stderr = etl("verify", "--table", "OrderEnriched", "--products", changed, "--strict-catalogue")
		if code != 1 || !strings.Contains(stderr, fmt.Sprintf("catalogue drift in %d rows (--strict-catalogue)", rows)) {
			t.Errorf("--strict-catalogue: exit code %d\n%s\n%s", code, out, stderr)
		}
	})

	step("verify exits 1 and names an item that was changed in DynamoDB", func(t *testing.T) {
		_, err := ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String("OrderEnriched"),
			Key:                       sink.Key(1003, 17),
			UpdateExpression:          aws.String("SET itemQuantity = :q"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":q": &types.AttributeValueMemberN{Value: "5"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		code, out, stderr := etl("verify", "--table", "OrderEnriched")
		if code != 1 {
			t.Fatalf("exit code %d\n%s\n%s", code, out, stderr)
		}
		for _, want := range []string{
			"DIFFERENT: OrderEnriched (12 items) differs from the join of the source tables (12 rows) in 1 rows.",
			"Differing attributes: 1\n  order 1003 item 17: itemQuantity: source 4, table 5\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(stderr, "OrderEnriched differs from the source in 1 rows") {
			t.Errorf("stderr: %s", stderr)
		}
	})

	step("load commits the orders and items asked for, after the largest orderId", func(t *testing.T) {
		out := mustRun(t, "load", "--orders", "25", "--items-per-order", "3", "--rate", "0", "--workers", "3", "--progress", "1ms")
		if !strings.Contains(out, "Committed 25 orders with 75 items (orderId 1009 to 1033)") {
			t.Errorf("output:\n%s", out)
		}
		if !regexp.MustCompile(`\n +\d+s +\d+/25 orders committed`).MatchString(out) {
			t.Errorf("no progress lines:\n%s", out)
		}
		var orders, items, itemsPerOrder, unknownProducts int
		err := root.QueryRowContext(ctx, "SELECT COUNT(DISTINCT o.orderId), COUNT(*), MIN(n), SUM(i.itemId NOT BETWEEN 1 AND 1000) "+
			"FROM orders.`order` o JOIN orders.order_item i USING (orderId) "+
			"JOIN (SELECT orderId, COUNT(*) n FROM orders.order_item GROUP BY orderId) c USING (orderId) "+
			"WHERE o.orderId BETWEEN 1009 AND 1033").Scan(&orders, &items, &itemsPerOrder, &unknownProducts)
		if err != nil {
			t.Fatal(err)
		}
		if orders != 25 || items != 75 || itemsPerOrder != 3 || unknownProducts != 0 {
			t.Errorf("%d orders, %d items, at least %d items per order, %d items not in the catalogue", orders, items, itemsPerOrder, unknownProducts)
		}
	})

	step("verify counts and lists what the pipeline has not delivered", func(t *testing.T) {
		code, out, _ := etl("verify", "--table", "OrderEnriched", "--limit", "2")
		if code != 1 {
			t.Fatalf("exit code %d\n%s", code, out)
		}
		for _, want := range []string{
			"in 76 rows.",
			"Missing (in the source, not in OrderEnriched): 75\n  order 1009 item ",
			"  ... and 73 more\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	step("verify --wait passes once the pipeline has caught up", func(t *testing.T) {
		var stdout, stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"verify", "--table", "OrderEnriched", "--wait", "1m", "--interval", "100ms", "--progress", "1ns"}, &stdout, &stderr)
		}()
		// The pipeline delivers the loaded orders while verify waits.
		deadline := time.After(30 * time.Second)
		for !strings.Contains(stdout.String(), "76 rows differ (attempt 1); comparing again in 100ms") {
			select {
			case code := <-done:
				t.Fatalf("exit code %d before the table caught up:\n%s\n%s", code, stdout.String(), stderr.String())
			case <-deadline:
				t.Fatalf("no first attempt reported:\n%s", stdout.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		writeJoin(t, root, ddb)
		select {
		case code := <-done:
			out := stdout.String()
			if code != 0 || !strings.Contains(out, "OK: OrderEnriched matches the join of the source tables (87 rows)") {
				t.Errorf("exit code %d:\n%s\n%s", code, out, stderr.String())
			}
			if !regexp.MustCompile(`\n +\d+s +87 items read from OrderEnriched\n`).MatchString(out) {
				t.Errorf("no scan progress:\n%s", out)
			}
		case <-deadline:
			t.Fatalf("verify --wait did not finish:\n%s", stdout.String())
		}
	})

	step("resend puts every source row on the unified stream as a load record of one version", func(t *testing.T) {
		url := testenv.StartKinesalite(t)
		kin := kinesis.NewFromConfig(testenv.AWSConfig(t, url))
		t.Setenv("AWS_ENDPOINT_URL_KINESIS", url)
		stream := "unified-order-stream"
		if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &stream, ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		if err := kinesis.NewStreamExistsWaiter(kin).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: &stream}, time.Minute); err != nil {
			t.Fatal(err)
		}
		out := mustRun(t, "resend", "--stack", ops.DataStack, "--host", "127.0.0.1", "--port", port, "--ca-bundle", caFile,
			"--common-stack", ops.CommonStack)
		var orders, items int
		if err := root.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM orders.`order`), (SELECT COUNT(*) FROM orders.order_item)").Scan(&orders, &items); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("Sent %d orders and %d items as load records", orders, items); !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}

		shards, err := kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
		if err != nil {
			t.Fatal(err)
		}
		it, err := kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: &stream, ShardId: shards.Shards[0].ShardId, ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		versions := map[int64]bool{}
		for iter := it.ShardIterator; iter != nil; {
			page, err := kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Records {
				c, err := cdc.Decode(r.Data)
				if err != nil {
					t.Fatalf("record %s: %v", r.Data, err)
				}
				if *r.PartitionKey != strconv.FormatInt(c.OrderID, 10) || c.Operation != "load" {
					t.Errorf("record keyed %q, operation %q: want the orderId, load: %s", *r.PartitionKey, c.Operation, r.Data)
				}
				got[c.RecordType]++
				versions[c.Version] = true
			}
			if len(page.Records) == 0 {
				break
			}
			iter = page.NextShardIterator
		}
		if got["order"] != orders || got["order_item"] != items || len(versions) != 1 {
			t.Errorf("stream holds %v in %d versions, want %d orders and %d items of one version", got, len(versions), orders, items)
		}
	})
}

// logIn checks that user can log in with password and read the orders.
func logIn(addr, user, password string) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", addr
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var n int
	return db.QueryRow("SELECT COUNT(*) FROM orders.order_item").Scan(&n)
}

// writeJoin writes the join of the source tables into OrderEnriched with
// the sink handler, as the pipeline would.
func writeJoin(t *testing.T, db *sql.DB, ddb *dynamodb.Client) {
	t.Helper()
	ctx := context.Background()
	if err := sink.CreateTable(ctx, ddb, "OrderEnriched"); err != nil {
		t.Fatal(err)
	}
	cat, err := ops.LoadProducts(ctx, filepath.Join(testenv.RepoRoot(t), ops.ProductsFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := verify.Expected(ctx, db, cat)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisEvent
	for i, e := range want {
		e.Version = 1
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			EventSource: "aws:kinesis", EventSourceArn: "arn:aws:kinesis:us-east-1:111122223333:stream/enriched",
			Kinesis: events.KinesisRecord{
				Data: data, PartitionKey: strconv.FormatInt(e.OrderID, 10), SequenceNumber: strconv.Itoa(1000 + i),
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: time.Now()},
			},
		})
	}
	h, err := sink.New(sink.Config{TableName: "OrderEnriched", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, ddb, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("sink: %v, %d failures", err, len(resp.BatchItemFailures))
	}
}

// writeTestPKI writes a CA, a server certificate for name signed by it,
// and an unrelated CA, and returns the CA files and the MariaDB arguments
// that serve the certificate.
func writeTestPKI(t *testing.T, dir, name string) (caFile, otherCAFile string, serverArgs []string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(file, typ string, der []byte) string {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now()
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key, der
	}
	ca, caKey, caDER := newCA("Test RDS Root CA")
	_, _, otherDER := newCA("Some Other Root CA")
	serverKey := newKey()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano() + 1), Subject: pkix.Name{CommonName: name},
		DNSNames:  []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = write("ca.pem", "CERTIFICATE", caDER)
	otherCAFile = write("other-ca.pem", "CERTIFICATE", otherDER)
	serverArgs = []string{
		"--ssl-ca=" + caFile,
		"--ssl-cert=" + write("server.pem", "CERTIFICATE", der),
		"--ssl-key=" + write("server-key.pem", "EC PRIVATE KEY", keyDER),
	}
	return caFile, otherCAFile, serverArgs
}

// fakeAWS holds what the commands read from CloudFormation, Secrets
// Manager and S3.
type fakeAWS struct {
	stacks    fakeStacks
	resources fakeResources
	secrets   fakeSecrets
	objects   fakeObjects
}

// fakeCloudFormation describes stacks and lists their resources.
type fakeCloudFormation struct {
	fakeStacks
	fakeResources
}

// useFakeAWS makes the commands call fake for CloudFormation, Secrets
// Manager and S3 for the rest of the test; DynamoDB stays the SDK client
// built from the standard configuration.
func useFakeAWS(t *testing.T, fake fakeAWS) {
	t.Helper()
	build := newAWSClients
	t.Cleanup(func() { newAWSClients = build })
	newAWSClients = func(cfg aws.Config) awsClients {
		c := build(cfg)
		c.CloudFormation, c.SecretsManager, c.S3, c.Objects = fake.stacks, fake.secrets, fake.objects, fake.objects
		c.StackResources = fakeCloudFormation{fake.stacks, fake.resources}
		return c
	}
}

// offlineAWS gives the SDK a Region and static credentials and no profile,
// shared-credentials file or instance metadata to look for: the commands
// then load their configuration offline, for fakes to answer.
func offlineAWS(t *testing.T, region string) {
	t.Helper()
	for _, v := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDOFFLINETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "offline-test")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "no-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// fakeStacks maps a stack name to its outputs.
type fakeStacks map[string]map[string]string

// fakeAccountStack begins the ARNs of the fake stacks.
const fakeAccountStack = "arn:aws:cloudformation:eu-west-1:123456789012:stack/"

func (f fakeStacks) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	name := aws.ToString(in.StackName)
	outputs, ok := f[name]
	if !ok {
		// What CloudFormation answers for a stack that does not exist.
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + name + " does not exist", Fault: smithy.FaultClient}
	}
	s := cftypes.Stack{StackName: &name, StackId: aws.String(fakeAccountStack + name + "/0a1b"), StackStatus: cftypes.StackStatusUpdateComplete}
	for k, v := range outputs {
		s.Outputs = append(s.Outputs, cftypes.Output{OutputKey: aws.String(k), OutputValue: aws.String(v)})
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{s}}, nil
}

// fakeSecrets maps a secret ARN to its string value.
type fakeSecrets map[string]string

func (f fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s, ok := f[aws.ToString(in.SecretId)]
	if !ok {
		return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{ARN: in.SecretId, SecretString: aws.String(s)}, nil
}

// fakeObjects maps "bucket/key" to an object's body.
type fakeObjects map[string][]byte

// ListObjectsV2 lists a bucket's keys under the prefix, in key order, in
// one page.
func (f fakeObjects) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	bucket := aws.ToString(in.Bucket) + "/"
	var keys []string
	for k := range f {
		if key, ok := strings.CutPrefix(k, bucket); ok && strings.HasPrefix(key, aws.ToString(in.Prefix)) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(false)}
	for _, k := range keys {
		out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k), Size: aws.Int64(int64(len(f[bucket+k])))})
	}
	return out, nil
}

func (f fakeObjects) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	body, ok := f[aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key)]
	if !ok {
		return nil, &s3types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(body)), ETag: aws.String(`"1"`)}, nil
}
