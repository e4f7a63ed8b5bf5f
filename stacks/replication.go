package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// replication is DMS: the replication instance with its subnet group and
// log group, the MySQL source and Kinesis target endpoints with the roles
// DMS assumes for them, and the full-load-and-CDC task.
//
// Its resources keep the IDs they had directly under the stack: a replaced
// task starts over from a full load.
type replication struct {
	instance       awsdms.CfnReplicationInstance
	taskLogs       awslogs.LogGroup
	certificate    awsdms.CfnCertificate
	sourceEndpoint awsdms.CfnEndpoint
	targetEndpoint awsdms.CfnEndpoint
	task           awsdms.CfnReplicationTask
}

type replicationProps struct {
	cfg      Config
	network  *network
	database *ordersDatabase
	// stream is the unified order stream, the target.
	stream awskinesis.IStream
	// key encrypts the instance's storage.
	key awskms.IKey
	// caBundlePEM verifies the database's certificate.
	caBundlePEM string
	// serviceRoles must exist (dms-vpc-role) before the instance.
	serviceRoles []constructs.IConstruct
}

func newReplication(stack awscdk.Stack, p replicationProps) *replication {
	r := &replication{}
	r.addInstance(stack, p)
	r.certificate = awsdms.NewCfnCertificate(stack, jsii.String("DatabaseCaCertificate"), &awsdms.CfnCertificateProps{
		CertificatePem: jsii.String(p.caBundlePEM),
	})
	r.addSourceEndpoint(stack, p)
	r.addTargetEndpoint(stack, p)
	r.task = awsdms.NewCfnReplicationTask(stack, jsii.String("ReplicationTask"), &awsdms.CfnReplicationTaskProps{
		MigrationType:           jsii.String("full-load-and-cdc"),
		ReplicationInstanceArn:  r.instance.Ref(),
		SourceEndpointArn:       r.sourceEndpoint.Ref(),
		TargetEndpointArn:       r.targetEndpoint.Ref(),
		TableMappings:           jsii.String(mustJSON(OrderTableMappings())),
		ReplicationTaskSettings: jsii.String(mustJSON(OrderTaskSettings())),
	})
	return r
}

// addInstance creates the replication instance in the isolated subnets,
// reaching the database and the endpoints only.
func (r *replication) addInstance(stack awscdk.Stack, p replicationProps) {
	sg := p.network.httpsToEndpointsSecurityGroup(stack, "ReplicationSecurityGroup",
		"DMS replication instance: MySQL to the database, HTTPS to the VPC endpoints.")
	p.database.instance.Connections().AllowDefaultPortFrom(sg, jsii.String("DMS replication"))

	subnetGroup := awsdms.NewCfnReplicationSubnetGroup(stack, jsii.String("ReplicationSubnetGroup"), &awsdms.CfnReplicationSubnetGroupProps{
		ReplicationSubnetGroupDescription: jsii.String("Isolated subnets of the unified streaming ETL VPC."),
		SubnetIds:                         p.network.vpc.SelectSubnets(p.network.isolated).SubnetIds,
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
	logProps := logGroupProps(p.cfg.logRetention())
	logProps.LogGroupName = awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String(DMSTaskLogGroupPrefix), instanceID})
	r.taskLogs = awslogs.NewLogGroup(stack, jsii.String("ReplicationTaskLogs"), logProps)
	r.instance = awsdms.NewCfnReplicationInstance(stack, jsii.String("ReplicationInstance"), &awsdms.CfnReplicationInstanceProps{
		ReplicationInstanceIdentifier:    instanceID,
		ReplicationInstanceClass:         jsii.String(p.cfg.DMSInstanceClass),
		AllocatedStorage:                 jsii.Number(DMSAllocatedStorageGiB),
		EngineVersion:                    optionalString(p.cfg.DMSEngineVersion),
		AutoMinorVersionUpgrade:          jsii.Bool(true),
		MultiAz:                          jsii.Bool(false),
		PubliclyAccessible:               jsii.Bool(false),
		ReplicationSubnetGroupIdentifier: subnetGroup.Ref(),
		VpcSecurityGroupIds:              &[]*string{sg.SecurityGroupId()},
		KmsKeyId:                         p.key.KeyArn(),
	})
	// DMS refuses to create these before dms-vpc-role exists and IAM has
	// propagated it, which the role resources wait for. DMS also needs the
	// interface endpoints, which take minutes to become available.
	for _, dependent := range []constructs.IConstruct{subnetGroup, r.instance} {
		for _, role := range p.serviceRoles {
			dependent.Node().AddDependency(role)
		}
		for _, ep := range p.network.endpoints {
			dependent.Node().AddDependency(ep)
		}
	}
	r.instance.Node().AddDependency(r.taskLogs)
}

