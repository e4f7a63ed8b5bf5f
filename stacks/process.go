package stacks

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisanalytics"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3deployment"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/unified-streaming-etl/etl/internal/dlq"
	"github.com/unified-streaming-etl/etl/internal/enrich"
	"github.com/unified-streaming-etl/etl/internal/sink"
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
	// KDASQLFile is the KDA application code (processor=kda-sql only).
	KDASQLFile string
	// AlarmTopic receives the stack's alarms; nil: no alarms.
	AlarmTopic awssns.ITopic
	// DMSAlarms are the data stack's alarms, shown on the dashboard.
	DMSAlarms []awscloudwatch.IAlarm
}

// ProcessStack holds the processor between the two streams and the sink
// into DynamoDB.
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

	// Set with processor=kda-sql.
	Preprocess  awslambda.Function
	Application awskinesisanalytics.CfnApplication
	// ApplicationStart starts the application once it is configured.
	ApplicationStart awscdk.CustomResource

	// Set with dataLake=true: the raw archive of the unified stream.
	RawArchiveBucket awss3.Bucket
	RawArchive       awskinesisfirehose.DeliveryStream

	// Alarms and Dashboard watch the pipeline (set with AlarmTopic).
	Alarms    []awscloudwatch.Alarm
	Dashboard awscloudwatch.Dashboard
}

