// Package ops is what the etl operator commands do against a deployed
// pipeline or any MySQL-compatible orders database (docs/design.md §7.6): find the
// database and the OrderEnriched table from stack outputs and secrets,
// connect over verified TLS, apply the SQL scripts, and compare
// OrderEnriched with the join of the source tables.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// The stacks' names (stacks.DataStackName and stacks.ProcessStackName,
// not imported: that would build the CDK into the operator tool).
const (
	DataStack    = "UnifiedStreamETLDataStack"
	ProcessStack = "UnifiedStreamETLProcessStack"
)

// Outputs of the data and process stacks that the commands read.
const (
	OutputDatabaseEndpoint     = "DatabaseEndpoint"
	OutputDatabaseSecretArn    = "DatabaseSecretArn"
	OutputReplicationSecretArn = "ReplicationSecretArn"
	OutputTableName            = "OrderEnrichedTableName"
	OutputReferenceDataURI     = "ReferenceDataUri"
	// OutputFailureBucketName is the bucket the event source mappings
	// write the batches they give up on to, records included
	// (docs/design.md §5.6): the source of `etl replay --failures`.
	OutputFailureBucketName = "FailureBucketName"
)

// CloudFormation is the part of the CloudFormation client the commands use.
type CloudFormation interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// Outputs are a deployed stack's outputs.
type Outputs struct {
	Stack  string
	Status string
	values map[string]string
}

// Get returns the output named key, or an error naming the stack and its
// status (a stack still being created or rolled back lacks outputs).
func (o Outputs) Get(key string) (string, error) {
	if v := o.values[key]; v != "" {
		return v, nil
	}
	return "", fmt.Errorf("stack %s (%s) has no output %s: is it the right stack, and deployed from this version?", o.Stack, o.Status, key)
}

// StackOutputs reads the outputs of stack (a name or an ARN).
func StackOutputs(ctx context.Context, cf CloudFormation, stack string) (Outputs, error) {
	s, err := describeStack(ctx, cf, stack)
	if err != nil {
		return Outputs{}, err
	}
	o := Outputs{Stack: stack, Status: string(s.StackStatus), values: make(map[string]string, len(s.Outputs))}
	for _, v := range s.Outputs {
		if v.OutputKey != nil && v.OutputValue != nil {
			o.values[*v.OutputKey] = *v.OutputValue
		}
	}
	return o, nil
}

// describeStack describes stack (a name or an ARN), saying plainly when it
// does not exist.
func describeStack(ctx context.Context, cf CloudFormation, stack string) (cftypes.Stack, error) {
	out, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &stack})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist") {
			return cftypes.Stack{}, fmt.Errorf("stack %s does not exist in this account and Region (check the stack name, AWS_PROFILE and AWS_REGION): %w", stack, err)
		}
		return cftypes.Stack{}, fmt.Errorf("describe stack %s: %w", stack, err)
	}
	if len(out.Stacks) == 0 {
		return cftypes.Stack{}, fmt.Errorf("describe stack %s: no such stack", stack)
	}
	return out.Stacks[0], nil
}

// SecretsManager is the part of the Secrets Manager client the commands use.
type SecretsManager interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Credentials are a database user's, from an RDS database secret (JSON
// with username and password, and host and port when attached to an
// instance).
type Credentials struct {
	Username, Password string
	Host               string
	Port               int // 0 when the secret has none
}

// ReadCredentials reads the database secret arn. Errors never contain
// secret material.
func ReadCredentials(ctx context.Context, sm SecretsManager, arn string) (Credentials, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil {
		return Credentials{}, fmt.Errorf("read secret %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return Credentials{}, fmt.Errorf("secret %s has no string value", arn)
	}
	var s struct {
		Username string          `json:"username"`
		Password string          `json:"password"`
		Host     string          `json:"host"`
		Port     json.RawMessage `json:"port"` // a number in RDS secrets, a string in hand-made ones
	}
	if err := json.Unmarshal([]byte(*out.SecretString), &s); err != nil {
		// encoding/json reports positions and types, never the values.
		return Credentials{}, fmt.Errorf("secret %s is not a JSON object with username and password: %w", arn, err)
	}
	if s.Username == "" || s.Password == "" {
		return Credentials{}, fmt.Errorf("secret %s lacks a username or a password", arn)
	}
	c := Credentials{Username: s.Username, Password: s.Password, Host: s.Host}
	if raw := strings.Trim(string(s.Port), `"`); raw != "" && raw != "null" {
		p, err := strconv.Atoi(raw)
		if err != nil || p < 1 || p > 65535 {
			return Credentials{}, fmt.Errorf("secret %s: port %s is not a TCP port", arn, raw)
		}
		c.Port = p
	}
	return c, nil
}

// FailuresURI is the replay source of every on-failure record in the
// process stack's failure bucket.
func (o Outputs) FailuresURI() (string, error) {
	bucket, err := o.Get(OutputFailureBucketName)
	if err != nil {
		return "", err
	}
	return "s3://" + bucket + "/", nil
}
