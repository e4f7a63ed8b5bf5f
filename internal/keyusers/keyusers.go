// Package keyusers is the rule by which the pipeline key's policy names the
// roles of the stacks that use it (docs/aws-facts.md §14). The CDK app
// writes the policy with it (stacks/keypolicy.go) and `etl key-users`
// checks a deployment's roles against it; it is a package of its own so
// that the operator tool does not build the CDK in.
package keyusers

import (
	"regexp"
	"strings"
)

// PrefixLength is how much of a stack's name a role name pattern keeps.
// CloudFormation names a role it creates without a RoleName
// "<stack name>-<logical ID>-<random>", shortening long names to IAM's 64
// characters; it has been seen to keep 25 characters of the stack name
// (docs/aws-facts.md §14). 20 keep the patterns of the data and process
// stacks apart from each other and from the CI stack's.
const PrefixLength = 20

// RoleNamePattern is the pattern of the names CloudFormation gives the
// roles of stack and of its nested stacks, whose names begin with the
// stack's.
func RoleNamePattern(stack string) string {
	return stack[:min(len(stack), PrefixLength)] + "*"
}

// Matches reports whether name matches pattern as IAM's ArnLike matches
// an ARN's resource part: "*" stands for any characters, "/" included, and
// "?" for any one character; everything else matches itself, case
// sensitively.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
func Matches(pattern, name string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(name)
}
