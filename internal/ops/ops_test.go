package ops

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/unified-streaming-etl/etl/internal/rdsca"
	"github.com/unified-streaming-etl/etl/internal/repo"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/go-sql-driver/mysql"
)

type fakeCloudFormation struct {
	stacks map[string]cftypes.Stack
}

func (f fakeCloudFormation) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	s, ok := f.stacks[*in.StackName]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + *in.StackName + " does not exist"}
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{s}}, nil
}

func stack(status cftypes.StackStatus, outputs map[string]string) cftypes.Stack {
	s := cftypes.Stack{StackStatus: status}
	for k, v := range outputs {
		s.Outputs = append(s.Outputs, cftypes.Output{OutputKey: aws.String(k), OutputValue: aws.String(v)})
	}
	return s
}

type fakeSecrets map[string]string

func (f fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s, ok := f[*in.SecretId]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret."}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(s)}, nil
}

const (
	endpoint    = "orders.c0ffee.eu-west-1.rds.amazonaws.com"
	adminArn    = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:admin-AbCdEf"
	replArn     = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:repl-AbCdEf"
	adminSecret = `{"username":"admin","password":"s3cr3t-admin","engine":"mysql","host":"` + endpoint + `","port":3306}`
)

func dataStack() fakeCloudFormation {
	return fakeCloudFormation{stacks: map[string]cftypes.Stack{
		DataStack: stack(cftypes.StackStatusUpdateComplete, map[string]string{
			OutputDatabaseEndpoint: endpoint, OutputDatabaseSecretArn: adminArn, OutputReplicationSecretArn: replArn,
		}),
		"Half": stack(cftypes.StackStatusRollbackComplete, map[string]string{OutputDatabaseEndpoint: endpoint}),
	}}
}

