// Package dmsroles is the custom resource that makes sure one of the
// account-wide IAM roles DMS requires by name (dms-vpc-role,
// dms-cloudwatch-logs-role) exists before the stack creates DMS resources.
//
// DMS looks these roles up by name, so an account has one of each, shared
// by every DMS user of the account. Declaring them as AWS::IAM::Role fails
// in any account that already has them, and deleting them with the stack
// would break the account's other DMS resources. So:
//
//   - Create and Update create the role, trusting dms.amazonaws.com, and
//     attach its AWS managed policy, only when no role of that name exists.
//     A role that exists is left exactly as it is, whoever made it.
//   - A role this handler created is ready when IAM shows it with its policy
//     attached and Settle has passed since IAM created it (IAM is
//     eventually consistent and DMS offers no way to test its view of a
//     role); a role that existed before is ready at once.
//   - Delete never deletes or changes anything: other DMS resources of the
//     account may use the role, and an unused role costs nothing.
//
// https://docs.aws.amazon.com/dms/latest/userguide/security-iam.html#CHAP_Security.APIRole
// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency
package dmsroles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/unified-streaming-etl/etl/internal/customresource"
)

// ServicePrincipal is who may assume the roles.
const ServicePrincipal = "dms.amazonaws.com"

// DefaultSettle is how long after its creation a new role, once IAM shows
// it with its policy, is left to propagate before DMS is let near it. IAM
// documents no bound on propagation, only that changes take time to be
// visible everywhere; a minute is a wide margin over the seconds it usually
// takes, paid once, on the first deployment in an account. (The DMS
// resources also wait for the VPC interface endpoints, which take minutes.)
const DefaultSettle = time.Minute

// Properties are the custom resource's properties.
type Properties struct {
	// RoleName is the role DMS requires, e.g. dms-vpc-role.
	RoleName string `json:"RoleName"`
	// PolicyArn is the AWS managed policy a created role gets.
	PolicyArn string `json:"PolicyArn"`
}

func (p Properties) validate() error {
	if p.RoleName == "" || strings.ContainsAny(p.RoleName, "/:") {
		return fmt.Errorf("property RoleName: %q is not a role name", p.RoleName)
	}
	if !strings.HasPrefix(p.PolicyArn, "arn:") || !strings.Contains(p.PolicyArn, ":policy/") {
		return fmt.Errorf("property PolicyArn: %q is not a managed policy ARN", p.PolicyArn)
	}
	return nil
}