// NewProcessStack creates the process stack.
func NewProcessStack(scope constructs.Construct, id string, props ProcessStackProps) (*ProcessStack, error) {
	cfg := props.Config
	assets := map[string]string{}
	needed := []string{FunctionSink, FunctionEnrich}
	var sql string
	if cfg.Processor == ProcessorKDASQL {
		needed = []string{FunctionSink, FunctionPreprocess, FunctionKDAStart}
		raw, err := os.ReadFile(props.KDASQLFile)
		if err != nil {
			return nil, fmt.Errorf("KDA application code: %w", err)
		}
		sql = string(raw)
	}
	for _, name := range needed {
		dir, err := functionAsset(props.LambdaDir, name)
		if err != nil {
			return nil, err
		}
		assets[name] = dir
	}
	if _, err := os.Stat(filepath.Join(props.ReferenceDataDir, ReferenceDataKey)); err != nil {
		return nil, fmt.Errorf("reference data: %w", err)
	}

	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	s := &ProcessStack{Stack: stack}
	retention := cfg.logRetention()

	// Reference data.
	//
	// The access logs are the audit trail of the raw archive, which
	// `cdk destroy` keeps: with the archive (dataLake=true) they are kept
	// too, and the kept archive goes on logging into them. Without it they
	// only record reads of the reference data, deleted with the stack.
	accessLogsRemoval, accessLogsAutoDelete := awscdk.RemovalPolicy_RETAIN, false
	if !cfg.DataLake {
		accessLogsRemoval, accessLogsAutoDelete = awscdk.RemovalPolicy_DESTROY, true
	}
	accessLogs := awss3.NewBucket(stack, jsii.String("AccessLogsBucket"), &awss3.BucketProps{
		RemovalPolicy:     accessLogsRemoval,
		AutoDeleteObjects: jsii.Bool(accessLogsAutoDelete),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		// S3 server access log delivery supports only SSE-S3 targets.
		Encryption:      awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		ObjectOwnership: awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		// Versioned so a principal that can delete objects cannot erase the
		// record of its reads; the versions an expiry or deletion leaves
		// go 30 days later.
		Versioned: jsii.Bool(true),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration:                  awscdk.Duration_Days(jsii.Number(365)),
			NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(30)),
		}},
	})
	cdknag.NagSuppressions_AddResourceSuppressions(accessLogs, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-S1"),
		Reason: jsii.String("This bucket receives the reference bucket's server access logs; logging it into itself would loop."),
	}}, nil)
	s.ReferenceBucket = awss3.NewBucket(stack, jsii.String("ReferenceDataBucket"), &awss3.BucketProps{
		// A copy of reference-data/ in the repository: deleted, every
		// version of its objects first, by `cdk destroy`.
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
		AutoDeleteObjects: jsii.Bool(true),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		// SSE-S3: the product catalogue is not sensitive, and KDA reads it
		// with no key grant to manage.
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:             jsii.Bool(true),
		Versioned:              jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		ServerAccessLogsBucket: accessLogs,
		ServerAccessLogsPrefix: jsii.String("reference-data/"),
	})
	deployment := awss3deployment.NewBucketDeployment(stack, jsii.String("ReferenceData"), &awss3deployment.BucketDeploymentProps{
		Sources: &[]awss3deployment.ISource{awss3deployment.Source_Asset(jsii.String(props.ReferenceDataDir), &awss3assets.AssetOptions{
			Exclude: jsii.Strings("*", "!"+ReferenceDataKey),
		})},
		DestinationBucket: s.ReferenceBucket,
		Prune:             jsii.Bool(true),
		LogGroup: awslogs.NewLogGroup(stack, jsii.String("ReferenceDataDeploymentLogs"), &awslogs.LogGroupProps{
			Retention:     retention,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		}),
	})
	referenceURI := awscdk.Fn_Join(jsii.String(""), &[]*string{
		jsii.String("s3://"), s.ReferenceBucket.BucketName(), jsii.String("/" + ReferenceDataKey),
	})

	// The enriched stream and the sink.
	s.EnrichedStream = newStream(stack, "EnrichedStream", cfg.EnrichedStream, cfg.StreamRetentionHours, props.Key)

	tableProps := &awsdynamodb.TableProps{
		PartitionKey: &awsdynamodb.Attribute{Name: jsii.String("orderId"), Type: awsdynamodb.AttributeType_NUMBER},
		SortKey:      &awsdynamodb.Attribute{Name: jsii.String("itemId"), Type: awsdynamodb.AttributeType_NUMBER},
		// The common customer-managed key rather than an AWS-owned one: its
		// policy and CloudTrail record who reads the data, and disabling it
		// locks the data.
		Encryption:    awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
		EncryptionKey: props.Key,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// Derived data: a DMS full load rebuilds it from the source.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	}
	if cfg.DynamoBilling == BillingProvisioned {
		tableProps.BillingMode = awsdynamodb.BillingMode_PROVISIONED
		tableProps.ReadCapacity = jsii.Number(float64(cfg.DynamoReadCapacity))
		tableProps.WriteCapacity = jsii.Number(float64(cfg.DynamoWriteCapacity))
	} else {
		tableProps.BillingMode = awsdynamodb.BillingMode_PAY_PER_REQUEST
	}
	s.OrderEnrichedTable = awsdynamodb.NewTable(stack, jsii.String("OrderEnriched"), tableProps)

	s.SinkDLQ = newDeadLetterQueue(stack, "SinkDeadLetterQueue", props.Key)
	s.Sink = newGoFunction(stack, "Sink", goFunctionProps{
		AssetDir:    assets[FunctionSink],
		Description: "Writes enriched order-item records to the OrderEnriched table.",
		MemoryMiB:   SinkMemoryMiB,
		Timeout:     SinkTimeout,
		Retention:   retention,
		Environment: map[string]*string{
			sink.EnvTableName: s.OrderEnrichedTable.TableName(),
			dlq.EnvURL:        s.SinkDLQ.QueueUrl(),
		},
	})
	// Exactly the calls internal/sink makes: a conditional PutItem for an
	// upsert and a conditional DeleteItem for a delete.
	grantTableCalls(s.OrderEnrichedTable, props.Key, s.Sink, "dynamodb:PutItem", "dynamodb:DeleteItem")
	s.SinkDLQ.GrantSendMessages(s.Sink)
	s.Sink.AddEventSource(streamEventSource(s.EnrichedStream, cfg, s.SinkDLQ))

	// The processor.
	switch cfg.Processor {
	case ProcessorKDASQL:
		s.Preprocess = newGoFunction(stack, "Preprocess", goFunctionProps{
			AssetDir:    assets[FunctionPreprocess],
			Description: "KDA input preprocessing: turns DMS records into flat CDC records.",
			MemoryMiB:   PreprocessMemoryMiB,
			Timeout:     PreprocessTimeout,
			Retention:   retention,
		})
		var configured constructs.IConstruct
		s.Application, configured = newKDAApplication(stack, kdaProps{
			SQL:            sql,
			Input:          props.OrderStream,
			Output:         s.EnrichedStream,
			Preprocess:     s.Preprocess,
			ReferenceData:  s.ReferenceBucket,
			ReferenceReady: deployment,
		})
		s.ApplicationStart = newKDAStart(stack, kdaStartProps{
			assetDir:    assets[FunctionKDAStart],
			application: s.Application,
			configured:  configured,
			retention:   retention,
		})
		awscdk.NewCfnOutput(stack, jsii.String("ApplicationName"), &awscdk.CfnOutputProps{
			Description: jsii.String("The KDA SQL application (started by the deployment)."),
			Value:       s.Application.Ref(),
		})
	default:
		// TTL on "ttl" expires tombstones only: live rows carry none and
		// never expire (internal/enrich/state.go).
		// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
		s.JoinStateTable = awsdynamodb.NewTable(stack, jsii.String("JoinState"), &awsdynamodb.TableProps{
			PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String(StatePartitionKey), Type: awsdynamodb.AttributeType_STRING},
			SortKey:             &awsdynamodb.Attribute{Name: jsii.String(StateSortKey), Type: awsdynamodb.AttributeType_STRING},
			TimeToLiveAttribute: jsii.String(StateTTLAttribute),
			BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
			Encryption:          awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
			EncryptionKey:       props.Key,
			PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
				PointInTimeRecoveryEnabled: jsii.Bool(true),
			},
			// Working state a DMS full load rebuilds.
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		s.EnrichDLQ = newDeadLetterQueue(stack, "EnrichDeadLetterQueue", props.Key)
		s.Enrich = newGoFunction(stack, "Enrich", goFunctionProps{
			AssetDir:    assets[FunctionEnrich],
			Description: "Joins orders with their items and products, with state in DynamoDB, into the enriched stream.",
			MemoryMiB:   EnrichMemoryMiB,
			Timeout:     EnrichTimeout,
			Retention:   retention,
			Environment: map[string]*string{
				enrich.EnvStateTable:       s.JoinStateTable.TableName(),
				enrich.EnvTombstoneDays:    jsii.String(strconv.Itoa(cfg.JoinStateTombstoneDays)),
				enrich.EnvOutputStream:     s.EnrichedStream.StreamName(),
				enrich.EnvSourceStream:     props.OrderStream.StreamName(),
				enrich.EnvReferenceDataURI: referenceURI,
				dlq.EnvURL:                 s.EnrichDLQ.QueueUrl(),
			},
		})
		// Exactly the calls internal/enrich makes on its state: Query and
		// BatchGetItem to read, BatchWriteItem (puts only) to write; rows
		// expire through the table's TTL, never by DeleteItem.
		grantTableCalls(s.JoinStateTable, props.Key, s.Enrich, "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")
		s.EnrichedStream.GrantWrite(s.Enrich)
		// The old key's delete of a row moved to another order goes back
		// on the order stream, keyed by the old orderId (internal/enrich/rekey.go).
		props.OrderStream.GrantWrite(s.Enrich)
		s.ReferenceBucket.GrantRead(s.Enrich, jsii.String(ReferenceDataKey))
		suppressObjectReadWildcards(s.Enrich.Role(), "the products object ("+ReferenceDataKey+")")
		s.EnrichDLQ.GrantSendMessages(s.Enrich)
		// No event filter: Lambda discards every record a filter does not
		// match, a record whose data is not JSON among them, without a trace
		// in the dead-letter queue, and patterns compare names case-
		// sensitively where DMS and MySQL do not
		// (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html,
		// https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis-filtering.html).
		// The handler sees every record: it joins it, skips and counts a
		// control or foreign-table record, or dead-letters it with the reason.
		s.Enrich.AddEventSource(streamEventSource(props.OrderStream, cfg, s.EnrichDLQ))
		// The function cannot start without products.json: its event
		// source mapping (which starts invoking it as soon as it exists)
		// waits for the reference data deployment.
		for _, c := range *s.Enrich.Node().Children() {
			if strings.HasPrefix(*c.Node().Id(), "KinesisEventSource") {
				c.Node().AddDependency(deployment)
			}
		}
	}

	if cfg.DataLake {
		archive := newRawArchive(stack, rawArchiveProps{
			source:     props.OrderStream,
			key:        props.Key,
			accessLogs: accessLogs,
			retention:  retention,
		})
		s.RawArchiveBucket, s.RawArchive = archive.bucket, archive.delivery
		awscdk.NewCfnOutput(stack, jsii.String("RawArchiveBucketName"), &awscdk.CfnOutputProps{
			Description: jsii.String("The raw CDC archive: every unified-stream record under " + strings.SplitN(ArchivePrefix, "!", 2)[0] + "yyyy/MM/dd/HH/ (gzipped JSON records, each followed by a newline)."),
			Value:       s.RawArchiveBucket.BucketName(),
		})
	}

	if props.AlarmTopic != nil {
		s.Alarms, s.Dashboard = newProcessMonitoring(stack, s.monitoring(props, cfg))
		awscdk.NewCfnOutput(stack, jsii.String("DashboardName"), &awscdk.CfnOutputProps{
			Description: jsii.String("The pipeline's CloudWatch dashboard."),
			Value:       s.Dashboard.DashboardName(),
		})
	}

	suppressBucketDeploymentFindings(stack)
	logAutoDeleteObjects(stack, retention)
	cdknag.NagSuppressions_AddResourceSuppressions(s.EnrichedStream, &[]*cdknag.NagPackSuppression{customerKeyStream()}, nil)

	outputs := []struct {
		id, description string
		value           *string
	}{
		{"EnrichedStreamName", "The enriched order-item stream.", s.EnrichedStream.StreamName()},
		{"OrderEnrichedTableName", "The OrderEnriched DynamoDB table.", s.OrderEnrichedTable.TableName()},
		{"ReferenceDataUri", "Where the product reference data is.", referenceURI},
	}
	for _, o := range outputs {
		awscdk.NewCfnOutput(stack, jsii.String(o.id), &awscdk.CfnOutputProps{Description: jsii.String(o.description), Value: o.value})
	}
	return s, nil
}