func TestStackOutputs(t *testing.T) {
	cf := dataStack()
	t.Run("an output of a deployed stack is read", func(t *testing.T) {
		o, err := StackOutputs(context.Background(), cf, DataStack)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := o.Get(OutputDatabaseEndpoint); err != nil || v != endpoint {
			t.Errorf("DatabaseEndpoint = %q, %v", v, err)
		}
	})
	t.Run("a missing output names the stack, its status and the output", func(t *testing.T) {
		o, err := StackOutputs(context.Background(), cf, "Half")
		if err != nil {
			t.Fatal(err)
		}
		_, err = o.Get(OutputDatabaseSecretArn)
		for _, want := range []string{"Half", "ROLLBACK_COMPLETE", OutputDatabaseSecretArn} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not mention %s", err, want)
			}
		}
	})
	t.Run("a stack that does not exist points at the name, profile and Region", func(t *testing.T) {
		_, err := StackOutputs(context.Background(), cf, "Nope")
		if err == nil || !strings.Contains(err.Error(), "Nope does not exist") || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestFailuresURIIsTheWholeFailureBucket(t *testing.T) {
	o := Outputs{Stack: ProcessStack, Status: "UPDATE_COMPLETE", values: map[string]string{OutputFailureBucketName: "failures-abc"}}
	if uri, err := o.FailuresURI(); err != nil || uri != "s3://failures-abc/" {
		t.Errorf("FailuresURI = %q, %v; want s3://failures-abc/", uri, err)
	}
	old := Outputs{Stack: ProcessStack, Status: "UPDATE_COMPLETE", values: map[string]string{}}
	if _, err := old.FailuresURI(); err == nil || !strings.Contains(err.Error(), OutputFailureBucketName) {
		t.Errorf("a stack without the bucket: error %v, want one naming %s", err, OutputFailureBucketName)
	}
}

func TestReadCredentials(t *testing.T) {
	for _, c := range []struct {
		name, secret string
		want         Credentials
		err          string
	}{
		{name: "an RDS secret gives user, password, host and numeric port", secret: adminSecret,
			want: Credentials{Username: "admin", Password: "s3cr3t-admin", Host: endpoint, Port: 3306}},
		{name: "a hand-made secret may give the port as a string", secret: `{"username":"u","password":"p","port":"3307"}`,
			want: Credentials{Username: "u", Password: "p", Port: 3307}},
		{name: "a secret without a port leaves it zero", secret: `{"username":"dms_user","password":"p"}`,
			want: Credentials{Username: "dms_user", Password: "p"}},
		{name: "a secret without a password is refused", secret: `{"username":"u"}`, err: "lacks a username or a password"},
		{name: "a port out of range is refused", secret: `{"username":"u","password":"p","port":70000}`, err: "not a TCP port"},
		{name: "a secret that is not JSON is refused without echoing it", secret: `password=hunter2`, err: "not a JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadCredentials(context.Background(), fakeSecrets{"arn": c.secret}, "arn")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want %q", err, c.err)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), `"p"`) {
					t.Errorf("the error leaks the secret: %v", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// testCA returns a CA certificate as PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestStackTarget(t *testing.T) {
	ca := testCA(t)
	secrets := fakeSecrets{adminArn: adminSecret, replArn: `{"username":"dms_user","password":"repl-pw"}`}
	t.Run("the endpoint and admin secret are used, over verified TLS", func(t *testing.T) {
		tg, err := StackTarget(context.Background(), dataStack(), secrets, StackOptions{Stack: DataStack, TLS: TLSOptions{CABundle: ca}})
		if err != nil {
			t.Fatal(err)
		}
		c := tg.Config
		if c.Addr != endpoint+":3306" || c.User != "admin" || c.Passwd != "s3cr3t-admin" {
			t.Errorf("addr %s user %s", c.Addr, c.User)
		}
		if c.TLS == nil || c.TLS.InsecureSkipVerify || c.TLS.ServerName != endpoint || c.TLS.RootCAs == nil {
			t.Errorf("TLS config %+v", c.TLS)
		}
		if tg.Replication != nil {
			t.Error("the replication secret was read without being asked for")
		}
		if strings.Contains(tg.Description, "s3cr3t") {
			t.Errorf("description leaks the password: %s", tg.Description)
		}
	})
	t.Run("a port forward is dialled but the certificate is checked for the endpoint", func(t *testing.T) {
		tg, err := StackTarget(context.Background(), dataStack(), secrets, StackOptions{
			Stack: DataStack, Host: "127.0.0.1", Port: 13306, TLS: TLSOptions{CABundle: ca}, Replication: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if tg.Config.Addr != "127.0.0.1:13306" || tg.Config.TLS.ServerName != endpoint {
			t.Errorf("addr %s, server name %s", tg.Config.Addr, tg.Config.TLS.ServerName)
		}
		if tg.Replication == nil || tg.Replication.Password != "repl-pw" {
			t.Errorf("replication credentials %+v", tg.Replication)
		}
		if !strings.Contains(tg.Description, "via 127.0.0.1:13306") {
			t.Errorf("description %q does not say the port forward is used", tg.Description)
		}
	})
	t.Run("a replication secret for another user is refused", func(t *testing.T) {
		s := fakeSecrets{adminArn: adminSecret, replArn: `{"username":"someone","password":"x"}`}
		_, err := StackTarget(context.Background(), dataStack(), s, StackOptions{Stack: DataStack, TLS: TLSOptions{CABundle: ca}, Replication: true})
		if err == nil || !strings.Contains(err.Error(), `"someone"`) || !strings.Contains(err.Error(), "dms_user") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("no CA bundle is an error, never unverified TLS", func(t *testing.T) {
		_, err := StackTarget(context.Background(), dataStack(), secrets, StackOptions{Stack: DataStack})
		if err == nil || !strings.Contains(err.Error(), "CA bundle") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestDSNTarget(t *testing.T) {
	ca := testCA(t)
	for _, c := range []struct {
		name       string
		dsn, pw    string
		opts       TLSOptions
		check      func(t *testing.T, c *mysql.Config)
		err        string
		descNoLeak string
	}{
		{
			name: "the password from the environment replaces the DSN's", dsn: "admin@tcp(127.0.0.1:3306)/", pw: "from-env",
			check: func(t *testing.T, c *mysql.Config) {
				if c.Passwd != "from-env" || c.User != "admin" || c.TLS != nil {
					t.Errorf("user %s password %s TLS %v", c.User, c.Passwd, c.TLS)
				}
			},
		},
		{
			name: "a CA bundle turns on verified TLS for the DSN's host", dsn: "admin:pw@tcp(db.example.com:3306)/", opts: TLSOptions{CABundle: ca},
			check: func(t *testing.T, c *mysql.Config) {
				if c.TLS == nil || c.TLS.ServerName != "db.example.com" || c.TLS.RootCAs == nil || c.TLS.InsecureSkipVerify {
					t.Errorf("TLS %+v", c.TLS)
				}
			},
			descNoLeak: "pw@",
		},
		{
			name: "a TLS server name applies to a tunnel's address", dsn: "admin:pw@tcp(127.0.0.1:13306)/?tls=true", opts: TLSOptions{ServerName: "db.example.com"},
			check: func(t *testing.T, c *mysql.Config) {
				if c.TLS == nil || c.TLS.ServerName != "db.example.com" {
					t.Errorf("TLS %+v", c.TLS)
				}
			},
		},
		{
			name: "parseTime is turned off so DATETIME(3) reads exactly", dsn: "root@tcp(127.0.0.1:3306)/?parseTime=true",
			check: func(t *testing.T, c *mysql.Config) {
				if c.ParseTime || c.Timeout != dialTimeout {
					t.Errorf("parseTime %v timeout %s", c.ParseTime, c.Timeout)
				}
			},
		},
		{name: "another host without TLS is refused", dsn: "admin@tcp(db.example.com:3306)/", err: "--insecure-skip-tls-for-non-loopback"},
		{name: "another host with unverified TLS is refused", dsn: "admin@tcp(10.0.0.5:3306)/?tls=skip-verify", err: "needs verified TLS"},
		{name: "another host with TLS that may fall back to plaintext is refused", dsn: "admin@tcp(db.example.com:3306)/?tls=preferred", err: "needs verified TLS"},
		{
			name: "another host without TLS is allowed when the risk is accepted", dsn: "admin@tcp(db.example.com:3306)/", opts: TLSOptions{InsecureSkipTLSForNonLoopback: true},
			check: func(t *testing.T, c *mysql.Config) {
				if c.TLS != nil {
					t.Errorf("TLS %+v", c.TLS)
				}
			},
		},
		{
			name: "another host with tls=true (the system's CAs) is allowed", dsn: "admin@tcp(db.example.com:3306)/?tls=true",
			check: func(t *testing.T, c *mysql.Config) {
				if c.TLS == nil || c.TLS.InsecureSkipVerify {
					t.Errorf("TLS %+v", c.TLS)
				}
			},
		},
		{name: "localhost needs no TLS", dsn: "root@tcp(localhost:3306)/", check: func(*testing.T, *mysql.Config) {}},
		{name: "IPv6 loopback needs no TLS", dsn: "root@tcp([::1]:3306)/", check: func(*testing.T, *mysql.Config) {}},
		{name: "a Unix socket needs no TLS", dsn: "root@unix(/run/mysqld/mysqld.sock)/", check: func(*testing.T, *mysql.Config) {}},
		{name: "a TLS server name without TLS is refused", dsn: "root@tcp(127.0.0.1:3306)/", opts: TLSOptions{ServerName: "x"}, err: "needs verified TLS"},
		{name: "a malformed DSN is refused", dsn: "root@tcp(127.0.0.1:3306", err: "not a go-sql-driver/mysql DSN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, err := DSNTarget(c.dsn, c.pw, c.opts)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, tg.Config)
			if c.descNoLeak != "" && strings.Contains(tg.Description, c.descNoLeak) {
				t.Errorf("description leaks the password: %s", tg.Description)
			}
		})
	}
}

func TestCertPool(t *testing.T) {
	ca := testCA(t)
	for _, c := range []struct {
		name, bundle, err string
	}{
		{name: "certificates are accepted", bundle: string(ca) + string(ca)},
		{name: "an empty file is refused", bundle: "", err: "no PEM certificates"},
		{name: "a private key is refused", bundle: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", err: `unexpected PEM block "PRIVATE KEY"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := rdsca.CertPool([]byte(c.bundle))
			if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Errorf("error = %v, want %q", err, c.err)
			}
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	valid := regexp.MustCompile(`^[` + passwordAlphabet + `]{24}$`)
	for range 200 {
		p := GeneratePassword()
		if !valid.MatchString(p) || !strings.ContainsAny(p, "ABCDEFGHJKLMNPQRSTUVWXYZ") ||
			!strings.ContainsAny(p, "abcdefghijkmnopqrstuvwxyz") || !strings.ContainsAny(p, "23456789") {
			t.Fatalf("password %q lacks a character class or has a character that needs quoting", p)
		}
		if seen[p] {
			t.Fatalf("password %q generated twice", p)
		}
		seen[p] = true
	}
}

func TestHint(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"a missing table asks for db setup", &mysql.MySQLError{Number: 1146, Message: "Table 'orders.order' doesn't exist"}, "etl db setup"},
		{"a duplicate key says the sample data is there", &mysql.MySQLError{Number: 1062}, "already exist"},
		{"a denied privilege asks for the admin user", &mysql.MySQLError{Number: 1142}, "admin user"},
		{"other errors get no hint", errors.New("boom"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Hint(errors.Join(errors.New("wrapped"), c.err))
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Errorf("Hint = %q, want %q", got, c.want)
			}
		})
	}
}

// TestStacksDeclareTheOutputsRead guards the contract with the stacks:
// the commands find everything through these names and outputs.
func TestStacksDeclareTheOutputsRead(t *testing.T) {
	output := func(name string) *regexp.Regexp { return regexp.MustCompile(`\{"` + name + `", "`) }
	for file, decls := range map[string][]*regexp.Regexp{
		"data.go":    {output(OutputDatabaseEndpoint), output(OutputDatabaseSecretArn), output(OutputReplicationSecretArn)},
		"process.go": {output(OutputTableName), output(OutputReferenceDataURI), output(OutputFailureBucketName)},
		"common.go":  {output(OutputOrderStreamName)},
		"defaults.go": {
			regexp.MustCompile(`CommonStackName\s*=\s*"` + CommonStack + `"`),
			regexp.MustCompile(`DataStackName\s*=\s*"` + DataStack + `"`),
			regexp.MustCompile(`ProcessStackName\s*=\s*"` + ProcessStack + `"`),
		},
	} {
		src, err := os.ReadFile(filepath.Join("..", "..", "stacks", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range decls {
			if !d.Match(src) {
				t.Errorf("stacks/%s has nothing matching %s", file, d)
			}
		}
	}
}

func TestRDSCABundle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node; skipped under -short")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := rdsca.FromPackage(context.Background(), filepath.Join(root, rdsca.PackageDir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rdsca.CertPool(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Error("no certificates")
	}
	// The bundle must hold the CA the database is pinned to.
	found := false
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err == nil && c.Subject.CommonName == "Amazon RDS eu-west-1 Root CA RSA2048 G1" {
			found = true
		}
	}
	if !found {
		t.Error("no Amazon RDS eu-west-1 Root CA RSA2048 G1 in the bundle")
	}
}
