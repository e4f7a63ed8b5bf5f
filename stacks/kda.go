package stacks

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisanalytics"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// The legacy KDA SQL processor (processor=kda-sql) lives in this file,
// kda/ (its Lambda functions and their packages) and
// sql/kda-orders-setup.sql: deleting the three removes it. Its one
// registration is the init function below.

func init() {
	processors[ProcessorKDASQL] = processorDef{
		functions: []string{FunctionPreprocess, FunctionKDAStart},
		viaSink:   true,
		// The application's streaming source reads the unified stream
		// with GetRecords; it has no enhanced fan-out consumer.
		pollsUnifiedStream: true,
		create:             newKDAProcessor,
		description:        "KDA SQL application; AWS no longer creates new ones, synth warns",
	}
}

// KDASQLFile is the KDA application code, relative to the module root.
const KDASQLFile = "sql/kda-orders-setup.sql"

// ProcessorKDASQL is the original project's processor: a Kinesis Data
// Analytics for SQL application (docs/design.md §1).
const ProcessorKDASQL Processor = "kda-sql"

// The KDA processor's functions (kda/lambdas/<name>).
const (
	FunctionPreprocess = "preprocess"
	FunctionKDAStart   = "kda-start"
)

// ResourceTypeKDAStart is the custom resource that starts the application.
const ResourceTypeKDAStart = "Custom::KdaApplicationStart"

const (
	// KDAStartPollInterval and KDAStartTimeout: an application starts in a
	// minute or two.
	KDAStartPollInterval = 15 * time.Second
	KDAStartTimeout      = 30 * time.Minute

	// ProductsTableName is the KDA in-application reference table the SQL
	// joins with.
	ProductsTableName = "products"

	// KDAInputNamePrefix names the KDA in-application input stream;
	// KDA appends "_001", giving SOURCE_SQL_STREAM_001.
	KDAInputNamePrefix = "SOURCE_SQL_STREAM"

	// KDAOutputStreamName is the in-application stream the SQL writes the
	// enriched rows to.
	KDAOutputStreamName = "ORDER_ITEM_ENRICHED_STREAM"
	PreprocessMemoryMiB = 256
	// PreprocessTimeout: KDA allows a preprocessing function at most five
	// minutes and recommends one.
	PreprocessTimeout = time.Minute
)

// Column is a column of a KDA in-application stream or table: its SQL name
// and type, mapped from the JSON field of the same name.
type Column struct {
	Name    string
	SQLType string
}

// FlatRecordColumns is the KDA input schema: the flat CDC record of
// docs/design.md §3.3 that the preprocess Lambda emits (order.Change). Types
// match the streams declared in sql/kda-orders-setup.sql. sourceTimestamp
// carries microseconds, finer than KDA's TIMESTAMP, so it stays a string.
var FlatRecordColumns = []Column{
	{"recordType", "VARCHAR(16)"},
	{"operation", "VARCHAR(8)"},
	{"orderId", "INTEGER"},
	{"itemId", "INTEGER"},
	{"itemQuantity", "INTEGER"},
	{"orderAmount", "DECIMAL(10,2)"},
	{"itemAmount", "DECIMAL(10,2)"},
	{"orderStatus", "VARCHAR(32)"},
	{"itemStatus", "VARCHAR(32)"},
	{"shipToName", "VARCHAR(100)"},
	{"shipToAddress", "VARCHAR(200)"},
	{"shipToCity", "VARCHAR(100)"},
	{"shipToState", "VARCHAR(32)"},
	{"shipToZip", "VARCHAR(16)"},
	{"orderDateTime", "TIMESTAMP"},
	{"sourceTimestamp", "VARCHAR(32)"},
	{"version", "BIGINT"},
	// The old key of an update that changed it (DMS before image); the SQL
	// does not read it (README: key changes with processor=kda-sql).
	{"oldOrderId", "INTEGER"},
	{"oldItemId", "INTEGER"},
}

// ProductColumns is the schema of the products reference table, one JSON
// object per line of reference-data/products.json (order.Product).
var ProductColumns = []Column{
	{"productId", "INTEGER"},
	{"productName", "VARCHAR(200)"},
	{"productPrice", "DECIMAL(10,2)"},
}

// KDASQLWarning is the synth warning of processor=kda-sql.
const KDASQLWarning = "processor=kda-sql: Amazon Kinesis Data Analytics for SQL applications cannot be created since 2025-10-15 " +
	"(existing ones are deleted from 2026-01-27), so deploying this stack fails in accounts without the application. " +
	"It is kept to document the original design; deploy processor=lambda instead."

