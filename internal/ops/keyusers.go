package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/unified-streaming-etl/etl/internal/keyusers"
)

// StackResources is the part of the CloudFormation client `etl key-users`
// uses.
type StackResources interface {
	CloudFormation
	cloudformation.ListStackResourcesAPIClient
}

// StackRole is an IAM role CloudFormation created in a stack or in one of
// its nested stacks.
type StackRole struct {
	Stack     string // the stack that declares it (a nested stack's name)
	LogicalID string
	Name      string
}

// KeyUsers is what `etl key-users` found: the roles of the stacks whose
// roles use the pipeline key, and the role name pattern of each stack.
type KeyUsers struct {
	// Stacks are the checked stacks, each with its pattern and roles.
	Stacks []KeyUserStack
	// ARNPrefix is "arn:<partition>:iam::<account>:role/", for the ARNs
	// of unnamed roles an operator would add to keyUsers.
	ARNPrefix string
}

// KeyUserStack is one checked stack.
type KeyUserStack struct {
	Name, Pattern string
	Roles         []StackRole
	// Unnamed are the roles the pattern does not match: the key's policy
	// does not name them, so KMS refuses them.
	Unnamed []StackRole
}

// CheckKeyUsers lists the roles of each stack and of its nested stacks and
// checks each against the stack's role name pattern, the one the pipeline
// key's policy names (internal/keyusers, docs/aws-facts.md §14). Roles are
// matched by name: the stacks declare none with a path.
func CheckKeyUsers(ctx context.Context, cf StackResources, stacks ...string) (KeyUsers, error) {
	var ku KeyUsers
	for _, stack := range stacks {
		out, err := describeStack(ctx, cf, stack)
		if err != nil {
			return KeyUsers{}, err
		}
		if ku.ARNPrefix == "" {
			ku.ARNPrefix = roleARNPrefix(aws.ToString(out.StackId))
		}
		roles, err := StackRoles(ctx, cf, stack)
		if err != nil {
			return KeyUsers{}, err
		}
		s := KeyUserStack{Name: stack, Pattern: keyusers.RoleNamePattern(stack), Roles: roles}
		for _, r := range roles {
			if !keyusers.Matches(s.Pattern, r.Name) {
				s.Unnamed = append(s.Unnamed, r)
			}
		}
		ku.Stacks = append(ku.Stacks, s)
	}
	return ku, nil
}

// roleARNPrefix is the IAM role ARN prefix of the account and partition of
// a stack ARN (arn:<partition>:cloudformation:<region>:<account>:stack/...).
func roleARNPrefix(stackARN string) string {
	a, err := arn.Parse(stackARN)
	if err != nil {
		return "arn:aws:iam::<account>:role/"
	}
	return arn.ARN{Partition: a.Partition, Service: "iam", AccountID: a.AccountID, Resource: "role/"}.String()
}

// StackRoles lists the IAM roles of stack (a name or an ARN) and, through
// their AWS::CloudFormation::Stack resources, of its nested stacks, such as
// the secret rotation applications'.
func StackRoles(ctx context.Context, cf cloudformation.ListStackResourcesAPIClient, stack string) ([]StackRole, error) {
	var roles []StackRole
	pages := cloudformation.NewListStackResourcesPaginator(cf, &cloudformation.ListStackResourcesInput{StackName: &stack})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the resources of stack %s: %w", stack, err)
		}
		for _, r := range page.StackResourceSummaries {
			id := aws.ToString(r.PhysicalResourceId)
			if id == "" || r.ResourceStatus == cftypes.ResourceStatusDeleteComplete {
				continue
			}
			switch aws.ToString(r.ResourceType) {
			case "AWS::IAM::Role":
				roles = append(roles, StackRole{Stack: stackName(stack), LogicalID: aws.ToString(r.LogicalResourceId), Name: id})
			case "AWS::CloudFormation::Stack":
				nested, err := StackRoles(ctx, cf, id)
				if err != nil {
					return nil, err
				}
				roles = append(roles, nested...)
			}
		}
	}
	return roles, nil
}

// stackName is the name in a stack ARN (…:stack/<name>/<id>), or stack
// itself when it is a name.
func stackName(stack string) string {
	a, err := arn.Parse(stack)
	if err != nil {
		return stack
	}
	if rest, ok := strings.CutPrefix(a.Resource, "stack/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return stack
}
