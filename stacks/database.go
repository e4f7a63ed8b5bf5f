package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// ordersDatabase is the source database with its two secrets (the master
// user's and dms_user's) and their rotation.
//
// Its resources keep the IDs they had directly under the stack: the
// instance, its secrets and its parameter and subnet groups hold the data
// and must update in place.
type ordersDatabase struct {
	instance      awsrds.DatabaseInstance
	securityGroup awsec2.SecurityGroup
	adminSecret   awssecretsmanager.ISecret
	// replicationSecret is dms_user's, attached to the instance (host and
	// port, which DMS reads from it).
	replicationSecret awssecretsmanager.ISecret
	// rotationSecurityGroup is the rotation functions': HTTPS to the
	// endpoints and MySQL to the database.
	rotationSecurityGroup awsec2.SecurityGroup
	rotations             []awssecretsmanager.SecretRotation
	// secretKey is the pipeline key, which encrypts both secrets.
	secretKey awskms.IKey
}

type ordersDatabaseProps struct {
	cfg     Config
	network *network
	// key encrypts the storage and both secrets.
	key awskms.IKey
}

func newOrdersDatabase(stack awscdk.Stack, p ordersDatabaseProps) *ordersDatabase {
	d := &ordersDatabase{}
	d.securityGroup = awsec2.NewSecurityGroup(stack, jsii.String("DatabaseSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              p.network.vpc,
		Description:      jsii.String("Orders database: MySQL from DMS and the secret rotation functions only."),
		AllowAllOutbound: jsii.Bool(false),
	})
	// The secrets reference the key by ARN: a grant on the key construct
	// itself would put the readers' roles in the common stack's key policy,
	// a dependency cycle; on a referenced key it goes to their own
	// policies alone, which the key policy's account statement admits.
	d.secretKey = awskms.Key_FromKeyArn(stack, jsii.String("SecretsKey"), p.key.KeyArn())
	d.instance = newDatabaseInstance(stack, p, d.securityGroup, d.secretKey)
	d.adminSecret = d.instance.Secret()
	d.addRotations(stack, p)
	return d
}

// Both secrets are encrypted with the pipeline key rather than Secrets
// Manager's AWS managed key, whose policy lets every principal of the
// account with secret access decrypt. Changing a deployed secret's KmsKeyId
// updates it in place, keeping its value and ARN (docs/aws-facts.md §12).
// Every reader gets kms:Decrypt on the key only through Secrets Manager
// (kms:ViaService): grantSecretRead adds it (DMS's secrets access role, the
// schema setup); the rotation applications get the
// key's ARN as kmsKeyArn, for which they add kms:Decrypt and
// kms:GenerateDataKey to their own roles.
// https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secret.html

