package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/unified-streaming-etl/etl/internal/ops"
)

func init() {
	register(command{
		name:    "key-users",
		summary: "check that the pipeline key's policy names every role of the deployed data and process stacks",
		run:     runKeyUsers,
	})
}

const keyUsersDescription = `
Lists the IAM roles of the deployed data and process stacks, with those of
their nested stacks (the secret rotation applications), and checks each
against the role name pattern of its stack that the pipeline key's policy
names (UnifiedStreamETLData*, UnifiedStreamETLProc*). The patterns rest on
the names CloudFormation generates for roles (docs/aws-facts.md §14): run
this once after the first deploy of a version. A role they miss is refused
by KMS, so the function or service behind it fails.

It exits 0 when every role is named and 1 when one is not, listing each
with the ARN to add to the CDK context keyUsers until the patterns are
fixed. The caller needs cloudformation:DescribeStacks and
cloudformation:ListStackResources on both stacks and their nested stacks.
`

func runKeyUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("key-users", "key-users", keyUsersDescription, stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	clients, err := loadAWSClients(ctx)
	if err != nil {
		return err
	}
	ku, err := ops.CheckKeyUsers(ctx, clients.StackResources, ops.DataStack, ops.ProcessStack)
	if err != nil {
		return err
	}
	var unnamed []string
	for _, s := range ku.Stacks {
		fmt.Fprintf(stdout, "%s: %d of %d roles named by %s\n", s.Name, len(s.Roles)-len(s.Unnamed), len(s.Roles), s.Pattern)
		for _, r := range s.Unnamed {
			fmt.Fprintf(stdout, "  not named: %s (%s in %s)\n", r.Name, r.LogicalID, r.Stack)
			unnamed = append(unnamed, ku.ARNPrefix+r.Name)
		}
	}
	if len(unnamed) == 0 {
		fmt.Fprintln(stdout, "The pipeline key's policy names every role of the stacks.")
		return nil
	}
	return fmt.Errorf("%d roles are not named by the pipeline key's policy, so KMS refuses them: "+
		"add them to keyUsers and deploy the common stack (npx cdk deploy UnifiedStreamETLCommonStack -c keyUsers=%s)",
		len(unnamed), strings.Join(unnamed, ","))
}