// IAM is the part of the IAM client the handler uses.
type IAM interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(ctx context.Context, in *iam.CreateRoleInput, optFns ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	AttachRolePolicy(ctx context.Context, in *iam.AttachRolePolicyInput, optFns ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
}

// Handler handles the onEvent and isComplete requests.
type Handler struct {
	IAM IAM
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Settle overrides DefaultSettle (tests).
	Settle time.Duration
}

// waitInput is what onEvent hands to every isComplete call.
type waitInput struct {
	RoleName  string `json:"RoleName"`
	PolicyArn string `json:"PolicyArn"`
	// Created is set when this event created the role; only then is there
	// anything to wait for.
	Created bool `json:"Created"`
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) settle() time.Duration {
	if h.Settle > 0 {
		return h.Settle
	}
	return DefaultSettle
}

// PhysicalID names the role the resource stands for.
func PhysicalID(roleName string) string { return "dms-service-role/" + roleName }

// OnEvent creates the role when it is absent (Create, Update) and does
// nothing on Delete.
func (h *Handler) OnEvent(ctx context.Context, req customresource.Request) (customresource.Response, error) {
	log := customresource.Logger(ctx)
	if req.RequestType == customresource.Delete {
		// Kept on purpose, whether or not this stack created it.
		log.InfoContext(ctx, "DMS service role kept", "physicalResourceId", req.PhysicalResourceID)
		return customresource.Response{PhysicalResourceID: req.PhysicalResourceID}, nil
	}
	p, err := customresource.ValidProperties(req, (*Properties).validate)
	if err != nil {
		return customresource.Response{}, err
	}
	role, err := h.getRole(ctx, p.RoleName)
	if err != nil {
		return customresource.Response{}, err
	}
	in := waitInput{RoleName: p.RoleName, PolicyArn: p.PolicyArn}
	if role == nil {
		if role, err = h.create(ctx, p); err != nil {
			return customresource.Response{}, err
		}
		in.Created = role != nil
	}
	if role == nil {
		// Someone else created it between our read and our create.
		if role, err = h.getRole(ctx, p.RoleName); err != nil || role == nil {
			return customresource.Response{}, fmt.Errorf("role %s: created by someone else but not readable: %w", p.RoleName, err)
		}
	}
	if !in.Created {
		h.warnIfIncomplete(ctx, p)
	}
	log.InfoContext(ctx, "DMS service role", "role", p.RoleName, "created", in.Created)
	return customresource.Response{
		PhysicalResourceID: PhysicalID(p.RoleName),
		Data: map[string]any{
			"RoleArn": aws.ToString(role.Arn),
			// Whether this deployment created the role (the README says
			// it is kept either way).
			"CreatedByStack": fmt.Sprint(in.Created),
		},
		IsCompleteInput: in,
	}, nil
}

// IsComplete reports whether the role can be handed to DMS.
func (h *Handler) IsComplete(ctx context.Context, req customresource.Request) (customresource.CompleteResponse, error) {
	if req.RequestType == customresource.Delete {
		return customresource.CompleteResponse{IsComplete: true}, nil
	}
	var in waitInput
	if err := req.Input(&in); err != nil {
		return customresource.CompleteResponse{}, err
	}
	if !in.Created {
		return customresource.CompleteResponse{IsComplete: true}, nil
	}
	log := customresource.Logger(ctx).With("role", in.RoleName)
	role, err := h.getRole(ctx, in.RoleName)
	if err != nil {
		return customresource.CompleteResponse{}, err
	}
	visible := role != nil && role.CreateDate != nil
	if visible {
		if visible, err = h.hasPolicy(ctx, in.RoleName, in.PolicyArn); err != nil {
			return customresource.CompleteResponse{}, err
		}
	}
	if !visible {
		log.InfoContext(ctx, "waiting for IAM to show the role with its policy")
		return customresource.CompleteResponse{}, nil
	}
	// The framework hands every isComplete call the same input, so the
	// clock is the role's own creation date.
	since := role.CreateDate
	done := h.now().Sub(*since) >= h.settle()
	log.InfoContext(ctx, "role visible with its policy", "since", since.UTC(), "ready", done)
	return customresource.CompleteResponse{IsComplete: done}, nil
}

// trustPolicy lets DMS assume the role.
func trustPolicy() string {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": ServicePrincipal},
			"Action":    "sts:AssumeRole",
		}},
	}
	b, _ := json.Marshal(doc) // a map of strings always encodes
	return string(b)
}

// create creates the role and attaches its policy. It returns nil, nil
// when the role came into existence meanwhile (created by someone else).
func (h *Handler) create(ctx context.Context, p Properties) (*types.Role, error) {
	out, err := h.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(p.RoleName),
		AssumeRolePolicyDocument: aws.String(trustPolicy()),
		Description:              aws.String("Required by AWS DMS under this name; created by the unified streaming ETL data stack because the account had none, and kept when the stack is deleted."),
	})
	var exists *types.EntityAlreadyExistsException
	if errors.As(err, &exists) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create role %s: %w", p.RoleName, err)
	}
	if _, err := h.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{
		RoleName:  aws.String(p.RoleName),
		PolicyArn: aws.String(p.PolicyArn),
	}); err != nil {
		return nil, fmt.Errorf("attach %s to role %s: %w", p.PolicyArn, p.RoleName, err)
	}
	customresource.Logger(ctx).InfoContext(ctx, "created DMS service role", "role", p.RoleName, "policy", p.PolicyArn)
	return out.Role, nil
}

func (h *Handler) getRole(ctx context.Context, name string) (*types.Role, error) {
	out, err := h.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	var notFound *types.NoSuchEntityException
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read role %s: %w", name, err)
	}
	return out.Role, nil
}

func (h *Handler) hasPolicy(ctx context.Context, name, policyArn string) (bool, error) {
	p := iam.NewListAttachedRolePoliciesPaginator(h.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var notFound *types.NoSuchEntityException
		if errors.As(err, &notFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("list policies of role %s: %w", name, err)
		}
		if slices.ContainsFunc(page.AttachedPolicies, func(a types.AttachedPolicy) bool { return aws.ToString(a.PolicyArn) == policyArn }) {
			return true, nil
		}
	}
	return false, nil
}

// warnIfIncomplete logs when a role the stack leaves alone lacks the
// policy DMS needs, which would make DMS fail later with a less helpful
// message.
func (h *Handler) warnIfIncomplete(ctx context.Context, p Properties) {
	has, err := h.hasPolicy(ctx, p.RoleName, p.PolicyArn)
	if err != nil || !has {
		customresource.Logger(ctx).WarnContext(ctx, "existing DMS service role left unchanged, but it does not show the policy DMS expects",
			"role", p.RoleName, "policy", p.PolicyArn, "error", err)
	}
}
