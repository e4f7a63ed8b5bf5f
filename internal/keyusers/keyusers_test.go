package keyusers

import "testing"

func TestRoleNamePattern(t *testing.T) {
	for stack, want := range map[string]string{
		"UnifiedStreamETLDataStack":    "UnifiedStreamETLData*",
		"UnifiedStreamETLProcessStack": "UnifiedStreamETLProc*",
		"Short":                        "Short*",
	} {
		if got := RoleNamePattern(stack); got != want {
			t.Errorf("RoleNamePattern(%q) = %q, want %q", stack, got, want)
		}
	}
}

func TestMatchesAsArnLike(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"UnifiedStreamETLData*", "UnifiedStreamETLDataStack-SchemaSetupRole4A8C91EA-AbCdEfGhIjKl", true},
		// A nested stack's role: its stack name begins with the parent's.
		{"UnifiedStreamETLData*", "UnifiedStreamETLDataStack-SecretsManagerRDSMySQLRo-AbCdEfGhIjKl", true},
		{"UnifiedStreamETLData*", "UnifiedStreamETLProcessSt-EnrichRoleEFA49F29-AbCdEfGhIjKl", false},
		{"UnifiedStreamETLData*", "unifiedstreametldatastack-role", false}, // case-sensitive
		{"UnifiedStreamETLData*", "XUnifiedStreamETLDataStack-role", false},
		{"aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataOps_*", "aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_DataOps_0123abcd", true},
		{"etl-operator?", "etl-operators", true},
		{"etl-operator?", "etl-operator", false},
		{"a.b", "axb", false}, // no regular-expression meaning
		// "*" gives back what it took when the rest does not match.
		{"a*b", "a*xb", true},
		{"*ab*ab", "xabyabab", true},
		{"*ab*ab", "xabyaba", false},
		{"a*?", "a", false},
		{"a*?", "aé", true}, // "?" is one character, not one byte
		{"**", "", true},
		{"", "x", false},
	} {
		if got := Matches(c.pattern, c.name); got != c.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}
