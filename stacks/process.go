package stacks

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Join state table keys (the enrich Lambda's contract).
const (
	StatePartitionKey = "pk"
	StateSortKey      = "sk"
	StateTTLAttribute = "ttl"
)

// ProcessStackProps configures the process stack.
type ProcessStackProps struct {
	awscdk.StackProps
	Config Config
	// OrderStream is the unified order stream the processor reads.
	OrderStream awskinesis.IStream
	// Key encrypts the stack's stream, tables and queues.
	Key awskms.IKey
	// LambdaDir holds the built functions: <LambdaDir>/<name>/bootstrap.
	LambdaDir string
	// ReferenceDataDir holds products.json, deployed to the reference bucket.
	ReferenceDataDir string
	// RootDir is the module root (Inputs.RootDir).
	RootDir string
	// AlarmTopic receives the stack's alarms; nil: no alarms.
	AlarmTopic awssns.ITopic
	// DMSAlarms are the data stack's alarms, shown on the dashboard.
	DMSAlarms []awscloudwatch.IAlarm
}

// ProcessStack holds the processor between the unified stream and
// OrderEnriched, with the enriched stream and the sink when the shape has
// them (docs/design.md §1.1).
type ProcessStack struct {
	awscdk.Stack
	// ReferenceBucket holds products.json.
	ReferenceBucket awss3.Bucket
	// EnrichedStream carries enriched order-item records (docs/design.md §3.4).
	EnrichedStream awskinesis.Stream
	// OrderEnrichedTable is the pipeline's result (docs/design.md §3.5).
	OrderEnrichedTable awsdynamodb.Table
	Sink               awslambda.Function
	SinkDLQ            awssqs.Queue

	// Set with processor=lambda.
	Enrich         awslambda.Function
	EnrichDLQ      awssqs.Queue
	JoinStateTable awsdynamodb.Table

	// FailureBucket holds the batches the event source mappings gave up
	// on, records included (failures.go).
	FailureBucket awss3.Bucket

	// Set with dataLake=true: the raw archive of the unified stream.
	RawArchiveBucket awss3.Bucket
	RawArchive       awskinesisfirehose.DeliveryStream

	// Alarms and Dashboard watch the pipeline (set with AlarmTopic).
	Alarms    []awscloudwatch.Alarm
	Dashboard awscloudwatch.Dashboard
}

// NewProcessStack creates the process stack: the processor between the
// unified stream and OrderEnriched, with the enriched stream and the sink
// when the shape has them (docs/design.md §1.1).
func NewProcessStack(scope constructs.Construct, id string, props ProcessStackProps) (*ProcessStack, error) {
	cfg := props.Config
	def, ok := processors[cfg.Processor]
	if !ok {
		return nil, fmt.Errorf("context %q: no processor %q in this build", KeyProcessor, cfg.Processor)
	}
	functions := def.functions
	if def.viaSink {
		functions = append([]string{FunctionSink}, functions...)
	}
	assets, err := functionAssets(props.LambdaDir, functions...)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(props.ReferenceDataDir, ReferenceDataKey)); err != nil {
		return nil, fmt.Errorf("reference data: %w", err)
	}

	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	s := &ProcessStack{Stack: stack}
	retention := cfg.logRetention()
	reference := newReferenceData(stack, cfg, props.ReferenceDataDir, retention)
	s.ReferenceBucket = reference.bucket
	if cfg.hasEnrichedStream() {
		s.EnrichedStream = newStream(stack, "EnrichedStream", cfg.EnrichedStream, cfg.StreamRetentionHours, props.Key)
	}
	s.OrderEnrichedTable = awsdynamodb.NewTable(stack, jsii.String("OrderEnriched"), withBilling(tableProps(props.Key,
		&awsdynamodb.Attribute{Name: jsii.String("orderId"), Type: awsdynamodb.AttributeType_NUMBER},
		&awsdynamodb.Attribute{Name: jsii.String("itemId"), Type: awsdynamodb.AttributeType_NUMBER}), cfg))
	s.FailureBucket = newFailureBucket(stack, props.Key, reference.accessLogs)
	var sink *sinkFunction
	if def.viaSink {
		sink = newSink(stack, sinkProps{cfg: cfg, assetDir: assets[FunctionSink], key: props.Key,
			table: s.OrderEnrichedTable, stream: s.EnrichedStream, failures: s.FailureBucket})
		s.Sink, s.SinkDLQ = sink.fn, sink.dlq
	}
	proc, err := def.create(stack, processorInputs{
		cfg: cfg, props: props, assets: assets, reference: reference, table: s.OrderEnrichedTable, output: s.EnrichedStream,
		failures: s.FailureBucket,
	})
	if err != nil {
		return nil, err
	}
	if e, ok := proc.(*enrichProcessor); ok {
		s.Enrich, s.EnrichDLQ, s.JoinStateTable = e.fn, e.dlq, e.state
	}
	if cfg.DataLake {
		archive := newRawArchive(stack, rawArchiveProps{source: props.OrderStream, key: props.Key, accessLogs: reference.accessLogs, retention: retention})
		s.RawArchiveBucket, s.RawArchive = archive.bucket, archive.delivery
	}
	if props.AlarmTopic != nil {
		s.Alarms, s.Dashboard = newProcessMonitoring(stack, s.monitoring(props, cfg, proc, sink))
	}
	suppressBucketDeploymentFindings(stack, cfg.CI.BootstrapQualifier)
	logAutoDeleteObjects(stack, retention)
	s.addOutputs(reference.uri)
	return s, nil
}

