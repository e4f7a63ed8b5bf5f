package stacks

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/unified-streaming-etl/etl/internal/customresource/dmstask"
	"github.com/unified-streaming-etl/etl/internal/customresource/schemasetup"
)

// Custom resource types: what CloudFormation shows for each.
const (
	ResourceTypeOrdersSchema  = "Custom::OrdersSchema"
	ResourceTypeTaskStopper   = "Custom::DmsTaskStopper"
	ResourceTypeTaskLifecycle = "Custom::DmsTaskLifecycle"
	ResourceTypeDMSRole       = "Custom::DmsServiceRole"
)

// Custom resource handlers' sizing and the Provider framework's polling.
const (
	CustomResourceMemoryMiB = 256
	// SchemaSetupTimeout covers the handler's wait for the database (five
	// minutes by default) plus applying the script.
	SchemaSetupTimeout = 10 * time.Minute
	// PollerTimeout bounds one onEvent or isComplete call, each a few API
	// calls.
	PollerTimeout = time.Minute
	// DMSTaskPollInterval and DMSTaskTimeout: a task takes minutes to start
	// or stop; an hour (the framework's maximum) covers a slow instance.
	DMSTaskPollInterval = 30 * time.Second
	DMSTaskTimeout      = time.Hour
	// DMSRolePollInterval and DMSRoleTimeout: a new role is ready about a
	// minute after its creation (dmsroles.DefaultSettle).
	DMSRolePollInterval = 15 * time.Second
	DMSRoleTimeout      = 15 * time.Minute
)

// DMSServiceRole is an account-wide role DMS requires under this exact
// name, with this AWS managed policy (docs/aws-facts.md §3).
// https://docs.aws.amazon.com/dms/latest/userguide/security-iam.html#CHAP_Security.APIRole
type DMSServiceRole struct {
	ID, Name, Policy string
}

// DMSServiceRoles are the roles DMS needs before it creates any network
// resource or writes task logs.
var DMSServiceRoles = []DMSServiceRole{
	{"DmsVpcServiceRole", "dms-vpc-role", "service-role/AmazonDMSVPCManagementRole"},
	{"DmsCloudWatchLogsServiceRole", "dms-cloudwatch-logs-role", "service-role/AmazonDMSCloudWatchLogsRole"},
}

// newDMSServiceRoles makes sure the DMS service roles exist: a custom
// resource per role creates it only when the account has none, waits until
// IAM has propagated it, and never deletes or alters a role
// (internal/customresource/dmsroles). Roles it creates are kept on
// `cdk destroy`: other DMS users of the account may depend on them.
func newDMSServiceRoles(scope constructs.Construct, assetDir string, retention awslogs.RetentionDays) []constructs.IConstruct {
	stack := awscdk.Stack_Of(scope)
	fn := newPollingHandler(scope, "DmsRoles", assetDir, retention,
		"Custom resource: creates dms-vpc-role and dms-cloudwatch-logs-role where the account has none; never deletes them.")
	var roleArns, policyArns []*string
	for _, r := range DMSServiceRoles {
		roleArns = append(roleArns, stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("iam"), Region: jsii.String(""), Resource: jsii.String("role"), ResourceName: jsii.String(r.Name),
		}))
		policyArns = append(policyArns, awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("arn:"), stack.Partition(), jsii.String(":iam::aws:policy/" + r.Policy),
		}))
	}
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iam:GetRole", "iam:CreateRole", "iam:ListAttachedRolePolicies"),
		Resources: &roleArns,
	}))
	// Only the role's own DMS policy can be attached.
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("iam:AttachRolePolicy"),
		Resources:  &roleArns,
		Conditions: &map[string]interface{}{"ArnEquals": map[string]interface{}{"iam:PolicyARN": policyArns}},
	}))
	provider := newProvider(scope, "DmsRolesProvider", providerProps{
		onEvent: fn, isComplete: fn,
		queryInterval: DMSRolePollInterval, totalTimeout: DMSRoleTimeout,
		retention: retention,
	})
	var out []constructs.IConstruct
	for i, r := range DMSServiceRoles {
		out = append(out, awscdk.NewCustomResource(scope, jsii.String(r.ID), &awscdk.CustomResourceProps{
			ServiceToken: provider.ServiceToken(),
			ResourceType: jsii.String(ResourceTypeDMSRole),
			Properties: &map[string]interface{}{
				"RoleName":  r.Name,
				"PolicyArn": policyArns[i],
			},
		}))
	}
	return out
}