// kdaProcessor is processor=kda-sql: the KDA SQL application, its input
// preprocessing function and the custom resource that starts it.
type kdaProcessor struct {
	preprocess  awslambda.Function
	application awskinesisanalytics.CfnApplication
	start       awscdk.CustomResource
}

func newKDAProcessor(stack awscdk.Stack, in processorInputs) (processor, error) {
	sql, err := os.ReadFile(filepath.Join(in.props.RootDir, KDASQLFile))
	if err != nil {
		return nil, fmt.Errorf("KDA application code: %w", err)
	}
	k := &kdaProcessor{}
	k.preprocess = newGoFunction(stack, "Preprocess", goFunctionProps{
		AssetDir:    in.assets[FunctionPreprocess],
		Description: "KDA input preprocessing: turns DMS records into flat CDC records.",
		MemoryMiB:   PreprocessMemoryMiB,
		Timeout:     PreprocessTimeout,
		Retention:   in.cfg.logRetention(),
	})
	var configured constructs.IConstruct
	k.application, configured = newKDAApplication(stack, kdaProps{
		SQL:            string(sql),
		Input:          in.props.OrderStream,
		Output:         in.output,
		Preprocess:     k.preprocess,
		ReferenceData:  in.reference.bucket,
		ReferenceReady: in.reference.deployment,
	})
	k.start = newKDAStart(stack, kdaStartProps{
		assetDir:    in.assets[FunctionKDAStart],
		application: k.application,
		configured:  configured,
		retention:   in.cfg.logRetention(),
	})
	addOutputs(stack, []output{{"ApplicationName", "The KDA SQL application (started by the deployment).", k.application.Ref()}})
	return k, nil
}

func (k *kdaProcessor) monitor(m *processMonitoring) {
	// KDA invokes the preprocess function synchronously: it has no
	// iterator age; the application's MillisBehindLatest is its lag.
	m.functions = append(m.functions, watchedFunction{name: "Preprocess", fn: k.preprocess, timeout: PreprocessTimeout})
	m.sections = append(m.sections, k.addApplication)
}

// addApplication watches the KDA SQL application's lag.
func (k *kdaProcessor) addApplication(pm *processMonitor) {
	set, d, th, sustained := pm.set, pm.d, pm.th, pm.sustained
	d.section("KDA application", "Kinesis Data Analytics for SQL: how far behind its input it reads.")
	behind := metricsInsights("MillisBehindLatest", "AWS/KinesisAnalytics", "Application", k.application.Ref(), CountAlarmPeriod, "millis behind latest (max)")
	alarm := set.add(alarmSpec{
		id: "ApplicationBehindAlarm",
		description: fmt.Sprintf("The KDA SQL application has been more than %d s behind the unified stream, or has reported nothing, for %d minutes: it is overloaded, or no longer RUNNING. "+
			"Check its status in the console (KDA SQL applications can no longer be created and are being retired: plan the move to processor=lambda), its error stream and the preprocess function's alarms.",
			th.IteratorAgeSeconds, sustained),
		metric:    behind,
		threshold: float64(th.IteratorAgeSeconds * 1000),
		periods:   SustainedAlarmPeriods,
		// A running application reports continuously; none means it
		// stopped.
		missing: awscloudwatch.TreatMissingData_BREACHING,
	})
	d.graph("KDA millis behind latest", []awscloudwatch.IMetric{behind}, alarm)
}

type kdaProps struct {
	SQL            string
	Input          awskinesis.IStream
	Output         awskinesis.IStream
	Preprocess     awslambda.IFunction
	ReferenceData  awss3.IBucket
	ReferenceReady constructs.IConstruct // the deployment of the reference object
}

// newKDAApplication creates the KDA SQL application (API v1) with its
// preprocessing function, products reference table and output, and one
// role holding exactly what the application uses. It also returns the
// last configuration step (the output), after which the application can
// be started.
func newKDAApplication(scope constructs.Construct, p kdaProps) (awskinesisanalytics.CfnApplication, constructs.IConstruct) {
	role := newKDAApplicationRole(scope, p)
	app := newKDASQLApplication(scope, p, role)
	reference := newKDAProductsReference(scope, p, role, app)
	output := awskinesisanalytics.NewCfnApplicationOutput(scope, jsii.String("EnrichedOutput"), &awskinesisanalytics.CfnApplicationOutputProps{
		ApplicationName: app.Ref(),
		Output: &awskinesisanalytics.CfnApplicationOutput_OutputProperty{
			Name:              jsii.String(KDAOutputStreamName),
			DestinationSchema: &awskinesisanalytics.CfnApplicationOutput_DestinationSchemaProperty{RecordFormatType: jsii.String("JSON")},
			KinesisStreamsOutput: &awskinesisanalytics.CfnApplicationOutput_KinesisStreamsOutputProperty{
				ResourceArn: p.Output.StreamArn(), RoleArn: role.RoleArn(),
			},
		},
	})
	// Each addition updates the application's version; doing them one after
	// the other avoids a concurrent-modification failure.
	output.Node().AddDependency(reference)

	awscdk.Annotations_Of(scope).AddWarningV2(jsii.String("unified-streaming-etl:kda-sql-discontinued"), jsii.String(KDASQLWarning))
	return app, output
}