// hasEnrichedStream says whether the process stack has the enriched
// stream: the two-hop shape's processor writes it, and enrichedStream=true
// adds it to the one-hop shape.
func (c Config) hasEnrichedStream() bool {
	return processors[c.Processor].viaSink || c.EnrichedStreamEnabled
}

// processStackDescription says what the process stack holds for cfg.
func processStackDescription(cfg Config) string {
	stream := ""
	if cfg.hasEnrichedStream() {
		stream = ", enriched stream"
	}
	return "order enrichment (" + string(cfg.Processor) + " processor)" + stream + " and the OrderEnriched table"
}

func (s *ProcessStack) addOutputs(referenceURI *string) {
	var outputs []output
	if s.RawArchiveBucket != nil {
		outputs = append(outputs, output{"RawArchiveBucketName", "The raw CDC archive: every unified-stream record under " + strings.SplitN(ArchivePrefix, "!", 2)[0] +
			"yyyy/MM/dd/HH/ (gzipped JSON records, each followed by a newline).", s.RawArchiveBucket.BucketName()})
	}
	if s.Dashboard != nil {
		outputs = append(outputs, output{"DashboardName", "The pipeline's CloudWatch dashboard.", s.Dashboard.DashboardName()})
	}
	if s.EnrichedStream != nil {
		outputs = append(outputs, output{"EnrichedStreamName", "The enriched order-item stream.", s.EnrichedStream.StreamName()})
	}
	addOutputs(s.Stack, append(outputs,
		output{"FailureBucketName", "Batches the event source mappings gave up on, with their records: `etl replay --failures s3://<this>/` puts them back.", s.FailureBucket.BucketName()},
		output{"OrderEnrichedTableName", "The OrderEnriched DynamoDB table.", s.OrderEnrichedTable.TableName()},
		output{"ReferenceDataUri", "Where the product reference data is.", referenceURI},
	))
}

// processor is what joins orders with their items and products between
// the unified stream and the sink: the enrich function (processor=lambda)
// or a KDA SQL application (kda.go).
type processor interface {
	// monitor adds what the processor runs to the stack's monitoring.
	monitor(m *processMonitoring)
}

// processorInputs are what a processor is built from.
type processorInputs struct {
	cfg       Config
	props     ProcessStackProps
	assets    map[string]string // by function name
	reference *referenceData
	// table is OrderEnriched, which the processor writes unless it goes
	// through the sink.
	table awsdynamodb.Table
	// output is the enriched stream the processor writes; nil when there
	// is none.
	output awskinesis.Stream
	// failures is the on-failure destination of the processor's event
	// source mappings (failures.go).
	failures awss3.IBucket
}

