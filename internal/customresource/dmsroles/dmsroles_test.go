package dmsroles_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/unified-streaming-etl/etl/internal/customresource"
	"github.com/unified-streaming-etl/etl/internal/customresource/dmsroles"
)

const (
	roleName  = "dms-vpc-role"
	policyArn = "arn:aws:iam::aws:policy/service-role/AmazonDMSVPCManagementRole"
	otherArn  = "arn:aws:iam::123456789012:policy/SomethingElse"
)

// fakeIAM is an in-memory IAM holding roles and their attached policies,
// whose reads lag writes by `lag` reads (eventual consistency).
type fakeIAM struct {
	now      time.Time
	roles    map[string]*types.Role
	policies map[string][]string
	// hidden counts the reads that still miss a role created here.
	hidden   map[string]int
	lag      int
	mutating []string // the calls that change IAM
	raceOn   bool     // another caller creates the role just before CreateRole
}

func newFakeIAM(now time.Time) *fakeIAM {
	return &fakeIAM{now: now, roles: map[string]*types.Role{}, policies: map[string][]string{}, hidden: map[string]int{}}
}

func (f *fakeIAM) put(name string, created time.Time, policies ...string) {
	f.roles[name] = &types.Role{RoleName: aws.String(name), Arn: aws.String("arn:aws:iam::123456789012:role/" + name), CreateDate: aws.Time(created)}
	f.policies[name] = policies
}

func (f *fakeIAM) visible(name string) bool {
	if f.hidden[name] > 0 {
		f.hidden[name]--
		return false
	}
	return f.roles[name] != nil
}

func (f *fakeIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	name := aws.ToString(in.RoleName)
	if !f.visible(name) {
		return nil, &types.NoSuchEntityException{Message: aws.String("The role with name " + name + " cannot be found.")}
	}
	r := *f.roles[name]
	return &iam.GetRoleOutput{Role: &r}, nil
}

func (f *fakeIAM) CreateRole(_ context.Context, in *iam.CreateRoleInput, _ ...func(*iam.Options)) (*iam.CreateRoleOutput, error) {
	name := aws.ToString(in.RoleName)
	if f.raceOn {
		f.put(name, f.now)
	}
	if f.roles[name] != nil {
		return nil, &types.EntityAlreadyExistsException{Message: aws.String("Role with name " + name + " already exists.")}
	}
	f.mutating = append(f.mutating, "CreateRole "+name+" "+aws.ToString(in.AssumeRolePolicyDocument))
	f.put(name, f.now)
	f.hidden[name] = f.lag
	r := *f.roles[name]
	return &iam.CreateRoleOutput{Role: &r}, nil
}

func (f *fakeIAM) AttachRolePolicy(_ context.Context, in *iam.AttachRolePolicyInput, _ ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error) {
	name := aws.ToString(in.RoleName)
	f.mutating = append(f.mutating, "AttachRolePolicy "+name+" "+aws.ToString(in.PolicyArn))
	f.policies[name] = append(f.policies[name], aws.ToString(in.PolicyArn))
	return &iam.AttachRolePolicyOutput{}, nil
}

func (f *fakeIAM) ListAttachedRolePolicies(_ context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	name := aws.ToString(in.RoleName)
	if f.roles[name] == nil {
		return nil, &types.NoSuchEntityException{Message: aws.String("no role " + name)}
	}
	out := &iam.ListAttachedRolePoliciesOutput{}
	for _, p := range f.policies[name] {
		out.AttachedPolicies = append(out.AttachedPolicies, types.AttachedPolicy{PolicyArn: aws.String(p)})
	}
	return out, nil
}

func request(typ cfn.RequestType, physicalID string) customresource.Request {
	return customresource.Request{Event: cfn.Event{
		RequestType:        typ,
		RequestID:          "0f4bd8f2-6c3a-4f36-9c76-0d7a1f2e3b4c",
		LogicalResourceID:  "DmsVpcRole",
		PhysicalResourceID: physicalID,
		ResourceType:       "Custom::DmsServiceRole",
		ResourceProperties: map[string]any{"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider", "RoleName": roleName, "PolicyArn": policyArn},
	}}
}

// run sends the event's onEvent request, then isComplete requests, the
// clock advancing 15 s between them, until done; it returns the onEvent
// response and how long the wait took.
func run(t *testing.T, h *dmsroles.Handler, f *fakeIAM, req customresource.Request) (customresource.Response, time.Duration) {
	t.Helper()
	ctx := context.Background()
	resp, err := h.OnEvent(ctx, req)
	if err != nil {
		t.Fatalf("onEvent: %v", err)
	}
	b, err := json.Marshal(resp.IsCompleteInput)
	if err != nil {
		t.Fatal(err)
	}
	req.IsCompleteInput = b
	start := f.now
	for range 100 {
		done, err := h.IsComplete(ctx, req)
		if err != nil {
			t.Fatalf("isComplete: %v", err)
		}
		if done.IsComplete {
			return resp, f.now.Sub(start)
		}
		f.now = f.now.Add(15 * time.Second)
	}
	t.Fatal("never complete")
	return resp, 0
}

func newHandler(f *fakeIAM) *dmsroles.Handler {
	return &dmsroles.Handler{IAM: f, Now: func() time.Time { return f.now }}
}

