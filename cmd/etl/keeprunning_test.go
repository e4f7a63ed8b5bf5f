package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/unified-streaming-etl/etl/internal/sink"
)

// TestKeepRunningExportsServeVerifyRepairReplay takes nothing but the
// export lines etl local --keep-running prints, and with them runs
// etl verify, etl repair and etl replay against the running pipeline as
// an operator would against AWS: a row deleted behind the pipeline's back
// is found, repaired, and the failure directory replays (empty here).
func TestKeepRunningExportsServeVerifyRepairReplay(t *testing.T) {
	skipShort(t)
	k := startKeepRunning(t)
	ctx, stdout := k.ctx, &k.stdout
	out := stdout.String()

	// Only the printed exports, on top of an environment without any AWS
	// configuration of the machine.
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_PROFILE": "", "AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
		"AWS_ENDPOINT_URL_KINESIS": "", "AWS_ENDPOINT_URL_DYNAMODB": "", envDSN: "",
		"ETL_TABLE": "", "ETL_STREAM": "", "ETL_FAILURES_URI": "",
	} {
		t.Setenv(k, v)
	}
	for _, m := range regexp.MustCompile(`(?m)^export ([A-Z_]+)=(.*)$`).FindAllStringSubmatch(out, -1) {
		t.Setenv(m[1], strings.Trim(m[2], "'"))
	}
	for _, name := range []string{"ETL_TABLE", "ETL_STREAM", "ETL_FAILURES_URI"} {
		if os.Getenv(name) == "" {
			t.Fatalf("no export of %s in:\n%s", name, out)
		}
	}
	for _, line := range []string{
		`go run ./cmd/etl repair --table "$ETL_TABLE" --stream "$ETL_STREAM" --wait 1m`,
		`go run ./cmd/etl replay --stream "$ETL_STREAM" --failures "$ETL_FAILURES_URI"`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks the command line %q", line)
		}
	}
	if fi, err := os.Stat(strings.TrimPrefix(os.Getenv("ETL_FAILURES_URI"), "file://")); err != nil || !fi.IsDir() {
		t.Fatalf("ETL_FAILURES_URI %s is not a directory: %v", os.Getenv("ETL_FAILURES_URI"), err)
	}

	// A row lost behind the pipeline's back, through a client configured
	// from the environment alone.
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.NewFromConfig(cfg).DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(os.Getenv("ETL_TABLE")), Key: sink.Key(1001, 2),
	}); err != nil {
		t.Fatal(err)
	}
	expand := func(args ...string) []string {
		for i, a := range args {
			args[i] = os.ExpandEnv(a)
		}
		return args
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{expand("verify", "--table", "$ETL_TABLE"), 1, "missing"},
		{expand("repair", "--table", "$ETL_TABLE", "--stream", "$ETL_STREAM", "--wait", "1m"), 0, ""},
		{expand("verify", "--table", "$ETL_TABLE"), 0, ""},
		{expand("replay", "--stream", "$ETL_STREAM", "--failures", "$ETL_FAILURES_URI"), 0, ""},
	} {
		code, o, e := etlRun(ctx, c.args...)
		if code != c.code || !strings.Contains(strings.ToLower(o+e), c.want) {
			t.Errorf("etl %s: exit %d (want %d), output lacks %q:\n%s\n%s", strings.Join(c.args, " "), code, c.code, c.want, o, e)
		}
	}

	k.stop(t)
}

func TestLocalFaultsFlag(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"local --faults 1", "--faults 1: want a rate from 0 to below 1"},
		{"local --faults -0.1", "--faults -0.1: want a rate from 0 to below 1"},
		{"local bench --faults 1.5", "--faults 1.5: want a rate from 0 to below 1"},
		{"local --faults NaN", "--faults NaN: want a rate from 0 to below 1"},
	} {
		code, _, e := etlRun(context.Background(), strings.Fields(c.args)...)
		if code != 2 || !strings.Contains(e, c.want) {
			t.Errorf("etl %s: exit %d, stderr %q; want 2 and %q", c.args, code, e, c.want)
		}
	}
	t.Run("the demo survives faults and says how many of each kind it injected", func(t *testing.T) {
		skipShort(t)
		code, o, e := etlRun(context.Background(), "local", "--faults", "0.2")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, o, e)
		}
		want := regexp.MustCompile(`Faults \(--faults 0\.2\): \d+ of \d+ AWS calls of the handlers and the CDC writer: \d+ throttling, \d+ 5xx, \d+ timeouts before the request, \d+ responses lost after it was applied;\n  \d+ retried with the same request, \d+ not \(yet\)`)
		if !want.MatchString(o) || !strings.Contains(o, "Check: OrderEnriched matches the join") {
			t.Errorf("no fault summary matching %s, or no clean check, in:\n%s", want, o)
		}
	})
}
