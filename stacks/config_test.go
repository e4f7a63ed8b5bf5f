package stacks_test

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/stacks"
)

// loadConfig runs LoadConfig on a fresh App holding ctx, as `cdk synth`
// would with the same context.
func loadConfig(t *testing.T, ctx map[string]any) (stacks.Config, error) {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
	return stacks.LoadConfig(app)
}

func TestLoadConfigWithoutContextUsesTheDefaults(t *testing.T) {
	got, err := loadConfig(t, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if want := stacks.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig() = %+v\nwant the defaults %+v", got, want)
	}
}

// cdk.json holds CDK's own settings only: the app's defaults live once,
// in stacks.Settings, and what cdk.json's context makes of them is exactly
// the defaults.
func TestCDKJSONHoldsNoSettingOfTheApp(t *testing.T) {
	ctx := cdkContext(t)
	for key := range ctx {
		if !strings.HasPrefix(key, "@aws-cdk") {
			t.Errorf("cdk.json sets %q: the app's settings and their defaults live in stacks/settings.go", key)
		}
	}
	got, err := stacks.ConfigFromMap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := stacks.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("cdk.json configures %+v\nbut the defaults are %+v", got, want)
	}
}

// Every setting has a default its own parser accepts, and the keys are
// unique.
func TestEverySettingHasAValidDefault(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range stacks.Settings {
		if seen[s.Key] {
			t.Errorf("setting %q is listed twice", s.Key)
		}
		seen[s.Key] = true
		if _, err := stacks.ConfigFromMap(map[string]any{s.Key: s.Default}); err != nil {
			t.Errorf("setting %q: its default %v is refused: %v", s.Key, s.Default, err)
		}
		if s.Allowed == "" {
			t.Errorf("setting %q says nothing about its values", s.Key)
		}
	}
}

// The README's configuration table is the one generated from
// stacks.Settings.
func TestREADMEConfigurationTableIsGeneratedFromTheSettings(t *testing.T) {
	section := readmeSection(t, "### Configuration")
	want := stacks.ConfigurationTable()
	start := strings.Index(section, "| key | default | allowed |")
	if start < 0 {
		t.Fatalf("README \"Configuration\" has no table; paste this one:\n%s", want)
	}
	table := section[start:]
	if end := strings.Index(table, "\n\n"); end >= 0 {
		table = table[:end+1]
	}
	if table != want {
		t.Errorf("README \"Configuration\" table differs from stacks.Settings; paste this one:\n%s", want)
	}
}

func TestCDKJSONMakesSynthBuildAndValidate(t *testing.T) {
	ctx := cdkContext(t)
	// Template validation against the CloudFormation resource schemas fails
	// synth only with this flag; without it findings are warnings.
	if ctx["@aws-cdk/core:validateAgainstDefaultRules"] != true {
		t.Error(`cdk.json must set "@aws-cdk/core:validateAgainstDefaultRules": true so an invalid template fails synth`)
	}
}