func TestAbsentRoleIsCreatedForDMSAndWaitedFor(t *testing.T) {
	f := newFakeIAM(time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC))
	f.lag = 3 // IAM shows the new role only from the fourth read on
	resp, waited := run(t, newHandler(f), f, request(cfn.RequestCreate, ""))

	if len(f.mutating) != 2 || !strings.HasPrefix(f.mutating[0], "CreateRole "+roleName) || f.mutating[1] != "AttachRolePolicy "+roleName+" "+policyArn {
		t.Fatalf("IAM calls %q, want the role created and its policy attached", f.mutating)
	}
	var trust struct {
		Statement []struct {
			Effect    string
			Principal struct{ Service string }
			Action    string
		}
	}
	if err := json.Unmarshal([]byte(strings.SplitN(f.mutating[0], " ", 3)[2]), &trust); err != nil {
		t.Fatal(err)
	}
	if len(trust.Statement) != 1 || trust.Statement[0].Principal.Service != "dms.amazonaws.com" || trust.Statement[0].Action != "sts:AssumeRole" || trust.Statement[0].Effect != "Allow" {
		t.Errorf("trust policy %+v, want DMS only", trust)
	}
	if resp.PhysicalResourceID != "dms-service-role/"+roleName || resp.Data["CreatedByStack"] != "true" || resp.Data["RoleArn"] != "arn:aws:iam::123456789012:role/"+roleName {
		t.Errorf("response %+v", resp)
	}
	if waited < dmsroles.DefaultSettle {
		t.Errorf("DMS may use the role %s after its creation, want at least %s for IAM to propagate it", waited, dmsroles.DefaultSettle)
	}
}

func TestExistingRoleIsLeftAsItIs(t *testing.T) {
	tests := []struct {
		name     string
		policies []string
	}{
		{"with its DMS policy", []string{policyArn}},
		// Someone else's role, even one missing the policy DMS needs, is
		// theirs to fix: the stack warns in its log and changes nothing.
		{"with another policy only", []string{otherArn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
			f := newFakeIAM(now)
			f.put(roleName, now.Add(-400*24*time.Hour), tt.policies...)
			resp, waited := run(t, newHandler(f), f, request(cfn.RequestCreate, ""))
			if len(f.mutating) != 0 {
				t.Errorf("changed a role the stack did not create: %q", f.mutating)
			}
			if !slices.Equal(f.policies[roleName], tt.policies) {
				t.Errorf("policies now %v, want %v", f.policies[roleName], tt.policies)
			}
			if resp.Data["CreatedByStack"] != "false" || waited != 0 {
				t.Errorf("response %+v after %s, want an existing role, ready at once", resp.Data, waited)
			}
		})
	}
}

func TestRoleCreatedByAnotherCallerMeanwhileIsLeftAlone(t *testing.T) {
	f := newFakeIAM(time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC))
	f.raceOn = true
	resp, _ := run(t, newHandler(f), f, request(cfn.RequestCreate, ""))
	if len(f.mutating) != 0 || resp.Data["CreatedByStack"] != "false" {
		t.Errorf("IAM calls %q, response %+v; want the other caller's role left alone", f.mutating, resp.Data)
	}
}

func TestDeleteNeverDeletesOrChangesARole(t *testing.T) {
	for _, created := range []bool{false, true} {
		name := map[bool]string{false: "a role that existed before the stack", true: "a role the stack created"}[created]
		t.Run(name, func(t *testing.T) {
			now := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
			f := newFakeIAM(now)
			if created {
				run(t, newHandler(f), f, request(cfn.RequestCreate, ""))
			} else {
				f.put(roleName, now.Add(-time.Hour), policyArn)
			}
			before := len(f.mutating)
			resp, _ := run(t, newHandler(f), f, request(cfn.RequestDelete, dmsroles.PhysicalID(roleName)))
			if len(f.mutating) != before || f.roles[roleName] == nil || !slices.Contains(f.policies[roleName], policyArn) {
				t.Errorf("delete changed IAM: calls %q, role %v, policies %v", f.mutating[before:], f.roles[roleName], f.policies[roleName])
			}
			if resp.PhysicalResourceID != dmsroles.PhysicalID(roleName) {
				t.Errorf("delete answered physical ID %q", resp.PhysicalResourceID)
			}
		})
	}
}

func TestUpdateOfAnExistingRoleChangesNothing(t *testing.T) {
	now := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	f := newFakeIAM(now)
	f.put(roleName, now.Add(-time.Hour), policyArn)
	req := request(cfn.RequestUpdate, dmsroles.PhysicalID(roleName))
	req.OldResourceProperties = req.ResourceProperties
	resp, _ := run(t, newHandler(f), f, req)
	if len(f.mutating) != 0 || resp.PhysicalResourceID != dmsroles.PhysicalID(roleName) {
		t.Errorf("calls %q, physical ID %q", f.mutating, resp.PhysicalResourceID)
	}
}

func TestBadPropertiesFailCreate(t *testing.T) {
	f := newFakeIAM(time.Now())
	req := request(cfn.RequestCreate, "")
	req.ResourceProperties["RoleName"] = "path/dms-vpc-role"
	if _, err := newHandler(f).OnEvent(context.Background(), req); err == nil || !strings.Contains(err.Error(), "RoleName") {
		t.Errorf("error %v, want one naming RoleName", err)
	}
	if len(f.mutating) != 0 {
		t.Errorf("IAM changed: %q", f.mutating)
	}
}
