package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// network is the data stack's VPC: isolated subnets in two Availability
// Zones, flow logs, and the interface endpoints through which everything
// in it reaches AWS services. There is no NAT gateway and no internet
// gateway.
//
// Its resources keep the IDs they had directly under the stack (a VPC
// replaced by an update would replace the database with it).
type network struct {
	vpc      awsec2.Vpc
	isolated *awsec2.SubnetSelection
	// endpoints are every interface endpoint, which DMS needs available
	// before its subnet group and instance are created.
	endpoints []awsec2.InterfaceVpcEndpoint
	// secretsEndpoint is the Secrets Manager endpoint the rotation
	// functions, the schema setup and DMS call.
	secretsEndpoint awsec2.InterfaceVpcEndpoint
}

// interfaceEndpoints are the services the VPC reaches: DMS reads its
// source secret through Secrets Manager and writes to Kinesis; the secret
// rotation functions call Secrets Manager; DMS replication instances also
// use STS and CloudWatch Logs. No caller in the VPC calls KMS itself
// (Kinesis and Secrets Manager decrypt server-side), so there is no KMS
// endpoint. The first is the Secrets Manager endpoint.
func interfaceEndpoints() []struct {
	id      string
	service awsec2.InterfaceVpcEndpointAwsService
} {
	return []struct {
		id      string
		service awsec2.InterfaceVpcEndpointAwsService
	}{
		{"SecretsManagerEndpoint", awsec2.InterfaceVpcEndpointAwsService_SECRETS_MANAGER()},
		{"KinesisEndpoint", awsec2.InterfaceVpcEndpointAwsService_KINESIS_STREAMS()},
		{"StsEndpoint", awsec2.InterfaceVpcEndpointAwsService_STS()},
		{"LogsEndpoint", awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_LOGS()},
	}
}

func newNetwork(stack awscdk.Stack, cfg Config) *network {
	n := &network{
		vpc:      newIsolatedVpc(stack, cfg),
		isolated: &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
	}
	for _, svc := range interfaceEndpoints() {
		ep := n.vpc.AddInterfaceEndpoint(jsii.String(svc.id), &awsec2.InterfaceVpcEndpointOptions{
			Service:           svc.service,
			Subnets:           n.isolated,
			PrivateDnsEnabled: jsii.Bool(true),
		})
		// STS is where the DMS replication instance assumes this
		// account's roles; whether it signs that call with the DMS
		// service's own credentials (another account's principal) is not
		// documented, so the STS endpoint checks only that the role
		// assumed is this account's (docs/aws-facts.md §3).
		restrictToAccount(stack, ep, svc.id != "StsEndpoint")
		n.endpoints = append(n.endpoints, ep)
	}
	n.secretsEndpoint = n.endpoints[0]
	// The Secrets Manager rotation functions generate passwords with
	// GetRandomPassword, which acts on no resource: it is allowed to this
	// account's principals alone.
	// https://docs.aws.amazon.com/secretsmanager/latest/userguide/vpc-endpoint-overview.html
	n.secretsEndpoint.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("RandomPasswordsForThisAccount"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("secretsmanager:GetRandomPassword"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:PrincipalAccount": stack.Account()}},
	}))
	return n
}

// suppressFindings records why the network's cdk-nag findings are
// accepted; called last, as it applies to every construct then in the VPC.
func (n *network) suppressFindings() {
	// cdk-nag cannot evaluate the endpoints' ingress rule, whose source is
	// the VPC's CIDR block (an attribute, not a literal).
	cdknag.NagSuppressions_AddResourceSuppressions(n.vpc, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("CdkNagValidationFailure"),
		Reason: jsii.String("AwsSolutions-EC23 cannot resolve the VPC endpoints' ingress source, the VPC's own CIDR block (Fn::GetAtt); HTTPS is open to the VPC only."),
	}}, jsii.Bool(true))
}

// httpsToEndpointsSecurityGroup creates a security group with no egress
// but HTTPS to the VPC's CIDR block, where the interface endpoints are.
func (n *network) httpsToEndpointsSecurityGroup(stack awscdk.Stack, id, description string) awsec2.SecurityGroup {
	sg := awsec2.NewSecurityGroup(stack, jsii.String(id), &awsec2.SecurityGroupProps{
		Vpc:              n.vpc,
		Description:      jsii.String(description),
		AllowAllOutbound: jsii.Bool(false),
	})
	sg.AddEgressRule(awsec2.Peer_Ipv4(n.vpc.VpcCidrBlock()), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("AWS service endpoints in the VPC"), nil)
	return sg
}

// newIsolatedVpc creates a VPC with isolated subnets in two Availability
// Zones (DMS and RDS subnet groups need two) and flow logs to CloudWatch.
// It has no S3 gateway endpoint: nothing in the VPC calls S3 (the schema
// setup's Provider framework answers CloudFormation from outside the VPC,
// and every security group in it allows HTTPS to the VPC's CIDR only).
func newIsolatedVpc(stack awscdk.Stack, cfg Config) awsec2.Vpc {
	flowLogs := awslogs.NewLogGroup(stack, jsii.String("VpcFlowLogs"), logGroupProps(cfg.logRetention()))
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