// legacyDMSRoleIDs are the construct IDs under which data stacks before
// the dms-roles custom resource declared the DMS service roles.
var legacyDMSRoleIDs = map[string]string{"dms-vpc-role": "DmsVpcRole", "dms-cloudwatch-logs-role": "DmsCloudWatchLogsRole"}

// retainLegacyDMSRoles declares the service roles exactly as those stacks
// did (same construct IDs, so the same logical IDs, name, trust and
// policy), with DeletionPolicy Retain: deployed once, it lets the next
// deploy drop them from the stack without deleting them
// (DefaultRetainLegacyDMSRoles says why).
func retainLegacyDMSRoles(stack awscdk.Stack) []constructs.IConstruct {
	var out []constructs.IConstruct
	for _, r := range DMSServiceRoles {
		role := awsiam.NewRole(stack, jsii.String(legacyDMSRoleIDs[r.Name]), &awsiam.RoleProps{
			RoleName:        jsii.String(r.Name),
			AssumedBy:       awsiam.NewServicePrincipal(jsii.String("dms.amazonaws.com"), nil),
			ManagedPolicies: &[]awsiam.IManagedPolicy{awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String(r.Policy))},
		})
		role.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN)
		cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
			Id:        jsii.String("AwsSolutions-IAM4"),
			Reason:    jsii.String("Declared only for the one upgrade deploy that retains a role older stacks created; DMS requires exactly this AWS managed policy."),
			AppliesTo: &[]interface{}{jsii.String("Policy::arn:<AWS::Partition>:iam::aws:policy/" + r.Policy)},
		}}, nil)
		out = append(out, role)
	}
	return out
}

// SchemaSetupTLSMode is how the schema setup verifies the database: the
// whole chain and the host name, against the CA bundle DMS uses.
const SchemaSetupTLSMode = schemasetup.TLSVerifyFull

// providerProps configures a Provider framework around a Go handler.
type providerProps struct {
	onEvent awslambda.IFunction
	// isComplete is set for asynchronous handlers, usually onEvent itself.
	isComplete    awslambda.IFunction
	queryInterval time.Duration
	totalTimeout  time.Duration
	retention     awslogs.RetentionDays
}

// newPollingHandler creates the function of a custom resource that is both
// its provider's onEvent and isComplete handler: each call takes one short
// step (the Provider framework polls for the rest), so PollerTimeout bounds
// it.
func newPollingHandler(scope constructs.Construct, id, assetDir string, retention awslogs.RetentionDays, description string) awslambda.Function {
	return newGoFunction(scope, id, goFunctionProps{
		AssetDir:    assetDir,
		Description: description,
		MemoryMiB:   CustomResourceMemoryMiB,
		Timeout:     PollerTimeout,
		Retention:   retention,
	})
}

// newProvider creates a CDK Provider framework (its Node.js functions and,
// for asynchronous handlers, the Step Functions waiter) that logs to log
// groups with the configured retention.
func newProvider(scope constructs.Construct, id string, p providerProps) customresources.Provider {
	props := &customresources.ProviderProps{
		OnEventHandler: p.onEvent,
		// The handler logs each request; the framework's own errors (such
		// as failing to answer CloudFormation) are worth keeping too.
		FrameworkLambdaLoggingLevel: awslambda.ApplicationLogLevel_ERROR,
		LogGroup:                    awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), logGroupProps(p.retention)),
	}
	if p.isComplete != nil {
		props.IsCompleteHandler = p.isComplete
		props.QueryInterval = awscdk.Duration_Seconds(jsii.Number(p.queryInterval.Seconds()))
		props.TotalTimeout = awscdk.Duration_Seconds(jsii.Number(p.totalTimeout.Seconds()))
		props.DisableWaiterStateMachineLogging = jsii.Bool(false)
		props.WaiterStateMachineLogOptions = &customresources.LogOptions{
			Destination: awslogs.NewLogGroup(scope, jsii.String(id+"WaiterLogs"), logGroupProps(p.retention)),
			Level:       awsstepfunctions.LogLevel_ALL,
			// The handler logs what it does; the events add nothing.
			IncludeExecutionData: jsii.Bool(false),
		}
	}
	provider := customresources.NewProvider(scope, jsii.String(id), props)
	suppressProviderFindings(provider)
	return provider
}

