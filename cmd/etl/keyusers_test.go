package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/unified-streaming-etl/etl/internal/ops"
)

// fakeResources is a deployment as CloudFormation lists it: each stack's
// resource pages, by stack name or nested stack ARN.
type fakeResources map[string][][]cftypes.StackResourceSummary

// ListStackResources serves the stack's pages, NextToken being the next
// page's index.
func (f fakeResources) ListStackResources(_ context.Context, in *cloudformation.ListStackResourcesInput, _ ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error) {
	pages, ok := f[aws.ToString(in.StackName)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + aws.ToString(in.StackName) + " does not exist"}
	}
	i := 0
	if in.NextToken != nil {
		i = int((*in.NextToken)[0] - '0')
	}
	out := &cloudformation.ListStackResourcesOutput{StackResourceSummaries: pages[i]}
	if i+1 < len(pages) {
		out.NextToken = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

func resource(typ, logicalID, physicalID string) cftypes.StackResourceSummary {
	return cftypes.StackResourceSummary{
		ResourceType: aws.String(typ), LogicalResourceId: aws.String(logicalID), PhysicalResourceId: aws.String(physicalID),
		ResourceStatus: cftypes.ResourceStatusCreateComplete,
	}
}

// useDeployment makes the commands see the stacks of d, every one
// described without outputs.
func useDeployment(t *testing.T, d fakeResources) {
	t.Helper()
	offlineAWS(t, "eu-west-1")
	stacks := fakeStacks{}
	for name := range d {
		stacks[name] = nil
	}
	useFakeAWS(t, fakeAWS{stacks: stacks, resources: d})
}

// A deployment whose roles (a nested rotation stack's included, over two
// pages) all carry their stack's name.
func deployment() fakeResources {
	rotation := fakeAccountStack + "UnifiedStreamETLDataStack-DatabaseRotationSingleUser65F55654-1X2Y3Z/9f8e"
	return fakeResources{
		ops.DataStack: {
			{
				resource("AWS::IAM::Role", "SchemaSetupRole4A8C91EA", "UnifiedStreamETLDataStack-SchemaSetupRole4A8C91EA-AbCdEfGhIjKl"),
				resource("AWS::CloudFormation::Stack", "DatabaseRotationSingleUser65F55654", rotation),
				resource("AWS::RDS::DBInstance", "DatabaseB269D8BB", "ordersdb"),
			},
			{
				resource("AWS::IAM::Role", "ReplicationStreamRole09B0A47B", "UnifiedStreamETLDataStack-ReplicationStreamRole09B0-MnOpQrStUvWx"),
				// Gone with an earlier deploy: no longer the key's concern.
				func() cftypes.StackResourceSummary {
					r := resource("AWS::IAM::Role", "OldRole", "some-deleted-role")
					r.ResourceStatus = cftypes.ResourceStatusDeleteComplete
					return r
				}(),
			},
		},
		rotation: {{resource("AWS::IAM::Role", "SecretsManagerRDSMySQLRotationSingleUserRole", "UnifiedStreamETLDataStack-SecretsManagerRDSMySQLRo-QwErTyUiOpAs")}},
		ops.ProcessStack: {{
			resource("AWS::IAM::Role", "EnrichRoleEFA49F29", "UnifiedStreamETLProcessSt-EnrichRoleEFA49F29-ZxCvBnMlKjHg"),
			resource("AWS::DynamoDB::Table", "OrderEnrichedA84A32C6", "UnifiedStreamETLProcessStack-OrderEnriched-1"),
		}},
	}
}

func TestKeyUsersFindsEveryRoleNamedByTheKeyPolicy(t *testing.T) {
	useDeployment(t, deployment())
	code, stdout, stderr := etl("key-users")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		ops.DataStack + ": 3 of 3 roles named by UnifiedStreamETLData*",
		ops.ProcessStack + ": 1 of 1 roles named by UnifiedStreamETLProc*",
		"names every role",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

// A role whose generated name does not begin with its stack's pattern
// (here, as if CloudFormation had shortened the nested stack's name more)
// is listed with the ARN to add to keyUsers, and the command fails.
func TestKeyUsersListsARoleThePolicyDoesNotName(t *testing.T) {
	d := deployment()
	for name, pages := range d {
		if strings.Contains(name, "Rotation") {
			pages[0][0].PhysicalResourceId = aws.String("UnifiedStream-SecretsManagerRDSMySQLRo-QwErTyUiOpAs")
		}
	}
	useDeployment(t, d)
	code, stdout, stderr := etl("key-users")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout:\n%s", code, stdout)
	}
	if want := "not named: UnifiedStream-SecretsManagerRDSMySQLRo-QwErTyUiOpAs (SecretsManagerRDSMySQLRotationSingleUserRole in UnifiedStreamETLDataStack-DatabaseRotationSingleUser65F55654-1X2Y3Z)"; !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
	if want := "-c keyUsers=arn:aws:iam::123456789012:role/UnifiedStream-SecretsManagerRDSMySQLRo-QwErTyUiOpAs"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

func TestKeyUsersNamesAMissingStack(t *testing.T) {
	d := deployment()
	delete(d, ops.ProcessStack)
	useDeployment(t, d)
	code, _, stderr := etl("key-users")
	if code != 1 || !strings.Contains(stderr, "stack "+ops.ProcessStack+" does not exist") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}