func TestLoadConfigAcceptsEveryDocumentedForm(t *testing.T) {
	tests := []struct {
		name  string
		ctx   map[string]any
		check func(stacks.Config) bool
	}{
		{"an on-demand unified stream", map[string]any{"unifiedStreamShards": "on-demand"},
			func(c stacks.Config) bool { return c.UnifiedStream == stacks.StreamCapacity{OnDemand: true} }},
		{"a shard count given on the command line as text", map[string]any{"enrichedStreamShards": "8"},
			func(c stacks.Config) bool { return c.EnrichedStream == stacks.StreamCapacity{Shards: 8} }},
		{"a shard count from cdk.json as a number", map[string]any{"unifiedStreamShards": float64(4)},
			func(c stacks.Config) bool { return c.UnifiedStream == stacks.StreamCapacity{Shards: 4} }},
		{"a week of stream retention", map[string]any{"streamRetentionHours": float64(168)},
			func(c stacks.Config) bool { return c.StreamRetentionHours == 168 }},
		{"MySQL 8.0", map[string]any{"dbEngineVersion": "8.0"},
			func(c stacks.Config) bool { return c.DBEngineVersion == "8.0" }},
		{"an RDS class written with its db. prefix", map[string]any{"dbInstanceClass": "db.r6g.large"},
			func(c stacks.Config) bool { return c.DBInstanceClass == "r6g.large" }},
		{"Multi-AZ and deletion protection as command-line text", map[string]any{"dbMultiAz": "true", "dbDeletionProtection": "true"},
			func(c stacks.Config) bool { return c.DBMultiAZ && c.DBDeletionProtection }},
		{"a pinned older DMS version and class with MySQL 8.0", map[string]any{"dbEngineVersion": "8.0", "dmsEngineVersion": "3.5.4", "dmsInstanceClass": "dms.r5.large"},
			func(c stacks.Config) bool {
				return c.DMSEngineVersion == "3.5.4" && c.DMSInstanceClass == "dms.r5.large"
			}},
		{"a newer DMS version with MySQL 8.4", map[string]any{"dmsEngineVersion": "3.10.0"},
			func(c stacks.Config) bool { return c.DMSEngineVersion == "3.10.0" && c.DBEngineVersion == "8.4" }},
		{"DMS's default version with MySQL 8.0", map[string]any{"dbEngineVersion": "8.0", "dmsEngineVersion": ""},
			func(c stacks.Config) bool { return c.DMSEngineVersion == "" }},
		{"the original's provisioned capacity", map[string]any{"dynamoBilling": "provisioned", "dynamoWriteCapacity": float64(3000), "dynamoReadCapacity": float64(300)},
			func(c stacks.Config) bool {
				return c.DynamoBilling == stacks.BillingProvisioned && c.DynamoWriteCapacity == 3000 && c.DynamoReadCapacity == 300
			}},
		{"an account that already has the DMS roles", map[string]any{"createDmsServiceRoles": false},
			func(c stacks.Config) bool { return !c.CreateDMSServiceRoles }},
		{"a small 192.168 network", map[string]any{"vpcCidr": "192.168.16.0/20"},
			func(c stacks.Config) bool { return c.VPCCIDR == netip.MustParsePrefix("192.168.16.0/20") }},
		{"Lambda tuning at its limits", map[string]any{"batchSize": float64(10000), "parallelizationFactor": float64(10)},
			func(c stacks.Config) bool { return c.BatchSize == 10000 && c.ParallelizationFactor == 10 }},
		{"a longer tombstone and log retention", map[string]any{"joinStateTombstoneDays": "30", "logRetentionDays": float64(90)},
			func(c stacks.Config) bool { return c.JoinStateTombstoneDays == 30 && c.LogRetentionDays == 90 }},
		{"a year of stream retention with tombstones kept as long", map[string]any{"streamRetentionHours": float64(8760), "joinStateTombstoneDays": float64(365)},
			func(c stacks.Config) bool { return c.StreamRetentionHours == 8760 && c.JoinStateTombstoneDays == 365 }},
		{"a CA bundle file", map[string]any{"rdsCaBundleFile": "certs/global-bundle.pem"},
			func(c stacks.Config) bool { return c.RDSCABundleFile == "certs/global-bundle.pem" }},
		{"key users on the command line, with an SSO role pattern", map[string]any{"keyUsers": " arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataOps_*, arn:aws:iam::123456789012:role/etl-ci"},
			func(c stacks.Config) bool {
				return slices.Equal(c.KeyUsers, []string{"arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataOps_*", "arn:aws:iam::123456789012:role/etl-ci"})
			}},
		{"key users from cdk.json as a list", map[string]any{"keyUsers": []any{"arn:aws-us-gov:iam::123456789012:user/oncall"}},
			func(c stacks.Config) bool {
				return slices.Equal(c.KeyUsers, []string{"arn:aws-us-gov:iam::123456789012:user/oncall"})
			}},
		{"key users from cdk.json as a list with empty entries", map[string]any{"keyUsers": []any{"", " arn:aws:iam::123456789012:role/etl-ci ", "  "}},
			func(c stacks.Config) bool {
				return slices.Equal(c.KeyUsers, []string{"arn:aws:iam::123456789012:role/etl-ci"})
			}},
		{"no key users in an empty list", map[string]any{"keyUsers": []any{""}},
			func(c stacks.Config) bool { return c.KeyUsers == nil }},
		{"no key users", map[string]any{"keyUsers": ""},
			func(c stacks.Config) bool { return c.KeyUsers == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(t, tt.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(got) {
				t.Errorf("context %v gave %+v", tt.ctx, got)
			}
		})
	}
}

func TestLoadConfigNamesTheKeyAndTheAllowedValuesOfABadValue(t *testing.T) {
	tests := []struct {
		key   string
		value any
		want  string // part of the message listing what is allowed
	}{
		// kda_test.go checks that the list holds "kda-sql" too.
		{"processor", "flink", `"lambda"`},
		{"processor", float64(1), `"lambda"`},
		{"unifiedStreamShards", float64(0), `"on-demand" or a shard count from 1 to 500`},
		{"enrichedStreamShards", "ondemand", `"on-demand" or a shard count`},
		{"enrichedStreamShards", float64(2.5), `"on-demand" or a shard count`},
		{"streamRetentionHours", float64(12), "an integer from 24 to 8760"},
		{"dbEngineVersion", "5.7", `"8.4", "8.0"`},
		{"dbEngineVersion", "8.4.3", `"8.4", "8.0"`},
		{"dbInstanceClass", "small", "an RDS instance class"},
		{"dbAllocatedStorageGiB", float64(10), "an integer from 20 to 65536"},
		{"dbMultiAz", "yes", "true or false"},
		{"dbDeletionProtection", float64(1), "true or false"},
		{"dmsInstanceClass", "t3.medium", `a DMS instance class such as "dms.t3.medium"`},
		{"dmsEngineVersion", "latest", "empty (the service default) or a DMS version"},
		{"batchSize", float64(0), "an integer from 1 to 10000"},
		{"batchSize", "five hundred", "an integer from 1 to 10000"},
		{"parallelizationFactor", float64(11), "an integer from 1 to 10"},
		{"dynamoBilling", "PAY_PER_REQUEST", `"on-demand", "provisioned"`},
		{"dynamoReadCapacity", float64(0), "an integer from 1 to 40000"},
		{"dynamoWriteCapacity", float64(-5), "an integer from 1 to 40000"},
		{"createDmsServiceRoles", "no", "true or false"},
		{"vpcCidr", "8.8.0.0/16", "a private range"},
		{"vpcCidr", "10.0.0.0/8", "a prefix from /16 to /24"},
		{"vpcCidr", "10.0.0.1/16", "a private range"},
		{"vpcCidr", "fd00::/48", "an IPv4 network"},
		{"joinStateTombstoneDays", float64(0), "an integer from 14 to 3650: tombstones of deleted rows must outlive"},
		{"joinStateTombstoneDays", float64(13), "(streamRetentionHours=24, the event source mappings' maximum record age of 24h0m0s, the 14-day replay window)"},
		{"joinStateTombstoneDays", float64(3651), "an integer from 14 to 3650"},
		{"joinStateTombstoneDays", "two weeks", "an integer from 14 to 3650"},
		{"logRetentionDays", float64(31), "a CloudWatch Logs retention in days, one of [1 3 5 7 14 30"},
		{"rdsCaBundleFile", true, "a path to a PEM file"},
		// Every principal of the account, or of every account, would make
		// the key policy name nobody.
		{"keyUsers", "*", "IAM role or user ARNs of this account"},
		{"keyUsers", "arn:aws:iam::123456789012:role/*", `not a bare "*"`},
		{"keyUsers", "arn:aws:iam::123456789012:root", "IAM role or user ARNs of this account"},
		{"keyUsers", "arn:aws:iam::*:role/ops", "IAM role or user ARNs of this account"},
		{"keyUsers", "arn:aws:sts::123456789012:assumed-role/ops/alice", "IAM role or user ARNs of this account"},
		{"keyUsers", []any{"arn:aws:iam::123456789012:role/ops", float64(1)}, "IAM role or user ARNs of this account"},
	}
	for _, tt := range tests {
		t.Run(tt.key+" set to "+describe(tt.value), func(t *testing.T) {
			_, err := loadConfig(t, map[string]any{tt.key: tt.value})
			if err == nil {
				t.Fatalf("LoadConfig accepted %s=%v", tt.key, tt.value)
			}
			msg := err.Error()
			if !strings.Contains(msg, `context "`+tt.key+`"`) {
				t.Errorf("error %q does not name the key %q", msg, tt.key)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say what is allowed (%s)", msg, tt.want)
			}
		})
	}
}

func TestLoadConfigRefusesMySQL84WithADMSEngineThatCannotReadIt(t *testing.T) {
	t.Run("the default DMS engine supports the default MySQL", func(t *testing.T) {
		if c := stacks.DefaultConfig(); c.DBEngineVersion != "8.4" || c.DMSEngineVersion != stacks.MinDMSEngineVersionForMySQL84 {
			t.Errorf("defaults: MySQL %q with DMS %q, want 8.4 with %s", c.DBEngineVersion, c.DMSEngineVersion, stacks.MinDMSEngineVersionForMySQL84)
		}
	})
	for _, dms := range []string{"3.5.4", "3.6.0", "2.9.99", ""} {
		t.Run("dmsEngineVersion "+strconv.Quote(dms), func(t *testing.T) {
			_, err := loadConfig(t, map[string]any{"dbEngineVersion": "8.4", "dmsEngineVersion": dms})
			if err == nil {
				t.Fatalf("LoadConfig accepted MySQL 8.4 with DMS %q", dms)
			}
			for _, want := range []string{`context "dmsEngineVersion"`, stacks.MinDMSEngineVersionForMySQL84 + " or newer", `"dbEngineVersion"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestLoadConfigReportsEveryBadKeyAtOnce(t *testing.T) {
	_, err := loadConfig(t, map[string]any{"processor": "spark", "batchSize": float64(0), "vpcCidr": "1.2.3.0/24"})
	if err == nil {
		t.Fatal("LoadConfig accepted three bad values")
	}
	for _, key := range []string{"processor", "batchSize", "vpcCidr"} {
		if !strings.Contains(err.Error(), `context "`+key+`"`) {
			t.Errorf("error %q does not mention %s", err, key)
		}
	}
}

func describe(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func TestJoinStateTombstonesOutliveWhatCanStillBeReplayed(t *testing.T) {
	tests := []struct {
		name string
		ctx  map[string]any
		want string // empty: accepted
	}{
		{"the defaults", map[string]any{}, ""},
		{"a week of stream retention keeps the two-week minimum of the replay window", map[string]any{"streamRetentionHours": float64(168)}, ""},
		{"a month of stream retention with the default tombstones", map[string]any{"streamRetentionHours": float64(720)},
			`context "joinStateTombstoneDays": got 14 (int), want an integer from 30 to 3650`},
		{"a month of stream retention with tombstones kept as long", map[string]any{"streamRetentionHours": float64(720), "joinStateTombstoneDays": float64(30)}, ""},
		{"stream retention that is not a whole number of days rounds the minimum up", map[string]any{"streamRetentionHours": float64(745), "joinStateTombstoneDays": float64(31)},
			"want an integer from 32 to 3650"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(t, tt.ctx)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.JoinStateTombstoneDays < stacks.MinJoinStateTombstoneDays(c) {
					t.Errorf("accepted %d tombstone days, below the minimum %d", c.JoinStateTombstoneDays, stacks.MinJoinStateTombstoneDays(c))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTheReplacedJoinStateTTLKeyFailsNamingItsReplacement(t *testing.T) {
	_, err := loadConfig(t, map[string]any{"joinStateTtlDays": float64(7)})
	if err == nil {
		t.Fatal("LoadConfig accepted joinStateTtlDays, which no longer means what it did")
	}
	for _, want := range []string{`context "joinStateTtlDays"`, `replaced by "joinStateTombstoneDays"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// The stack configures the enrich Lambda through its environment (the
// variable is enrich.EnvTombstoneDays itself); both sides must agree on
// the default retention.
func TestTombstoneRetentionContractWithTheEnrichLambda(t *testing.T) {
	if got := time.Duration(stacks.DefaultJoinStateTombstoneDays) * 24 * time.Hour; got != enrich.DefaultTombstoneRetention {
		t.Errorf("stack default %v, enrich default %v", got, enrich.DefaultTombstoneRetention)
	}
}

func TestLoadConfigRejectsUnknownKeys(t *testing.T) {
	t.Run("a misspelt key fails with the nearest valid key suggested", func(t *testing.T) {
		_, err := loadConfig(t, map[string]any{"processer": "lambda"})
		if err == nil {
			t.Fatal("LoadConfig accepted the unknown key processer")
		}
		if msg := err.Error(); !strings.Contains(msg, `"processer"`) || !strings.Contains(msg, `did you mean "processor"?`) {
			t.Errorf("error %q should name the key and suggest processor", msg)
		}
	})

	t.Run("a key in another case is suggested in its right case", func(t *testing.T) {
		_, err := loadConfig(t, map[string]any{"batchsize": "100"})
		if err == nil || !strings.Contains(err.Error(), `did you mean "batchSize"?`) {
			t.Errorf("error = %v, want a suggestion of batchSize", err)
		}
	})

	t.Run("a key like no setting points to the list of settings", func(t *testing.T) {
		_, err := loadConfig(t, map[string]any{"colour": "blue"})
		if err == nil || !strings.Contains(err.Error(), `"colour"`) || !strings.Contains(err.Error(), "README.md") {
			t.Errorf("error = %v, want one naming colour and where the settings are listed", err)
		}
	})

	t.Run("unknown keys and bad values are reported together", func(t *testing.T) {
		_, err := loadConfig(t, map[string]any{"processer": "x", "batchSize": "0"})
		if err == nil || !strings.Contains(err.Error(), `"processer"`) || !strings.Contains(err.Error(), `"batchSize"`) {
			t.Errorf("error = %v, want both problems", err)
		}
	})

	t.Run("CDK's own keys are accepted", func(t *testing.T) {
		ctx := map[string]any{
			"@aws-cdk/core:newStyleStackSynthesis":                              true,
			"@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver": true,
			"aws:cdk:version-reporting":                                         false,
			"aws:cdk:bundling-stacks":                                           []any{"**"},
			"aws:cdk:enable-path-metadata":                                      true,
			"availability-zones:account=123456789012:region=us-east-1":          []any{"us-east-1a"},
			"acknowledged-issue-numbers":                                        []any{float64(32775)},
		}
		if _, err := loadConfig(t, ctx); err != nil {
			t.Errorf("LoadConfig rejected CDK's own keys: %v", err)
		}
	})

	t.Run("ConfigFromMap (cdk.json) rejects unknown keys too", func(t *testing.T) {
		_, err := stacks.ConfigFromMap(map[string]any{"dataLak": false})
		if err == nil || !strings.Contains(err.Error(), `did you mean "dataLake"?`) {
			t.Errorf("error = %v, want a suggestion of dataLake", err)
		}
	})
}
