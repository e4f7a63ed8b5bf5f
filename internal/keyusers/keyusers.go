// Package keyusers is the rule by which the pipeline key's policy names the
// roles of the stacks that use it (docs/aws-facts.md §14). The CDK app
// writes the policy with it (stacks/keypolicy.go) and `etl key-users`
// checks a deployment's roles against it; it is a package of its own so
// that the operator tool does not build the CDK in.
package keyusers

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
	p, n := []rune(pattern), []rune(name)
	// Greedy matching that, on a mismatch, goes back to the last "*" and
	// lets it take one more rune: a later "*" covers whatever an earlier
	// one would, so only the last needs revisiting.
	pi, ni := 0, 0
	star, starN := -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, starN = pi, ni
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case star >= 0:
			starN++
			pi, ni = star+1, starN
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