// dmsPrincipal is DMS acting for this account's DMS resources in this
// Region only (engine 3.4.7 or later); service is the principal's name.
// https://docs.aws.amazon.com/dms/latest/userguide/cross-service-confused-deputy-prevention.html
func dmsPrincipal(stack awscdk.Stack, service string) awsiam.IPrincipal {
	return awsiam.NewServicePrincipal(jsii.String(service), &awsiam.ServicePrincipalOpts{Conditions: sourceConditions(stack, "dms", "*")})
}

// addSourceEndpoint creates the MySQL endpoint: dms_user's secret, read
// through the Secrets Manager VPC endpoint, and verified TLS.
func (r *replication) addSourceEndpoint(stack awscdk.Stack, p replicationProps) {
	// DMS assumes this role to read the replication secret; the Secrets
	// Manager integration requires the Regional DMS service principal.
	secretAccessRole := awsiam.NewRole(stack, jsii.String("ReplicationSecretAccessRole"), &awsiam.RoleProps{
		AssumedBy:   dmsPrincipal(stack, fmt.Sprintf("dms.%s.%s", *stack.Region(), *stack.UrlSuffix())),
		Description: jsii.String("Lets DMS read the replication user's secret."),
	})
	grantSecretRead(secretAccessRole, p.database.replicationSecret)

	// Secrets Manager through the VPC endpoint, as DMS documents for
	// replication instances in private subnets.
	secretsDNS := awscdk.Fn_Select(jsii.Number(1), awscdk.Fn_Split(jsii.String(":"),
		awscdk.Fn_Select(jsii.Number(0), p.network.secretsEndpoint.VpcEndpointDnsEntries()), nil))
	r.sourceEndpoint = awsdms.NewCfnEndpoint(stack, jsii.String("SourceEndpoint"), &awsdms.CfnEndpointProps{
		EndpointType:   jsii.String("source"),
		EngineName:     jsii.String("mysql"),
		SslMode:        jsii.String("verify-full"),
		CertificateArn: r.certificate.Ref(),
		MySqlSettings: &awsdms.CfnEndpoint_MySqlSettingsProperty{
			SecretsManagerSecretId:      p.database.replicationSecret.SecretArn(),
			SecretsManagerAccessRoleArn: secretAccessRole.RoleArn(),
		},
		ExtraConnectionAttributes: awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("secretsManagerEndpointOverride="), secretsDNS,
		}),
	})
	r.sourceEndpoint.Node().AddDependency(secretAccessRole)
}

// addTargetEndpoint creates the Kinesis endpoint: one JSON record per
// line, keyed by orderId, with the transaction details the record version
// is made of.
func (r *replication) addTargetEndpoint(stack awscdk.Stack, p replicationProps) {
	streamRole := awsiam.NewRole(stack, jsii.String("ReplicationStreamRole"), &awsiam.RoleProps{
		AssumedBy:   dmsPrincipal(stack, "dms.amazonaws.com"),
		Description: jsii.String("Lets DMS write change records to the unified order stream."),
	})
	p.stream.GrantWrite(streamRole)
	// DMS also describes the target stream, which GrantWrite does not cover.
	p.stream.Grant(streamRole, jsii.String("kinesis:DescribeStream"))
	suppressKeyGrantWildcards(streamRole)
	r.targetEndpoint = awsdms.NewCfnEndpoint(stack, jsii.String("TargetEndpoint"), &awsdms.CfnEndpointProps{
		EndpointType: jsii.String("target"),
		EngineName:   jsii.String("kinesis"),
		KinesisSettings: &awsdms.CfnEndpoint_KinesisSettingsProperty{
			StreamArn:            p.stream.StreamArn(),
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
	r.targetEndpoint.Node().AddDependency(streamRole)
}

// guarded are the resources the task-control function stops the task
// before CloudFormation changes; watched are those whose change it
// detects.
func (r *replication) guarded() []awscdk.CfnResource {
	return []awscdk.CfnResource{r.task, r.sourceEndpoint, r.targetEndpoint}
}

func (r *replication) watched() []awscdk.CfnResource {
	return []awscdk.CfnResource{r.task, r.sourceEndpoint, r.targetEndpoint, r.certificate}
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return jsii.String(s)
}
