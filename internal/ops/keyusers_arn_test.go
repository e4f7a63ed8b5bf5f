package ops

import "testing"

func TestStackARNParts(t *testing.T) {
	const stackARN = "arn:aws-cn:cloudformation:cn-north-1:111122223333:stack/UnifiedStreamETLDataStack-Rotation-1ABC/0f1e2d3c-aaaa-bbbb-cccc-111122223333"
	if got, want := roleARNPrefix(stackARN), "arn:aws-cn:iam::111122223333:role/"; got != want {
		t.Errorf("roleARNPrefix = %q, want %q", got, want)
	}
	if got, want := roleARNPrefix("not-an-arn"), "arn:aws:iam::<account>:role/"; got != want {
		t.Errorf("roleARNPrefix of a name = %q, want %q", got, want)
	}
	for in, want := range map[string]string{
		stackARN:                    "UnifiedStreamETLDataStack-Rotation-1ABC",
		"UnifiedStreamETLDataStack": "UnifiedStreamETLDataStack",
	} {
		if got := stackName(in); got != want {
			t.Errorf("stackName(%q) = %q, want %q", in, got, want)
		}
	}
}