// newKDAApplicationRole creates the one role the application uses for
// everything it reads and writes.
func newKDAApplicationRole(scope constructs.Construct, p kdaProps) awsiam.Role {
	role := awsiam.NewRole(scope, jsii.String("ApplicationRole"), &awsiam.RoleProps{
		// Only on behalf of this account's applications in this Region.
		// https://docs.aws.amazon.com/kinesisanalytics/latest/dev/confused-deputy.html
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("kinesisanalytics.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: sourceConditions(awscdk.Stack_Of(scope), "kinesisanalytics", "application/*"),
		}),
		Description: jsii.String("Kinesis Data Analytics: read the unified stream, preprocess, read products, write the enriched stream."),
	})
	p.Input.GrantRead(role)
	p.Preprocess.GrantInvoke(role)
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("lambda:GetFunctionConfiguration"),
		Resources: jsii.Strings(*p.Preprocess.FunctionArn()),
	}))
	p.ReferenceData.GrantRead(role, jsii.String(ReferenceDataKey))
	p.Output.GrantWrite(role)
	p.Output.Grant(role, jsii.String("kinesis:DescribeStream"))

	suppressKeyGrantWildcards(role)
	suppressObjectReadWildcards(role, "the products object ("+ReferenceDataKey+")")
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Generated by the CDK invoke grant on the preprocess function: lambda:InvokeFunction on the function and its versions and aliases (<function ARN>:*)."),
		AppliesTo: &[]interface{}{&cdknag.RegexAppliesTo{
			Regex: jsii.String(`/^Resource::<Preprocess[0-9A-F]{8}\.Arn>:\*$/g`),
		}},
	}}, jsii.Bool(true))

	return role
}

// newKDASQLApplication creates the application with its input: the
// unified stream through the preprocess function, as flat CDC records.
func newKDASQLApplication(scope constructs.Construct, p kdaProps, role awsiam.Role) awskinesisanalytics.CfnApplication {
	jsonFormat := func() *awskinesisanalytics.CfnApplication_RecordFormatProperty {
		return &awskinesisanalytics.CfnApplication_RecordFormatProperty{
			RecordFormatType: jsii.String("JSON"),
			MappingParameters: &awskinesisanalytics.CfnApplication_MappingParametersProperty{
				JsonMappingParameters: &awskinesisanalytics.CfnApplication_JSONMappingParametersProperty{RecordRowPath: jsii.String("$")},
			},
		}
	}
	var inputColumns []interface{}
	for _, c := range FlatRecordColumns {
		inputColumns = append(inputColumns, &awskinesisanalytics.CfnApplication_RecordColumnProperty{
			Name: jsii.String(c.Name), SqlType: jsii.String(c.SQLType), Mapping: jsii.String("$." + c.Name),
		})
	}
	app := awskinesisanalytics.NewCfnApplication(scope, jsii.String("Application"), &awskinesisanalytics.CfnApplicationProps{
		ApplicationDescription: jsii.String("Joins orders with their items and products (sql/kda-orders-setup.sql)."),
		ApplicationCode:        jsii.String(p.SQL),
		Inputs: &[]interface{}{&awskinesisanalytics.CfnApplication_InputProperty{
			NamePrefix: jsii.String(KDAInputNamePrefix),
			KinesisStreamsInput: &awskinesisanalytics.CfnApplication_KinesisStreamsInputProperty{
				ResourceArn: p.Input.StreamArn(), RoleArn: role.RoleArn(),
			},
			InputParallelism: &awskinesisanalytics.CfnApplication_InputParallelismProperty{Count: jsii.Number(1)},
			InputProcessingConfiguration: &awskinesisanalytics.CfnApplication_InputProcessingConfigurationProperty{
				InputLambdaProcessor: &awskinesisanalytics.CfnApplication_InputLambdaProcessorProperty{
					ResourceArn: p.Preprocess.FunctionArn(), RoleArn: role.RoleArn(),
				},
			},
			InputSchema: &awskinesisanalytics.CfnApplication_InputSchemaProperty{
				RecordEncoding: jsii.String("UTF-8"),
				RecordFormat:   jsonFormat(),
				RecordColumns:  &inputColumns,
			},
		}},
	})
	// KDA checks the role when the application is created: attach its
	// policy first.
	app.Node().AddDependency(role)

	return app
}

// newKDAProductsReference adds the products reference table, read from
// the reference bucket.
func newKDAProductsReference(scope constructs.Construct, p kdaProps, role awsiam.Role, app awskinesisanalytics.CfnApplication) awskinesisanalytics.CfnApplicationReferenceDataSource {
	var productColumns []interface{}
	for _, c := range ProductColumns {
		productColumns = append(productColumns, &awskinesisanalytics.CfnApplicationReferenceDataSource_RecordColumnProperty{
			Name: jsii.String(c.Name), SqlType: jsii.String(c.SQLType), Mapping: jsii.String("$." + c.Name),
		})
	}
	reference := awskinesisanalytics.NewCfnApplicationReferenceDataSource(scope, jsii.String("ProductsReference"), &awskinesisanalytics.CfnApplicationReferenceDataSourceProps{
		ApplicationName: app.Ref(),
		ReferenceDataSource: &awskinesisanalytics.CfnApplicationReferenceDataSource_ReferenceDataSourceProperty{
			TableName: jsii.String(ProductsTableName),
			S3ReferenceDataSource: &awskinesisanalytics.CfnApplicationReferenceDataSource_S3ReferenceDataSourceProperty{
				BucketArn: p.ReferenceData.BucketArn(), FileKey: jsii.String(ReferenceDataKey), ReferenceRoleArn: role.RoleArn(),
			},
			ReferenceSchema: &awskinesisanalytics.CfnApplicationReferenceDataSource_ReferenceSchemaProperty{
				RecordEncoding: jsii.String("UTF-8"),
				RecordFormat: &awskinesisanalytics.CfnApplicationReferenceDataSource_RecordFormatProperty{
					RecordFormatType: jsii.String("JSON"),
					MappingParameters: &awskinesisanalytics.CfnApplicationReferenceDataSource_MappingParametersProperty{
						JsonMappingParameters: &awskinesisanalytics.CfnApplicationReferenceDataSource_JSONMappingParametersProperty{RecordRowPath: jsii.String("$")},
					},
				},
				RecordColumns: &productColumns,
			},
		},
	})
	// KDA reads the object when the source is added.
	reference.Node().AddDependency(p.ReferenceReady)

	return reference
}

// kdaStartProps configures the KDA application start resource.
type kdaStartProps struct {
	assetDir    string
	application awskinesisanalytics.CfnApplication
	// configured completes the application's configuration (its reference
	// data and output), which CloudFormation adds after creating it.
	configured constructs.IConstruct
	retention  awslogs.RetentionDays
}

// newKDAStart starts the KDA SQL application once it is fully configured
// and stops it before CloudFormation deletes it
// (kda/start).
func newKDAStart(scope constructs.Construct, p kdaStartProps) awscdk.CustomResource {
	stack := awscdk.Stack_Of(scope)
	fn := newPollingHandler(scope, "KdaStart", p.assetDir, p.retention,
		"Custom resource: starts the KDA SQL application once it is ready, stops it before deletion.")
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("kinesisanalytics:DescribeApplication", "kinesisanalytics:StartApplication", "kinesisanalytics:StopApplication"),
		Resources: &[]*string{stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("kinesisanalytics"), Resource: jsii.String("application"), ResourceName: p.application.Ref(),
		})},
	}))
	provider := newProvider(scope, "KdaStartProvider", providerProps{
		onEvent: fn, isComplete: fn,
		queryInterval: KDAStartPollInterval, totalTimeout: KDAStartTimeout,
		retention: p.retention,
	})
	resource := awscdk.NewCustomResource(scope, jsii.String("ApplicationStart"), &awscdk.CustomResourceProps{
		ServiceToken: provider.ServiceToken(),
		ResourceType: jsii.String(ResourceTypeKDAStart),
		Properties:   &map[string]interface{}{"ApplicationName": p.application.Ref()},
	})
	// Started once configured; stopped (deleted) before the application.
	resource.Node().AddDependency(p.application, p.configured)
	return resource
}