// processorDef is one value of context key processor.
type processorDef struct {
	// functions are the Lambda functions the processor deploys.
	functions []string
	// viaSink is set for a processor that cannot write DynamoDB: it writes
	// the enriched stream, and the sink writes OrderEnriched (two hops).
	viaSink bool
	// pollsUnifiedStream is set for a processor that reads the unified
	// stream with GetRecords itself, whatever context key consumer says.
	pollsUnifiedStream bool
	create             func(awscdk.Stack, processorInputs) (processor, error)
	// description says what the value deploys (README configuration
	// table).
	description string
}

// processors are the processors this build can deploy, by name; other
// files register theirs (kda.go).
var processors = map[Processor]processorDef{
	ProcessorLambda: {functions: []string{FunctionEnrich}, create: newEnrichProcessor, description: "Go enrich Lambda"},
}

// processorNames lists the processors: the default first, then the others
// by name.
func processorNames() []string {
	names := []string{string(DefaultProcessor)}
	var others []string
	for p := range processors {
		if p != DefaultProcessor {
			others = append(others, string(p))
		}
	}
	slices.Sort(others)
	return append(names, others...)
}

// describeProcessors is the processor setting's allowed values.
func describeProcessors() string {
	var parts []string
	for _, name := range processorNames() {
		parts = append(parts, fmt.Sprintf("`%s` (%s)", name, processors[Processor(name)].description))
	}
	return strings.Join(parts, " or ")
}

// monitoring lists what the process stack's alarms and dashboard watch.
func (s *ProcessStack) monitoring(props ProcessStackProps, cfg Config, proc processor, sink *sinkFunction) processMonitoring {
	m := processMonitoring{
		cfg:       cfg,
		topic:     props.AlarmTopic,
		dmsAlarms: props.DMSAlarms,
	}
	// Whether something in the pipeline polls each stream (GetRecords),
	// which decides what its missing iterator age means (addStream).
	polling := cfg.Consumer == ConsumerPolling
	// The unified stream: the processor's mapping, the processor's own
	// reads, or the raw archive's Firehose, which polls its source.
	m.streams = []namedStream{{name: "OrderStream", stream: props.OrderStream,
		polled: polling || processors[cfg.Processor].pollsUnifiedStream || cfg.DataLake}}
	if s.EnrichedStream != nil {
		// Only the sink reads the enriched stream; with enrichedStream=true
		// and no sink, nothing in the pipeline does.
		m.streams = append(m.streams, namedStream{name: "EnrichedStream", stream: s.EnrichedStream, polled: sink != nil && polling})
	}
	// The operations are those internal/sink and internal/enrich call.
	orderEnriched := watchedTable{name: "OrderEnriched", table: s.OrderEnrichedTable,
		operations: []awsdynamodb.Operation{awsdynamodb.Operation_PUT_ITEM, awsdynamodb.Operation_DELETE_ITEM}}
	if cfg.DynamoBilling == BillingProvisioned {
		orderEnriched.provisioned = &provisionedCapacity{read: cfg.DynamoReadCapacity, write: cfg.DynamoWriteCapacity}
	}
	m.tables = append(m.tables, orderEnriched)
	m.flow = string(cfg.Processor) + " processor → OrderEnriched"
	proc.monitor(&m)
	if sink != nil {
		m.flow = string(cfg.Processor) + " processor → enriched stream → sink → OrderEnriched"
		sink.monitor(&m)
	} else if s.EnrichedStream != nil {
		m.flow += " (and the enriched stream)"
	}
	if s.RawArchive != nil {
		m.archive = s.RawArchive
	}
	m.failures = s.FailureBucket
	return m
}