// suppressProviderFindings accepts the findings on what the Provider
// framework creates, which this project does not write.
func suppressProviderFindings(provider customresources.Provider) {
	cdknag.NagSuppressions_AddResourceSuppressions(provider, &[]*cdknag.NagPackSuppression{
		{
			Id:        jsii.String("AwsSolutions-IAM4"),
			Reason:    jsii.String("The CDK Provider framework's functions (part of aws-cdk-lib) use AWSLambdaBasicExecutionRole for their logs."),
			AppliesTo: &[]interface{}{jsii.String("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")},
		},
		{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("Generated by the CDK Provider framework: lambda:InvokeFunction on the handler and its versions (<function ARN>:*), " +
				"and on its own framework functions for the waiter state machine."),
			AppliesTo: &[]interface{}{&cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<.+\.Arn>:\*$/g`)}},
		},
		{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("Generated by the CDK Provider framework for its waiter state machine's logging: the CloudWatch Logs log-delivery actions Step Functions uses " +
				"(logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) " +
				"support no resource-level permissions, and CDK grants the log stream actions alongside them."),
			AppliesTo: &[]interface{}{jsii.String("Resource::*")},
		},
		{
			Id:     jsii.String("AwsSolutions-L1"),
			Reason: jsii.String("The CDK Provider framework's runtime is chosen by aws-cdk-lib and moves forward with CDK upgrades."),
		},
		{
			Id:     jsii.String("AwsSolutions-SF2"),
			Reason: jsii.String("The Provider framework's waiter state machine only polls the isComplete handler, whose calls are traced by X-Ray in the handler function; aws-cdk-lib offers no tracing option for it."),
		},
	}, jsii.Bool(true))
}

// schemaSetupProps configures the schema setup custom resource.
type schemaSetupProps struct {
	assetDir string
	vpc      awsec2.IVpc
	subnets  *awsec2.SubnetSelection
	database awsrds.DatabaseInstance
	// databaseSecurityGroup is the database's security group, which gets
	// the function's ingress rule.
	databaseSecurityGroup awsec2.ISecurityGroup
	// adminSecret logs in to apply the script; replicationSecret holds the
	// password the script gives dms_user.
	adminSecret, replicationSecret awssecretsmanager.ISecret
	// caBundle is the PEM of the CAs the database's certificate chains to.
	caBundle string
	// secretsEndpoint is how the function reaches Secrets Manager.
	secretsEndpoint awsec2.IInterfaceVpcEndpoint
	retention       awslogs.RetentionDays
}

// newSchemaSetup applies sql/ordersdb-setup.sql to the database from a
// function in the isolated subnets (internal/customresource/schemasetup).
// The script's digest is a property, so an edited script is applied again
// on the next deployment.
func newSchemaSetup(scope constructs.Construct, p schemaSetupProps) awscdk.CustomResource {
	sg := awsec2.NewSecurityGroup(scope, jsii.String("SchemaSetupSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              p.vpc,
		Description:      jsii.String("Schema setup function: MySQL to the database, HTTPS to the VPC endpoints."),
		AllowAllOutbound: jsii.Bool(false),
	})
	sg.AddEgressRule(awsec2.Peer_Ipv4(p.vpc.VpcCidrBlock()), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("AWS service endpoints in the VPC"), nil)
	// Adds the database's ingress rule and this group's egress rule.
	p.database.Connections().AllowDefaultPortFrom(sg, jsii.String("Schema setup"))

	fn := newGoFunction(scope, "SchemaSetup", goFunctionProps{
		AssetDir:      p.assetDir,
		Description:   "Custom resource: applies sql/ordersdb-setup.sql (orders schema, DMS user) to the orders database.",
		MemoryMiB:     CustomResourceMemoryMiB,
		Timeout:       SchemaSetupTimeout,
		Retention:     p.retention,
		Vpc:           p.vpc,
		Subnets:       p.subnets,
		SecurityGroup: sg,
	})
	grantSecretRead(fn, p.adminSecret)
	grantSecretRead(fn, p.replicationSecret)

	provider := newProvider(scope, "SchemaSetupProvider", providerProps{onEvent: fn, retention: p.retention})
	resource := awscdk.NewCustomResource(scope, jsii.String("OrdersSchema"), &awscdk.CustomResourceProps{
		ServiceToken: provider.ServiceToken(),
		ResourceType: jsii.String(ResourceTypeOrdersSchema),
		Properties: &map[string]interface{}{
			"DatabaseSecretArn":    p.adminSecret.SecretArn(),
			"ReplicationSecretArn": p.replicationSecret.SecretArn(),
			// The instance's endpoint: a replaced instance gets the schema
			// too.
			"Host":         p.database.DbInstanceEndpointAddress(),
			"Port":         p.database.DbInstanceEndpointPort(),
			"CaBundle":     p.caBundle,
			"TlsMode":      SchemaSetupTLSMode,
			"ScriptSha256": schemasetup.ScriptSHA256,
		},
		// The schema and its data belong to the database, which has its own
		// removal policy; the handler's Delete does nothing.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	// The network path must exist before the function connects: the
	// security group rules and the Secrets Manager endpoint. (Not the
	// whole database construct: its secret's rotation waits for this
	// resource.)
	resource.Node().AddDependency(sg, p.databaseSecurityGroup, p.secretsEndpoint)
	return resource
}

// dmsTaskControlProps configures the DMS task's lifecycle resources.
type dmsTaskControlProps struct {
	assetDir string
	task     awsdms.CfnReplicationTask
	// guarded are the resources DMS refuses to modify while the task runs:
	// the task and its endpoints.
	guarded []awscdk.CfnResource
	// watched are the resources whose definitions, when changed, mean a
	// guarded resource will be modified: the guarded ones and what they
	// reference but cannot see change (the CA certificate).
	watched []awscdk.CfnResource
	// instance is the replication instance the task runs on. Replacing it
	// replaces the task, so its replacement-forcing properties count in
	// the digest: the stopper then stops the old task while the control
	// policy still names it (the policy follows the task, which follows
	// the stopper).
	instance awsdms.CfnReplicationInstance
	// startAfter must be complete before the task starts (the schema).
	startAfter []constructs.IConstruct
	retention  awslogs.RetentionDays
}

// dmsTaskControl is the pair of custom resources around the replication
// task (internal/customresource/dmstask).
type dmsTaskControl struct {
	// Stopper comes before the task and its endpoints: on an update that
	// changes them it stops the task first, which DMS requires.
	Stopper awscdk.CustomResource
	// Lifecycle comes after the task and the schema: it starts the task
	// (resuming it when it ran before) on create and update, and stops it
	// on delete, before CloudFormation deletes the task.
	Lifecycle awscdk.CustomResource
}

// newDMSTaskControl creates the stopper and lifecycle resources with one
// handler function. Both carry a digest of the watched definitions, so an
// update that changes any of them reaches the stopper (stop) and the
// lifecycle resource (start again).
func newDMSTaskControl(scope constructs.Construct, p dmsTaskControlProps) dmsTaskControl {
	stack := awscdk.Stack_Of(scope)
	fn := newPollingHandler(scope, "DmsTask", p.assetDir, p.retention,
		"Custom resource: starts, stops and resumes the DMS replication task around CloudFormation.")
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// The handler filters by the task's ARN; DMS authorizes describe
		// calls on "*" only.
		Actions:   jsii.Strings("dms:DescribeReplicationTasks"),
		Resources: jsii.Strings("*"),
	}))
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// To tell an update from its rollback and to find the task from
		// the stopper, which cannot reference it.
		Actions:   jsii.Strings("cloudformation:DescribeStacks", "cloudformation:DescribeStackResource"),
		Resources: &[]*string{stack.StackId()},
	}))
	// Start and stop on the task itself, in a policy of its own that the
	// function does not depend on: the stopper (and so the function) comes
	// before the task, and the policy, naming the task, after it. The
	// stopper needs the permission only on updates, when the policy exists.
	control := awsiam.NewPolicy(scope, jsii.String("DmsTaskControlPolicy"), &awsiam.PolicyProps{
		Roles: &[]awsiam.IRole{fn.Role()},
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("dms:StartReplicationTask", "dms:StopReplicationTask"),
			Resources: &[]*string{p.task.Ref()},
		})},
	})
	cdknag.NagSuppressions_AddResourceSuppressions(fn.Role(), &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("dms:DescribeReplicationTasks supports no resource-level permissions; the handler always filters by the task's ARN, " +
			"and start/stop are allowed on that task only."),
		AppliesTo: &[]interface{}{jsii.String("Resource::*")},
	}}, jsii.Bool(true))

	provider := newProvider(scope, "DmsTaskProvider", providerProps{
		onEvent: fn, isComplete: fn,
		queryInterval: DMSTaskPollInterval, totalTimeout: DMSTaskTimeout,
		retention: p.retention,
	})
	defs := resourceDefs(stack, p.watched...)
	if p.instance != nil {
		defs = append(defs, replacementDef(stack, p.instance))
	}
	digest := digestOf(defs)
	stopper := awscdk.NewCustomResource(scope, jsii.String("DmsTaskStopper"), &awscdk.CustomResourceProps{
		ServiceToken: provider.ServiceToken(),
		ResourceType: jsii.String(ResourceTypeTaskStopper),
		Properties: &map[string]interface{}{
			"Mode":                     dmstask.ModeStopper,
			"ReplicationTaskLogicalId": stack.GetLogicalId(p.task),
			"ConfigurationSha256":      digest,
		},
	})
	for _, r := range p.guarded {
		r.Node().AddDependency(stopper)
	}
	lifecycle := awscdk.NewCustomResource(scope, jsii.String("DmsTaskLifecycle"), &awscdk.CustomResourceProps{
		ServiceToken: provider.ServiceToken(),
		ResourceType: jsii.String(ResourceTypeTaskLifecycle),
		Properties: &map[string]interface{}{
			"Mode":                dmstask.ModeLifecycle,
			"ReplicationTaskArn":  p.task.Ref(),
			"ConfigurationSha256": digest,
		},
	})
	// The reference to the task already orders them; the explicit
	// dependency documents it: created after the task, deleted (stopping
	// the task) before it.
	lifecycle.Node().AddDependency(control, p.task)
	for _, c := range p.startAfter {
		lifecycle.Node().AddDependency(c)
	}
	return dmsTaskControl{Stopper: stopper, Lifecycle: lifecycle}
}

// ReplicationInstanceReplacedBy are the AWS::DMS::ReplicationInstance
// properties whose change replaces the instance (Update requires:
// Replacement), and with it the task that references it.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-dms-replicationinstance.html
var ReplicationInstanceReplacedBy = []string{
	"AvailabilityZone", "KmsKeyId", "PubliclyAccessible", "ReplicationInstanceIdentifier",
	"ReplicationSubnetGroupIdentifier", "ResourceIdentifier",
}

// replacementDef is the instance's logical ID, type and the properties
// among ReplicationInstanceReplacedBy it sets, as digestOf sees them: a
// change that modifies the instance in place (its class, its engine
// version) leaves the task running.
func replacementDef(stack awscdk.Stack, instance awsdms.CfnReplicationInstance) any {
	all, _ := stack.Resolve(instance.CfnProperties()).(map[string]any)
	key := map[string]any{}
	for _, name := range ReplicationInstanceReplacedBy {
		// CfnProperties names them in camelCase.
		if v, ok := all[strings.ToLower(name[:1])+name[1:]]; ok {
			key[name] = v
		}
	}
	return map[string]any{
		"LogicalId":             stack.Resolve(stack.GetLogicalId(instance)),
		"Type":                  *instance.CfnResourceType(),
		"ReplacementProperties": key,
	}
}

// resourceDefs are the resources' CloudFormation types and properties as
// they will be synthesized (references stay symbolic), for digestOf.
func resourceDefs(stack awscdk.Stack, resources ...awscdk.CfnResource) []any {
	defs := make([]any, len(resources))
	for i, r := range resources {
		defs[i] = map[string]any{
			"LogicalId":  stack.Resolve(stack.GetLogicalId(r)),
			"Type":       *r.CfnResourceType(),
			"Properties": stack.Resolve(r.CfnProperties()),
		}
	}
	return defs
}

// digestOf is the SHA-256 of the definitions.
func digestOf(defs []any) string {
	sum := sha256.Sum256([]byte(mustJSON(defs)))
	return hex.EncodeToString(sum[:])
}