// monitoring lists what the process stack's alarms and dashboard watch.
func (s *ProcessStack) monitoring(props ProcessStackProps, cfg Config) processMonitoring {
	m := processMonitoring{
		cfg:       cfg,
		topic:     props.AlarmTopic,
		dmsAlarms: props.DMSAlarms,
		streams: []namedStream{
			{"OrderStream", props.OrderStream},
			{"EnrichedStream", s.EnrichedStream},
		},
		queues: []namedQueue{{"SinkDlq", s.SinkDLQ}},
	}
	// The operations are those internal/sink and internal/enrich call.
	orderEnriched := watchedTable{name: "OrderEnriched", table: s.OrderEnrichedTable,
		operations: []awsdynamodb.Operation{awsdynamodb.Operation_PUT_ITEM, awsdynamodb.Operation_DELETE_ITEM}}
	if cfg.DynamoBilling == BillingProvisioned {
		orderEnriched.provisioned = &provisionedCapacity{read: cfg.DynamoReadCapacity, write: cfg.DynamoWriteCapacity}
	}
	m.tables = append(m.tables, orderEnriched)
	switch cfg.Processor {
	case ProcessorKDASQL:
		// KDA invokes the preprocess function synchronously: it has no
		// iterator age; the application's MillisBehindLatest is its lag.
		m.functions = append(m.functions, watchedFunction{name: "Preprocess", fn: s.Preprocess, timeout: PreprocessTimeout})
		m.application = s.Application
	default:
		m.functions = append(m.functions, watchedFunction{name: "Enrich", fn: s.Enrich, timeout: EnrichTimeout, streamFed: true, loadsCatalogue: true})
		m.tables = append(m.tables, watchedTable{name: "JoinState", table: s.JoinStateTable,
			operations: []awsdynamodb.Operation{awsdynamodb.Operation_QUERY, awsdynamodb.Operation_BATCH_GET_ITEM, awsdynamodb.Operation_BATCH_WRITE_ITEM}})
		m.queues = append(m.queues, namedQueue{"EnrichDlq", s.EnrichDLQ})
	}
	m.functions = append(m.functions, watchedFunction{name: "Sink", fn: s.Sink, timeout: SinkTimeout, streamFed: true})
	if s.RawArchive != nil {
		m.archive = s.RawArchive
	}
	return m
}

// suppressBucketDeploymentFindings accepts the findings on the handler CDK
// creates for BucketDeployment, which this project does not write.
func suppressBucketDeploymentFindings(stack awscdk.Stack) {
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
					jsii.String("Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*"),
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
	logs := awslogs.NewLogGroup(stack, jsii.String("AutoDeleteObjectsLogs"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
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

// customerKeyStream accepts the warning about a customer managed key on a
// Kinesis stream.
func customerKeyStream() *cdknag.NagPackSuppression {
	return &cdknag.NagPackSuppression{
		Id: jsii.String("AwsSolutions-KDS3"),
		Reason: jsii.String("Deliberate: one customer managed key protects every store of the pipeline (docs/design.md §6), " +
			"so its key policy and CloudTrail govern access to the change data; the per-request KMS cost is accepted."),
	}
}