// suppressBucketDeploymentFindings accepts the findings on the handler CDK
// creates for BucketDeployment, which this project does not write; it
// reads the assets bucket of the bootstrap qualifier the stack deploys with.
func suppressBucketDeploymentFindings(stack awscdk.Stack, qualifier string) {
	for _, child := range *stack.Node().Children() {
		if !strings.HasPrefix(*child.Node().Id(), "Custom::CDKBucketDeployment") {
			continue
		}
		cdknag.NagSuppressions_AddResourceSuppressions(child, &[]*cdknag.NagPackSuppression{
			{
				Id:        jsii.String("AwsSolutions-IAM4"),
				Reason:    jsii.String("CDK's BucketDeployment handler role uses AWSLambdaBasicExecutionRole for its logs; the handler is part of aws-cdk-lib."),
				AppliesTo: &[]interface{}{jsii.String("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")},
			},
			{
				Id: jsii.String("AwsSolutions-IAM5"),
				Reason: jsii.String("CDK's BucketDeployment handler copies the deployment asset from the CDK assets bucket into the reference bucket and prunes stale objects: " +
					"read on the asset objects, read/write/delete on the reference bucket's objects, nothing else."),
				AppliesTo: &[]interface{}{
					jsii.String("Action::s3:GetObject*"), jsii.String("Action::s3:GetBucket*"), jsii.String("Action::s3:List*"),
					jsii.String("Action::s3:DeleteObject*"), jsii.String("Action::s3:Abort*"),
					jsii.String("Resource::arn:<AWS::Partition>:s3:::cdk-" + qualifier + "-assets-<AWS::AccountId>-<AWS::Region>/*"),
					jsii.String("Resource::<ReferenceDataBucketEFE7E31E.Arn>/*"),
				},
			},
			{
				Id:     jsii.String("AwsSolutions-L1"),
				Reason: jsii.String("The BucketDeployment handler's runtime is chosen by aws-cdk-lib and moves forward with CDK upgrades."),
			},
		}, jsii.Bool(true))
	}
}

// grantTableCalls allows fn exactly the given DynamoDB actions on table,
// and the use of the key that encrypts it: DynamoDB uses a table's
// customer managed key on behalf of the caller, who must be allowed to use
// the key (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html);
// the key actions are those aws-cdk-lib's own table grants give.
func grantTableCalls(table awsdynamodb.ITable, key awskms.IKey, fn awslambda.IFunction, actions ...string) {
	table.Grant(fn, *jsii.Strings(actions...)...)
	key.Grant(fn, *jsii.Strings("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")...)
}

// logAutoDeleteObjects sends the logs of aws-cdk-lib's handler that
// empties buckets before CloudFormation deletes them (autoDeleteObjects)
// to a log group with the configured retention, deleted with the stack:
// left alone, Lambda creates one that never expires and outlives the stack.
func logAutoDeleteObjects(stack awscdk.Stack, retention awslogs.RetentionDays) {
	provider := stack.Node().TryFindChild(jsii.String(autoDeleteObjectsProvider))
	if provider == nil {
		return
	}
	handler, ok := provider.Node().TryFindChild(jsii.String("Handler")).(awscdk.CfnResource)
	if !ok {
		panic("stacks: aws-cdk-lib's " + autoDeleteObjectsProvider + " has no Handler resource")
	}
	logs := awslogs.NewLogGroup(stack, jsii.String("AutoDeleteObjectsLogs"), logGroupProps(retention))
	handler.AddPropertyOverride(jsii.String("LoggingConfig.LogGroup"), logs.LogGroupName())
	// Deleted after the handler, which runs (and logs) while the stack's
	// buckets are deleted.
	handler.Node().AddDependency(logs)
	cdknag.NagSuppressions_AddResourceSuppressions(provider, &[]*cdknag.NagPackSuppression{
		{
			Id:        jsii.String("AwsSolutions-IAM4"),
			Reason:    jsii.String("aws-cdk-lib's autoDeleteObjects handler role uses AWSLambdaBasicExecutionRole for its logs; the handler is part of aws-cdk-lib."),
			AppliesTo: &[]interface{}{jsii.String("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")},
		},
		{
			Id:     jsii.String("AwsSolutions-L1"),
			Reason: jsii.String("The autoDeleteObjects handler's runtime is chosen by aws-cdk-lib and moves forward with CDK upgrades."),
		},
	}, jsii.Bool(true))
}

// autoDeleteObjectsProvider is the construct ID under which aws-cdk-lib
// creates the autoDeleteObjects handler, once per stack.
const autoDeleteObjectsProvider = "Custom::S3AutoDeleteObjectsCustomResourceProvider"