// newDatabaseInstance creates the MySQL instance: private, encrypted with
// the pipeline key, backed up (which turns on the binlog DMS reads), TLS
// only, and logging errors and slow queries.
func newDatabaseInstance(stack awscdk.Stack, p ordersDatabaseProps, sg awsec2.ISecurityGroup, secretKey awskms.IKey) awsrds.DatabaseInstance {
	cfg := p.cfg
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
	db := awsrds.NewDatabaseInstance(stack, jsii.String("Database"), &awsrds.DatabaseInstanceProps{
		Engine:         engine,
		InstanceType:   awsec2.NewInstanceType(jsii.String(cfg.DBInstanceClass)),
		Vpc:            p.network.vpc,
		VpcSubnets:     p.network.isolated,
		SecurityGroups: &[]awsec2.ISecurityGroup{sg},
		Port:           jsii.Number(mysqlPort),
		ParameterGroup: params,
		// DMS never logs in as the admin, so its first password keeps
		// CDK's default exclusions: changing the generation settings of a
		// deployed secret makes CloudFormation generate a new value, which
		// the database's master password (a dynamic reference resolved
		// only when the instance itself changes) would not follow.
		// Rotations use DMSPasswordExcludeCharacters like dms_user's.
		// The secret is encrypted with the pipeline key (see secretKey).
		Credentials: awsrds.Credentials_FromGeneratedSecret(jsii.String(DBAdminUser),
			&awsrds.CredentialsBaseOptions{EncryptionKey: secretKey}),
		StorageEncrypted:        jsii.Bool(true),
		StorageEncryptionKey:    p.key,
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
	awscdk.Validations_Of(db).Acknowledge(&awscdk.Acknowledgment{
		Id:     jsii.String("CloudFormation-Validate::E9006"),
		Reason: jsii.String("EngineVersion is a major version (" + cfg.DBEngineVersion + "), which RDS accepts and resolves to its current default minor version."),
	})
	return db
}

// addRotations creates dms_user's secret and the monthly rotations of
// both secrets.
func (d *ordersDatabase) addRotations(stack awscdk.Stack, p ordersDatabaseProps) {
	// The rotation functions hold the master password: they reach the VPC
	// endpoints (HTTPS) and the database, nothing else. Without this group
	// CDK gives each its own, open to 0.0.0.0/0.
	d.rotationSecurityGroup = p.network.httpsToEndpointsSecurityGroup(stack, "RotationSecurityGroup",
		"Secret rotation functions: MySQL to the database, HTTPS to the VPC endpoints.")
	admin := d.instance.AddRotationSingleUser(&awsrds.RotationSingleUserOptions{
		AutomaticallyAfter: awscdk.Duration_Days(jsii.Number(SecretRotationDays)),
		ExcludeCharacters:  jsii.String(DMSPasswordExcludeCharacters),
		Endpoint:           p.network.secretsEndpoint,
		VpcSubnets:         p.network.isolated,
		SecurityGroup:      d.rotationSecurityGroup,
	})
	secret := awsrds.NewDatabaseSecret(stack, jsii.String("ReplicationSecret"), &awsrds.DatabaseSecretProps{
		Username:          jsii.String(DMSUser),
		ExcludeCharacters: jsii.String(DMSPasswordExcludeCharacters),
		EncryptionKey:     d.secretKey,
	})
	// Attaching adds host and port, which DMS reads from the secret.
	d.replicationSecret = secret.Attach(d.instance)
	// Single-user rotation: dms_user changes its own password, so the secret
	// always names dms_user, the account sql/ordersdb-setup.sql creates and
	// the schema setup re-applies. (Multi-user rotation would alternate with
	// a dms_user_clone account the script knows nothing about.)
	replication := awssecretsmanager.NewSecretRotation(stack, jsii.String("ReplicationSecretRotation"), &awssecretsmanager.SecretRotationProps{
		Application:        awssecretsmanager.SecretRotationApplication_MYSQL_ROTATION_SINGLE_USER(),
		Secret:             d.replicationSecret,
		Target:             d.instance,
		Vpc:                p.network.vpc,
		VpcSubnets:         p.network.isolated,
		Endpoint:           p.network.secretsEndpoint,
		SecurityGroup:      d.rotationSecurityGroup,
		AutomaticallyAfter: awscdk.Duration_Days(jsii.Number(SecretRotationDays)),
		// The rotation application generates the next passwords: without
		// this it would use every printable character, DMS's rejected
		// ones included (SecretRotation excludes nothing by default).
		ExcludeCharacters: jsii.String(DMSPasswordExcludeCharacters),
		// The first rotation waits for the schedule: the replication task
		// starts right after the schema setup with this password.
		RotateImmediatelyOnUpdate: jsii.Bool(false),
	})
	d.rotations = []awssecretsmanager.SecretRotation{admin, replication}
}

// scheduleRotationsAfter makes every rotation schedule of the stack wait
// for dependency: rotating a password while the schema setup logs in with
// it (or before it created dms_user) would fail the deployment.
func scheduleRotationsAfter(stack awscdk.Stack, dependency awscdk.CustomResource) {
	forEachResource(stack, "AWS::SecretsManager::RotationSchedule", func(r awscdk.CfnResource) {
		r.Node().AddDependency(dependency)
	})
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

// suppressFindings records why the database's remaining cdk-nag findings
// are accepted.
func (d *ordersDatabase) suppressFindings(cfg Config) {
	findings := []*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-RDS11"),
		Reason: jsii.String("MySQL's standard port: the database is in isolated subnets and its security group admits only DMS and the rotation functions, so a non-default port would add nothing."),
	}}
	if !cfg.DBMultiAZ {
		findings = append(findings, &cdknag.NagPackSuppression{
			Id:     jsii.String("AwsSolutions-RDS3"),
			Reason: jsii.String("Single-AZ by configuration (context dbMultiAz=false, the default for this demo pipeline); set dbMultiAz=true for production."),
		})
	}
	if !cfg.DBDeletionProtection {
		findings = append(findings, &cdknag.NagPackSuppression{
			Id:     jsii.String("AwsSolutions-RDS10"),
			Reason: jsii.String("Deletion protection off by configuration (context dbDeletionProtection=false) so `cdk destroy` works; the instance is snapshotted on deletion. Set dbDeletionProtection=true for production."),
		})
	}
	cdknag.NagSuppressions_AddResourceSuppressions(d.instance, &findings, jsii.Bool(true))
}

// grantSecretRead lets grantee read secret and, when the secret has a
// customer managed key, decrypt with that key only through Secrets Manager
// (kms:ViaService), as Secrets Manager's encryption page documents for
// reading a secret (docs/aws-facts.md §12). secret.GrantRead alone would
// put that decrypt permission in the key's policy, which for a key of the
// common stack is a dependency cycle and for a referenced key is dropped.
func grantSecretRead(grantee awsiam.IGrantable, secret awssecretsmanager.ISecret) {
	secret.GrantRead(grantee, nil)
	key := secret.EncryptionKey()
	if key == nil {
		return
	}
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("kms:Decrypt"),
		Resources:  &[]*string{key.KeyArn()},
		Conditions: viaService(awscdk.Stack_Of(secret), "secretsmanager"),
	}))
}
